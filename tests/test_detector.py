"""Models, training, scores, the gamma threshold and the detector API, on real computations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from asdlib.config import Config
from asdlib.data import scan_mimii, split_machine
from asdlib.detector import AutoencoderDetector
from asdlib.models import BaselineAE, DualAE, MultiChannelAE, count_parameters
from asdlib.modelspec import ModelSpec
from asdlib.scoring import mahalanobis, regularized_inverse, residual_stats
from asdlib.threshold import GammaThreshold
from asdlib.train import TrainingDivergedError, init_model, train_model

from .conftest import tone_clip, write_wav

FAST = Config(epochs=4, batch_size=64)


def test_parameter_counts():
    assert count_parameters(BaselineAE()) == 267_928  # the DCASE baseline's
    # two baselines whose decoders take 16 latent values instead of 8: 2 * (267,928 + 8 * 128)
    assert count_parameters(DualAE()) == 2 * (267_928 + 8 * 128)
    assert count_parameters(MultiChannelAE(2)) == count_parameters(DualAE())


def test_layer_list_matches_the_baseline():
    model = BaselineAE()
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linear] == [
        (640, 128), (128, 128), (128, 128), (128, 128), (128, 8), (8, 128), (128, 128), (128, 128), (128, 128), (128, 640)
    ]
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(bns) == 9 and all(b.momentum == 0.01 and b.eps == 1e-3 for b in bns)
    assert isinstance(list(model.decoder)[-1], torch.nn.Linear)  # linear output


def test_dual_decoders_see_both_embeddings():
    torch.manual_seed(0)
    model = DualAE().eval()
    x, xd = torch.randn(4, 640), torch.randn(4, 640)
    ref_a, dif_a = model(x, xd)
    ref_b, dif_b = model(x, xd + 5)  # changing only the difference input changes the reference output
    assert not torch.allclose(ref_a, ref_b)
    assert model.decoder_ref[0].in_features == 16


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Normal and anomalous generated 8-channel clips (anomaly: an added 2.3 kHz tone)."""
    root = tmp_path_factory.mktemp("planted")
    rng = np.random.default_rng(0)
    normal = [write_wav(root / f"n{i}.wav", tone_clip(rng, n=32000)) for i in range(24)]
    test_normal = [write_wav(root / f"tn{i}.wav", tone_clip(rng, n=32000)) for i in range(6)]
    test_abnormal = [write_wav(root / f"ta{i}.wav", tone_clip(rng, n=32000, anomalous=True)) for i in range(6)]
    return normal, test_normal, test_abnormal


@pytest.mark.parametrize("model, mics", [("baseline", (0,)), ("dual", (0, 4))])
def test_planted_anomaly_scores_higher(planted, model, mics):
    normal, test_normal, test_abnormal = planted
    det = AutoencoderDetector(model, mics, alpha=0.5, config=Config(epochs=20, batch_size=64), cache=None, progress=False, device="cpu")
    det.fit(normal)
    for kind in ("mse", "mahalanobis"):
        s_norm = det.score_all(test_normal)[kind]
        s_anom = det.score_all(test_abnormal)[kind]
        assert s_anom.min() > s_norm.max(), (kind, s_norm, s_anom)
    assert det.predict(test_abnormal).mean() > det.predict(test_normal).mean()
    assert len(det.history_.train_loss) == 20 and det.history_.train_loss[-1] < det.history_.train_loss[0]


def test_alpha_zero_gives_the_reference_part(planted):
    normal, test_normal, _ = planted
    det = AutoencoderDetector("dual", (0, 4), alpha=0.0, config=FAST, cache=None, progress=False, device="cpu").fit(normal[:8])
    parts = det.score_parts(test_normal)
    scores = det.score_all(test_normal)
    for kind in ("mse", "mahalanobis"):
        np.testing.assert_array_equal(scores[kind], parts[kind][0])
        assert not np.allclose(parts[kind][1], 0)


def test_dual_score_is_ref_plus_alpha_dif(planted):
    normal, test_normal, _ = planted
    det = AutoencoderDetector("dual", (2, 6), alpha=2.0, config=FAST, cache=None, progress=False, device="cpu").fit(normal[:8])
    parts, scores = det.score_parts(test_normal), det.score_all(test_normal)
    np.testing.assert_allclose(scores["mse"], parts["mse"][0] + 2.0 * parts["mse"][1])


def test_mahalanobis_equals_direct_numpy():
    torch.manual_seed(0)
    model = BaselineAE(Config(n_mels=4, n_frames=5)).eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 20)).astype(np.float32)
    clip = np.repeat(np.arange(6), 5)
    (st,) = residual_stats(model, [torch.from_numpy(x)], clip, 6, n_mels=4, with_covariance=True)
    with torch.no_grad():
        r = (torch.from_numpy(x) - model(torch.from_numpy(x))).numpy().astype(np.float64)
    rows = r.reshape(-1, 4)
    cov = np.cov(rows, rowvar=False)
    np.testing.assert_allclose(st.cov, cov, rtol=1e-6, atol=1e-9)
    inv, ridge = regularized_inverse(st.cov)
    assert ridge == 0.0
    for c in range(6):
        rbar = r[clip == c].reshape(-1, 4).mean(axis=0)
        direct = rbar @ np.linalg.inv(cov) @ rbar
        np.testing.assert_allclose(mahalanobis(st.row_mean[c : c + 1], inv)[0], direct, rtol=1e-6)
        np.testing.assert_allclose(st.sq_mean[c], (r[clip == c] ** 2).mean(), rtol=1e-6)


def test_singular_covariance_is_regularised_to_the_bound():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((50, 3))
    cov = np.cov(np.c_[a, a[:, 0]], rowvar=False)  # rank 3 of 4
    inv, ridge = regularized_inverse(cov, max_condition=1e4)
    assert ridge > 0
    eig = np.linalg.eigvalsh(cov + ridge * np.eye(4))
    assert eig[-1] / eig[0] == pytest.approx(1e4, rel=1e-6)
    assert np.all(np.isfinite(inv))
    with pytest.raises(ValueError, match="NaN"):
        regularized_inverse(np.full((2, 2), np.nan))


def test_training_is_deterministic_and_seeded():
    x = torch.randn(600, 640)
    spec = ModelSpec.dual(0, 4, 0.5)
    runs = []
    for seed in (1, 1, 2):
        m = init_model(spec, FAST, seed)
        train_model(m, [x, 0.5 * x], spec.weights, FAST, seed=seed, progress=False)
        runs.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_nan_loss_stops_with_a_clear_error():
    x = torch.randn(300, 640)
    x[5, 3] = float("nan")
    m = init_model(ModelSpec.baseline(), FAST, 0)
    with pytest.raises(TrainingDivergedError, match="loss became nan in epoch 1"):
        train_model(m, [x], [1.0], FAST, seed=0, progress=False, name="baseline")


def test_detector_save_load(planted, tmp_path):
    normal, test_normal, test_abnormal = planted
    det = AutoencoderDetector("dual", (0, 4), alpha=0.5, score="mahalanobis", config=FAST, cache=None, progress=False, device="cpu").fit(normal[:8])
    det.save(tmp_path / "det.pt")
    again = AutoencoderDetector.load(tmp_path / "det.pt", device="cpu", cache=None)
    clips = test_normal + test_abnormal
    np.testing.assert_allclose(det.score_samples(clips), again.score_samples(clips), rtol=1e-6)
    assert again.offset_ == det.offset_
    np.testing.assert_array_equal(det.predict(clips), again.predict(clips))


def test_detector_refuses_bad_use(planted, tiny_mimii):
    normal, *_ = planted
    with pytest.raises(ValueError, match="not fitted"):
        AutoencoderDetector().score_samples(normal[:1])
    with pytest.raises(ValueError, match="model must be"):
        AutoencoderDetector("lstm").fit(normal)
    with pytest.raises(ValueError, match="pair of microphones"):
        AutoencoderDetector("dual", (0,), cache=None).fit(normal)
    manifest = scan_mimii(tiny_mimii, machines=["fan"])
    with pytest.raises(ValueError, match="normal clips only.*12 clip"):
        AutoencoderDetector(cache=None).fit(manifest)


def test_gamma_threshold_is_the_90th_percentile():
    rng = np.random.default_rng(0)
    scores = stats.gamma.rvs(3.0, loc=1.0, scale=2.0, size=4000, random_state=rng)
    th = GammaThreshold(0.9).fit(scores)
    assert th.shape_ == pytest.approx(3.0, rel=0.15)
    assert th.threshold_ == pytest.approx(stats.gamma.ppf(0.9, 3.0, loc=1.0, scale=2.0), rel=0.03)
    assert abs(th.predict(scores).mean() - 0.1) < 0.02
    with pytest.raises(ValueError, match="all normal scores are equal"):
        GammaThreshold().fit([1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="NaN"):
        GammaThreshold().fit([1.0, math.nan, 2.0])


def test_end_to_end_on_real_mimii_clips(mimii_samples, tmp_path):
    """Trains a few steps on one machine's normal clips and scores the rest (too few clips to mean much)."""
    m = scan_mimii(mimii_samples, machines=["valve"])
    split = split_machine(m, "valve", n_train=3, n_test=2)
    for model in ("baseline", "dual"):
        det = AutoencoderDetector(model, alpha=0.5, config=Config(epochs=2), cache=tmp_path / "c", progress=False, device="cpu")
        det.fit(split.train)
        scores = det.score_all(split.test)
        for kind in ("mse", "mahalanobis"):
            assert scores[kind].shape == (2,) and np.all(np.isfinite(scores[kind])) and np.all(scores[kind] > 0)
        assert set(det.predict(split.test)) <= {0, 1}
    too_few = split_machine(m, "valve", n_train=2, n_test=2).train
    with pytest.raises(ValueError, match="gamma fit needs at least 3 normal scores, got 2"):
        AutoencoderDetector("baseline", config=Config(epochs=1), cache=tmp_path / "c", progress=False, device="cpu").fit(too_few)


def test_multichannel_ae_with_two_inputs_is_the_dual_ae():
    """Same seed -> same initial weights (same construction order); same batches -> same training."""
    from asdlib.models import reconstruction_loss

    torch.manual_seed(3)
    dual = DualAE()
    torch.manual_seed(3)
    multi = MultiChannelAE(2)
    dual_params, multi_params = list(dual.parameters()), list(multi.parameters())
    assert [p.shape for p in dual_params] == [p.shape for p in multi_params]
    for a, b in zip(dual_params, multi_params):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in (dual, multi)]
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        x = [torch.randn(32, 640, generator=g) * 5 - 40, torch.randn(32, 640, generator=g) * 5 - 60]
        for model, opt in zip((dual, multi), opts):
            opt.zero_grad()
            loss = reconstruction_loss(x, model.reconstruct(x), [1.0, 0.5])
            loss.backward()
            opt.step()
    for a, b in zip(dual.parameters(), multi.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    dual.eval(), multi.eval()
    x = [torch.randn(8, 640, generator=g) - 40, torch.randn(8, 640, generator=g) - 60]
    for a, b in zip(dual.reconstruct(x), multi.reconstruct(x)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-5)


# -- scikit-learn conventions ------------------------------------------------------------------

# The estimator's samples are clips (WAV paths or a manifest), not numeric arrays, so the checks
# that feed it generated arrays (check_fit2d_*, check_estimators_dtypes, check_outliers_train,
# check_estimators_pickle, check_fit_check_is_fitted, ...) cannot apply; their intent is covered on
# real clips in test_fitted_detector_follows_sklearn_conventions below.
SKLEARN_CHECKS = [
    "check_parameters_default_constructible",
    "check_no_attributes_set_in_init",
    "check_get_params_invariance",
    "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_mixin_order",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_estimators_unfitted",  # predict / decision_function / score_samples raise NotFittedError
]


@pytest.mark.parametrize("check", SKLEARN_CHECKS)
def test_sklearn_estimator_checks(check):
    from sklearn.utils import estimator_checks

    getattr(estimator_checks, check)("AutoencoderDetector", AutoencoderDetector(cache=None, progress=False))


def test_params_clone_and_repr():
    from sklearn.base import clone, is_outlier_detector

    det = AutoencoderDetector("dual", (2, 6), alpha=0.5, config=FAST, random_state=3, cache=None)
    assert is_outlier_detector(det)
    assert repr(det).startswith("AutoencoderDetector(") and "alpha=0.5" in repr(det) and "random_state=3" in repr(det)
    twin = clone(det)
    assert twin is not det and twin.get_params() == det.get_params()
    assert det.set_params(alpha=2.0, mics=(0, 4)) is det and det._spec() == ModelSpec.dual(0, 4, 2.0)
    assert "seed" not in det.get_params() and "alpha" not in Config().to_dict()  # one home for α: the spec
    with pytest.raises(ValueError, match=r"unknown Config field\(s\) \['alpha'\]"):
        Config.from_dict({"alpha": 5})
    assert AutoencoderDetector("multi", (0, 2, 4), alpha=(0.5, 2.0))._spec() == ModelSpec(0, (2, 4), (0.5, 2.0))
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        AutoencoderDetector(alpha=float("nan"))._spec()


def test_fitted_detector_follows_sklearn_conventions(planted):
    import pickle

    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    normal, test_normal, test_abnormal = planted
    det = AutoencoderDetector("dual", (0, 4), alpha=0.5, config=FAST, cache=None, progress=False, device="cpu", random_state=5)
    params, before = det.get_params(), set(vars(det))
    with pytest.raises(NotFittedError):
        check_is_fitted(det)
    assert det.fit(normal[:8]) is det  # fit returns self
    assert det.get_params() == params  # fit does not change parameters
    added = set(vars(det)) - before
    assert added and all(a.endswith("_") for a in added), added  # learned state ends in "_"
    check_is_fitted(det)
    assert "offset_" in vars(det) and det.offset_ == det.thresholds_["mse"].threshold_
    clips = test_normal + test_abnormal
    np.testing.assert_allclose(det.decision_function(clips), det.score_samples(clips) - det.offset_)
    np.testing.assert_array_equal(det.fit_predict(normal[:8]), det.predict(normal[:8]))  # OutlierMixin
    again = pickle.loads(pickle.dumps(det))
    np.testing.assert_allclose(again.score_samples(clips), det.score_samples(clips), rtol=1e-6)
    with pytest.raises(NotFittedError):
        clone(det).score_samples(clips)  # a clone is unfitted
    det.set_params(score="mahalanobis")  # both thresholds are kept: offset_ follows the score
    assert det.offset_ == det.thresholds_["mahalanobis"].threshold_
    # same random_state -> the same model as a second fit
    twin = clone(det).set_params(score="mse").fit(normal[:8])
    np.testing.assert_array_equal(twin.score_all(clips)["mse"], det.score_all(clips)["mse"])


def test_detector_refuses_clips_with_another_channel_count(planted, tmp_path):
    normal, test_normal, _ = planted
    det = AutoencoderDetector("baseline", config=FAST, cache=None, progress=False, device="cpu").fit(normal[:8])
    assert det.n_channels_ == 8
    rng = np.random.default_rng(1)
    four = write_wav(tmp_path / "four.wav", tone_clip(rng, n=32000, channels=4))
    with pytest.raises(ValueError, match=r"four.wav: has 4 channel\(s\) but this detector was trained on 8-channel clips"):
        det.score_samples([test_normal[0], four])
    det.save(tmp_path / "det.pt")
    with pytest.raises(ValueError, match="trained on 8-channel"):  # recorded in the saved file too
        AutoencoderDetector.load(tmp_path / "det.pt", device="cpu", cache=None).predict([four])
    with pytest.raises(ValueError, match="different channel counts"):
        AutoencoderDetector("baseline", config=FAST, cache=None, progress=False, device="cpu").fit([*normal[:4], four])


def test_a_non_finite_threshold_is_an_error_never_a_decision(planted, tmp_path):
    """Audit F3: NaN (or ±inf) thresholds must not give labels, whether stored in a file or set on a detector."""
    from asdlib.checkpoint import CheckpointError

    normal, test_normal, test_abnormal = planted
    det = AutoencoderDetector("baseline", (0,), config=Config(epochs=1, batch_size=64), cache=None, progress=False,
                              device="cpu").fit(normal[:6])
    clips = test_normal[:2] + test_abnormal[:2]
    labels = det.predict(clips)
    assert set(labels) <= {0, 1}
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match=rf"threshold {value} is not a finite number"):
            GammaThreshold.from_dict({**det.thresholds_["mse"].to_dict(), "threshold": value})
        det.thresholds_["mse"].threshold_ = value
        for method in (det.predict, det.decision_function, det.score_samples):
            with pytest.raises(ValueError, match=f"the mse threshold is {value}, not a finite number"):
                method(clips)
        det.save(tmp_path / "det.pt")
        with pytest.raises(CheckpointError, match=rf"det\.pt: damaged detector file \(thresholds\.mse\.threshold {value} "
                                                  r"is not a finite number\)"):
            AutoencoderDetector.load(tmp_path / "det.pt", device="cpu", cache=None)
    with pytest.raises(ValueError, match=r"percentile 1\.0 is outside \(0, 1\)"):
        GammaThreshold.from_dict({**GammaThreshold().fit([1.0, 2.0, 4.0]).to_dict(), "percentile": 1.0})
