"""A trained anomaly detector with the scikit-learn outlier-detector API.

>>> det = AutoencoderDetector(model="dual", mics=(0, 4), alpha=0.5, score="mse")  # doctest: +SKIP
>>> det.fit(normal_paths).score_samples(test_paths)                               # doctest: +SKIP

Conventions (as ``sklearn.ensemble.IsolationForest`` and ``LocalOutlierFactor``, with one
difference): a ``BaseEstimator`` (``get_params``/``set_params``, ``clone``, a repr); ``fit`` learns
from normal data only; learned state ends in ``_``; ``decision_function`` subtracts the learned
``offset_`` (the gamma threshold); ``predict`` returns a label. Unlike scikit-learn, whose scores are
*higher for normal* samples, ``score_samples`` returns the anomaly score of the paper and of DCASE
-- **higher means more anomalous** -- and ``predict`` returns 1 for anomalous and 0 for normal, the
labels of the metrics. The samples ``X`` are clips (WAV paths or a manifest), not arrays.

One trained object everywhere: ``asdlib fit`` saves one with :meth:`AutoencoderDetector.save`; a
grid cell of ``asdlib run`` *is* one (:meth:`AutoencoderDetector.from_trained`, saved in the same
format as the cell's ``model.pt``); both are read back with :meth:`AutoencoderDetector.load`.
"""
from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .cache import FeatureCache, FeatureSet, extract_features
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import Config
from .data import DataError, add_audio_info
from .modelspec import ModelSpec
from .scoring import SCORE_KINDS, Calibration, calibrate, score_parts, weighted_scores
from .threshold import GammaThreshold
from .train import History, init_model, resolve_device, train_model

FORMAT = "asdlib-detector"
FORMAT_VERSION = 2


def as_paths(clips) -> list[str]:
    """Paths from a manifest (its ``path`` column), a sequence of paths, or one path."""
    if isinstance(clips, pd.DataFrame):
        if "path" not in clips.columns:
            raise ValueError("a clip table needs a 'path' column (as asdlib.data.scan_mimii returns)")
        return [str(p) for p in clips["path"]]
    if isinstance(clips, (str, Path)):
        return [str(clips)]
    return [str(p) for p in clips]


def channel_counts(paths: Sequence[str]) -> np.ndarray:
    """Channel count of each WAV file (reads headers only; a DataError names an unreadable file)."""
    return add_audio_info(pd.DataFrame({"path": list(paths)}))["channels"].to_numpy(int)


def _load_thresholds(stored) -> dict[str, GammaThreshold]:
    """The ``thresholds`` of a detector file, each checked; a ``ValueError`` names the field (``thresholds.mse.threshold``)."""
    thresholds = {}
    for kind, values in stored.items():
        try:
            thresholds[kind] = GammaThreshold.from_dict(values)
        except ValueError as err:
            raise ValueError(f"thresholds.{kind}.{err}") from None
    return thresholds


def _alpha_param(spec: ModelSpec):
    """The constructor's ``alpha`` that describes ``spec`` (one number when there is one α)."""
    return spec.alphas[0] if len(spec.alphas) == 1 else (spec.alphas or 1.0)


class AutoencoderDetector(OutlierMixin, BaseEstimator):
    """DCASE baseline AE or the paper's dual AE as an anomaly detector for one machine type.

    Parameters
    ----------
    model : {"baseline", "dual", "multi"}
        ``"baseline"``: the DCASE AE on microphone ``mics[0]``. ``"dual"``: the paper's model on
        the pair ``mics = (ref, other)``. ``"multi"``: reference ``mics[0]`` and a difference channel
        for each further microphone.
    mics : tuple of int, optional
        Microphones (default ``(0,)`` for the baseline, ``(0, 4)`` otherwise).
    alpha : float or tuple of float
        Weight α of the difference channel(s) in loss (eq. 4) and score (eq. 7); one value per
        difference channel, or one for all. Ignored by the baseline. With ``model`` and ``mics`` it
        builds the :class:`~asdlib.modelspec.ModelSpec` (``spec_``), the one home of α.
    score : {"mse", "mahalanobis"}
        The score ``score_samples`` returns and ``offset_`` belongs to (both kinds are always
        computed and both thresholds kept: see :meth:`score_all`; changing ``score`` after ``fit``
        selects the other stored threshold, no refit needed).
    config : Config, optional
        Hyper-parameters (the paper's by default).
    random_state : int, RandomState or None
        Seeds initial weights, validation hold-out and batch order (an int gives the same model as
        a grid cell of that seed; None draws a seed).
    device : str
        ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
    cache : FeatureCache, str, Path, bool or None
        Feature cache: True for the default folder, a folder, or None/False for none.
    n_jobs : int
        Processes for feature extraction.
    progress : bool
        Show progress bars.

    Attributes
    ----------
    spec_ : ModelSpec
        Inputs and α of the trained model.
    config_ : Config
        The hyper-parameters used.
    model_ : torch.nn.Module
    device_ : torch.device
    history_ : History
    seed_ : int
        The seed used (``random_state`` when it is an int).
    n_channels_ : int
        Channel count of the training clips; clips with another count are refused.
    inv_covs_ : list of np.ndarray
        Inverse residual covariance per input.
    ridges_ : list of float
        Ridge added to each covariance.
    train_scores_ : dict[str, np.ndarray]
        Both scores of each training clip (the gamma fits' data).
    thresholds_ : dict[str, GammaThreshold]
        Gamma threshold per score kind, fitted on the training clips' scores.
    offset_ : float
        ``thresholds_[score].threshold_``: ``decision_function = score_samples - offset_``.
    """

    def __init__(
        self,
        model: str = "dual",
        mics: Sequence[int] | None = None,
        alpha: float | Sequence[float] = 1.0,
        score: str = "mse",
        config: Config | None = None,
        *,
        random_state=0,
        device: str = "auto",
        cache: FeatureCache | str | Path | bool | None = True,
        n_jobs: int = 1,
        progress: bool = True,
    ):
        self.model = model
        self.mics = mics
        self.alpha = alpha
        self.score = score
        self.config = config
        self.random_state = random_state
        self.device = device
        self.cache = cache
        self.n_jobs = n_jobs
        self.progress = progress

    # -- parameters -> objects ---------------------------------------------------------------
    def _config(self) -> Config:
        if self.config is None:
            return Config()
        if not isinstance(self.config, Config):
            raise ValueError(f"config must be an asdlib Config or None, got {type(self.config).__name__}")
        return self.config

    def _check_score(self) -> str:
        if self.score not in SCORE_KINDS:
            raise ValueError(f"score must be one of {SCORE_KINDS}, got {self.score!r}")
        return self.score

    def _spec(self) -> ModelSpec:
        """The model spec that ``model``, ``mics`` and ``alpha`` describe."""
        if self.model not in ("baseline", "dual", "multi"):
            raise ValueError(f"model must be 'baseline', 'dual' or 'multi', got {self.model!r}")
        mics = tuple(self.mics) if self.mics is not None else ((0,) if self.model == "baseline" else (0, 4))
        if self.model == "baseline":
            if self.mics == "mean":
                return ModelSpec.baseline("mean")  # the 8-channel mean, as the DCASE 2023 loader gives it
            if len(mics) != 1:
                raise ValueError(f"the baseline uses one microphone (or mics='mean'), got mics={mics}")
            return ModelSpec.baseline(mics[0])
        if self.model == "dual" and len(mics) != 2:
            raise ValueError(f"the dual AE uses a pair of microphones, got mics={mics}")
        if len(mics) < 2:
            raise ValueError(f"model 'multi' needs at least two microphones, got mics={mics}")
        alpha = 1.0 if self.alpha is None else self.alpha
        alphas = tuple(alpha) if np.ndim(alpha) else (alpha,) * (len(mics) - 1)
        for a in alphas:
            if isinstance(a, bool) or not isinstance(a, numbers.Real) or not math.isfinite(a) or a < 0:
                raise ValueError(f"alpha must be a finite number >= 0 (or one per difference channel), got {self.alpha!r}")
        return ModelSpec(mics[0], mics[1:], alphas)

    def _seed(self) -> int:
        if isinstance(self.random_state, numbers.Integral) and not isinstance(self.random_state, bool):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    def _cache(self) -> FeatureCache | None:
        if self.cache is True:
            return FeatureCache()
        if self.cache in (None, False):
            return None
        return self.cache if isinstance(self.cache, FeatureCache) else FeatureCache(self.cache)

    def _features(self, clips) -> FeatureSet:
        """Features of ``clips`` for the fitted spec (a FeatureSet is used as it is), channel count checked."""
        paths = clips.paths if isinstance(clips, FeatureSet) else as_paths(clips)
        if not paths:
            raise ValueError("no clip to score (the selection is empty)")
        counts = channel_counts(paths)
        bad = np.flatnonzero(counts != self.n_channels_)
        if len(bad):
            raise DataError(
                f"{paths[bad[0]]}: has {counts[bad[0]]} channel(s) but this detector was trained on "
                f"{self.n_channels_}-channel clips; score clips recorded with the same array"
                + (f" ({len(bad)} such file(s))" if len(bad) > 1 else "")
            )
        if isinstance(clips, FeatureSet):
            missing = [s.name for s in self.spec_.inputs if s.name not in clips.vectors]
            if missing:
                raise ValueError(f"the feature set lacks input(s) {missing} of {self.spec_.name}")
            return clips
        return extract_features(paths, self.spec_.inputs, self.config_, cache=self._cache(), n_jobs=self.n_jobs, progress=self.progress)

    # -- building a fitted detector ----------------------------------------------------------
    def _set_trained(self, model, spec: ModelSpec, config: Config, calibration: Calibration, history: History,
                     n_channels: int, device: torch.device, seed: int) -> "AutoencoderDetector":
        self.spec_, self.config_, self.model_, self.device_ = spec, config, model.eval(), device
        self.history_, self.n_channels_, self.seed_ = history, int(n_channels), int(seed)
        self.inv_covs_ = [np.asarray(c, dtype=np.float64) for c in calibration.inv_covs]
        self.ridges_ = [float(r) for r in calibration.ridges]
        self.train_scores_ = {k: np.asarray(v, dtype=np.float64) for k, v in calibration.train_scores.items()}
        self.thresholds_ = dict(calibration.thresholds)
        self.offset_ = self.thresholds_[self._check_score()].threshold_
        return self

    @staticmethod
    def _training_channels(paths: Sequence[str]) -> int:
        counts = np.unique(channel_counts(paths))
        if len(counts) != 1:
            raise DataError(f"the training clips have different channel counts {counts.tolist()}; train on clips of one array")
        return int(counts[0])

    @classmethod
    def from_trained(cls, model: torch.nn.Module, spec: ModelSpec, config: Config, train: FeatureSet, history: History, *,
                     random_state: int, score: str = "mse", device="auto", cache=True, n_jobs: int = 1,
                     progress: bool = False) -> "AutoencoderDetector":
        """A fitted detector from a model trained elsewhere (a grid cell) and its training features.

        Calibrates it exactly as :meth:`fit` does (:func:`asdlib.scoring.calibrate`).

        Parameters
        ----------
        model : torch.nn.Module
            Trained (by :func:`asdlib.train.train_model` or :func:`asdlib.fused.train_fused`).
        spec : ModelSpec
        config : Config
        train : FeatureSet
            Features of the normal training clips it was trained on.
        history : History
        random_state : int
            The seed it was trained with.
        score, device, cache, n_jobs, progress
            As the constructor's.
        """
        det = cls(spec.kind, (spec.ref, *spec.others), _alpha_param(spec), score, config, random_state=random_state,
                  device=str(device), cache=cache, n_jobs=n_jobs, progress=progress)
        dev = resolve_device(det.device)
        model = model.to(dev)
        return det._set_trained(model, spec, config, calibrate(model, spec, train, config, dev), history,
                                cls._training_channels(train.paths), dev, det._seed())

    # -- scikit-learn API ----------------------------------------------------------------------
    def fit(self, X, y=None) -> "AutoencoderDetector":
        """Train on normal clips ``X`` (a manifest or paths); abnormal rows in a manifest are refused.

        Parameters
        ----------
        X : pandas.DataFrame, sequence of path, or path
            Normal training clips (a DataFrame needs a ``path`` column).
        y : None
            Ignored (anomaly detection learns from normal clips only).

        Returns
        -------
        self
        """
        if isinstance(X, pd.DataFrame) and "label" in X.columns and (X["label"] != "normal").any():
            n_bad = int((X["label"] != "normal").sum())
            raise ValueError(f"fit learns from normal clips only, but {n_bad} clip(s) are labelled abnormal; select label == 'normal'")
        config, spec = self._config(), self._spec()
        self._check_score()
        device = resolve_device(self.device)
        paths = as_paths(X)
        if not paths:
            raise ValueError("fit needs at least one normal clip (the selection is empty)")
        n_channels = self._training_channels(paths)
        train = extract_features(paths, spec.inputs, config, cache=self._cache(), n_jobs=self.n_jobs, progress=self.progress)
        seed = self._seed()
        model = init_model(spec, config, seed).to(device)
        inputs = [torch.as_tensor(train[s]).to(device) for s in spec.inputs]
        history = train_model(model, inputs, spec.weights, config, seed=seed, progress=self.progress, name=spec.name)
        return self._set_trained(model, spec, config, calibrate(model, spec, train, config, device), history, n_channels, device, seed)

    def _fitted_offset(self) -> float:
        """Check fitted; keep ``offset_`` on the threshold of the current ``score`` (a finite number, else raise)."""
        check_is_fitted(self, "model_")
        self.offset_ = self.thresholds_[self._check_score()].threshold_
        if not np.isfinite(self.offset_):
            raise ValueError(f"the {self.score} threshold is {self.offset_}, not a finite number; no decision can be "
                             "made with it (fit the detector again)")
        return self.offset_

    def set_params(self, **params) -> "AutoencoderDetector":
        """Set parameters (scikit-learn); on a fitted detector a new ``score`` also moves ``offset_``."""
        super().set_params(**params)
        if "score" in params and hasattr(self, "thresholds_") and self.score in self.thresholds_:
            self.offset_ = self.thresholds_[self.score].threshold_
        return self

    def score_parts(self, X) -> dict[str, list[np.ndarray]]:
        """Per-input scores ``{kind: [A_ref, A_dif, ...]}`` before the α-combination (eq. 7)."""
        check_is_fitted(self, "model_")
        return score_parts(self.model_, self.spec_, self._features(X), self.inv_covs_, self.config_, self.device_)

    def score_all(self, X) -> dict[str, np.ndarray]:
        """Both scores ``{"mse": ..., "mahalanobis": ...}`` for each clip (higher = more anomalous)."""
        scores = weighted_scores(self.score_parts(X), self.spec_.weights)
        for kind, s in scores.items():
            bad = np.flatnonzero(~np.isfinite(s))
            if len(bad):
                paths = X.paths if isinstance(X, FeatureSet) else as_paths(X)
                raise ValueError(f"{paths[bad[0]]}: the {kind} score is not finite ({s[bad[0]]}); "
                                 "the clip's features overflow the model (check its level)")
        return scores

    def score_samples(self, X) -> np.ndarray:
        """Anomaly score of each clip with ``self.score`` (higher = more anomalous)."""
        self._fitted_offset()
        return self.score_all(X)[self.score]

    def decision_function(self, X) -> np.ndarray:
        """``score_samples - offset_``: positive means anomalous."""
        scores = self.score_samples(X)
        return scores - self._fitted_offset()

    def predict(self, X) -> np.ndarray:
        """1 for anomalous (score above the gamma threshold), 0 for normal."""
        return (self.decision_function(X) > 0).astype(int)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the fitted detector to one file, atomically (the format of a grid cell's ``model.pt``)."""
        check_is_fitted(self, "model_")
        save_checkpoint(
            path, self.model_, self.spec_, self.config_,
            format=FORMAT,
            format_version=FORMAT_VERSION,
            score=self.score,
            random_state=self.seed_,
            n_channels=self.n_channels_,
            inv_covs=[torch.from_numpy(np.asarray(c, dtype=np.float64)) for c in self.inv_covs_],
            ridges=list(map(float, self.ridges_)),
            train_scores={k: torch.from_numpy(v) for k, v in self.train_scores_.items()},
            thresholds={k: t.to_dict() for k, t in self.thresholds_.items()},
            history=self.history_.to_dict(),
        )

    @classmethod
    def load(cls, path: str | Path, *, score: str | None = None, device: str = "auto", cache=True,
             progress: bool = False) -> "AutoencoderDetector":
        """Read a detector written by :meth:`save` (``torch.load(weights_only=True)``, checked first).

        Parameters
        ----------
        path : str or Path
            A file from ``asdlib fit`` or a grid cell's ``model.pt``.
        score : {"mse", "mahalanobis"}, optional
            Overrides the stored ``score``.
        device, cache, progress
            As the constructor's.

        Raises
        ------
        FileNotFoundError
            No such file.
        CheckpointError
            Damaged, unsafe, of another format, or inconsistent (the message names the file).
        """
        dev = resolve_device(device)
        model, spec, config, ckpt = load_checkpoint(path, dev)
        if ckpt.get("format") != FORMAT or ckpt.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{path}: not a detector of this asdlib version (format {ckpt.get('format')!r} "
                                  f"version {ckpt.get('format_version')!r}); fit it again with `asdlib fit` or re-run the grid")
        try:
            n_in, n_mels = len(spec.inputs), config.n_mels
            inv_covs = [np.asarray(c.cpu().numpy(), dtype=np.float64) for c in ckpt["inv_covs"]]
            if len(inv_covs) != n_in or any(c.shape != (n_mels, n_mels) or not np.all(np.isfinite(c)) for c in inv_covs):
                raise ValueError(f"needs {n_in} finite {n_mels}x{n_mels} inverse covariance(s)")
            thresholds = _load_thresholds(ckpt["thresholds"])
            if set(thresholds) != set(SCORE_KINDS):
                raise ValueError(f"thresholds for {sorted(thresholds)}, expected {list(SCORE_KINDS)}")
            n_channels = ckpt["n_channels"]
            if not isinstance(n_channels, int) or not max((spec.ref, *spec.others)) < n_channels:
                raise ValueError(f"n_channels {n_channels!r} does not hold microphones {(spec.ref, *spec.others)}")
            calibration = Calibration(inv_covs, list(map(float, ckpt["ridges"])),
                                      {k: v.cpu().numpy() for k, v in ckpt["train_scores"].items()}, thresholds)
            history = History(**ckpt["history"])
            det = cls(spec.kind, (spec.ref, *spec.others), _alpha_param(spec), score or ckpt["score"], config,
                      random_state=int(ckpt["random_state"]), device=device, cache=cache, progress=progress)
            det._check_score()
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise CheckpointError(f"{path}: damaged detector file ({err}); fit it again with `asdlib fit`") from None
        return det._set_trained(model, spec, config, calibration, history, n_channels, dev, det.random_state)
