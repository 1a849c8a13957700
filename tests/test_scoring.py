"""Scoring engine: calibration in one place, and asdlib's residual covariance vs the DCASE baseline's."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from asdlib.cache import extract_features
from asdlib.config import Config
from asdlib.data import scan_mimii
from asdlib.modelspec import ModelSpec
from asdlib.scoring import calibrate, dcase_covariance, feature_tensors, mahalanobis, residual_stats, score_parts, weighted_scores
from asdlib.threshold import GammaThreshold
from asdlib.train import batch_plan, init_model, train_model

from .conftest import SAMPLES_ENV, tone_clip, write_wav

CONFIG = Config(epochs=5, batch_size=256)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> pd.DataFrame:
    """Normal and abnormal clips of one machine type: the real MIMII samples when present, else simulated."""
    root = os.environ.get(SAMPLES_ENV)
    if root and Path(root).is_dir():
        manifest = scan_mimii(root, machines=["fan"])
        return manifest.assign(source="MIMII")
    folder = tmp_path_factory.mktemp("cov")
    rng = np.random.default_rng(0)
    rows = [{"path": str(write_wav(folder / f"{label}{i}.wav", tone_clip(rng, n=160_000, anomalous=label == "abnormal"))), "label": label}
            for label in ("normal", "abnormal") for i in range(4)]
    return pd.DataFrame(rows).assign(source="simulated")


@pytest.fixture(scope="module")
def trained(clips):
    spec = ModelSpec.dual(0, 4, 1.0)
    train = extract_features(clips[clips.label == "normal"].path, spec.inputs, CONFIG, progress=False)
    every = extract_features(clips.path, spec.inputs, CONFIG, progress=False)
    model = init_model(spec, CONFIG, 0)
    train_model(model, feature_tensors(train, spec, "cpu"), spec.weights, CONFIG, seed=0, progress=False)
    return spec, model, train, every


def test_calibrate_fits_covariances_scores_and_thresholds_in_one_place(trained):
    spec, model, train, every = trained
    cal = calibrate(model, spec, train, CONFIG, torch.device("cpu"))
    parts = score_parts(model, spec, train, cal.inv_covs, CONFIG, torch.device("cpu"))
    scores = weighted_scores(parts, spec.weights)
    for kind in ("mse", "mahalanobis"):
        np.testing.assert_allclose(cal.train_scores[kind], scores[kind], rtol=1e-6)  # calibration sums in float64, scoring in float32 (about 1e-8 apart)
        expected = GammaThreshold(CONFIG.gamma_percentile).fit(cal.train_scores[kind]).threshold_  # a gamma fit to 4 scores is sensitive to their last digits
        assert cal.thresholds[kind].threshold_ == pytest.approx(expected, rel=1e-12)
    assert len(cal.inv_covs) == 2 and all(c.shape == (128, 128) for c in cal.inv_covs)


def test_dcase_covariance_is_five_times_ours_and_keeps_the_ranking(trained, clips):
    """Issue 15.3: the baseline's Σ (90 % subset, per-batch centring, / (vectors - 1)) vs asdlib's.

    The divisor alone gives exactly (rows - 1) / (vectors - 1) ≈ n_frames = 5; the subset and the
    batch centring move each clip's score by about 1 % more, and the clip ranking stays (nearly)
    the same.
    """
    spec, model, train, every = trained
    inputs = feature_tensors(train, spec, "cpu")
    n_vectors = len(inputs[0])
    ours = residual_stats(model, inputs, train.clip_index, train.n_clips, CONFIG.n_mels, with_covariance=True)
    # 1. the divisor: one batch of every vector is our covariance times an exact factor
    exact = (CONFIG.n_frames * n_vectors - 1) / (n_vectors - 1)
    assert exact == pytest.approx(5.0, abs=0.01)
    for k, cov in enumerate(dcase_covariance(model, inputs, [torch.arange(n_vectors)], CONFIG.n_mels)):
        np.testing.assert_allclose(cov, exact * ours[k].cov, rtol=1e-7, atol=1e-9 * np.abs(cov).max())  # float64 rounding
    # 2. the baseline's estimate: its 90 % training subset in shuffled batches of 256
    plan = batch_plan(n_vectors, CONFIG, seed=0)
    assert len(plan.train_idx) == n_vectors - round(0.1 * n_vectors)
    theirs = dcase_covariance(model, inputs, plan.epoch(), CONFIG.n_mels)
    test = residual_stats(model, feature_tensors(every, spec, "cpu"), every.clip_index, every.n_clips, CONFIG.n_mels)
    y = (clips["label"] == "abnormal").to_numpy(int)
    for k in range(len(spec.inputs)):
        assert np.trace(theirs[k]) / np.trace(ours[k].cov) == pytest.approx(5.0, rel=0.05)
        a = mahalanobis(test[k].row_mean, np.linalg.inv(ours[k].cov))
        b = mahalanobis(test[k].row_mean, np.linalg.inv(theirs[k]))
        ratio = a / b
        assert np.all((ratio > 4.5) & (ratio < 5.5)), ratio  # absolute scores differ by the factor
        assert spearmanr(a, b)[0] > 0.99
        # the clip ranking that the metrics see: AUC moves by at most one swapped pair
        assert abs(roc_auc_score(y, a) - roc_auc_score(y, b)) <= 1 / (y.sum() * (1 - y).sum()) + 1e-12
