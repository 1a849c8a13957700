"""Tests of asdlib.metrics: AUC, the two pAUCs, averages, decisions, DeLong, seed and bootstrap intervals.

References used below:

* DeLong's test is checked (1) against a slow implementation written here from the definition
  (structural components by explicit double loops, their covariance matrix, z), and (2) against the
  published output of R's pROC package on its own ``aSAH`` data: the values asserted by pROC's test
  suite (github.com/xrobin/pROC, ``tests/testthat/test-roc.test.R``, ``test-var.R``,
  ``test-cov.R``), e.g. ``roc.test(r.wfns, r.s100b)``: Z = 2.20898359144091,
  p = 0.0271757822291882, 95 % CI of the difference [0.0104061769564846, 0.174214419249478].
* The paper's Table 1 as reported (``asdlib/data/table1_reported.csv``) for the harmonic mean.
"""
from __future__ import annotations

import csv
import math
from importlib import resources

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

from asdlib.metrics import (
    BootstrapResult,
    DeLongResult,
    decision_metrics,
    delong_test,
    delong_variance,
    harmonic_mean,
    mean_ci,
    paired_bootstrap_auc_difference,
    pauc_eq11,
    pauc_mcclish,
    roc_auc,
)

# pROC's aSAH data set: 113 patients with aneurysmal subarachnoid haemorrhage (Turck et al. 2010,
# Intensive Care Med 36(1):107-115, doi:10.1007/s00134-009-1641-y), shipped with the R package pROC
# (Robin et al. 2011, BMC Bioinformatics 12:77; CRAN, GPL-3) as ``data(aSAH)``. Four columns per
# patient, patients in pROC's row order, four patients per line:
#   outcome (1 = "Poor", 0 = "Good"), s100b (µg/L), wfns (WFNS grade 1-5), ndka (µg/L).
# The transcription was checked against pROC's own per-patient DeLong placements
# (tests/testthat/helper-deLongPlacementsCpp-expected.R): all 41 + 72 placements of each marker
# agree to 5e-16.
_ASAH = """
    0 0.13 1 3.01        0 0.14 1 8.54        0 0.1 1 8.09         0 0.04 1 10.42
    1 0.13 3 17.4        1 0.1 2 12.75        0 0.47 5 6           1 0.16 4 13.2
    0 0.18 1 15.54       0 0.1 2 6.01         1 0.12 5 15.96       0 0.1 2 17.86
    1 0.44 5 5.18        1 0.71 5 8.9         0 0.04 1 13.41       0 0.08 2 20.75
    1 0.49 5 11.6        0 0.04 2 16.11       1 0.07 2 32.37       1 0.33 5 54.82
    1 0.09 2 32.41       0 0.09 1 49.94       1 0.07 1 40.34       0 0.11 1 9.47
    0 0.07 1 6.29        0 0.17 2 12.53       0 0.07 1 6.54        0 0.11 2 6.3
    0 0.13 1 80.3        0 0.19 1 12.8        0 0.05 3 9.8         0 0.16 4 9.81
    1 0.41 2 9.85        0 0.14 1 18.21       0 0.34 4 5.03        1 0.35 5 14.04
    1 0.48 4 21.93       0 0.09 1 8.02        1 0.96 4 7.42        1 0.25 2 8.38
    0 0.5 5 6.59         0 0.46 5 9.63        0 0.16 1 13.12       0 0.07 1 7.96
    0 0.43 2 14.34       0 0.45 4 41.43       0 0.11 1 7.63        0 0.08 1 7.06
    0 0.09 2 12.59       1 0.86 5 13.56       1 0.52 5 3.87        0 0.08 2 9.44
    0 0.06 1 7.66        0 0.13 2 12.98       1 2.07 5 419.19      0 0.1 1 27.19
    0 0.14 2 22.27       0 0.15 2 9.95        1 0.07 2 21.22       0 0.06 1 11.73
    1 0.77 5 10.4        0 0.05 1 58.83       0 0.09 1 6.39        1 0.3 2 11.09
    1 0.03 5 12.22       1 0.09 2 13.67       0 0.04 1 17.21       1 0.23 4 22.63
    1 0.7 5 12.9         0 0.09 2 9.7         1 0.27 4 21.57       1 0.71 4 8.23
    1 0.08 1 72.57       1 0.26 4 15.54       0 0.08 1 10.51       0 0.16 2 10.6
    0 0.09 1 14.57       1 0.13 4 5.19        1 0.1 2 9.63         0 0.08 1 4.61
    1 0.11 2 21.48       0 0.33 3 17.3        0 0.11 2 12.71       0 0.28 4 9.44
    0 0.07 2 11.07       0 0.1 1 19.46        0 0.32 4 10.83       1 0.22 5 5.37
    0 0.07 1 11.97       0 0.05 1 7.75        0 0.24 5 9.83        0 0.38 4 10.55
    0 0.1 2 28.49        0 0.15 2 8.53        0 0.08 1 12.57       0 0.14 1 12.9
    0 0.1 1 46.83        0 0.07 3 11.68       0 0.04 1 12.67       0 0.19 2 9.01
    1 0.56 5 9.57        1 0.14 2 34.06       1 0.58 2 11.72       1 0.32 5 14.26
    1 0.82 5 47.61       1 0.74 5 11.67       0 0.15 2 24.58       0 0.47 4 10.33
    0 0.17 4 13.87       1 0.44 5 15.89       0 0.15 1 22.43       0 0.5 1 6.79
    0 0.48 1 13.45
"""


def asah() -> dict[str, np.ndarray]:
    table = np.array(_ASAH.split(), dtype=float).reshape(-1, 4)
    return {"y": table[:, 0].astype(int), "s100b": table[:, 1], "wfns": table[:, 2], "ndka": table[:, 3]}


# ------------------------------------------------------------------------------------------------
# AUC and input checks
# ------------------------------------------------------------------------------------------------


def test_roc_auc_is_the_pair_count_of_equation_10():
    y = [0, 0, 0, 1, 1]
    s = [0.1, 0.4, 0.35, 0.8, 0.4]  # pairs: 0.8 beats all 3; 0.4 beats 0.1, 0.35, ties 0.4
    assert roc_auc(y, s) == pytest.approx((3 + 2 + 0.5) / 6)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = rng.normal(size=300) + y
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-15)


@pytest.mark.parametrize(
    "y, s, match",
    [
        ([0, 0, 0], [0.1, 0.2, 0.3], r"only normal \(0\) clips.*add anomalous \(1\)"),
        ([1, 1], [0.1, 0.2], r"only anomalous \(1\) clips.*add normal \(0\)"),
        ([0, 1, 1], [0.1, np.nan, 0.3], r"y_score contains NaN.*index 1"),
        ([0, 1, 1], [0.1, np.inf, 0.3], r"y_score contains an infinite value"),
        ([0, 2, 1], [0.1, 0.2, 0.3], r"0 \(normal\) or 1 \(anomalous\).*index 1"),
        ([0, 1, 1], [0.1, 0.2], r"one score per clip"),
    ],
)
def test_bad_input_says_what_is_wrong(y, s, match):
    for metric in (roc_auc, pauc_mcclish):
        with pytest.raises(ValueError, match=match):
            metric(y, s)


# ------------------------------------------------------------------------------------------------
# the two partial AUCs
# ------------------------------------------------------------------------------------------------


def test_hand_built_example_tells_the_two_paucs_apart():
    # 20 normal clips scored 0..19 -> floor(0.1 * 20) = 2 top normals (19 and 18);
    # 4 anomalous clips 18.5, 19.5, 25, 5.
    y = [0] * 20 + [1] * 4
    s = list(range(20)) + [18.5, 19.5, 25.0, 5.0]
    # eq. (11): normal 19 is beaten by 19.5 and 25 (2), normal 18 by 18.5, 19.5, 25 (3): 5 / (2 * 4)
    assert pauc_eq11(y, s) == 5 / 8
    # McClish: raw area up to FPR 0.1 is 0.05 * 2/4 + 0.05 * 3/4 = 0.0625, standardised
    # 0.5 * (1 + (0.0625 - 0.005) / (0.1 - 0.005)) = 61/76
    assert pauc_mcclish(y, s) == pytest.approx(61 / 76, abs=1e-12)


def test_eq11_ties_follow_the_paper_unless_asked():
    y = [0] * 20 + [1, 1]
    s = list(range(20)) + [19.0, 25.0]  # 19.0 ties the top normal clip
    assert pauc_eq11(y, s) == 3 / 4  # H(0) = 0: (1 + 2) / (2 * 2)
    assert pauc_eq11(y, s, tie_value=0.5) == 3.5 / 4
    with pytest.raises(ValueError, match="tie_value"):
        pauc_eq11(y, s, tie_value=1.0)


def test_chance_and_perfect_detectors():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 4000)
    chance = rng.random(y.size)
    assert pauc_mcclish(y, chance) == pytest.approx(0.5, abs=0.02)
    assert pauc_eq11(y, chance) == pytest.approx(0.05, abs=0.01)
    assert roc_auc(y, chance) == pytest.approx(0.5, abs=0.02)
    perfect = y + rng.random(y.size) * 0.5
    assert pauc_mcclish(y, perfect) == 1.0 and pauc_eq11(y, perfect) == 1.0 and roc_auc(y, perfect) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mcclish_is_the_standardised_eq11(seed):
    # With floor(p N-) = p N- and no ties, the raw partial area is p * eq11, and McClish's formula
    # maps it to the DCASE number exactly.
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], [150, 60])
    s = rng.normal(size=y.size) + 0.8 * y
    for p in (0.1, 0.2):
        e = pauc_eq11(y, s, max_fpr=p)
        standardised = 0.5 * (1 + (p * e - p**2 / 2) / (p - p**2 / 2))
        assert pauc_mcclish(y, s, max_fpr=p) == pytest.approx(standardised, abs=1e-12)


def test_eq11_needs_enough_normal_clips():
    with pytest.warns(RuntimeWarning, match=r"at least 10 normal clips"):
        assert math.isnan(pauc_eq11([0] * 9 + [1], np.arange(10.0)))  # floor(0.9) = 0: 0 / 0
    assert pauc_eq11([0] * 10 + [1], np.arange(11.0)) == 1.0
    with pytest.raises(ValueError, match="max_fpr"):
        pauc_mcclish([0, 1], [0.0, 1.0], max_fpr=0.0)


# ------------------------------------------------------------------------------------------------
# harmonic mean, against the paper's reported average row
# ------------------------------------------------------------------------------------------------


def test_harmonic_mean_values_and_errors():
    assert harmonic_mean([1, 2, 4]) == pytest.approx(12 / 7)
    assert harmonic_mean([0.8]) == 0.8
    bad_inputs = [([1.0, 0.0], "values > 0"), ([1.0, -2.0], "values > 0"), ([], "at least one"), ([np.nan], "non-finite")]
    for bad, match in bad_inputs:
        with pytest.raises(ValueError, match=match):
            harmonic_mean(bad)


def test_harmonic_mean_reproduces_the_papers_average_row():
    path = resources.files("asdlib") / "data" / "table1_reported.csv"
    groups: dict[tuple, dict[str, float]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            key = (row["metric"], row["score"], row["model"], row["mic_pair"], row["alpha"])
            groups.setdefault(key, {})[row["machine"]] = float(row["value_percent"])
    assert len(groups) == 36
    off, arithmetic_matches = {}, 0
    for key, values in groups.items():
        machines = [values[m] for m in ("fan", "slider", "pump", "valve")]
        ours = harmonic_mean(machines)
        if abs(ours - values["average"]) > 0.01:
            off[key] = (values["average"], round(ours, 2))
        arithmetic_matches += abs(np.mean(machines) - values["average"]) <= 0.01
    assert arithmetic_matches == 0  # the check can tell the two means apart: they differ by points
    # 35 of 36 reported averages are harmonic means; one is not (a typo in the paper, 72.37 for 72.27).
    assert off == {("AUC", "mahalanobis", "dual", "2-6", "0.5"): (72.37, 72.27)}


# ------------------------------------------------------------------------------------------------
# decision metrics
# ------------------------------------------------------------------------------------------------


def test_decision_metrics_counts_and_rates():
    y = [1, 1, 1, 0, 0, 0, 0]
    p = [1, 1, 0, 1, 0, 0, 0]
    dm = decision_metrics(y, p)
    assert (dm["tp"], dm["fp"], dm["tn"], dm["fn"]) == (2, 1, 3, 1)
    assert dm["precision"] == 2 / 3 and dm["recall"] == 2 / 3 and dm["f1"] == pytest.approx(2 / 3)
    assert dm["accuracy"] == 5 / 7
    rng = np.random.default_rng(3)
    y, p = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    prec, rec, f1, _ = precision_recall_fscore_support(y, p, average="binary")
    dm = decision_metrics(y, p)
    assert (dm["precision"], dm["recall"], dm["f1"]) == pytest.approx((prec, rec, f1), abs=1e-12)


def test_decision_metrics_zero_division():
    nothing_called = decision_metrics([1, 0, 0], [0, 0, 0])
    assert nothing_called["precision"] == 0.0 and nothing_called["recall"] == 0.0 and nothing_called["f1"] == 0.0
    assert decision_metrics([1, 0, 0], [0, 0, 0], zero_division=1.0)["precision"] == 1.0
    all_normal = decision_metrics([0, 0, 0], [0, 0, 0], zero_division=float("nan"))
    assert math.isnan(all_normal["precision"]) and math.isnan(all_normal["recall"]) and math.isnan(all_normal["f1"])
    assert all_normal["accuracy"] == 1.0
    # F1 is 0, not undefined, when some clips are wrong but none is a true positive
    assert decision_metrics([0, 0, 1], [1, 0, 0], zero_division=1.0)["f1"] == 0.0
    with pytest.raises(ValueError, match="zero_division"):
        decision_metrics([0, 1], [0, 1], zero_division=0.5)
    with pytest.raises(ValueError, match="y_pred"):
        decision_metrics([0, 1], [0, 1, 1])


# ------------------------------------------------------------------------------------------------
# DeLong's test
# ------------------------------------------------------------------------------------------------


def delong_by_definition(y, score_rows):
    """DeLong et al. (1988) written out: psi, V10 / V01 by double loops, S10 / S01, S = S10/m + S01/n."""
    pos = [[s[i] for i in range(len(y)) if y[i] == 1] for s in score_rows]
    neg = [[s[i] for i in range(len(y)) if y[i] == 0] for s in score_rows]
    m, n, k = len(pos[0]), len(neg[0]), len(score_rows)

    def psi(x, z):
        return 1.0 if x > z else 0.5 if x == z else 0.0

    v10 = [[sum(psi(pos[r][i], neg[r][j]) for j in range(n)) / n for i in range(m)] for r in range(k)]
    v01 = [[sum(psi(pos[r][i], neg[r][j]) for i in range(m)) / m for j in range(n)] for r in range(k)]
    theta = [sum(v10[r]) / m for r in range(k)]
    s10 = [[sum((v10[r][i] - theta[r]) * (v10[q][i] - theta[q]) for i in range(m)) / (m - 1) for q in range(k)]
           for r in range(k)]
    s01 = [[sum((v01[r][j] - theta[r]) * (v01[q][j] - theta[q]) for j in range(n)) / (n - 1) for q in range(k)]
           for r in range(k)]
    cov = [[s10[r][q] / m + s01[r][q] / n for q in range(k)] for r in range(k)]
    return theta, cov


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_delong_matches_the_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat([0, 1], [37, 23]))
    a = np.round(rng.normal(size=60) + 0.7 * y, 1)  # rounded: ties within and across classes
    b = np.round(0.6 * a + rng.normal(size=60), 0)  # correlated with a, heavily tied
    theta, cov = delong_by_definition(list(y), [list(a), list(b)])
    var_d = cov[0][0] + cov[1][1] - 2 * cov[0][1]
    z = (theta[0] - theta[1]) / math.sqrt(var_d)
    r = delong_test(y, a, b)
    assert isinstance(r, DeLongResult)
    assert (r.auc_a, r.auc_b) == pytest.approx((theta[0], theta[1]), abs=1e-12)
    assert r.difference == pytest.approx(theta[0] - theta[1], abs=1e-12)
    assert r.se == pytest.approx(math.sqrt(var_d), rel=1e-10)
    assert r.z == pytest.approx(z, rel=1e-10)
    assert r.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    half = 1.959963984540054 * math.sqrt(var_d)
    assert (r.ci_low, r.ci_high) == pytest.approx((theta[0] - theta[1] - half, theta[0] - theta[1] + half), abs=1e-12)
    assert delong_variance(y, a) == pytest.approx(cov[0][0], rel=1e-10)
    assert delong_variance(y, b) == pytest.approx(cov[1][1], rel=1e-10)


# pROC's published values (tests/testthat/test-var.R, test-cov.R, test-roc.test.R of xrobin/pROC).
PROC_AUC = {"s100b": 0.731368563685637, "wfns": 0.823678861788618, "ndka": 0.611957994579946}
PROC_VAR = {"wfns": 0.00146991470882363, "ndka": 0.0031908105493913, "s100b": 0.00266868245717244}
PROC_COV = {
    ("wfns", "ndka"): -0.000532967856762438,
    ("ndka", "s100b"): -0.000756164938056579,
    ("s100b", "wfns"): 0.00119615567376754,
}
PROC_ROC_TEST = [  # roc.test(r.a, r.b): Z, p, 95 % CI of AUC(a) - AUC(b)
    ("wfns", "s100b", 2.20898359144091, 0.0271757822291882, 0.0104061769564846, 0.174214419249478),
    ("wfns", "ndka", 2.79777591868904, 0.00514557970691098, 0.0634011709339876, 0.3600405634833566),
    ("ndka", "s100b", -1.39077002573558, 0.164295175223054, -0.2876917446341914, 0.0488706064228094),
]


def test_delong_reproduces_proc_on_asah():
    data = asah()
    y = data["y"]
    assert (y.size, int(y.sum())) == (113, 41)
    for marker in PROC_AUC:
        assert roc_auc(y, data[marker]) == pytest.approx(PROC_AUC[marker], abs=1e-14)
        assert delong_variance(y, data[marker]) == pytest.approx(PROC_VAR[marker], rel=1e-12)
    for a, b, z, p, low, high in PROC_ROC_TEST:
        r = delong_test(y, data[a], data[b])
        assert r.difference == pytest.approx(PROC_AUC[a] - PROC_AUC[b], abs=1e-14)
        cov = PROC_COV.get((a, b), PROC_COV.get((b, a)))
        assert r.se**2 == pytest.approx(PROC_VAR[a] + PROC_VAR[b] - 2 * cov, rel=1e-12)
        assert r.z == pytest.approx(z, rel=1e-12)
        assert r.p_value == pytest.approx(p, rel=1e-12)
        assert (r.ci_low, r.ci_high) == pytest.approx((low, high), rel=1e-12)
    # the ordinal pair in the other order (pROC's documented example): the sign flips, p does not
    r = delong_test(y, data["s100b"], data["wfns"])
    assert (round(r.z, 3), round(r.p_value, 5)) == (-2.209, 0.02718)


def test_delong_same_scores_give_z_0_and_p_1():
    data = asah()
    for same in (data["s100b"], np.exp(3 * data["s100b"])):  # identical, or the same ranking
        r = delong_test(data["y"], data["s100b"], same)
        assert (r.difference, r.se, r.z, r.p_value) == (0.0, 0.0, 0.0, 1.0)
        assert (r.ci_low, r.ci_high) == (0.0, 0.0)


def test_delong_degenerate_and_bad_input():
    y = np.repeat([0, 1], 10)
    perfect, constant = y + np.linspace(0, 0.5, 20), np.zeros(20)
    r = delong_test(y, perfect, constant)  # zero variance but different AUCs (1 vs 0.5)
    assert r.difference == 0.5 and r.se == 0.0 and r.z == math.inf and r.p_value == 0.0
    with pytest.raises(ValueError, match="at least 2 anomalous and 2 normal"):
        delong_test([0, 0, 1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1])
    with pytest.raises(ValueError, match="scores_b contains NaN"):
        delong_test(y, perfect, np.where(y == 1, np.nan, 0.0))


# ------------------------------------------------------------------------------------------------
# seeds and bootstrap
# ------------------------------------------------------------------------------------------------


def test_mean_ci_is_student_t():
    values = [0.71, 0.74, 0.69, 0.75, 0.72]
    mean, low, high = mean_ci(values)
    want = stats.t.interval(0.95, df=4, loc=np.mean(values), scale=stats.sem(values))
    assert mean == pytest.approx(np.mean(values)) and (low, high) == pytest.approx(want, abs=1e-12)
    _, low90, high90 = mean_ci(values, confidence=0.9)
    assert low < low90 < mean < high90 < high
    one = mean_ci([0.8])
    assert one[0] == 0.8 and math.isnan(one[1]) and math.isnan(one[2])
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="confidence"):
        mean_ci(values, confidence=1.0)


def _two_detectors(seed: int, n: int = 200):
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat([0, 1], [n // 2, n // 2]))
    good = 1.5 * y + rng.normal(size=n)  # AUC about 0.86
    weak = 0.3 * y + rng.normal(size=n)  # AUC about 0.58
    return y, good, weak


def test_bootstrap_sees_a_clearly_better_detector():
    y, good, weak = _two_detectors(0)
    r = paired_bootstrap_auc_difference(y, good, weak, n_boot=2000, seed=0)
    assert isinstance(r, BootstrapResult)
    assert r.difference == pytest.approx(roc_auc(y, good) - roc_auc(y, weak), abs=1e-12)
    assert 0 < r.ci_low < r.difference < r.ci_high
    assert r.p_value == pytest.approx(2 / 2001)  # no resample crosses 0
    # the bootstrap spread agrees with DeLong's standard error (both estimate the same sd)
    d = delong_test(y, good, weak)
    assert (r.ci_high - r.ci_low) / (2 * 1.96) == pytest.approx(d.se, rel=0.2)
    # reproducible, and a different seed moves the interval only a little
    assert paired_bootstrap_auc_difference(y, good, weak, n_boot=2000, seed=0) == r
    other = paired_bootstrap_auc_difference(y, good, weak, n_boot=2000, seed=1)
    assert other.ci_low != r.ci_low and other.ci_low == pytest.approx(r.ci_low, abs=0.02)


def test_bootstrap_identical_detectors_and_an_even_pair():
    y, good, weak = _two_detectors(1)
    same = paired_bootstrap_auc_difference(y, good, good.copy(), n_boot=500)
    assert (same.difference, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    rng = np.random.default_rng(2)
    a, b = 1.0 * y + rng.normal(size=y.size), 1.0 * y + rng.normal(size=y.size)  # equally good
    even = paired_bootstrap_auc_difference(y, a, b, n_boot=1000)
    assert even.ci_low < 0 < even.ci_high and even.p_value > 0.05


def test_bootstrap_over_seeds_uses_the_same_clips_for_every_seed():
    y, good, weak = _two_detectors(3)
    rng = np.random.default_rng(4)
    a = np.stack([good, good + 0.3 * rng.normal(size=y.size)])  # (n_seeds, n_clips)
    b = np.stack([weak, weak + 0.3 * rng.normal(size=y.size)])
    r = paired_bootstrap_auc_difference(y, a, b, n_boot=300, seed=5)
    per_seed = [roc_auc(y, a[k]) - roc_auc(y, b[k]) for k in range(2)]
    assert r.difference == pytest.approx(np.mean(per_seed), abs=1e-12)
    # two identical seed rows give exactly the one-row answer (same draws, same AUCs)
    twice = paired_bootstrap_auc_difference(y, np.stack([good, good]), np.stack([weak, weak]), n_boot=300, seed=5)
    once = paired_bootstrap_auc_difference(y, good, weak, n_boot=300, seed=5)
    assert (twice.difference, twice.ci_low, twice.ci_high, twice.p_value) == pytest.approx(
        (once.difference, once.ci_low, once.ci_high, once.p_value), abs=1e-12)
    # redrawing the seeds too: identical seeds change nothing, seeds that disagree widen the interval
    assert paired_bootstrap_auc_difference(y, np.stack([good, good]), np.stack([weak, weak]), n_boot=300, seed=5,
                                           resample_seeds=True).ci_low == pytest.approx(once.ci_low, abs=1e-12)
    untrained = np.random.default_rng(6).normal(size=y.size)  # AUC about 0.5
    split = np.stack([good, good, untrained])  # two seeds train well, one learns nothing
    fixed = paired_bootstrap_auc_difference(y, split, np.stack([weak] * 3), n_boot=500, seed=5)
    redrawn = paired_bootstrap_auc_difference(y, split, np.stack([weak] * 3), n_boot=500, seed=5, resample_seeds=True)
    assert redrawn.difference == fixed.difference
    assert redrawn.ci_high - redrawn.ci_low > 2 * (fixed.ci_high - fixed.ci_low)
    assert fixed.p_value < 0.05 < redrawn.p_value  # these three models differ; the method's gain is not sure
    with pytest.raises(ValueError, match="same shape"):
        paired_bootstrap_auc_difference(y, a, weak)
    with pytest.raises(ValueError, match="n_boot"):
        paired_bootstrap_auc_difference(y, good, weak, n_boot=0)
