"""Intervals over training seeds and test clips: the weighted metrics equal the plain ones, the
bootstrap covers what it should, and every interval stays within [0, 100]."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from asdlib.intervals import (
    MIN_SEEDS_FOR_INTERVAL,
    clip_draws,
    percentile_interval,
    replicate_metrics,
    seed_draws,
    weighted_auc,
    weighted_pauc,
)
from asdlib.metrics import pauc_mcclish, roc_auc


def _clips(rng, m, n, shift):
    y = np.r_[np.ones(m, int), np.zeros(n, int)]
    return y, rng.normal(size=m + n) + shift * y


@pytest.mark.parametrize("m,n,shift", [(50, 50, 0.8), (37, 91, 0.3), (100, 100, 2.0), (12, 40, -0.5)])
def test_unit_weights_give_sklearn_auc_and_pauc(m, n, shift):
    rng = np.random.default_rng(m * n)
    y, s = _clips(rng, m, n, shift)
    pos, neg = s[y == 1], s[y == 0]
    ones_p, ones_n = np.ones((1, m)), np.ones((1, n))
    assert weighted_auc(pos, neg, ones_p, ones_n)[0] == pytest.approx(roc_auc(y, s), abs=1e-12)
    assert weighted_pauc(pos, neg, ones_p, ones_n)[0] == pytest.approx(pauc_mcclish(y, s, 0.1), abs=1e-12)


def test_counts_equal_an_explicit_resample():
    rng = np.random.default_rng(3)
    y, s = _clips(rng, 40, 60, 0.7)
    w_pos, w_neg = clip_draws(y, 5, key="fan", seed=1)
    assert (w_pos.sum(1) == 40).all() and (w_neg.sum(1) == 60).all()
    for b in range(5):
        idx = np.r_[np.repeat(np.flatnonzero(y == 1), w_pos[b].astype(int)), np.repeat(np.flatnonzero(y == 0), w_neg[b].astype(int))]
        assert weighted_auc(s[y == 1], s[y == 0], w_pos[b:b + 1], w_neg[b:b + 1])[0] == pytest.approx(roc_auc(y[idx], s[idx]))
        assert weighted_pauc(s[y == 1], s[y == 0], w_pos[b:b + 1], w_neg[b:b + 1])[0] == pytest.approx(pauc_mcclish(y[idx], s[idx], 0.1))


def test_ties_count_half():
    y = np.array([1, 1, 0, 0])
    s = np.array([1.0, 0.0, 1.0, 0.0])
    assert weighted_auc(s[y == 1], s[y == 0], np.ones((1, 2)), np.ones((1, 2)))[0] == pytest.approx(roc_auc(y, s))


def test_same_key_same_draws_other_key_other_draws():
    y = np.r_[np.ones(30, int), np.zeros(30, int)]
    a, b = clip_draws(y, 20, key="fan"), clip_draws(y, 20, key="fan")
    c = clip_draws(y, 20, key="pump")
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    w = seed_draws(100, 3)
    assert w.shape == (100, 3) and np.allclose(w.sum(1), 1.0)


def test_interval_covers_the_truth_and_stays_within_0_100():
    """Coverage check: for a detector with a known population AUC, the clip bootstrap's 95 % interval
    contains it in most of 60 independent test sets (a loose band: 60 trials)."""
    from scipy.stats import norm

    shift = 1.0
    truth = 100 * norm.cdf(shift / np.sqrt(2))  # P(pos > neg) for unit normals shifted by `shift`
    rng = np.random.default_rng(11)
    hits = 0
    for trial in range(60):
        y, s = _clips(rng, 60, 60, shift)
        w_pos, w_neg = clip_draws(y, 400, key=str(trial))
        reps = replicate_metrics(y, s[None], w_pos, w_neg)
        estimate = 100 * roc_auc(y, s)
        low, high = percentile_interval(estimate, reps["AUC"][:, 0])
        assert 0 <= low <= estimate <= high <= 100
        hits += low <= truth <= high
    assert hits >= 50  # nominal 95 % of 60 = 57


def test_seed_spread_widens_the_interval():
    rng = np.random.default_rng(5)
    y, _ = _clips(rng, 100, 100, 0.0)
    noise = rng.normal(size=y.size)
    same = np.stack([noise + 1.0 * y] * 3)  # three seeds that agree
    differ = np.stack([noise + shift * y for shift in (0.4, 1.0, 1.6)])  # seeds that disagree (AUC about 61, 76, 87)
    w_pos, w_neg = clip_draws(y, 500, key="x")
    weights = seed_draws(500, 3)
    width = {}
    for name, scores in (("same", same), ("differ", differ)):
        reps = replicate_metrics(y, scores, w_pos, w_neg)["AUC"]
        per_seed = [100 * roc_auc(y, row) for row in scores]
        low, high = percentile_interval(float(np.mean(per_seed)), (reps * weights).sum(1))
        width[name] = high - low
    assert width["differ"] > width["same"]


def test_non_finite_scores_are_refused():
    y = np.array([1, 0, 1, 0])
    with pytest.raises(ValueError, match="NaN or infinite"):
        replicate_metrics(y, np.array([[0.1, np.nan, 0.3, 0.2]]), *clip_draws(y, 3))


def test_interval_summary_on_a_fake_store(tmp_path):
    """tables.interval_summary on a store-like object with 3 seeds: intervals exist, contain the mean,
    stay in [0, 100], and the average row is the harmonic mean per replicate."""
    from asdlib.modelspec import ModelSpec
    from asdlib.tables import interval_summary

    rng = np.random.default_rng(0)
    specs = [ModelSpec.baseline(0), ModelSpec.dual(0, 4, 2.0)]

    class Spec:
        machines = ["fan", "valve"]
        scores = ["mse"]
        seeds = [0, 1, 2]

        @staticmethod
        def model_specs():
            return specs

    y = np.r_[np.ones(50, int), np.zeros(50, int)]
    tables = {(m, s, ms.name): pd.DataFrame({"y": y, "mse": rng.normal(size=100) + (1.0 if m == "fan" else 0.3) * y})
              for m in Spec.machines for s in Spec.seeds for ms in specs}
    rows = []
    for (m, s, name), t in tables.items():
        ms = next(x for x in specs if x.name == name)
        rows += [{"machine": m, "metric": "AUC", "score": "mse", "model": ms.kind, "mic_pair": ms.mic_pair, "alpha": ms.alpha,
                  "seed": s, "value_percent": 100 * roc_auc(y, t["mse"])},
                 {"machine": m, "metric": "pAUC", "score": "mse", "model": ms.kind, "mic_pair": ms.mic_pair, "alpha": ms.alpha,
                  "seed": s, "value_percent": 100 * pauc_mcclish(y, t["mse"], 0.1)}]

    class Store:
        spec = Spec
        path = tmp_path

        @staticmethod
        def metrics():
            f = pd.DataFrame(rows)
            f["mic_pair"] = f["mic_pair"].fillna("")
            return f

        @staticmethod
        def test_scores(machine, seed, model):
            return tables[(machine, seed, model)]

    summary = interval_summary(Store, n_boot=300)
    assert set(summary["machine"]) == {"fan", "valve", "average"}
    assert summary["n_seeds"].eq(3).all()
    assert summary[["ci_low", "ci_high"]].notna().all().all()
    assert ((summary["ci_low"] >= 0) & (summary["ci_low"] <= summary["mean"]) & (summary["mean"] <= summary["ci_high"])
            & (summary["ci_high"] <= 100)).all()
    assert MIN_SEEDS_FOR_INTERVAL == 3
