"""A detector with the scikit-learn outlier-detector API: ``fit`` on normal clips, then score.

>>> det = AutoencoderDetector(model="dual", mics=(0, 4), alpha=0.5, score="mse")  # doctest: +SKIP
>>> det.fit(normal_paths).score_samples(test_paths)                               # doctest: +SKIP

Conventions (as ``sklearn.ensemble.IsolationForest`` and ``LocalOutlierFactor``, with one
difference): ``fit`` learns from normal data only; learned state ends in ``_``; ``decision_function``
subtracts the learned ``offset_`` (the gamma threshold); ``predict`` returns a label. Unlike
scikit-learn, whose scores are *higher for normal* samples, ``score_samples`` returns the anomaly
score of the paper and of DCASE -- **higher means more anomalous** -- and ``predict`` returns
1 for anomalous and 0 for normal, the labels of the metrics.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .cache import FeatureCache, FeatureSet, extract_features
from .config import Config
from .modelspec import ModelSpec
from .scoring import SCORE_KINDS, clip_score_parts, fit_inverse_covariances, residual_stats, weighted_scores
from .threshold import GammaThreshold
from .train import History, atomic_torch_save, init_model, load_checkpoint, resolve_device, train_model


def feature_tensors(features: FeatureSet, spec: ModelSpec, device: torch.device) -> list[torch.Tensor]:
    """The model's inputs as tensors on ``device``."""
    return [torch.as_tensor(features[s]).to(device) for s in spec.inputs]


def calibrate(model, spec: ModelSpec, train: FeatureSet, config: Config, device) -> dict:
    """After training: residual covariances (one per input) and the training clips' score parts.

    Returns
    -------
    dict
        ``inv_covs`` (list of (n_mels, n_mels)), ``ridges`` (list of float), ``parts``
        (``{kind: [per-input clip scores]}`` of the training clips).
    """
    stats = residual_stats(
        model, feature_tensors(train, spec, device), train.clip_index, train.n_clips, config.n_mels, with_covariance=True
    )
    inv_covs, ridges = fit_inverse_covariances(stats, config)
    return {"inv_covs": inv_covs, "ridges": ridges, "parts": clip_score_parts(stats, inv_covs)}


def score_parts(model, spec: ModelSpec, features: FeatureSet, inv_covs, config: Config, device) -> dict[str, list[np.ndarray]]:
    """Per-input clip scores of each kind for the clips in ``features``."""
    stats = residual_stats(model, feature_tensors(features, spec, device), features.clip_index, features.n_clips, config.n_mels)
    return clip_score_parts(stats, inv_covs)


def as_paths(clips) -> list[str]:
    """Paths from a manifest (its ``path`` column), a sequence of paths, or one path."""
    if isinstance(clips, pd.DataFrame):
        if "path" not in clips.columns:
            raise ValueError("a clip table needs a 'path' column (as asdlib.data.scan_mimii returns)")
        return [str(p) for p in clips["path"]]
    if isinstance(clips, (str, Path)):
        return [str(clips)]
    return [str(p) for p in clips]


class AutoencoderDetector:
    """DCASE baseline AE or the paper's dual AE as an anomaly detector for one machine type.

    Parameters
    ----------
    model : {"baseline", "dual", "multi"}
        ``"baseline"``: the DCASE AE on microphone ``mics[0]``. ``"dual"``: the paper's model on
        the pair ``mics = (ref, other)``. ``"multi"``: reference ``mics[0]`` and a difference channel
        for each further microphone.
    mics : tuple of int
        Microphones (default ``(0,)`` for the baseline, ``(0, 4)`` otherwise).
    alpha : float or tuple of float, optional
        Weight of the difference channel(s) in loss and score (default ``config.alpha``).
    score : {"mse", "mahalanobis"}
        The score ``score_samples`` returns (both are always computed; see :meth:`score_all`).
    config : Config, optional
        Hyper-parameters (the paper's by default).
    seed : int
        Seeds initial weights, validation hold-out and batch order.
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
    model_ : torch.nn.Module
    history_ : History
    inv_covs_ : list of np.ndarray
        Inverse residual covariance per input.
    thresholds_ : dict[str, GammaThreshold]
        Gamma threshold per score kind, fitted on the training clips' scores.
    offset_ : float
        ``thresholds_[score].threshold_``.
    """

    def __init__(
        self,
        model: str = "dual",
        mics: Sequence[int] | None = None,
        alpha: float | Sequence[float] | None = None,
        score: str = "mse",
        config: Config | None = None,
        *,
        seed: int = 0,
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
        self.seed = seed
        self.device = device
        self.cache = cache
        self.n_jobs = n_jobs
        self.progress = progress

    # -- parameters -> objects ---------------------------------------------------------------
    def _config(self) -> Config:
        return self.config if self.config is not None else Config()

    def _spec(self) -> ModelSpec:
        if self.model not in ("baseline", "dual", "multi"):
            raise ValueError(f"model must be 'baseline', 'dual' or 'multi', got {self.model!r}")
        if self.score not in SCORE_KINDS:
            raise ValueError(f"score must be one of {SCORE_KINDS}, got {self.score!r}")
        mics = tuple(self.mics) if self.mics is not None else ((0,) if self.model == "baseline" else (0, 4))
        if self.model == "baseline":
            if len(mics) != 1:
                raise ValueError(f"the baseline uses one microphone, got mics={mics}")
            return ModelSpec.baseline(mics[0])
        if self.model == "dual" and len(mics) != 2:
            raise ValueError(f"the dual AE uses a pair of microphones, got mics={mics}")
        if len(mics) < 2:
            raise ValueError(f"model 'multi' needs at least two microphones, got mics={mics}")
        alpha = self.alpha if self.alpha is not None else self._config().alpha
        alphas = tuple(alpha) if np.ndim(alpha) else (float(alpha),) * (len(mics) - 1)
        return ModelSpec(mics[0], mics[1:], alphas)

    def _cache(self) -> FeatureCache | None:
        if self.cache is True:
            return FeatureCache()
        if self.cache in (None, False):
            return None
        return self.cache if isinstance(self.cache, FeatureCache) else FeatureCache(self.cache)

    def _features(self, clips) -> FeatureSet:
        return extract_features(
            as_paths(clips), self.spec_.inputs, self._config(), cache=self._cache(), n_jobs=self.n_jobs, progress=self.progress
        )

    # -- scikit-learn API ----------------------------------------------------------------------
    def fit(self, clips, y=None) -> "AutoencoderDetector":
        """Train on normal clips (a manifest or paths); abnormal rows in a manifest are refused."""
        if isinstance(clips, pd.DataFrame) and "label" in clips.columns and (clips["label"] != "normal").any():
            n_bad = int((clips["label"] != "normal").sum())
            raise ValueError(f"fit learns from normal clips only, but {n_bad} clip(s) are labelled abnormal; select label == 'normal'")
        config = self._config()
        self.spec_ = self._spec()
        self.device_ = resolve_device(self.device)
        train = self._features(clips)
        self.model_ = init_model(self.spec_, config, self.seed).to(self.device_)
        inputs = feature_tensors(train, self.spec_, self.device_)
        self.history_ = train_model(self.model_, inputs, self.spec_.weights, config, seed=self.seed, progress=self.progress, name=self.spec_.name)
        cal = calibrate(self.model_, self.spec_, train, config, self.device_)
        self.inv_covs_, self.ridges_ = cal["inv_covs"], cal["ridges"]
        self.train_scores_ = weighted_scores(cal["parts"], self.spec_.weights)
        self.thresholds_ = {k: GammaThreshold(config.gamma_percentile).fit(s) for k, s in self.train_scores_.items()}
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ValueError("this AutoencoderDetector is not fitted yet; call fit(normal_clips) first")

    @property
    def offset_(self) -> float:
        self._check_fitted()
        return self.thresholds_[self.score].threshold_

    def score_parts(self, clips) -> dict[str, list[np.ndarray]]:
        """Per-input scores ``{kind: [A_ref, A_dif, ...]}`` before the α-combination (eq. 7)."""
        self._check_fitted()
        return score_parts(self.model_, self.spec_, self._features(clips), self.inv_covs_, self._config(), self.device_)

    def score_all(self, clips) -> dict[str, np.ndarray]:
        """Both scores ``{"mse": ..., "mahalanobis": ...}`` for each clip (higher = more anomalous)."""
        return weighted_scores(self.score_parts(clips), self.spec_.weights)

    def score_samples(self, clips) -> np.ndarray:
        """Anomaly score of each clip with ``self.score`` (higher = more anomalous)."""
        return self.score_all(clips)[self.score]

    def decision_function(self, clips) -> np.ndarray:
        """``score_samples - offset_``: positive means anomalous."""
        return self.score_samples(clips) - self.offset_

    def predict(self, clips) -> np.ndarray:
        """1 for anomalous (score above the gamma threshold), 0 for normal."""
        return (self.decision_function(clips) > 0).astype(int)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the fitted detector to one file (atomically)."""
        self._check_fitted()
        atomic_torch_save(
            {
                "state_dict": {k: v.detach().cpu() for k, v in self.model_.state_dict().items()},
                "spec": self.spec_.to_dict(),
                "config": self._config().to_dict(),
                "score": self.score,
                "seed": self.seed,
                "inv_covs": [torch.from_numpy(np.asarray(c)) for c in self.inv_covs_],
                "ridges": list(map(float, self.ridges_)),
                "thresholds": {k: t.to_dict() for k, t in self.thresholds_.items()},
                "history": self.history_.to_dict(),
            },
            path,
        )

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", cache=True, progress: bool = False) -> "AutoencoderDetector":
        """Read a detector written by :meth:`save` (``torch.load(weights_only=True)``)."""
        dev = resolve_device(device)
        model, spec, config, ckpt = load_checkpoint(path, dev)
        return cls._assemble(
            model, spec, config, dev, ckpt["inv_covs"], ckpt["ridges"], ckpt["thresholds"], ckpt["history"],
            score=ckpt["score"], seed=ckpt["seed"], device=device, cache=cache, progress=progress,
        )

    @classmethod
    def _assemble(cls, model, spec, config, dev, inv_covs, ridges, thresholds, history, *, score, seed, device, cache, progress):
        """A fitted detector from its trained parts (what :meth:`load` and ``ResultsStore.detector`` read)."""
        det = cls(spec.kind, (spec.ref, *spec.others), spec.alphas or None, score, config, seed=seed, device=device, cache=cache, progress=progress)
        det.spec_, det.model_, det.device_ = spec, model, dev
        det.inv_covs_ = [np.asarray(c.cpu().numpy() if isinstance(c, torch.Tensor) else c) for c in inv_covs]
        det.ridges_ = list(map(float, ridges))
        det.thresholds_ = {k: GammaThreshold.from_dict(t) for k, t in thresholds.items()}
        det.history_ = History(**history)
        return det
