"""The experiment grid end to end on simulated data: spec, runner, results store, resume, CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from asdlib import runner
from asdlib.cli import main as cli
from asdlib.experiments import ExperimentSpec, SpecError, profile, spec_from_parameters
from asdlib.results import ResultsStore
from asdlib.tables import compare_with_reported, reported_table, table1_layout
from asdlib.runner import list_cells, run_experiment


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("grid")
    return {"data": base / "data", "cache": base / "cache", "base": base}


def tiny(**overrides) -> ExperimentSpec:
    """2 machines x (baseline + 1 pair x 2 α), 2 s clips, 2 epochs."""
    return profile("smoke", **overrides)


def run(spec, dirs, name, **kw):
    from asdlib.cache import FeatureCache

    return run_experiment(spec, dirs["base"] / name, data_dir=dirs["data"], cache=FeatureCache(dirs["cache"]), progress=False, **kw)


@pytest.fixture(scope="module")
def complete(dirs):
    return run(tiny(), dirs, "complete")


def test_spec_validation():
    with pytest.raises(SpecError, match="unknown machine type"):
        profile("quick", machines=["toaster"])
    with pytest.raises(SpecError, match="outside 0-7"):
        profile("quick", mic_pairs=[[0, 8]])
    with pytest.raises(SpecError, match="uses microphone 3 twice"):
        profile("quick", mic_pairs=[[3, 3]])
    with pytest.raises(SpecError, match="alpha -1"):
        profile("quick", alphas=[-1])
    with pytest.raises(SpecError, match="unknown profile"):
        profile("huge")
    with pytest.raises(SpecError, match="unknown spec field"):
        profile("quick", epoch=3)
    with pytest.raises(SpecError, match="config overrides"):
        profile("quick", config={"epochz": 3})
    assert profile("paper").n_cells() == 4 * 5 * 10  # the paper's 9 models and the baseline on the channel mean
    assert profile("quick", config={"epochs": 3}).model_config().epochs == 3
    assert spec_from_parameters("quick", machines=["fan"], epochs=5).digest() != profile("quick").digest()


def test_spec_from_yaml(tmp_path):
    f = tmp_path / "spec.yaml"
    f.write_text("profile: smoke\nalphas: [1.0]\nconfig: {epochs: 1}\n")
    spec = ExperimentSpec.from_file(f)
    assert spec.alphas == [1.0] and spec.model_config().epochs == 1 and spec.machines == ["fan", "valve"]


def test_tiny_grid_end_to_end(complete):
    spec = complete.spec
    assert complete.is_complete()
    assert len(complete.cells()) == spec.n_cells() == 6
    m = complete.metrics()
    assert set(m["metric"]) == {"AUC", "pAUC", "pAUC_eq11", "precision", "recall", "F1"}
    assert set(m["score"]) == {"mse", "mahalanobis"}
    auc = m[m["metric"] == "AUC"]
    assert auc["value_percent"].between(0, 100).all() and len(auc) == 6 * 2
    prov = complete.read_json("provenance.json")
    assert prov["data_source"].startswith("simulated") and prov["status"] == "complete"
    assert len(prov["manifest_hash"]) == 16 and prov["versions"]["torch"].startswith("2.13")
    scores = complete.test_scores("fan", 0, "dual-0-4-a0.5")
    assert {"relpath", "y", "mse", "mahalanobis", "mse[mic0]", "mse[mic0-mic4]", "decision_mse", "anomaly_kind"} <= set(scores.columns)
    # the combined score is A_ref + α A_dif, recomputable from the stored parts
    np.testing.assert_allclose(scores["mse"], scores["mse[mic0]"] + 0.5 * scores["mse[mic0-mic4]"], rtol=1e-9)
    # any metric can be recomputed from the stored per-clip scores
    from asdlib.metrics import roc_auc

    stored = auc[(auc.machine == "fan") & (auc.model == "dual") & (auc.alpha == 0.5) & (auc.score == "mse")]["value_percent"].iloc[0]
    assert stored == pytest.approx(100 * roc_auc(scores["y"], scores["mse"]))
    split = pd.read_csv(complete.path / "splits" / "fan.csv")
    assert set(split.loc[split.part == "test", "relpath"]) == set(scores["relpath"])
    line = complete.describe()
    assert "Data: **simulated**" in line
    cfg = spec.model_config()
    assert f"{cfg.epochs} epochs, batch {cfg.batch_size};" in line


def test_comparison_lines_up_with_the_reported_table(complete):
    comp = compare_with_reported(complete.metrics())
    reported = reported_table()
    # every AUC / pAUC cell we ran is a cell of the paper's table; the paper's Average is over all four
    # machine types, so beside ours over fan and valve it is left out
    machines = comp["machine"] != "average"
    assert comp.loc[machines, "reported"].notna().all() and comp.loc[~machines, "reported"].isna().all()
    for _, row in comp[machines].iterrows():
        match = reported[(reported.machine == row.machine) & (reported.metric == row.metric) & (reported.score == row.score)
                         & (reported.model == row.model) & (reported.mic_pair == row.mic_pair)
                         & ((reported.alpha == row.alpha) | (reported.alpha.isna() & pd.isna(row.alpha)))]
        assert len(match) == 1 and match["value_percent"].iloc[0] == row.reported
    assert set(comp["machine"]) == {"fan", "valve", "average"}
    np.testing.assert_allclose(comp["difference"], comp["ours"] - comp["reported"])
    metrics = complete.metrics()
    four = pd.concat([metrics, metrics.assign(machine=metrics["machine"].map({"fan": "pump", "valve": "slider"}))])
    assert compare_with_reported(four)["reported"].notna().all()  # all four types: the Average is compared too
    layout = table1_layout(comp)
    assert layout.shape == (3 * 2, 2 * 3)  # (machines + average) x metrics rows; scores x (2 α + baseline) cols


def test_resume_after_interruption_is_identical(dirs, complete, monkeypatch):
    spec = tiny()
    real_write = runner._write_cell
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # e.g. Ctrl-C after three cells were written
        return real_write(*args, **kwargs)

    monkeypatch.setattr(runner, "_write_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(spec, dirs, "resumed")
    monkeypatch.setattr(runner, "_write_cell", real_write)
    store = ResultsStore(dirs["base"] / "resumed" / spec.run_id())
    assert len(store.cells()) == 3 and not store.is_complete()
    store = run(spec, dirs, "resumed")
    assert store.is_complete()
    journal = store.journal()
    assert (journal["event"] == "cell_finished").sum() == 6  # the three finished cells were not redone
    key = ["machine", "seed", "model", "mic_pair", "alpha", "metric", "score"]
    a = store.metrics().sort_values(key, ignore_index=True)
    b = complete.metrics().sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(a, b)


def test_damaged_cell_is_detected_and_redone(dirs):
    spec = tiny()
    store = run(spec, dirs, "damaged")
    before = store.test_scores("valve", 0, "baseline-mic0")
    victim = store.cell_dir("valve", 0, "baseline-mic0") / "test_scores.csv"
    victim.write_text(victim.read_text()[:50])  # truncated, as by a crash mid-write
    assert not store.cell_done("valve", 0, "baseline-mic0")
    (store.cell_dir("fan", 0, "dual-0-4-a2") / "cell.json").unlink()  # never finished
    store = run(spec, dirs, "damaged")
    assert store.is_complete()
    pd.testing.assert_frame_equal(store.test_scores("valve", 0, "baseline-mic0"), before)
    redone = store.journal().query("event == 'cell_started'")["cell"].tolist()
    assert sorted(redone[-2:]) == ["fan/0/dual-0-4-a2", "valve/0/baseline-mic0"]


def test_fused_and_single_training_agree(dirs, complete):
    single = run(tiny(fused=False), dirs, "single")  # same digest: fused is not part of the result's identity
    key = ["machine", "model", "mic_pair", "alpha", "metric", "score"]
    # rank metrics only: a decision at the gamma threshold may flip on a float-rounding difference
    ranked = "metric in ['AUC', 'pAUC']"
    a = single.metrics().query(ranked).sort_values(key, ignore_index=True)
    b = complete.metrics().query(ranked).sort_values(key, ignore_index=True)
    assert len(a) == len(b) > 0
    np.testing.assert_allclose(a["value_percent"], b["value_percent"], atol=1e-6)
    np.testing.assert_allclose(
        single.test_scores("fan", 0, "dual-0-4-a2")["mahalanobis"], complete.test_scores("fan", 0, "dual-0-4-a2")["mahalanobis"], rtol=1e-3
    )


def test_one_cell_alone(dirs):
    spec = tiny()
    cells = list_cells(spec)
    assert len(cells) == 6 and "fan/0/dual-0-4-a0.5" in cells
    store = run(spec, dirs, "onecell", only=["valve/0/dual-0-4-a2"])
    assert [c["model"] for c in store.cells()] == ["dual-0-4-a2"]
    with pytest.raises(ValueError, match="not in this spec"):
        run(spec, dirs, "onecell", only=["pump/0/baseline-mic0"])


def test_sizes_the_data_cannot_supply(dirs):
    spec = tiny(simulator={"n_normal": 8, "n_abnormal": 1, "duration_s": 2.0}, n_train=6, n_test=6)
    with pytest.raises(Exception, match="largest valid split"):
        run(spec, dirs, "toosmall")


def test_cli(dirs, complete, capsys, monkeypatch):
    monkeypatch.setenv("ASDLIB_DATA", str(dirs["data"]))
    monkeypatch.setenv("ASDLIB_CACHE", str(dirs["cache"]))
    assert cli(["cells", "--profile", "smoke"]) == 0
    assert len(capsys.readouterr().out.split()) == 6
    assert cli(["table", "--run", str(complete.path)]) == 0
    out = capsys.readouterr().out
    assert "MSE" in out and "simulated" in out and "(" in out
    # without --results the commands look where `make book` writes: $ASDLIB_RESULTS (else the repository's results/)
    monkeypatch.setenv("ASDLIB_RESULTS", str(complete.path.parent))
    assert cli(["table", "--profile", "smoke", "--long", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("machine,metric,score,model")
    for argv, message in [
        (["run", "--machines", "toaster"], "unknown machine type"),
        (["run", "--pairs", "0-9"], "outside 0-7"),
        (["table", "--run", str(dirs["base"] / "nowhere")], "not a run folder"),
        (["score", "--detector", str(dirs["base"] / "missing.pt"), "x.wav"], "does not exist"),
        (["run", "--profile", "smoke", "--data-root", str(dirs["base"] / "no-mimii")], "does not exist"),
        (["features", "--data-root", str(dirs["base"] / "no-mimii")], "does not exist"),
    ]:
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
    assert cli(["run", "--pairs", "04"]) == 2  # argparse mistakes too: one line, no usage dump
    assert capsys.readouterr().err == "asdlib run: error: argument --pairs: mic pair '04' must look like 0-4 (see `asdlib run --help`)\n"


def test_cli_fit_and_score(dirs, complete, capsys, tmp_path):
    root = runner.simulated_root(complete.spec, dirs["data"])
    assert cli(["fit", "--data-root", str(root), "--machine", "fan", "--model", "dual", "--alpha", "0.5", "--epochs", "1",
                "--n-train", "6", "--device", "cpu", "--out", str(tmp_path / "fan.pt")]) == 0
    wavs = sorted(str(p) for p in (root).rglob("abnormal/*.wav"))[:2]
    capsys.readouterr()
    assert cli(["score", "--detector", str(tmp_path / "fan.pt"), "--device", "cpu", *wavs]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("# dual-0-4-a0.5") and len(lines) == 3
    assert all(line.split("\t")[2] in ("normal", "anomalous") for line in lines[1:])


def test_a_finished_cell_is_a_detector_that_scores_new_clips(complete, dirs):
    from asdlib.cache import FeatureCache
    from asdlib.data import scan_mimii
    from asdlib.runner import simulated_root

    det = complete.detector("fan", 0, "dual-0-4-a0.5", cache=FeatureCache(dirs["cache"]))
    stored = complete.test_scores("fan", 0, "dual-0-4-a0.5")
    manifest = scan_mimii(simulated_root(complete.spec, dirs["data"]), machines=["fan"]).set_index("relpath")
    paths = manifest.loc[stored["relpath"], "path"].tolist()
    scores = det.score_all(paths)
    np.testing.assert_allclose(scores["mse"], stored["mse"], rtol=1e-5)
    np.testing.assert_allclose(scores["mahalanobis"], stored["mahalanobis"], rtol=1e-4)
    np.testing.assert_array_equal(det.predict(paths), stored["decision_mse"].to_numpy())
    with pytest.raises(ValueError, match="not finished"):
        complete.detector("fan", 0, "dual-2-6-a0.5")


def test_grid_tasks_hold_torch_and_numpy_blas_to_the_same_threads():
    """A grid task's arithmetic must not depend on where it runs: inside ``runner.task_threads``
    torch and NumPy's BLAS (scoring's linear algebra) both run on TORCH_THREADS threads, whatever
    the process had; the previous counts come back afterwards."""
    import torch

    from asdlib.features import blas_threads
    from asdlib.runner import TORCH_THREADS, task_threads

    def blas_counts() -> set[int]:
        return {lib["num_threads"] for lib in blas_threads().info() if lib["user_api"] == "blas"}

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with blas_threads().limit(limits=2, user_api="blas"):
            assert blas_counts() == {2}
            with task_threads():
                assert torch.get_num_threads() == TORCH_THREADS
                assert blas_counts() == {TORCH_THREADS}
            assert torch.get_num_threads() == 2 and blas_counts() == {2}
    finally:
        torch.set_num_threads(previous)
