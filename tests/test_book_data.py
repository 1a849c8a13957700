"""The book's data, input-vector and training pages: what asdlib.book_data computes for them."""
from __future__ import annotations

import matplotlib
import matplotlib.patches
import matplotlib.pyplot
import numpy as np
import pandas as pd
import pytest

from asdlib import book_data as bd, plots
from asdlib.book import load_run, make_spec
from asdlib.data import scan_mimii
from asdlib.geometry import MIC_RADIUS


@pytest.fixture(scope="module")
def tiny(tiny_mimii):
    spec = make_spec("smoke", data_root=str(tiny_mimii), machines=["fan", "valve"])
    return spec, scan_mimii(tiny_mimii, machines=spec.machines)


@pytest.fixture(scope="module")
def run(tiny_mimii, tmp_path_factory):
    return load_run("smoke", data_root=str(tiny_mimii), machines=["fan"], seeds=[0, 1], epochs=2,
                    results_dir=tmp_path_factory.mktemp("results"))


def test_example_clips_are_a_normal_and_an_abnormal_clip_of_the_same_unit_and_snr(tiny):
    spec, manifest = tiny
    clips = bd.example_clips(manifest, "valve")
    assert list(clips["label"]) == ["normal", "abnormal"]
    assert clips["machine_id"].nunique() == 1 and clips["snr_db"].nunique() == 1
    assert set(clips["machine"]) == {"valve"} and (clips["samplerate"] == 16000).all()
    with pytest.raises(ValueError, match="pump"):
        bd.example_clips(manifest, "pump")


def test_audio_players_share_one_level_scale(tiny):
    spec, manifest = tiny
    players = bd.audio_players(bd.example_clips(manifest, "fan"), mic=0)
    assert [label.split(" ")[0] for label, _ in players] == ["normal", "abnormal"]
    assert all("<audio" in player._repr_html_() for _, player in players)
    labelled = bd.audio_players(bd.example_clips(manifest, "fan"), mic=0, origin="real MIMII")
    assert [label.split(" — ")[0] for label, _ in labelled] == ["real MIMII normal", "real MIMII abnormal"]


def test_split_counts_add_up_to_the_profile_sizes(tiny):
    spec, manifest = tiny
    counts = bd.split_counts(spec, manifest)
    assert list(counts.columns) == ["train normal", "test normal", "test abnormal"]
    per_machine = counts.groupby(level="machine").sum()
    assert (per_machine["train normal"] == spec.n_train).all()
    assert (per_machine["test normal"] + per_machine["test abnormal"] == spec.n_test).all()
    assert not counts.isna().any().any()


def test_clip_inputs_are_the_pair_vectors_and_spectrograms(tiny):
    spec, manifest = tiny
    clip, vectors, logmels = bd.clip_inputs(spec, manifest, "fan", "normal", [0, 4])
    assert clip["label"] == "normal" and clip["machine"] == "fan"
    assert vectors.shape[0] == 2 and vectors.shape[2] == 640 and logmels.shape[:2] == (2, 128)
    # vector t is frames t..t+4, frame after frame
    assert np.allclose(vectors[1, 3].reshape(5, 128), logmels[1][:, 3:8].T)


def test_difference_level_reads_low_and_high_bands():
    config = make_spec("smoke").model_config()
    import librosa

    ref = np.zeros((128, 10))
    centres = librosa.mel_frequencies(130, fmin=0, fmax=8000)[1:-1]  # the bands' centre frequencies
    dif = np.where((centres < 1000)[:, None], -10.0, 2.0) + ref
    d = bd.difference_level(np.stack([ref, dif]), config)
    assert d["low"] == pytest.approx(-10.0) and d["high"] == pytest.approx(2.0)
    assert d["low"] < d["all"] < d["high"]


def test_decision_table_has_one_full_row_per_model(run):
    spec, store = run
    table = bd.decision_table(store)
    assert list(table.index) == [bd.model_label(ms) for ms in spec.model_specs()]
    assert not table.isna().any().any()  # no all-NaN rows of model/pair/alpha combinations that do not exist
    assert set(table.columns.get_level_values("metric")) == {"precision", "recall", "F1"}
    assert ((table >= 0) & (table <= 100)).all().all()


def test_flag_rates_are_recounted_from_the_scores_and_the_threshold(run):
    spec, store = run
    rates = bd.flag_rates(store)
    assert len(rates) == len(spec.model_specs()) * len(spec.seeds) * len(spec.machines) * len(spec.scores)
    row = rates.iloc[0]
    train, test, th = bd.cell_threshold(store, row["machine"], row["seed"], row["model"], row["score"])
    assert row["train flagged"] == pytest.approx(100 * (train > th["threshold"]).mean())
    normal = test.loc[test["y"] == 0, row["score"]]
    assert row["normal test flagged"] == pytest.approx(100 * (normal > th["threshold"]).mean())  # the decisions are score > threshold
    text = bd.flag_sentence(rates)
    assert f"{100 * th['percentile']:.0f}th percentile" in text
    mean = rates.loc[rates["score"] == row["score"], "normal test flagged"].mean()
    assert f"{mean:.1f} % with {row['score']}" in text


def test_flag_sentence_says_which_way_the_test_clips_differ():
    rates = pd.DataFrame({"score": ["mse", "mse"], "percentile": [0.9, 0.9], "train flagged": [10.0, 10.0],
                          "normal test flagged": [20.0, 30.0]})
    text = bd.flag_sentence(rates)
    assert "25.0 % with mse (from 20 to 30 % by cell)" in text and "more than the training clips" in text
    rates["normal test flagged"] = [5.0, 5.0]
    assert "fewer than the training clips" in bd.flag_sentence(rates)


def test_loss_curves_cover_every_model_seed_and_epoch(run):
    spec, store = run
    curves = bd.loss_curves(store, "fan")
    epochs = spec.model_config().epochs
    assert len(curves) == len(spec.model_specs()) * len(spec.seeds) * 2 * epochs
    assert np.isfinite(curves["loss"]).all() and set(curves["split"]) == {"training", "validation"}
    h = store.history("fan", 1, spec.model_specs()[0].name)
    base = curves[(curves["family"] == "baseline (mic 0)") & (curves["seed"] == 1) & (curves["split"] == "validation")]
    assert np.allclose(base.sort_values("epoch")["loss"], h["val_loss"])
    times = bd.training_times(store)
    assert times["models"].sum() == len(spec.model_specs()) * len(spec.seeds)
    assert list(times.index) == [("fan", seed) for seed in spec.seeds]  # one row per grid
    for (machine, seed), row in times.iterrows():
        secs = [c["train_seconds"] for c in store.cells() if (c["machine"], c["seed"]) == (machine, seed)]
        assert row["models"] == len(spec.model_specs()) == len(secs)
        assert row["total (s)"] == pytest.approx(sum(secs), abs=0.01) and row["per model (s)"] == pytest.approx(sum(secs) / len(secs), abs=0.01)


def test_book_figures_are_labelled(run, tiny):
    spec, store = run
    fig = plots.plot_histories(bd.loss_curves(store, "fan"))
    assert fig.axes[0].get_xlabel() == "epoch" and "loss" in fig.axes[0].get_ylabel()
    train, test, thr = bd.cell_threshold(store, "fan", 0, spec.model_specs()[0].name)
    fig = plots.plot_threshold(train, test, thr, "mse")
    assert "anomaly score" in fig.axes[0].get_xlabel()
    fig = plots.plot_array(sources={"fan": (0.5, 0.0)})
    inset = fig.axes[0].child_axes[0]
    rings = [p for p in inset.patches if isinstance(p, matplotlib.patches.Circle)]
    assert rings and rings[0].get_radius() == pytest.approx(100 * MIC_RADIUS)  # the 36.5 mm ring, in cm
    audio = np.random.default_rng(0).standard_normal((8, 16000)).astype(np.float32) * 0.01
    fig = plots.plot_multichannel(audio)
    assert any(ax.get_ylabel() == "log-mel energy (dB)" for ax in fig.axes)  # the colorbar
    assert fig.axes[1].get_ylabel() == "mel band"
    matplotlib.pyplot.close("all")


def test_dipole_figures_draw_every_panel_and_name_every_line():
    from asdlib.spatial import difference_response

    freqs, azimuths = np.geomspace(50, 8000, 64), (0, 45, 90)
    fig = plots.plot_dipole_frequency(freqs, azimuths, [("far field", None), ("50 cm", 0.5), ("10 cm", 0.1)])
    drawn = [ax for ax in fig.axes if ax.lines]
    assert [ax.get_title() for ax in drawn] == ["pair 0-4, source far field", "pair 0-4, source 50 cm", "pair 0-4, source 10 cm"]
    legend = [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    assert len(legend) == 1 and [t.get_text() for t in legend[0].get_texts()] == ["0°", "45°", "90°"]
    on_axis = 20 * np.log10(difference_response(freqs, np.array([0.0]), (0, 4), distance=0.5)[:, 0])
    np.testing.assert_allclose(drawn[1].lines[0].get_ydata(), np.maximum(on_axis, -40.0))  # the curve is the response
    sweep = pd.DataFrame([{"score": s, "model": m, "azimuth": az, "AUC": 50.0 + i}
                          for s in ("mse", "mahalanobis") for i, m in enumerate(("baseline", "0-4", "2-6")) for az in (0, 90, 180)])
    fig = plots.plot_direction_sweep(sweep, machine_azimuth=30.0)
    assert [ax.get_title() for ax in fig.axes] == ["mse", "mahalanobis"]
    for ax in fig.axes:
        assert ax.get_ylabel() == "AUC (%)" and ax.get_ylim() == (0, 100)
        assert [ln.get_label() for ln in ax.lines[:3]] == ["baseline", "0-4", "2-6"]
    assert fig.legends and "machine" in [t.get_text() for t in fig.legends[0].get_texts()]
    matplotlib.pyplot.close("all")


def test_loss_sentence_says_when_a_loss_did_not_fall():
    rows = []
    for model, (a, b) in {"m1": (10.0, 5.0), "m2": (10.0, 12.0)}.items():
        for seed in (0, 1):
            for split in ("training", "validation"):
                rows += [dict(model=model, seed=seed, split=split, epoch=1, loss=a), dict(model=model, seed=seed, split=split, epoch=2, loss=b)]
    curves = pd.DataFrame(rows)
    change = bd.loss_change(curves)
    assert change.loc["m1", "validation"] == pytest.approx(-50.0) and change.loc["m2", "validation"] == pytest.approx(20.0)
    text = bd.loss_sentence(curves, "fan")
    assert "-50.0 % to +20.0 %" in text and "did not fall for every model" in text
    falling = curves[curves["model"] == "m1"]
    assert "fell for every model" in bd.loss_sentence(falling, "fan")


def test_page_parameters_merge_over_overrides():
    assert bd.merge_parameters('{"n_train": 3, "epochs": 4}', epochs=2, machines=None) == {"n_train": 3, "epochs": 2}
    assert bd.merge_parameters(None, seeds=[0]) == {"seeds": [0]}
    with pytest.raises(ValueError, match="overrides"):
        bd.parse_overrides("[1, 2]")


def test_model_labels_tell_the_two_baselines_apart():
    from asdlib.modelspec import ModelSpec

    specs = [ModelSpec.baseline(0), ModelSpec.baseline("mean"), ModelSpec.baseline(3), ModelSpec.dual(0, 4, 0.5)]
    assert [bd.model_label(ms) for ms in specs] == ["baseline (mic 0)", "baseline (mean of channels)", "baseline (mic 3)", "dual 0-4, α=0.5"]


def test_how_sure_summary_says_where_delong_disagrees_with_the_bootstrap():
    from asdlib.book import how_sure_summary

    best = pd.DataFrame({"ΔAUC": [6.3, 2.0, -1.8, 1.0, -3.0], "Bonferroni p": [0.01, 0.02, 0.5, 0.04, 0.01],
                         "DeLong seeds +": [3.0, 1.0, 1.0, 0.0, 0.0], "DeLong seeds −": [0.0, 0.0, 1.0, 0.0, 2.0],
                         "n_configs": [8] * 5})
    text = how_sure_summary([10.0, 11.0, 12.0], [3.0, 4.0], best, 3)
    # the last row is significant but a loss: counted as worse, never as a gain
    assert "significantly better than the baseline (5 %) in 3 of 5 (machine type, score) pairs" in text
    assert "and significantly worse in 1:" in text
    assert "better in 5 and worse in 3 of the 15 seed-level comparisons behind these 5 gains" in text
    assert "in 1 of 5 the seeds split" in text  # the third row: one seed better, one worse
    assert "For the gains that stay significant, 4 of 9 seeds are significantly better" in text
    best = best.iloc[:4].assign(**{"DeLong seeds −": 0.0})
    text = how_sure_summary([10.0, 11.0, 12.0], [3.0, 4.0], best, 3)
    assert "in 3 of 4 (machine type, score) pairs." in text and "worse in 1:" not in text
    assert "no gain has seeds significant in both directions" in text and "split" not in text


class _NoisyScores:
    """A results store whose test scores are drawn: weak, overlapping detectors that differ by seed."""

    def __init__(self, spec):
        self.spec = spec

    def test_scores(self, machine, seed, name):
        rng = np.random.default_rng([seed, sum(map(ord, name))])
        y = np.repeat([0, 1], 30)
        return pd.DataFrame({"y": y, **{score: rng.normal(size=y.size) + 0.6 * y for score in self.spec.scores}})


def test_paired_comparisons_redraw_seeds_only_from_three_on(run):
    """With 2 seeds (fewer than MIN_SEEDS_FOR_INTERVAL) the paired bootstrap redraws the test clips
    only, and the page says its interval is about these trained models; from 3 seeds on it redraws
    the seeds too."""
    from asdlib.book import how_sure_summary, paired_comparisons, paired_interval_scope
    from asdlib.metrics import paired_bootstrap_auc_difference

    spec, _ = run
    base = next(ms for ms in spec.model_specs() if ms.kind == "baseline")
    for seeds, resample_seeds in (([0, 1], False), ([0, 1, 2], True)):
        store = _NoisyScores(spec.replace(seeds=seeds))
        tests = paired_comparisons(store, n_boot=300)
        assert len(tests) == len(spec.machines) * len(spec.scores) * sum(ms.kind == "dual" for ms in spec.model_specs())
        for _, row in tests.iterrows():
            dual = next(ms for ms in spec.model_specs() if bd.model_label(ms) == row["model"])
            d, b = (np.stack([store.test_scores(row["machine"], s, ms.name)[row["score"]].to_numpy() for s in seeds])
                    for ms in (dual, base))
            y = store.test_scores(row["machine"], seeds[0], base.name)["y"].to_numpy()
            expected, other = (paired_bootstrap_auc_difference(y, d, b, n_boot=300, seed=0, resample_seeds=r)
                               for r in (resample_seeds, not resample_seeds))
            assert (row["Δ low"], row["Δ high"]) == pytest.approx((100 * expected.ci_low, 100 * expected.ci_high))
            assert (expected.ci_low, expected.ci_high) != (other.ci_low, other.ci_high)
    assert "test clips only" in paired_interval_scope(2) and "whether these trained models differ" in paired_interval_scope(2)
    assert "and the training seeds" in paired_interval_scope(3) and "whether the method is better" in paired_interval_scope(3)
    best = pd.DataFrame({"ΔAUC": [4.0], "Bonferroni p": [0.01], "DeLong seeds +": [1.0], "DeLong seeds −": [0.0], "n_configs": [8]})
    assert "for these trained models only: with 2 seeds" in how_sure_summary([], [3.0], best, 2)
    assert "trained models only" not in how_sure_summary([10.0], [3.0], best, 3)


def _figure5_summary(machines, with_intervals):
    """A summary (as interval_summary gives it) of a baseline and two pairs × two α per machine type."""
    rows = []
    for k, machine in enumerate(machines):
        values = {("baseline", None, None): 60.0, ("dual", "0-4", 0.5): 63.0 + k, ("dual", "0-4", 2.0): 61.0,
                  ("dual", "2-6", 0.5): 58.0, ("dual", "2-6", 2.0): 62.0 - 4 * k}
        for (model, pair, alpha), mean in values.items():
            low, high = (mean - 2.5, mean + 2.5) if with_intervals else (np.nan, np.nan)
            rows.append({"machine": machine, "metric": "AUC", "score": "mse", "model": model, "mic_pair": pair, "alpha": alpha,
                         "mean": mean, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def test_figure5_reading_claims_intervals_only_where_there_are_some():
    from asdlib.book import figure5_reading

    table, text = figure5_reading(_figure5_summary(["fan", "pump"], with_intervals=True))
    assert list(table["best pair"]) == ["0-4", "0-4"]
    assert "the same pair on every machine, unlike the paper's reading" in text
    assert "within 2 points of each other for 1 of 2 machine types, and their intervals overlap for 1 of 2" in text  # fan 63 vs 62
    assert "Some α of every pair is above the baseline for 1 of 2 machine types" in text
    assert "with intervals apart from the baseline's for 0 of 2" in text
    table, text = figure5_reading(_figure5_summary(["fan"], with_intervals=False))
    assert "with one machine type, whether the best pair depends on the machine" in text and "unlike" not in text
    assert "interval" not in text.split("cannot be read")[0]  # nothing is said about intervals that do not exist
    assert "no interval is computed" in text
    assert table[["pairs whose best α is clearly above (intervals apart)", "pairs' best intervals overlap"]].isna().all().all()


def test_table1_average_row_is_compared_with_the_paper_only_over_the_same_machine_types(run):
    from asdlib.book import table1_caption, table1_frame

    spec, store = run  # fan only
    frame = table1_frame(store, n_boot=50)
    average, fan = frame[frame["machine"] == "average"], frame[frame["machine"] == "fan"]
    assert average["reported"].isna().all() and average["difference"].isna().all()
    assert fan["reported"].notna().any()
    caption = table1_caption("mse", spec)
    assert "ours, the mean over 2 seeds (the seeds' values under it, no interval with fewer than 3 seeds)" in caption
    assert "parentheses" not in table1_caption("mse", spec, reported=False) and "Average" not in table1_caption("mse", spec, reported=False)
    assert "The Average row is the harmonic mean over fan only" in caption
    full = table1_caption("mse", spec.replace(machines=["fan", "pump", "slider", "valve"], seeds=[0, 1, 2]))
    assert "95 % interval over seeds and test clips under it" in full and "Average row" not in full
    assert table1_caption("mahalanobis", spec).startswith("Mahalanobis score: ours")  # as a sentence names it


def test_table1_summary_counts_ties_and_says_when_no_detector_beats_chance():
    from asdlib.book import table1_summary

    rows = []
    for machine, (base, dual) in {"fan": (70.0, 75.0), "pump": (60.0, 60.0), "valve": (80.0, 55.0)}.items():
        rows += [{"machine": machine, "model": "baseline", "ours": base}, {"machine": machine, "model": "dual", "ours": dual}]
    frame = pd.DataFrame(rows).assign(metric="AUC", score="mse")
    frame["best"] = frame["ours"] == frame.groupby("machine")["ours"].transform("max")
    gain = pd.DataFrame({"baseline": [44.1], "best dual": [49.5], "gain": [5.4], "best config": ["2-6, α=10"]},
                        index=pd.MultiIndex.from_tuples([("AUC", "mse")], names=["metric", "score"]))
    text = table1_summary(frame, gain)
    assert "a gain of 5.40 points, between detectors that do not beat chance" in text
    assert "a dual configuration in 1 of 3 (machine type, metric, score) groups and the baseline in 1; in 1 the baseline and a dual configuration tie" in text
    text = table1_summary(frame, gain.assign(**{"baseline": 70.0, "best dual": 75.4}))
    assert "a gain of 5.40 points. The bold" in text and "chance" not in text


def test_delong_by_seed_counts_each_direction():
    """Two seeds whose dual model ranks the clips perfectly and one whose dual model inverts them."""
    from asdlib.book.how_sure import _delong_by_seed

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    noise = rng.normal(size=(3, 80))
    base = noise + 0.5 * y  # a weak detector on every seed
    dual = np.stack([noise[0] + 5 * y, noise[1] + 5 * y, noise[2] - 5 * y])
    assert _delong_by_seed(y, dual, base) == {"DeLong seeds +": 2.0, "DeLong seeds −": 1.0}
    assert np.isnan(_delong_by_seed(np.array([0, 0, 0, 1]), dual[:, :4], base[:, :4])["DeLong seeds +"])


def test_sweep_reading_is_read_off_the_best_pair_table():
    from asdlib.sweep import best_pair_by_direction, sweep_reading

    auc = {(0.0, "0-4"): 90.0, (0.0, "2-6"): 70.0, (0.0, "baseline"): 80.0,
           (90.0, "0-4"): 60.0, (90.0, "2-6"): 75.0, (90.0, "baseline"): 78.0}
    sweep = pd.DataFrame([{"model": m, "azimuth": az, "score": "mse", "AUC": v} for (az, m), v in auc.items()])
    best = best_pair_by_direction(sweep, "mse")
    assert list(best["best pair"]) == ["0-4", "2-6"] and list(best["gain"]) == [10.0, -3.0]
    text = sweep_reading(best, machine_azimuth=45.0)
    assert "0-4: 1 of 2 directions" in text and "2-6: 1 of 2 directions" in text
    assert "in 2 of 2 directions, against 1.0 if the same winners fell on the directions at random" in text  # 0° faces 0-4, 90° 2-6
    assert "+3.5 AUC points" in text and "positive at 1 of 2 directions" in text
    assert "one training seed" not in text
    # far field: the pair broadside to the machine is an exact null
    assert ("The pair that hears the machine least (3-7, -60.0 dB towards it over 100 Hz–8 kHz) is the best at 0 of 2 directions: "
            "cancelling the machine does not make the anomaly stand out here.") in text
    assert "The pair that hears the machine least (2-6, -60.0 dB towards it over 100 Hz–8 kHz) is the best at 1 of 2 directions." \
        in sweep_reading(best, 0.0)
    # the book's fan unit 0 (15°, 50 cm): 15° off broadside of 2-6 no pair cancels it, and the reading says so
    near = sweep_reading(best, 15.0, machine_distance=0.498)
    assert ("The pair that hears the machine least (2-6, +2.4 dB towards it over 100 Hz–8 kHz) is the best at 1 of 2 directions; "
            "but no pair cancels this machine's sound (every pair's gain towards it is between +2.4 and +3.7 dB), so the sweep "
            "does not test whether cancelling the machine makes an anomaly stand out.") in near
    assert "cancels the machine's own sound" not in near
    assert sweep_reading(best, 45.0, score="mahalanobis").startswith("With the Mahalanobis score, the best pair changes")
    tie = sweep.assign(AUC=sweep["AUC"].where(~((sweep["azimuth"] == 0.0) & (sweep["model"] == "2-6")), 90.0))
    tied = best_pair_by_direction(tie, "mse")
    assert list(tied["best pair"]) == ["0-4 = 2-6", "2-6"] and list(tied["best AUC"]) == [90.0, 75.0]
    tie_text = sweep_reading(tied, 45.0)
    assert "0-4 = 2-6: 1 of 2 directions" in tie_text and "in 2 of 2 directions" in tie_text  # the tie includes the facing pair
    coarse = sweep_reading(best, 45.0, n_anomalous=6, n_normal=24)
    assert coarse.startswith(text) and "one training seed on 6 anomalous against 24 normal clips" in coarse and "up to 16.7 points" in coarse
    assert "the mean over 3 training seeds, each on 6 anomalous" in sweep_reading(best, 45.0, n_anomalous=6, n_normal=24, n_seeds=3)


def test_average_row_gap_is_the_harmonic_mean_of_the_cells_minus_the_average():
    from asdlib.book import average_row_gap

    def row(machine, ours, mic_pair="", alpha=np.nan):
        return {"machine": machine, "metric": "AUC", "score": "mse", "model": "dual" if mic_pair else "baseline",
                "mic_pair": mic_pair, "alpha": alpha, "ours": ours}

    frame = pd.DataFrame([row("fan", 50.0), row("pump", 100.0), row("average", 60.0),  # harmonic mean 66.67
                          row("fan", 80.0, "0-4", 2.0), row("pump", 80.0, "0-4", 2.0), row("average", 79.0, "0-4", 2.0)])
    assert average_row_gap(frame) == pytest.approx(200 / 3 - 60)
    frame.loc[2, "ours"] = 200 / 3
    assert average_row_gap(frame) == pytest.approx(1.0)  # now the dual column's 80 - 79



def test_stated_gains_are_judged_on_the_metric_the_sentence_names():
    """The paper's "AUC and pAUC increasing by 4.29% and 3.45%": on its own Table 1, 4.29 is the AUC
    of mics 0-4 with α picked per machine (one reading); 3.45 is the AUC of mics 2-6, which says
    nothing of the pAUC."""
    from asdlib import claims
    from asdlib.tables import reported_table

    reported = reported_table()
    readings = pd.DataFrame({m: claims.gain_readings(reported, "mse", m) for m in ("AUC", "pAUC")})
    computed, verdict = claims.stated_gain_verdict(readings, "AUC", 4.29)
    assert verdict == claims.HOLDS_UNDER_A_READING and computed.startswith("AUC: mics 0-4")
    computed, verdict = claims.stated_gain_verdict(readings, "pAUC", 3.45)
    assert verdict == claims.DOES_NOT_HOLD
    assert computed.startswith("no pAUC reading gives it (the number is the AUC by mics 2-6")
    best_cell = readings.loc["best Average cell - baseline", "AUC"]
    assert claims.stated_gain_verdict(readings, "AUC", best_cell)[1] == claims.HOLDS  # a plain reading
    assert claims.stated_gain_verdict(readings, "AUC", 99.0) == ("no AUC reading gives it", claims.DOES_NOT_HOLD)


def test_anomaly_kind_gains_follow_the_best_configuration_seed_by_seed():
    from asdlib.book import anomaly_kind_reading, gain_by_anomaly_kind, seed_gains

    rows = []
    aucs = {  # (model, anomaly): AUC of seeds 0 and 1
        ("base", "spatial"): (70.0, 72.0), ("d1", "spatial"): (80.0, 74.0), ("d2", "spatial"): (71.0, 71.0),
        ("base", "spectral"): (60.0, 60.0), ("d1", "spectral"): (61.0, 59.0), ("d2", "spectral"): (66.0, 62.0),
    }
    for (model, anomaly), values in aucs.items():
        for seed, value in enumerate(values):
            rows.append({"model": model, "kind": "baseline" if model == "base" else "dual", "machine": "fan", "seed": seed,
                         "anomaly": anomaly, "score": "mse", "AUC": value})
    auc = pd.DataFrame(rows)
    gains = gain_by_anomaly_kind(auc)
    spatial, spectral = gains.loc[("mse", "spatial", "fan")], gains.loc[("mse", "spectral", "fan")]
    assert spatial["best model"] == "d1" and spatial["gain"] == 6.0  # mean 77 against 71
    assert (spatial["gain, lowest seed"], spatial["gain, highest seed"]) == (2.0, 10.0)
    assert spectral["best model"] == "d2" and (spectral["gain, lowest seed"], spectral["gain, highest seed"]) == (2.0, 6.0)
    per_seed = seed_gains(auc, gains["best model"])
    text = anomaly_kind_reading(gains, per_seed)
    # seed 0: 10 - 6 = +4; seed 1: 2 - 2 = 0; the means differ by 2 points, but seed 1 shows no difference:
    # the seeds do not agree in sign, so no direction is read
    assert "+6.0 points on spatial anomalies and +4.0 on spectral ones" in text
    assert "no clear difference between the kinds, since the seeds do not all have the same sign" in text
    assert "spatial minus spectral ranges from 0.0 to +4.0 points" in text
    assert "So the data do not support the premise of this page." in text


def test_cancelling_pairs_reading_is_read_off_the_gain_table():
    from asdlib.book import cancelling_pairs_reading, pair_gains_towards_machines

    gains = pair_gains_towards_machines()
    text = cancelling_pairs_reading(gains)
    least = gains[[c for c in gains.columns if c.endswith(" (dB)")]].min(axis=1)
    assert least.loc[("slider", 4)] == -60.0  # 1-5 exactly broadside to slider unit 4
    assert text.startswith(f"In Table 8.1, {int((least <= -6).sum())} of 16 units have a pair that cancels their sound")
    assert "slider 4 (1-5, -60.0 dB)" in text and "fan 0" not in text
    # one unit whose pairs all pass its sound: none cancels, and the text says what that leaves untested
    fan0 = gains.loc[[("fan", 0)]]
    assert cancelling_pairs_reading(fan0) == (
        "In Table 8.1, 0 of 1 unit have a pair that cancels its sound (a gain of -6 dB or less); for the other 1, even the "
        "quietest pair passes it at +2.4 dB or more. Averaged over 100 Hz–8 kHz, a pair cancels a source only when the source "
        "lies almost exactly broadside to it, so the first expectation above cannot be tested on these units.")


def test_yes_no_words_only_the_columns_of_truth_values():
    from asdlib.book import yes_no

    frame = pd.DataFrame({"AUC": [1.0, 0.0], "overlap": [True, False], "apart": pd.Series([True, pd.NA], dtype=object),
                          "count": [1, 0]})
    shown = yes_no(frame)
    assert list(shown["overlap"]) == ["yes", "no"] and list(shown["apart"]) == ["yes", "–"]
    # numbers equal to 1 and 0 stay numbers, and the frame given is not changed
    assert list(shown["AUC"]) == [1.0, 0.0] and list(shown["count"]) == [1, 0]
    assert list(frame["overlap"]) == [True, False]


def test_data_caption_says_where_the_numbers_come_from():
    from asdlib.book import data_caption
    from asdlib.experiments import profile

    assert data_caption(profile("book")) == ("simulated data (asdlib.simulate, not MIMII), book profile: 60 training + 320 test "
                                             "clips of 10 s per machine type at 0 dB SNR, 5 epochs, batch 64, 3 seeds")
    three = profile("book", n_test=100, simulator={"duration_s": 10.0, "snrs_db": [-6, 0, 6]})
    assert "100 test clips of 10 s per machine type at -6, 0 and 6 dB SNR" in data_caption(three)
    real = profile("paper", data_root="/data/mimii")
    assert data_caption(real) == ("real MIMII recordings (/data/mimii), paper profile: 1000 training + 200 test clips per "
                                  "machine type, 50 epochs, batch 256, 5 seeds")
    assert "at 6 dB SNR, 50 epochs" in data_caption(real.replace(snrs_db=[6]))


def test_for_display_names_the_headers_as_a_page_writes_them():
    from asdlib.book import for_display

    index = pd.MultiIndex.from_tuples([("AUC", "mse", "2-6", 0.5)], names=["metric", "score", "mic_pair", "alpha"])
    frame = pd.DataFrame({"gain": [1.5], "n_configs": [8], "apart": [False]}, index=index)
    shown = for_display(frame)
    assert list(shown.index.names) == ["metric", "score", "mics", "α"]
    assert list(shown.columns) == ["gain", "configurations compared", "apart"] and shown["apart"].iloc[0] == "no"
    wide = pd.DataFrame([[True, False]], columns=pd.Index(["0-4", "2-6"], name="mic_pair"))
    assert for_display(wide).columns.name == "mics" and list(for_display(wide).iloc[0]) == ["yes", "no"]
    assert list(frame.index.names) == ["metric", "score", "mic_pair", "alpha"]  # the frame given is unchanged
