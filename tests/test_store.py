"""The results store with many writers and after faults (issues 14.3, 14.10 and 17).

Journal appends from several processes, a half-written last line, a run folder pointed at changed
data (clips added), stale temporaries of a killed writer, provenance after a failure, permissions.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import stat

import pandas as pd
import pytest

from asdlib import runner
from asdlib.cache import FeatureCache
from asdlib.experiments import profile
from asdlib.results import DataChangedError, ResultsStore


def _append(path: str, worker: int, n: int) -> None:
    store = ResultsStore(path)
    for i in range(n):
        store.log("tick", worker=worker, i=i, pad="x" * 300)


def test_journal_survives_concurrent_appends_and_a_half_written_line(tmp_path):
    store = ResultsStore(tmp_path / "run")
    store.log("first")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append, args=(str(store.path), w, 150)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with open(store.path / "journal.jsonl", "ab") as handle:  # a writer killed mid-line
        handle.write(b'{"time": "2026-01-01", "event": "cell_fini')
    with pytest.warns(UserWarning, match="skipped 1 damaged line"):
        journal = store.journal()
    assert len(journal) == 1 + 4 * 150
    ticks = journal[journal.event == "tick"]
    assert sorted(ticks.groupby("worker")["i"].apply(sorted).map(tuple).tolist()) == [tuple(range(150))] * 4
    store.log("after")  # must not be glued to the damaged line
    with pytest.warns(UserWarning, match="skipped 1 damaged line"):
        journal = store.journal()
    assert journal["event"].iloc[-1] == "after" and len(journal) == 2 + 4 * 150


def test_split_of_finished_cells_is_never_overwritten(tmp_path):
    spec = profile("smoke")
    store = ResultsStore.open(tmp_path / spec.run_id(), spec)
    store.use_data({"manifest_hash": "a", "n_clips": 10, "simulator_version": None})
    split = pd.DataFrame({"relpath": ["a.wav", "b.wav"], "part": ["train", "test"]})
    store.use_split("fan", split)
    cell = store.cell_dir("fan", 0, "baseline-mic0")
    cell.mkdir(parents=True)
    (cell / "history.json").write_text("{}")
    store.finish_cell("fan", 0, "baseline-mic0", {"model": "baseline-mic0", "metrics": []})
    assert store.cell_done("fan", 0, "baseline-mic0")
    store.use_split("fan", split)  # the same split again: fine
    before = (store.path / "splits" / "fan.csv").read_bytes()
    with pytest.raises(DataChangedError, match="finished cell"):
        store.use_split("fan", split.assign(relpath=["a.wav", "c.wav"]))
    assert (store.path / "splits" / "fan.csv").read_bytes() == before
    with pytest.raises(DataChangedError, match="holds results of other data"):
        store.use_data({"manifest_hash": "b", "n_clips": 11, "simulator_version": None})
    # a cell counts only with the split it was trained on
    (store.path / "splits" / "fan.csv").write_text("relpath,part\nz.wav,train\n")
    assert not store.cell_done("fan", 0, "baseline-mic0")


def _tiny_real_spec(root):
    return profile("smoke", data_root=str(root), machines=["fan"], n_train=4, n_test=4, config={"epochs": 1},
                   models=[{"ref": 0}, {"ref": 0, "others": [4], "alphas": [0.5]}])


def test_faults_and_changed_data_on_a_real_layout(tmp_path, tiny_mimii, monkeypatch):
    root = tmp_path / "mimii"
    shutil.copytree(tiny_mimii, root)
    spec = _tiny_real_spec(root)
    cache = FeatureCache(tmp_path / "cache")
    old_mask = os.umask(0o022)
    try:
        # a failure: provenance says so (not "running")
        def broken(*args, **kwargs):
            raise RuntimeError("out of memory (simulated)")

        monkeypatch.setattr(runner, "_train", broken)
        with pytest.raises(RuntimeError, match="out of memory"):
            runner.run_experiment(spec, tmp_path / "res", cache=cache, progress=False)
        monkeypatch.undo()
        store = ResultsStore(tmp_path / "res" / spec.run_id())
        prov = store.read_json("provenance.json")
        assert prov["status"] == "failed" and "out of memory" in prov["error"]

        store = runner.run_experiment(spec, tmp_path / "res", cache=cache, progress=False)
        assert store.is_complete() and store.read_json("provenance.json")["status"] == "complete"
        # files honour the umask (group and others may read a results folder shared on a cluster)
        for path in [store.path / "spec.json", store.path / "journal.jsonl", store.path / "data.json",
                     *store.cell_dir("fan", 0, "baseline-mic0").iterdir()]:
            assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044, path

        # a writer killed mid-save leaves a temporary; the next run of that grid removes it
        cell = store.cell_dir("fan", 0, "baseline-mic0")
        (cell / "cell.json").unlink()
        stale = cell / ".tmp-killed.pt"
        stale.write_bytes(b"half a checkpoint")
        store = runner.run_experiment(spec, tmp_path / "res", cache=cache, progress=False)
        assert store.is_complete() and not stale.exists()
        started = store.journal().query("event == 'cell_started'")["cell"].tolist()
        # the failed attempt, the first run, then only the damaged cell again
        assert started.count("fan/0/baseline-mic0") == 3 and started.count("fan/0/dual-0-4-a0.5") == 2
    finally:
        os.umask(old_mask)

    # clips added to the data root: the old cells are not reused and the split is kept (14.3)
    split_before = (store.path / "splits" / "fan.csv").read_bytes()
    extra = sorted(root.rglob("fan/id_00/normal/*.wav"))[0]
    shutil.copy(extra, extra.with_name("00000099.wav"))
    with pytest.raises(DataChangedError, match="holds results of other data") as err:
        runner.run_experiment(spec, tmp_path / "res", cache=cache, progress=False)
    assert str(store.path) in str(err.value) and "--results" in str(err.value)
    assert (store.path / "splits" / "fan.csv").read_bytes() == split_before
    data = json.loads((store.path / "data.json").read_text())
    assert data["n_clips"] == len(list(tiny_mimii.rglob("*.wav"))) // 2  # fan's clips only
    # the same spec into another folder runs on the new data
    fresh = runner.run_experiment(spec, tmp_path / "res2", cache=cache, progress=False)
    assert fresh.is_complete() and fresh.read_json("data.json")["n_clips"] == data["n_clips"] + 1


def test_clips_without_torch_and_runs_without_dask():
    """Notebooks list clips without importing torch; a local run never imports Dask."""
    import subprocess
    import sys

    code = ("import sys, asdlib.datasets; assert 'torch' not in sys.modules, 'datasets imports torch'; "
            "import asdlib.runner, asdlib.cli; assert 'distributed' not in sys.modules and 'dask' not in sys.modules, 'dask imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
