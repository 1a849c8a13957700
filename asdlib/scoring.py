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
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .config import Config

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
            r = (x - y).to(torch.float64)  # (b, D)
            sq_sum[k].index_add_(0, idx[sl], (r**2).mean(dim=1))
            rows = r.reshape(len(r), d // n_mels, n_mels)  # (b, n_frames, n_mels)
            row_sum[k].index_add_(0, idx[sl], rows.mean(dim=1))
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
