"""Anomaly scores of whole clips; higher means more anomalous.

* MSE (paper eq. 1): mean over all vectors of the clip and all 640 dims of ``(x - x̂)²``.
* "Simple Mahalanobis" of the DCASE baseline (paper eq. 3): after training, one pass in eval mode
  over the training vectors gives residuals ``x - x̂``; each 640-d residual is cut into its five
  128-d frames, and the covariance ``Σ`` of those rows is computed (centred on their mean). A clip's
  score is ``r̄ᵀ Σ⁻¹ r̄`` with ``r̄`` the clip's mean residual row (squared distance, no root).
* Several inputs (the dual AE, eqs. 7-9): ``A = A_ref + α A_dif``, one covariance per input.

Regularisation (a choice the paper and baseline leave open): when ``Σ``'s condition number exceeds
``Config.max_condition`` (1e6), a ridge ``δ I`` is added with the smallest ``δ`` that brings it down
to exactly that bound; otherwise the plain inverse is used, as in the baseline.

Which covariance (a documented difference from the baseline): asdlib estimates ``Σ`` from *all*
training vectors, centred on their common mean, divided by (rows - 1). The DCASE baseline (v3.3.0)
uses only its 90 % training subset, centres each batch on its own mean and divides by
(vectors - 1), so its ``Σ`` is about ``n_frames`` = 5 times larger (:func:`dcase_covariance`). The
divisor gives exactly (rows - 1) / (vectors - 1); the subset and the batch centring move each clip's
score by about 1 % more (on the real MIMII sample clips: score ratios 4.90-5.08, Spearman >= 0.997,
the same AUC on all four machine types). So absolute Mahalanobis scores are about 5 times larger
here and the ranking of clips (AUC, pAUC) is the same. Ours uses every normal vector (the held-out
10 % only monitors the loss) and does not depend on the batch order.

:func:`calibrate` turns a trained model into a scorer (covariances, training scores, gamma
thresholds); :func:`score_parts` scores new clips with it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .config import Config
from .threshold import GammaThreshold

SCORE_KINDS = ("mse", "mahalanobis")


@dataclass
class ResidualStats:
    """Per-clip residual summaries of one input.

    Attributes
    ----------
    sq_mean : np.ndarray [shape=(n_clips,)]
        Mean squared residual per clip (the MSE score).
    row_mean : np.ndarray [shape=(n_clips, n_mels)]
        Mean residual frame per clip (``r̄`` of the Mahalanobis score).
    cov : np.ndarray [shape=(n_mels, n_mels)] or None
        Covariance of all residual frames (when requested).
    """

    sq_mean: np.ndarray
    row_mean: np.ndarray
    cov: np.ndarray | None = None


@torch.no_grad()
def residual_stats(
    model: torch.nn.Module,
    inputs: list[torch.Tensor],
    clip_index: np.ndarray,
    n_clips: int,
    n_mels: int,
    *,
    with_covariance: bool = False,
    batch_size: int = 8192,
) -> list[ResidualStats]:
    """Run ``model`` in eval mode over all vectors and summarise the residuals per clip and input.

    Parameters
    ----------
    model : torch.nn.Module
        A trained model with ``reconstruct(list_of_inputs)``.
    inputs : list of torch.Tensor [shape=(n_vectors, D)]
        The model's inputs, on its device.
    clip_index : np.ndarray [shape=(n_vectors,)]
        Clip of each vector, in ``range(n_clips)``.
    n_clips, n_mels : int
    with_covariance : bool
        Also accumulate the covariance of the residual frames (float64).

    Returns
    -------
    list of ResidualStats, one per input.
    """
    model.eval()
    device = inputs[0].device
    idx = torch.as_tensor(clip_index, device=device, dtype=torch.long)
    n_in = len(inputs)
    d = inputs[0].shape[1]
    sq_sum = [torch.zeros(n_clips, dtype=torch.float64, device=device) for _ in range(n_in)]
    row_sum = [torch.zeros(n_clips, n_mels, dtype=torch.float64, device=device) for _ in range(n_in)]
    outer = [torch.zeros(n_mels, n_mels, dtype=torch.float64, device=device) for _ in range(n_in)]
    counts = torch.bincount(idx, minlength=n_clips).to(torch.float64)
    for start in range(0, len(idx), batch_size):
        sl = slice(start, start + batch_size)
        xs = [x[sl] for x in inputs]
        for k, (x, y) in enumerate(zip(xs, model.reconstruct(xs))):
            r = x - y  # (b, D)
            if with_covariance:  # calibration: everything in float64 (the covariance subtracts large sums)
                r = r.to(torch.float64)
                sq = (r**2).mean(dim=1)
            else:  # scoring: per-vector means in float32 (~1e-7 relative), 3-4x faster; sums over a clip in float64
                sq = torch.linalg.vector_norm(r, dim=1).square_().div_(d)
            sq_sum[k].index_add_(0, idx[sl], sq.to(torch.float64))
            rows = r.reshape(len(r), d // n_mels, n_mels)  # (b, n_frames, n_mels)
            row_sum[k].index_add_(0, idx[sl], rows.mean(dim=1).to(torch.float64))
            if with_covariance:
                flat = rows.reshape(-1, n_mels)
                outer[k] += flat.T @ flat
    out = []
    for k in range(n_in):
        cov = None
        if with_covariance:
            n_rows = counts.sum() * (d // n_mels)
            # mean of all frames = count-weighted mean of per-clip means
            mean = (row_sum[k].sum(0) / counts.sum()).unsqueeze(1)  # (n_mels, 1)
            cov = ((outer[k] - n_rows * (mean @ mean.T)) / (n_rows - 1)).cpu().numpy()
        out.append(
            ResidualStats(
                sq_mean=(sq_sum[k] / counts).cpu().numpy(),
                row_mean=(row_sum[k] / counts[:, None]).cpu().numpy(),
                cov=cov,
            )
        )
    return out


def regularized_inverse(cov: np.ndarray, max_condition: float = 1e6) -> tuple[np.ndarray, float]:
    """Inverse of a covariance matrix, ridge-regularised when ill-conditioned.

    Parameters
    ----------
    cov : np.ndarray [shape=(d, d)]
        Symmetric positive semi-definite.
    max_condition : float
        Largest accepted condition number ``λ_max / λ_min``.

    Returns
    -------
    inverse : np.ndarray [shape=(d, d)]
    ridge : float
        The ``δ`` added to the diagonal (0 when none was needed).
    """
    cov = np.asarray(cov, dtype=np.float64)
    if not np.all(np.isfinite(cov)):
        raise ValueError("covariance contains NaN or Inf: the model's residuals are not finite")
    cov = (cov + cov.T) / 2
    eig = np.linalg.eigvalsh(cov)
    lo, hi = max(eig[0], 0.0), eig[-1]
    if hi <= 0:
        raise ValueError("covariance is zero: every residual is identical; the scores cannot use Mahalanobis")
    ridge = 0.0
    if lo * max_condition < hi:
        ridge = (hi - max_condition * lo) / (max_condition - 1)
    return np.linalg.inv(cov + ridge * np.eye(len(cov))), ridge


def mahalanobis(row_mean: np.ndarray, inv_cov: np.ndarray) -> np.ndarray:
    """``r̄ᵀ Σ⁻¹ r̄`` for each row of ``row_mean`` [shape=(n_clips, n_mels)] -> (n_clips,)."""
    return np.einsum("ci,ij,cj->c", row_mean, inv_cov, row_mean)


def combine(parts: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """``Σ_k w_k A_k`` (eq. 7 with weights ``[1, α]``)."""
    return sum(w * np.asarray(a, dtype=np.float64) for w, a in zip(weights, parts))


def clip_score_parts(stats: list[ResidualStats], inv_covs: list[np.ndarray] | None) -> dict[str, list[np.ndarray]]:
    """Per-input clip scores of each kind: ``{"mse": [A_ref, A_dif], "mahalanobis": [...]}``."""
    parts = {"mse": [s.sq_mean for s in stats]}
    if inv_covs is not None:
        parts["mahalanobis"] = [mahalanobis(s.row_mean, ic) for s, ic in zip(stats, inv_covs)]
    return parts


def weighted_scores(parts: dict[str, list[np.ndarray]], weights: list[float]) -> dict[str, np.ndarray]:
    """Combine per-input parts into one score per kind with ``weights``."""
    return {kind: combine(p, weights) for kind, p in parts.items()}


def fit_inverse_covariances(stats: list[ResidualStats], config: Config = Config()) -> tuple[list[np.ndarray], list[float]]:
    """One regularised inverse covariance per input (from stats computed ``with_covariance=True``)."""
    pairs = [regularized_inverse(s.cov, config.max_condition) for s in stats]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def feature_tensors(features, spec, device) -> list[torch.Tensor]:
    """A model's inputs (``spec.inputs``) from a :class:`~asdlib.cache.FeatureSet`, as tensors on ``device``."""
    return [torch.as_tensor(features[s]).to(device) for s in spec.inputs]


def score_parts(model: torch.nn.Module, spec, features, inv_covs: list[np.ndarray], config: Config, device) -> dict[str, list[np.ndarray]]:
    """Per-input clip scores ``{kind: [A_ref, A_dif, ...]}`` of the clips in ``features``.

    Parameters
    ----------
    model : torch.nn.Module
        Trained, on ``device``.
    spec : ModelSpec
        Its inputs.
    features : FeatureSet
        Holds at least ``spec.inputs``.
    inv_covs : list of np.ndarray
        Inverse residual covariance per input (from :func:`calibrate`).
    config : Config
        ``n_mels``.
    device : torch.device
    """
    stats = residual_stats(model, feature_tensors(features, spec, device), features.clip_index, features.n_clips, config.n_mels)
    return clip_score_parts(stats, inv_covs)


def fit_thresholds(scores: dict[str, np.ndarray], percentile: float = 0.9) -> dict[str, GammaThreshold]:
    """One :class:`~asdlib.threshold.GammaThreshold` per score kind, fitted to normal clips' scores."""
    return {kind: GammaThreshold(percentile).fit(s) for kind, s in scores.items()}


@dataclass
class Calibration:
    """What scoring needs besides the weights, learned from the training clips after training.

    Attributes
    ----------
    inv_covs : list of np.ndarray [shape=(n_mels, n_mels)]
        Regularised inverse residual covariance, one per input.
    ridges : list of float
        Ridge added to each covariance (0: plain inverse).
    train_scores : dict[str, np.ndarray]
        Combined score of each training clip, per kind.
    thresholds : dict[str, GammaThreshold]
        Gamma threshold per kind, fitted to ``train_scores``.
    """

    inv_covs: list[np.ndarray]
    ridges: list[float]
    train_scores: dict[str, np.ndarray]
    thresholds: dict[str, GammaThreshold]


def calibrate(model: torch.nn.Module, spec, train, config: Config, device) -> Calibration:
    """After training: residual covariances, the training clips' scores and their gamma thresholds.

    The one place where a trained model becomes a scorer: :class:`~asdlib.detector.AutoencoderDetector`
    calls it for ``fit`` and for a grid cell (:meth:`~asdlib.detector.AutoencoderDetector.from_trained`).

    Parameters
    ----------
    model : torch.nn.Module
        Trained, on ``device``.
    spec : ModelSpec
        Its inputs and weights (α).
    train : FeatureSet
        The normal training clips' features (all of them: see the module docstring).
    config : Config
        ``n_mels``, ``max_condition``, ``gamma_percentile``.
    device : torch.device

    Returns
    -------
    Calibration
    """
    stats = residual_stats(model, feature_tensors(train, spec, device), train.clip_index, train.n_clips, config.n_mels, with_covariance=True)
    inv_covs, ridges = fit_inverse_covariances(stats, config)
    train_scores = weighted_scores(clip_score_parts(stats, inv_covs), spec.weights)
    return Calibration(inv_covs, ridges, train_scores, fit_thresholds(train_scores, config.gamma_percentile))


@torch.no_grad()
def dcase_covariance(model: torch.nn.Module, inputs: list[torch.Tensor], batches: list[torch.Tensor], n_mels: int) -> list[np.ndarray]:
    """The residual covariance as the DCASE 2023 baseline (v3.3.0) estimates it, for comparison.

    Over the given ``batches`` of vector indices (the baseline: its 90 % training subset, in batches
    of 256), each batch's residual rows are centred on *that batch's* mean, the outer products are
    summed, and the sum is divided by (number of 640-d vectors - 1) -- not by (number of rows - 1).
    With ``n_frames`` rows per vector this is about ``n_frames`` times :func:`residual_stats`'s
    covariance. asdlib does not use it (see the module docstring); tests measure the difference.

    Returns
    -------
    list of np.ndarray [shape=(n_mels, n_mels)], one per input.
    """
    model.eval()
    sums = [torch.zeros(n_mels, n_mels, dtype=torch.float64, device=inputs[0].device) for _ in inputs]
    n_vectors = 0
    for batch in batches:
        xs = [x[batch] for x in inputs]
        for k, (x, y) in enumerate(zip(xs, model.reconstruct(xs))):
            rows = (x - y).to(torch.float64).reshape(-1, n_mels)
            rows = rows - rows.mean(dim=0)
            sums[k] += rows.T @ rows
        n_vectors += len(batch)
    return [(s / (n_vectors - 1)).cpu().numpy() for s in sums]
