"""Detection metrics: AUC, the two partial AUCs, decision metrics, averages, and how sure they are.

Conventions: a *score* is higher for a more anomalous clip; a *label* is 1 for an anomalous clip and
0 for a normal one (the positives are the anomalies). Functions take 1-D array-likes of one value
per clip, in the same clip order (the bootstrap also accepts one row per training seed).

The paper (section 3.2) defines the AUC by its equation (10) and the partial AUC by equation (11).
Two different numbers are called "pAUC" in this field, and both are provided here:

* :func:`pauc_mcclish` -- what the DCASE evaluator computes, ``roc_auc_score(..., max_fpr=0.1)``:
  the partial area up to FPR = p, McClish-standardised to 0.5 for a chance detector and 1 for a
  perfect one. The paper's reported pAUCs (valves at about 48 %) only fit this form, and it is the
  one our tables call "pAUC".
* :func:`pauc_eq11` -- equation (11) as written: the fraction of (anomalous, top-normal) pairs that
  are ranked correctly, over the ``floor(p N-)`` highest-scoring normal clips; about p / 2 = 0.05
  for a chance detector and 1 for a perfect one.

With ``k = floor(p N-) = p N-`` and no ties the two are one number in two scales:
``pauc_mcclish = 0.5 * (1 + (p * e - p**2 / 2) / (p - p**2 / 2))`` where ``e = pauc_eq11``.

How sure: :func:`delong_test` compares two AUCs measured on the same clips (DeLong, DeLong &
Clarke-Pearson 1988, with the fast midrank algorithm of Sun & Xu 2014);
:func:`paired_bootstrap_auc_difference` does the same by resampling clips; :func:`mean_ci` is the
Student-t interval over repeated training seeds.

References
----------
E. R. DeLong, D. M. DeLong, D. L. Clarke-Pearson, "Comparing the areas under two or more correlated
receiver operating characteristic curves: a nonparametric approach", Biometrics 44(3), 837-845, 1988.

X. Sun, W. Xu, "Fast implementation of DeLong's algorithm for comparing the areas under correlated
receiver operating characteristic curves", IEEE Signal Processing Letters 21(11), 1389-1393, 2014.

D. K. McClish, "Analyzing a portion of the ROC curve", Medical Decision Making 9(3), 190-195, 1989.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from .intervals import seed_draws

__all__ = [
    "roc_auc",
    "pauc_mcclish",
    "pauc_eq11",
    "harmonic_mean",
    "decision_metrics",
    "DeLongResult",
    "delong_variance",
    "delong_test",
    "mean_ci",
    "BootstrapResult",
    "paired_bootstrap_auc_difference",
]


# ----------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------


def _labels(y_true, name: str = "y_true", both_classes: bool = True) -> np.ndarray:
    """``y_true`` as a 1-D int array of 0/1, optionally with both classes present."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per clip), got shape {y.shape}")
    if y.size == 0:
        raise ValueError(f"{name} is empty: pass one label per test clip")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError(f"{name} contains NaN at index {int(np.flatnonzero(np.isnan(y))[0])}; labels must be 0 or 1")
    bad = ~np.isin(y, [0, 1])
    if bad.any():
        raise ValueError(
            f"{name} must hold 0 (normal) or 1 (anomalous) only; got {y[bad][0]!r} at index "
            f"{int(np.flatnonzero(bad)[0])} (map 'normal'/'abnormal' to 0/1 first)"
        )
    y = y.astype(np.int64)
    if both_classes:
        n_pos = int(y.sum())
        if n_pos == 0 or n_pos == y.size:
            present = "anomalous (1)" if n_pos else "normal (0)"
            missing = "normal (0)" if n_pos else "anomalous (1)"
            raise ValueError(
                f"{name} holds only {present} clips ({y.size} of them): the AUC needs both classes; "
                f"add {missing} clips to the evaluation set"
            )
    return y


def _scores(y_score, n: int, name: str, allow_2d: bool = False) -> np.ndarray:
    """``y_score`` as a finite float array of shape (n,), or (r, n) when ``allow_2d``."""
    s = np.asarray(y_score, dtype=np.float64)
    if s.ndim not in ((1, 2) if allow_2d else (1,)) or s.shape[-1] != n:
        shape = f"({n},) or (n_seeds, {n})" if allow_2d else f"({n},)"
        raise ValueError(f"{name} must have one score per clip, shape {shape} as y_true, got shape {s.shape}")
    for what, mask in (("NaN", np.isnan(s)), ("an infinite value", np.isinf(s))):
        if mask.any():
            where = tuple(int(i) for i in np.argwhere(mask)[0])
            raise ValueError(
                f"{name} contains {what} ({int(mask.sum())} in all, first at index "
                f"{where[0] if s.ndim == 1 else where}); fix the scoring of those clips"
            )
    return s


def _fraction(value: float, name: str, low_open: bool = True) -> float:
    """A number in (0, 1] (or (0, 1) when ``low_open`` is False for the upper end)."""
    value = float(value)
    ok = 0 < value <= 1 if low_open else 0 < value < 1
    if not ok:
        interval = "(0, 1]" if low_open else "(0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return value


# ----------------------------------------------------------------------------------------------
# AUC and the two partial AUCs
# ----------------------------------------------------------------------------------------------


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve (the paper's equation 10, ties counted 1/2).

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        1 for anomalous clips, 0 for normal ones; both classes must be present.
    y_score : array-like of shape (n_clips,)
        Anomaly scores, higher = more anomalous; finite.

    Returns
    -------
    float
        ``sklearn.metrics.roc_auc_score(y_true, y_score)``: 0.5 for a chance detector, 1 perfect.

    Raises
    ------
    ValueError
        One class only, labels other than 0/1, NaN or infinite scores, or mismatched lengths.
    """
    y = _labels(y_true)
    s = _scores(y_score, y.size, "y_score")
    return float(roc_auc_score(y, s))


def pauc_mcclish(y_true, y_score, max_fpr: float = 0.1) -> float:
    """Partial AUC up to ``max_fpr``, McClish-standardised: what the DCASE evaluator reports.

    This is ``sklearn.metrics.roc_auc_score(y_true, y_score, max_fpr=max_fpr)``, the call in the
    official DCASE Task 2 evaluator. The raw partial area ``A`` (the ROC curve integrated over
    FPR in [0, p]) is rescaled as ``0.5 * (1 + (A - p**2/2) / (p - p**2/2))`` (McClish 1989), so a
    chance detector scores 0.5 and a perfect one 1. The paper's reported pAUC values are of this
    kind. Compare :func:`pauc_eq11`, the paper's equation (11) read literally.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        1 for anomalous clips, 0 for normal ones; both classes must be present.
    y_score : array-like of shape (n_clips,)
        Anomaly scores, higher = more anomalous.
    max_fpr : float, default 0.1
        The false-positive-rate limit p, in (0, 1]. ``max_fpr=1`` gives the full AUC.

    Returns
    -------
    float
        In about [0.47, 1] for p = 0.1 (below 0.5 only for detectors worse than chance).

    See Also
    --------
    pauc_eq11 : the unstandardised equation (11), ~0.05 for chance.
    """
    y = _labels(y_true)
    s = _scores(y_score, y.size, "y_score")
    max_fpr = _fraction(max_fpr, "max_fpr")
    return float(roc_auc_score(y, s, max_fpr=max_fpr))


def pauc_eq11(y_true, y_score, max_fpr: float = 0.1, tie_value: float = 0.0) -> float:
    """The paper's equation (11) as written: correct rankings against the top ``floor(p N-)`` normals.

    .. math::

        \\text{pAUC} = \\frac{1}{\\lfloor pN_-\\rfloor N_+} \\sum_{i=1}^{\\lfloor pN_-\\rfloor}
        \\sum_{j=1}^{N_+} \\mathcal{H}\\big(\\mathcal{A}(x_j^+) - \\mathcal{A}(x_i^-)\\big)

    where the ``i`` run over the ``floor(p N-)`` highest-scoring normal clips -- those that a
    threshold must pass to reach FPR = p -- and ``j`` over all anomalous clips. It is the raw
    partial area divided by p (not McClish-standardised), so a chance detector scores about
    p / 2 = 0.05 and a perfect one 1. The DCASE evaluator (and the paper's tables) use
    :func:`pauc_mcclish` instead; both give 1 for a perfect detector, and the module docstring
    gives the exact relation between them.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        1 for anomalous clips, 0 for normal ones; both classes must be present.
    y_score : array-like of shape (n_clips,)
        Anomaly scores, higher = more anomalous.
    max_fpr : float, default 0.1
        The false-positive-rate limit p, in (0, 1]. ``floor(p N-)`` is computed with a 1e-9 slack,
        so that e.g. 0.29 * 100 gives 29.
    tie_value : {0.0, 0.5}, default 0.0
        H(0), the credit for an anomalous clip whose score equals a normal clip's. The paper's
        Heaviside step returns 0 for a zero argument, hence the default; 0.5 is the Mann-Whitney
        convention of the AUC. Ties are rare with continuous scores.

    Returns
    -------
    float
        In [0, 1]; NaN, with a ``RuntimeWarning``, when ``floor(p N-) == 0`` (fewer than 1/p
        normal clips: the formula is 0 / 0).

    Raises
    ------
    ValueError
        ``tie_value`` not 0 or 0.5, ``max_fpr`` outside (0, 1], or any error of :func:`roc_auc`.

    See Also
    --------
    pauc_mcclish : the DCASE evaluator's (standardised) partial AUC, 0.5 for chance.
    """
    y = _labels(y_true)
    s = _scores(y_score, y.size, "y_score")
    max_fpr = _fraction(max_fpr, "max_fpr")
    if tie_value not in (0.0, 0.5):
        raise ValueError(f"tie_value must be 0.0 (the paper's H(0) = 0) or 0.5, got {tie_value}")
    neg, pos = s[y == 0], np.sort(s[y == 1])
    k = int(math.floor(max_fpr * neg.size + 1e-9))
    if k < 1:  # 0 / 0: undefined, as numpy's 0 / 0 (a warning, not an error, so a grid run goes on)
        warnings.warn(
            f"pauc_eq11 is undefined (NaN): floor(max_fpr * N-) = floor({max_fpr} * {neg.size}) = 0; "
            f"equation (11) needs at least {math.ceil(1 / max_fpr - 1e-9)} normal clips for max_fpr={max_fpr}",
            RuntimeWarning,
            stacklevel=2,
        )
        return float("nan")
    top_neg = np.sort(neg)[::-1][:k]  # (k,) the k highest-scoring normal clips
    above = pos.size - np.searchsorted(pos, top_neg, side="right")  # (k,) anomalies strictly above
    tied = np.searchsorted(pos, top_neg, side="right") - np.searchsorted(pos, top_neg, side="left")
    return float((above.sum() + tie_value * tied.sum()) / (k * pos.size))


# ----------------------------------------------------------------------------------------------
# averages and decisions
# ----------------------------------------------------------------------------------------------


def harmonic_mean(values) -> float:
    """Harmonic mean, the DCASE convention for averaging a metric over machine types.

    The paper's "Average" row of Table 1 is the harmonic mean of the four machine types' values
    (checked against the reported table in ``tests/test_metrics.py``).

    Parameters
    ----------
    values : array-like of shape (n,)
        Strictly positive, finite numbers (AUCs in [0, 1] or in percent: the scale is kept).

    Returns
    -------
    float
        ``n / sum(1 / values)``.

    Raises
    ------
    ValueError
        Empty input, NaN/inf, or a value <= 0 (the harmonic mean is undefined there).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("harmonic_mean needs at least one value, got none")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"harmonic_mean got a non-finite value: {v[~np.isfinite(v)][0]}")
    if np.any(v <= 0):
        raise ValueError(
            f"harmonic_mean needs values > 0, got {v[v <= 0][0]} at index {int(np.flatnonzero(v <= 0)[0])}; "
            "a metric of 0 (or below) has no harmonic mean: report it separately"
        )
    return float(v.size / np.sum(1.0 / v))


def decision_metrics(y_true, y_pred, zero_division: float = 0.0) -> dict:
    """Counts and rates of hard decisions (1 = called anomalous), anomalies as the positive class.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        1 for anomalous clips, 0 for normal ones (one class alone is allowed).
    y_pred : array-like of shape (n_clips,)
        Decisions, 1 = anomalous (e.g. score > gamma threshold), 0 = normal.
    zero_division : float, default 0.0
        The value given to a ratio whose denominator is 0, as scikit-learn's ``zero_division``:
        precision when nothing is called anomalous (tp + fp = 0), recall when there are no
        anomalous clips (tp + fn = 0), F1 when both are empty (tp + fp + fn = 0). Must be 0.0, 1.0
        or NaN. F1 is ``2 tp / (2 tp + fp + fn)``, which is 0 (not undefined) when tp = 0 and
        fp + fn > 0.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``tn``, ``fn`` (int), and ``precision``, ``recall``, ``f1``, ``accuracy``
        (float, in [0, 1]).
    """
    if not (zero_division in (0.0, 1.0) or (isinstance(zero_division, float) and math.isnan(zero_division))):
        raise ValueError(f"zero_division must be 0.0, 1.0 or nan, got {zero_division!r}")
    y = _labels(y_true, both_classes=False)
    p = _labels(y_pred, name="y_pred", both_classes=False)
    if p.size != y.size:
        raise ValueError(f"y_pred has {p.size} decisions but y_true has {y.size} labels; pass one per clip")
    tp = int(np.sum((p == 1) & (y == 1)))
    fp = int(np.sum((p == 1) & (y == 0)))
    tn = int(np.sum((p == 0) & (y == 0)))
    fn = int(np.sum((p == 0) & (y == 1)))

    def ratio(num: int, den: int) -> float:
        return float(num / den) if den else float(zero_division)

    return {
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": float((tp + tn) / y.size),
    }


# ----------------------------------------------------------------------------------------------
# DeLong's test (fast algorithm of Sun & Xu 2014)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeLongResult:
    """DeLong's test of two correlated AUCs (same clips), difference = a - b.

    Attributes
    ----------
    auc_a, auc_b : float
        The two AUCs.
    difference : float
        ``auc_a - auc_b``.
    se : float
        Standard error of the difference (DeLong's variance of a - b, square-rooted).
    z : float
        ``difference / se`` (0 when both are 0; +-inf when only se is 0).
    p_value : float
        Two-sided, ``2 * (1 - Phi(|z|))``.
    ci_low, ci_high : float
        Normal-approximation interval of the difference at ``confidence``.
    confidence : float
        The interval's level (0.95 by default).
    """

    auc_a: float
    auc_b: float
    difference: float
    se: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float = 0.95


def _placements(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and DeLong's structural components by midranks (Sun & Xu 2014, section III).

    Parameters
    ----------
    y : ndarray of shape (n_clips,)
        0/1 labels with both classes and at least 2 clips of each.
    scores : ndarray of shape (r, n_clips)
        One row per detector.

    Returns
    -------
    aucs : ndarray of shape (r,)
    v10 : ndarray of shape (r, m)
        For each anomalous clip, the share of normal clips it outranks (ties 1/2).
    v01 : ndarray of shape (r, n)
        For each normal clip, the share of anomalous clips that outrank it (ties 1/2).
    """
    pos, neg = scores[:, y == 1], scores[:, y == 0]  # (r, m), (r, n)
    m, n = pos.shape[1], neg.shape[1]
    t_z = stats.rankdata(np.concatenate([pos, neg], axis=1), axis=1)  # (r, m + n) midranks
    t_x = stats.rankdata(pos, axis=1)  # (r, m)
    t_y = stats.rankdata(neg, axis=1)  # (r, n)
    v10 = (t_z[:, :m] - t_x) / n
    v01 = 1.0 - (t_z[:, m:] - t_y) / m
    aucs = (t_z[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    return aucs, v10, v01


def _delong_inputs(y_true, score_arrays: dict) -> tuple[np.ndarray, np.ndarray]:
    y = _labels(y_true)
    m, n = int(y.sum()), int(y.size - y.sum())
    if m < 2 or n < 2:
        raise ValueError(
            f"DeLong's variance needs at least 2 anomalous and 2 normal clips, got {m} and {n}"
        )
    rows = []
    for name, values in score_arrays.items():
        rows.append(_scores(values, y.size, name))
    return y, np.stack(rows)


def delong_variance(y_true, y_score) -> float:
    """DeLong's estimate of the variance of one AUC.

    ``var = s10 / m + s01 / n`` where ``s10`` and ``s01`` are the sample variances (ddof = 1) of
    the structural components over the m anomalous and n normal clips (DeLong et al. 1988).

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        1 anomalous, 0 normal; at least 2 clips of each class.
    y_score : array-like of shape (n_clips,)
        Anomaly scores, higher = more anomalous.

    Returns
    -------
    float
        The variance of :func:`roc_auc` (its square root is the standard error).
    """
    y, s = _delong_inputs(y_true, {"y_score": y_score})
    _, v10, v01 = _placements(y, s)
    return float(np.var(v10[0], ddof=1) / v10.shape[1] + np.var(v01[0], ddof=1) / v01.shape[1])


def delong_test(y_true, scores_a, scores_b, confidence: float = 0.95) -> DeLongResult:
    """DeLong's test for two AUCs measured on the same clips (paired, correlated).

    The variance of ``auc_a - auc_b`` is ``var_a + var_b - 2 cov_ab`` from the covariance matrix
    of the structural components (DeLong et al. 1988), computed here as the variance of the
    paired component differences (the same number, exactly 0 for identical detectors). The
    structural components come from midranks (Sun & Xu 2014), O(n log n). This matches R's
    ``pROC::roc.test(..., method="delong", paired=TRUE)``.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        1 anomalous, 0 normal; at least 2 clips of each class.
    scores_a, scores_b : array-like of shape (n_clips,)
        The two detectors' scores on the same clips, in the same order.
    confidence : float, default 0.95
        Level of the interval of the difference, in (0, 1).

    Returns
    -------
    DeLongResult
        ``difference = auc_a - auc_b``; a positive z favours a. When the two score vectors rank
        the clips identically, z = 0 and p = 1. When the variance estimate is 0 but the AUCs
        differ (e.g. a perfect detector against a constant one), z = +-inf and p = 0, as pROC.
    """
    confidence = _fraction(confidence, "confidence", low_open=False)
    y, s = _delong_inputs(y_true, {"scores_a": scores_a, "scores_b": scores_b})
    aucs, v10, v01 = _placements(y, s)
    m, n = v10.shape[1], v01.shape[1]
    variance = np.var(v10[0] - v10[1], ddof=1) / m + np.var(v01[0] - v01[1], ddof=1) / n
    se = float(math.sqrt(max(variance, 0.0)))
    difference = float(aucs[0] - aucs[1])
    if se > 0:
        z = difference / se
    else:
        z = 0.0 if difference == 0 else math.copysign(math.inf, difference)
    half = float(stats.norm.ppf(0.5 + confidence / 2)) * se
    return DeLongResult(
        auc_a=float(aucs[0]),
        auc_b=float(aucs[1]),
        difference=difference,
        se=se,
        z=float(z),
        p_value=float(min(1.0, 2 * stats.norm.sf(abs(z)))),
        ci_low=difference - half,
        ci_high=difference + half,
        confidence=confidence,
    )


# ----------------------------------------------------------------------------------------------
# seeds and bootstrap
# ----------------------------------------------------------------------------------------------


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of repeated runs (e.g. training seeds).

    Parameters
    ----------
    values : array-like of shape (n_runs,)
        One finite value per run.
    confidence : float, default 0.95
        Level of the interval, in (0, 1).

    Returns
    -------
    mean, low, high : float
        ``mean -+ t_{(1+confidence)/2, n-1} * sd / sqrt(n)`` (sd with ddof = 1). With one value,
        ``(value, nan, nan)``: one run says nothing about the spread.
    """
    confidence = _fraction(confidence, "confidence", low_open=False)
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("mean_ci needs at least one value, got none")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"mean_ci got a non-finite value: {v[~np.isfinite(v)][0]}")
    mean = float(v.mean())
    if v.size == 1:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, df=v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class BootstrapResult:
    """Paired, class-stratified bootstrap of an AUC difference (a - b).

    Attributes
    ----------
    difference : float
        Observed ``AUC(a) - AUC(b)`` (mean over rows when the scores are per seed).
    ci_low, ci_high : float
        Percentile interval of the resampled differences at ``confidence``.
    p_value : float
        Two-sided: ``min(1, 2 (1 + min(#{d* <= 0}, #{d* >= 0})) / (n_boot + 1))``.
    n_boot : int
        Number of resamples.
    confidence : float
        The interval's level.
    """

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_boot: int
    confidence: float = 0.95


def _auc_rows(y_pos: np.ndarray, y_neg: np.ndarray) -> np.ndarray:
    """The AUC of each row of each resample: (B, r, m) and (B, r, n) -> (B, r)."""
    m, n = y_pos.shape[-1], y_neg.shape[-1]
    ranks = stats.rankdata(np.concatenate([y_pos, y_neg], axis=-1), axis=-1)  # (B, r, m + n)
    return (ranks[..., :m].sum(axis=-1) - m * (m + 1) / 2) / (m * n)


def paired_bootstrap_auc_difference(
    y_true, scores_a, scores_b, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95,
    resample_seeds: bool = False,
) -> BootstrapResult:
    """Bootstrap interval and p-value of ``AUC(a) - AUC(b)`` on the same clips.

    Each resample draws, with replacement, m anomalous clips from the m anomalous ones and n
    normal clips from the n normal ones (stratified by class, so every resample has both), and
    uses the *same* drawn clips for a and b (paired). Scores may also be given per training seed,
    shape (n_seeds, n_clips): the difference is then the mean over seeds of the per-seed AUC
    differences, and each resample uses the same clips for every seed. By default the interval
    covers clip sampling for these trained models (the seed spread averaged in); with
    ``resample_seeds`` each resample also redraws the seeds with replacement (a hierarchical
    bootstrap, the same seeds for a and b as in :mod:`asdlib.intervals`), so it covers training
    randomness too: the question becomes whether the *method* is better, not these models.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        1 anomalous, 0 normal; both classes present.
    scores_a, scores_b : array-like of shape (n_clips,) or (n_seeds, n_clips)
        The two detectors' scores on the same clips (same shape).
    n_boot : int, default 2000
        Number of resamples (>= 1).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; the same seed gives the same result.
    confidence : float, default 0.95
        Level of the percentile interval, in (0, 1).
    resample_seeds : bool, default False
        Also redraw the rows (training seeds) in every resample. One row: no effect.

    Returns
    -------
    BootstrapResult
        Identical detectors give difference 0, interval (0, 0) and p = 1.
    """
    confidence = _fraction(confidence, "confidence", low_open=False)
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot}")
    n_boot = int(n_boot)
    y = _labels(y_true)
    a = np.atleast_2d(_scores(scores_a, y.size, "scores_a", allow_2d=True))  # (r, n_clips)
    b = np.atleast_2d(_scores(scores_b, y.size, "scores_b", allow_2d=True))
    if a.shape != b.shape:
        raise ValueError(f"scores_a and scores_b must have the same shape, got {a.shape} and {b.shape}")
    pos_idx, neg_idx = np.flatnonzero(y == 1), np.flatnonzero(y == 0)

    observed = float(_auc_rows(a[:, pos_idx][None], a[:, neg_idx][None]).mean()
                     - _auc_rows(b[:, pos_idx][None], b[:, neg_idx][None]).mean())
    rng = np.random.default_rng(seed)
    draws_pos = rng.choice(pos_idx, size=(n_boot, pos_idx.size))  # (n_boot, m) same clips for a and b
    draws_neg = rng.choice(neg_idx, size=(n_boot, neg_idx.size))  # (n_boot, n)
    n_rows = a.shape[0]
    if resample_seeds:  # (n_boot, r): how often each seed is drawn, over r; the same seeds for a and b
        row_weights = seed_draws(n_boot, n_rows, seed=seed)
    else:
        row_weights = np.full((n_boot, n_rows), 1.0 / n_rows)
    diffs = np.empty(n_boot)
    chunk = max(1, 2_000_000 // (n_rows * y.size))  # keep a chunk's arrays near 16 MB
    for start in range(0, n_boot, chunk):
        p, q = draws_pos[start:start + chunk], draws_neg[start:start + chunk]  # (B, m), (B, n)
        auc_a = _auc_rows(a[:, p].transpose(1, 0, 2), a[:, q].transpose(1, 0, 2))
        auc_b = _auc_rows(b[:, p].transpose(1, 0, 2), b[:, q].transpose(1, 0, 2))
        diffs[start:start + len(p)] = np.sum((auc_a - auc_b) * row_weights[start:start + len(p)], axis=-1)
    low, high = np.quantile(diffs, [0.5 - confidence / 2, 0.5 + confidence / 2])
    tail = min(int(np.sum(diffs <= 0)), int(np.sum(diffs >= 0)))
    p_value = min(1.0, 2 * (1 + tail) / (n_boot + 1))
    return BootstrapResult(observed, float(low), float(high), float(p_value), n_boot, confidence)
