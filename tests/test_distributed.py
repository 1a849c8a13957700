"""The grid on Dask (issue 17): real scheduler and worker processes on 127.0.0.1 only.

Every process a test starts is stopped by the test (fixtures terminate them, then kill). A real
``sbatch`` is not available here: the SLURM path is checked through the job script that
dask-jobqueue generates, with its scheduler bound to loopback and no job submitted.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("distributed")
pytest.importorskip("dask_jobqueue")

from asdlib.cache import FeatureCache  # noqa: E402
from asdlib.experiments import profile  # noqa: E402
from asdlib.runner import run_experiment  # noqa: E402

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
KEY = ["machine", "seed", "model", "mic_pair", "alpha", "metric", "score"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def spec():
    return profile("smoke")  # 2 machine types x 3 models x 1 seed: 2 fused grids, 6 cells


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A data folder shared by every run here, and the metrics of a plain local run."""
    base = tmp_path_factory.mktemp("dask")
    local = run_experiment(spec(), base / "local", data_dir=base / "data", cache=FeatureCache(base / "cache-local"), progress=False)
    assert local.is_complete()
    return {"base": base, "data": base / "data", "metrics": sorted_metrics(local)}


def sorted_metrics(store) -> pd.DataFrame:
    return store.metrics().sort_values(KEY, ignore_index=True)


def assert_whole(store) -> None:
    """Every cell done (checksums), no temporary left anywhere in the run folder."""
    assert store.is_complete()
    assert not [p for p in store.path.rglob(".tmp-*")]
    assert len(store.cells()) == spec().n_cells()


def _stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(15)


@pytest.fixture
def dask_cluster(tmp_path):
    """``dask scheduler`` on 127.0.0.1 and two ``dask worker`` processes (no nanny: a PID is a worker)."""
    from distributed import Client

    sched_file = tmp_path / "scheduler.json"
    logs = open(tmp_path / "dask.log", "w")
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], env=ENV, stdout=logs, stderr=logs, cwd=tmp_path)]
    try:
        deadline = time.monotonic() + 120
        while not sched_file.is_file():
            assert time.monotonic() < deadline and procs[0].poll() is None, "the scheduler did not start"
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        workers = [subprocess.Popen([str(BIN / "dask"), "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                                     "--no-dashboard", "--local-directory", str(tmp_path / f"w{i}")], env=ENV, stdout=logs, stderr=logs, cwd=tmp_path)
                   for i in range(2)]
        procs += workers
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=180)
        yield {"address": address, "workers": workers}
    finally:
        _stop(procs[::-1])
        logs.close()


def test_scheduler_run_equals_local_run(shared, dask_cluster, tmp_path):
    from distributed import Client

    from asdlib.distributed import DaskEngine

    with DaskEngine(Client(dask_cluster["address"])) as engine:
        store = run_experiment(spec(), tmp_path / "res", data_dir=shared["data"], cache=FeatureCache(tmp_path / "cache"),
                               progress=False, engine=engine)
    assert_whole(store)
    pd.testing.assert_frame_equal(sorted_metrics(store), shared["metrics"])  # exactly: same arithmetic
    journal = store.journal()
    grids = journal.query("event == 'grid_started'")
    assert sorted(grids["grid"]) == ["fan/seed0", "valve/seed0"] and set(grids["threads"]) == {1}
    assert set(grids["pid"]) <= {p.pid for p in dask_cluster["workers"]}  # trained on the workers, not here
    assert any((tmp_path / "cache").rglob("*.npy")), "the feature tasks fill the shared cache"


def test_several_runs_in_one_submission_equal_their_local_runs(shared, dask_cluster, tmp_path):
    """``run_experiments`` sends the grids of several specs at once (a book build): each run folder
    gets exactly the metrics of its own local run, and both runs finish."""
    from distributed import Client

    from asdlib.distributed import DaskEngine
    from asdlib.runner import run_experiments

    fan_only = spec().replace(machines=["fan"])
    with DaskEngine(Client(dask_cluster["address"])) as engine:
        both, fan = run_experiments([spec(), fan_only], tmp_path / "res", data_dir=shared["data"],
                                    cache=FeatureCache(tmp_path / "cache"), progress=False, engine=engine)
    assert both.path != fan.path
    assert_whole(both)
    assert fan.is_complete() and json.loads((fan.path / "provenance.json").read_text())["status"] == "complete"
    pd.testing.assert_frame_equal(sorted_metrics(both), shared["metrics"])
    expected = shared["metrics"].query("machine == 'fan'").reset_index(drop=True)
    pd.testing.assert_frame_equal(sorted_metrics(fan), expected)


def test_grid_cost_orders_the_largest_first():
    from asdlib.distributed import grid_cost
    from asdlib.runner import GridJob

    base = spec()
    train, test = pd.DataFrame({"path": ["a"] * 4}), pd.DataFrame({"path": ["b"] * 6})
    job = GridJob("x", base.to_dict(), "fan", 0, [ms.name for ms in base.model_specs()], train, test, "d", "c")
    one = GridJob("x", base.to_dict(), "fan", 0, [base.model_specs()[0].name], train, test, "d", "c")
    inputs = sum(len(ms.inputs) for ms in base.model_specs())
    assert grid_cost(job) == inputs * (4 * (base.model_config().epochs + 1) + 6)
    assert grid_cost(one) < grid_cost(job)


def test_killed_worker_reruns_its_grid(shared, dask_cluster, tmp_path):
    """SIGKILL the worker that wrote the first cell as soon as that cell is in the journal.

    The client is ``asdlib run --scheduler`` in a subprocess; this test only polls the journal (no
    thread). Whatever the killed worker was doing then (usually the rest of its grid; if it had
    already finished, nothing), the run must complete with the local run's metrics and no partial cell.
    """
    from asdlib.results import ResultsStore

    s = spec()
    run_dir = tmp_path / "res" / s.run_id()
    workers = {p.pid: p for p in dask_cluster["workers"]}
    env = {**ENV, "ASDLIB_DATA": str(shared["data"]), "ASDLIB_CACHE": str(tmp_path / "cache")}
    client = subprocess.Popen([str(BIN / "asdlib"), "run", "--profile", "smoke", "--results", str(tmp_path / "res"),
                               "--scheduler", dask_cluster["address"]], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 300
        while killed is None and time.monotonic() < deadline:
            journal = run_dir / "journal.jsonl"
            lines = journal.read_text().splitlines() if journal.is_file() else []
            for line in lines:
                event = json.loads(line) if line.endswith("}") else {}
                if event.get("event") == "cell_finished" and event.get("pid") in workers:
                    killed = event["pid"]
                    os.kill(killed, signal.SIGKILL)
                    break
            time.sleep(0.05)
        out, _ = client.communicate(timeout=300)
    finally:
        _stop([client])
    assert killed is not None and workers[killed].wait(30) == -signal.SIGKILL
    assert client.returncode == 0, out
    store = ResultsStore(run_dir)
    assert_whole(store)
    pd.testing.assert_frame_equal(sorted_metrics(store), shared["metrics"])
    finished = store.journal().query("event == 'cell_finished'")["cell"]
    # no cell written twice (a cell whose worker died between its cell.json and its journal line is
    # done but has no line: hence a subset)
    assert set(finished) <= set(_cells(s)) and finished.value_counts().max() == 1


def _cells(s):
    from asdlib.runner import list_cells

    return list_cells(s)


def test_two_concurrent_runs_share_the_work(shared, tmp_path):
    """Two `asdlib run` processes (no Dask) on one results folder: every cell trained once."""
    env = {**ENV, "ASDLIB_DATA": str(shared["data"]), "ASDLIB_CACHE": str(tmp_path / "cache")}
    cmd = [str(BIN / "asdlib"), "run", "--profile", "smoke", "--results", str(tmp_path / "res")]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        _stop(procs)
    assert [p.returncode for p in procs] == [0, 0], outs
    from asdlib.results import ResultsStore

    store = ResultsStore(tmp_path / "res" / spec().run_id())
    assert_whole(store)
    journal = store.journal()
    started = journal.query("event == 'cell_started'")["cell"]
    assert len(started) == spec().n_cells() and started.value_counts().max() == 1  # never trained twice
    pd.testing.assert_frame_equal(sorted_metrics(store), shared["metrics"])


def test_cluster_local_2_end_to_end(shared, tmp_path, monkeypatch, capsys):
    from asdlib.cli import main
    from asdlib.results import ResultsStore

    monkeypatch.setenv("ASDLIB_DATA", str(shared["data"]))
    monkeypatch.setenv("ASDLIB_CACHE", str(tmp_path / "cache"))
    assert main(["run", "--profile", "smoke", "--results", str(tmp_path / "res"), "--cluster", "local:2"]) == 0
    err = capsys.readouterr().err
    assert "dask: local:2 (tcp://127.0.0.1:" in err
    store = ResultsStore(tmp_path / "res" / spec().run_id())
    assert_whole(store)
    pd.testing.assert_frame_equal(sorted_metrics(store), shared["metrics"])
    assert os.getpid() not in set(store.journal().query("event == 'grid_started'")["pid"])  # trained by the workers


def test_cluster_options_are_checked(capsys):
    from asdlib.cli import main

    for argv, message in [
        (["--cluster", "local:0"], "must be local:N"),
        (["--cluster", "ssh"], "must be local:N"),
        (["--scheduler", "127.0.0.1:8786"], "must look like tcp://HOST:PORT"),
        (["--scheduler", "tcp://127.0.0.1:1", "--cluster", "local:2"], "give one of"),
        (["--cluster", "slurm", "--cluster-config", "/nonexistent/slurm.yaml"], "does not exist"),
    ]:
        assert main(["run", "--profile", "smoke", "--results", "/nonexistent/res", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)


def test_slurm_job_script(tmp_path):
    """No sbatch here: the generated job script is checked, the scheduler listens on 127.0.0.1."""
    from asdlib.distributed import ClusterError, load_slurm_config, slurm_cluster

    config = tmp_path / "slurm.yaml"
    config.write_text("queue: gpu\ncores: 8\nmemory: 32GB\nwalltime: '04:00:00'\ngpus: 2\njobs: 3\n"
                      "job_script_prologue: ['module load cuda']\nscheduler_host: 127.0.0.1\n")
    values = load_slurm_config(config)
    cluster = slurm_cluster(values)
    try:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        script = cluster.job_script()
    finally:
        cluster.close()
    lines = script.splitlines()
    for directive in ["#SBATCH -p gpu", "#SBATCH --cpus-per-task=8", "#SBATCH -t 04:00:00", "#SBATCH --gres=gpu:2"]:
        assert directive in lines, (directive, script)
    assert any(line.startswith("#SBATCH --mem=") and line.endswith("G") for line in lines)
    worker = next(line for line in lines if "distributed.cli.dask_worker" in line)
    assert cluster.scheduler_address in worker and "--nthreads 1" in worker and "--nworkers 2" in worker  # one per GPU
    assert lines.index("module load cuda") < lines.index(worker)
    bad = tmp_path / "bad.yaml"
    bad.write_text("queue: x\ncpus: 4\n")
    with pytest.raises(ClusterError, match=r"unknown key\(s\) \['cpus'\]"):
        load_slurm_config(bad)


@pytest.fixture
def threaded_engine():
    """A Dask worker in this process (in-process transport, no network), so that patches reach it.

    One worker of one thread: grids must not run concurrently in one process (they would share
    torch's global random generator; the grid task refuses to).
    """
    from distributed import Client, LocalCluster

    from asdlib.distributed import DaskEngine

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
    with DaskEngine(Client(cluster), cluster) as engine:
        yield engine


def test_a_failing_grid_is_named_and_the_others_finish(shared, threaded_engine, tmp_path, monkeypatch):
    from asdlib import runner
    from asdlib.distributed import GridFailure

    real_train = runner._train

    def failing(specs, seed, features, config, fused, progress, desc):
        if desc.startswith("valve"):
            raise RuntimeError("CUDA out of memory (simulated)")
        return real_train(specs, seed, features, config, fused, progress, desc)

    monkeypatch.setattr(runner, "_train", failing)
    with pytest.raises(GridFailure) as err:
        run_experiment(spec(), tmp_path / "res", data_dir=shared["data"], cache=FeatureCache(tmp_path / "cache"),
                       progress=False, engine=threaded_engine)
    assert list(err.value.failures) == ["valve/seed0"]
    cells, message = err.value.failures["valve/seed0"]
    assert cells == [c for c in _cells(spec()) if c.startswith("valve/")] and "CUDA out of memory (simulated)" in message
    from asdlib.results import ResultsStore

    store = ResultsStore(tmp_path / "res" / spec().run_id())
    assert {c["machine"] for c in store.cells()} == {"fan"} and len(store.cells()) == 3  # the other grid finished
    prov = store.read_json("provenance.json")
    assert prov["status"] == "failed" and "valve/seed0" in prov["error"]


def test_interrupted_client_cancels_and_the_next_run_resumes(shared, threaded_engine, tmp_path, monkeypatch):
    import distributed

    real = distributed.as_completed

    def interrupted(futures, *args, **kwargs):
        for i, future in enumerate(real(futures, *args, **kwargs)):
            yield future
            raise KeyboardInterrupt  # Ctrl-C after the first grid came back

    monkeypatch.setattr(distributed, "as_completed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec(), tmp_path / "res", data_dir=shared["data"], cache=FeatureCache(tmp_path / "cache"),
                       progress=False, engine=threaded_engine)
    from asdlib.results import ResultsStore

    store = ResultsStore(tmp_path / "res" / spec().run_id())
    assert store.read_json("provenance.json")["status"] in ("interrupted", "complete")
    monkeypatch.setattr(distributed, "as_completed", real)
    store = run_experiment(spec(), tmp_path / "res", data_dir=shared["data"], cache=FeatureCache(tmp_path / "cache"),
                           progress=False, engine=threaded_engine)
    assert_whole(store)
    pd.testing.assert_frame_equal(sorted_metrics(store), shared["metrics"])
    assert store.journal().query("event == 'cell_finished'")["cell"].value_counts().max() == 1


def test_a_worker_running_two_tasks_at_once_is_refused(shared, tmp_path):
    from distributed import Client, LocalCluster

    from asdlib.distributed import DaskEngine, GridFailure

    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)
    with DaskEngine(Client(cluster), cluster) as engine, pytest.raises(GridFailure, match="--nthreads 1"):
        run_experiment(spec(), tmp_path / "res", data_dir=shared["data"], cache=FeatureCache(tmp_path / "cache"),
                       progress=False, engine=engine)
