"""How sure a table cell is: a bootstrap over test clips and training seeds, always within [0, 100].

One run of the grid is one sample of a chaotic training process evaluated on one finite test set.
A cell's value in the book is the mean over training seeds of its metric; its interval covers both
sources of variation:

* **test clips** -- every replicate redraws the test clips with replacement, anomalous and normal
  separately (stratified, so both classes are always present); all seeds and all models of a
  machine type use the *same* draw (they were scored on the same clips), so differences between
  models are paired;
* **training seeds** -- every replicate also redraws the seeds with replacement (a hierarchical
  bootstrap), so the spread between seeds widens the interval.

The interval is the percentile interval of the replicates (so it never leaves [0, 100]), widened
to contain the estimate in the rare case where it does not. With fewer than
:data:`MIN_SEEDS_FOR_INTERVAL` seeds no interval is given: the book shows the per-seed values.

The AUC and the McClish-standardised partial AUC of a replicate are computed from a pairwise
comparison matrix with the replicate's clip counts as weights, so thousands of replicates cost a few
matrix products; with all weights 1 they equal :func:`asdlib.metrics.roc_auc` and
:func:`asdlib.metrics.pauc_mcclish` (a test checks both).
"""
from __future__ import annotations

import zlib

import numpy as np

__all__ = [
    "MIN_SEEDS_FOR_INTERVAL",
    "clip_draws",
    "seed_draws",
    "weighted_auc",
    "weighted_pauc",
    "replicate_metrics",
    "percentile_interval",
]

MIN_SEEDS_FOR_INTERVAL = 3
"""Fewer seeds than this: no interval (three values say little about a spread; two say nothing)."""


def _rng(key: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(key.encode())])


def clip_draws(y_true, n_boot: int, key: str = "", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified bootstrap counts of the test clips: how often each clip is drawn in each replicate.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        1 anomalous, 0 normal; both present.
    n_boot : int
        Number of replicates.
    key : str
        Names the test set (e.g. the machine type): the same key and seed give the same draws, so
        every model scored on these clips is resampled identically (paired).
    seed : int
        Seed of the draws.

    Returns
    -------
    w_pos : np.ndarray [shape=(n_boot, n_anomalous)]
    w_neg : np.ndarray [shape=(n_boot, n_normal)]
        Counts summing to n_anomalous and n_normal in each row, in the clips' order within each class.
    """
    y = np.asarray(y_true).astype(int)
    m, n = int((y == 1).sum()), int((y == 0).sum())
    if m == 0 or n == 0:
        raise ValueError(f"clip_draws needs both classes, got {m} anomalous and {n} normal clips")
    rng = _rng(key, seed)
    w_pos = rng.multinomial(m, np.full(m, 1.0 / m), size=n_boot).astype(np.float64)
    w_neg = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    return w_pos, w_neg


def seed_draws(n_boot: int, n_seeds: int, seed: int = 0) -> np.ndarray:
    """Bootstrap weights of the training seeds: (n_boot, n_seeds), each row sums to 1."""
    rng = _rng("seeds", seed)
    return rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_boot) / n_seeds


def _comparisons(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """(m, n): 1 where an anomalous clip outscores a normal one, 1/2 for a tie, else 0."""
    diff = pos[:, None] - neg[None, :]
    return (diff > 0) + 0.5 * (diff == 0)


def weighted_auc(pos: np.ndarray, neg: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray) -> np.ndarray:
    """AUC of each replicate: (n_boot,) from scores (m,), (n,) and counts (n_boot, m), (n_boot, n)."""
    above = w_pos @ _comparisons(pos, neg)  # (B, n): weighted anomalies above each normal clip
    return np.einsum("bn,bn->b", above, w_neg) / (w_pos.sum(1) * w_neg.sum(1))


def weighted_pauc(pos: np.ndarray, neg: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray, max_fpr: float = 0.1) -> np.ndarray:
    """McClish-standardised partial AUC up to ``max_fpr`` of each replicate: (n_boot,).

    The ROC curve is a staircase: passing a normal clip moves the false-positive rate by its weight
    over the total, at the true-positive rate of the anomalies above it (ties count 1/2). The partial
    area is that staircase integrated over FPR in [0, max_fpr], rescaled as
    ``0.5 * (1 + (A - p**2/2) / (p - p**2/2))`` (McClish 1989), as ``roc_auc_score(max_fpr=p)``.
    """
    order = np.argsort(-neg, kind="stable")
    tpr = (w_pos @ _comparisons(pos, neg[order])) / w_pos.sum(1, keepdims=True)  # (B, n) height per normal clip
    step = w_neg[:, order] / w_neg.sum(1, keepdims=True)
    end = np.cumsum(step, axis=1)
    width = np.clip(end, 0.0, max_fpr) - np.clip(end - step, 0.0, max_fpr)
    area = np.einsum("bn,bn->b", tpr, width)
    low, high = max_fpr**2 / 2, max_fpr
    return 0.5 * (1.0 + (area - low) / (high - low))


def replicate_metrics(y_true, scores, w_pos: np.ndarray, w_neg: np.ndarray, max_fpr: float = 0.1) -> dict[str, np.ndarray]:
    """AUC and pAUC (in %) of every replicate and seed.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
    scores : array-like of shape (n_seeds, n_clips)
        One row of test scores per training seed, the clips in the order of ``y_true``.
    w_pos, w_neg : np.ndarray
        Clip counts from :func:`clip_draws` (one row per replicate).
    max_fpr : float
        Limit of the partial AUC.

    Returns
    -------
    dict
        ``{"AUC": (n_boot, n_seeds), "pAUC": (n_boot, n_seeds)}`` in percent.
    """
    y = np.asarray(y_true).astype(int)
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if s.shape[1] != y.size:
        raise ValueError(f"scores have {s.shape[1]} clips per seed, labels {y.size}")
    if not np.all(np.isfinite(s)):
        raise ValueError("a test score is NaN or infinite; a metric of it would be meaningless")
    auc = np.stack([weighted_auc(row[y == 1], row[y == 0], w_pos, w_neg) for row in s], axis=1)
    pauc = np.stack([weighted_pauc(row[y == 1], row[y == 0], w_pos, w_neg, max_fpr) for row in s], axis=1)
    return {"AUC": 100.0 * auc, "pAUC": 100.0 * pauc}


def percentile_interval(estimate: float, replicates: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``replicates``, widened to contain ``estimate``; (nan, nan) if empty."""
    r = np.asarray(replicates, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size == 0 or not np.isfinite(estimate):
        return float("nan"), float("nan")
    low, high = np.quantile(r, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return float(min(low, estimate)), float(max(high, estimate))
