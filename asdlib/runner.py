"""Run an experiment grid: data, features, training, scores, thresholds, metrics, into a store.

Each (machine type, seed, model) cell is an independent unit with its own inputs (the machine's
split, the seed, the model spec) and outputs (its folder in the store). The unit of work is a
*fused grid* -- one machine type x one seed, all its models trained together as one stacked
computation (:func:`asdlib.fused.train_fused`) -- or a cell when fusing is off. A
:class:`GridJob` describes one; :func:`run_grid` runs it, in this process or on a Dask worker
(:mod:`asdlib.distributed`).

:func:`run_experiment` runs the pending grids of a spec here, one after another; ``only=``
restricts it to some cells. Many processes may share one results folder: a grid is claimed with a
file lock (:meth:`asdlib.results.ResultsStore.grid_lock`) before it is trained, so two
``asdlib run`` processes split the work and no cell is trained twice.

Every grid task trains and scores with :data:`TORCH_THREADS` torch threads (and as many threads of
NumPy's BLAS), wherever it runs, because a different thread count changes the order of float sums:
a run on a Dask cluster then gives exactly the metrics of a local run on the same kind of machine.
Interrupt at any time: finished cells are kept, the rest are redone on the next call.
"""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import torch
from filelock import Timeout
from tqdm import tqdm

from .cache import FeatureCache, FeatureSet, extract_features
from .config import Config
from .data import manifest_hash, split_machine
from .datasets import (  # noqa: F401  (re-exported: they lived here before asdlib.datasets)
    data_identity,
    default_data_dir,
    prepare_data,
    run_manifest,
    simulated_root,
    simulator_metadata,
)
from .detector import AutoencoderDetector
from .experiments import ExperimentSpec
from .features import blas_threads
from .fileio import atomic_write_text
from .memory import tune_malloc
from .metrics import decision_metrics, pauc_eq11, pauc_mcclish, roc_auc
from .modelspec import ModelSpec, grid_inputs
from .results import ResultsStore, atomic_write_csv
from .scoring import weighted_scores
from .train import init_model, resolve_device, train_model

#: Torch threads of every grid task, local or distributed (a documented constant, not a setting:
#: a different thread count changes the order of float sums, and on one thread the fused trainer's
#: BatchNorm layers run as :mod:`asdlib.train_kernels`' loops, so the trained weights, and through
#: chaotic training the metrics, would differ as between two runs). One thread per task; a machine's
#: cores are used by running several grids at once (``asdlib run --cluster local:N``). On 2 loaded
#: cores one thread was also the faster choice: a fused ``book`` grid epoch took 20.6 s with 1 thread
#: and 96.3 s with 2 (``benchmarks/bench_grid_threads.py``, before the loops).
TORCH_THREADS = 1


@contextmanager
def task_threads(n: int = TORCH_THREADS) -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads and ``n`` threads of NumPy's BLAS, then restore
    the previous counts.

    The BLAS limit matters for scoring, which uses NumPy's linear algebra (the Mahalanobis score's
    covariance inverse): with more threads, OpenBLAS may order its sums differently. With NumPy's
    OpenBLAS on its AVX2 kernels on an AMD Zen 5, a local run (two BLAS threads) and a Dask run
    (one) of the smoke grid differed in 3 of their 72 metric values before this limit.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with blas_threads().limit(limits=n, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(previous)


def provenance(spec: ExperimentSpec, manifest: pd.DataFrame, device: torch.device, root: Path) -> dict:
    """Where the numbers come from: versions, commit, device, data."""
    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    return {
        "data_source": "simulated (asdlib.simulate)" if spec.simulated else "MIMII recordings",
        "data_root": str(root),
        "simulator": spec.simulator_settings() if spec.simulated else None,
        "manifest_hash": manifest_hash(manifest),
        "n_clips": int(len(manifest)),
        "versions": {p: version(p) for p in ("asdlib", "torch", "numpy", "scipy", "librosa", "scikit-learn", "pandas")},
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores)",
        "torch_threads_per_task": TORCH_THREADS,
        "git_commit": commit or None,
        "git_dirty": dirty,
        "command": " ".join(sys.argv),
    }


def cell_metrics(machine: str, seed: int, ms: ModelSpec, y: np.ndarray, scores: dict, decisions: dict) -> list[dict]:
    """Long-form metric rows of one cell (values in percent, as the paper's table)."""
    rows = []
    base = {"machine": machine, "model": ms.kind, "mic_pair": ms.mic_pair, "alpha": ms.alpha, "seed": seed}
    for kind, s in scores.items():
        values = {"AUC": roc_auc(y, s), "pAUC": pauc_mcclish(y, s, 0.1), "pAUC_eq11": pauc_eq11(y, s, 0.1)}
        dm = decision_metrics(y, decisions[kind])
        values.update({"precision": dm["precision"], "recall": dm["recall"], "F1": dm["f1"]})
        rows += [{**base, "metric": m, "score": kind, "value_percent": 100.0 * v} for m, v in values.items()]
    return rows


def _write_cell(store, machine, seed, ms, model, history, train_fs, test_fs, test, train, config, device, kinds, sim_meta):
    # the cell *is* a detector: calibrated as `fit` does, saved as `asdlib fit` saves one
    det = AutoencoderDetector.from_trained(model, ms, config, train_fs, history, random_state=seed, device=device)
    train_scores, thresholds = det.train_scores_, det.thresholds_
    parts = det.score_parts(test_fs)
    test_scores = weighted_scores(parts, ms.weights)
    decisions = {k: thresholds[k].predict(test_scores[k]) for k in kinds}
    y = (test["label"] == "abnormal").to_numpy(int)

    table = test[["relpath", "machine_id", "snr_db", "label"]].copy()
    table["y"] = y
    if sim_meta is not None:
        table = table.merge(sim_meta, on="relpath", how="left")
    for k in kinds:
        table[k] = test_scores[k]
        for spec_in, part in zip(ms.inputs, parts[k]):
            table[f"{k}[{spec_in.name}]"] = part
        table[f"decision_{k}"] = decisions[k]
    train_table = train[["relpath", "machine_id", "snr_db"]].copy()
    for k in kinds:
        train_table[k] = train_scores[k]

    cell = store.cell_dir(machine, seed, ms.name)
    cell.mkdir(parents=True, exist_ok=True)
    (cell / "cell.json").unlink(missing_ok=True)  # not done until rewritten below
    det.save(cell / "model.pt")
    atomic_write_csv(cell / "test_scores.csv", table)
    atomic_write_csv(cell / "train_scores.csv", train_table)
    atomic_write_text(cell / "history.json", json.dumps(history.to_dict()))
    metrics = cell_metrics(machine, seed, ms, y, {k: test_scores[k] for k in kinds}, decisions)
    store.finish_cell(
        machine,
        seed,
        ms.name,
        {
            "machine": machine,
            "seed": seed,
            "model": ms.name,
            "spec": ms.to_dict(),
            "thresholds": {k: thresholds[k].to_dict() for k in kinds},
            "covariance_ridge": det.ridges_,
            "train_seconds": history.seconds,
            "metrics": metrics,
        },
    )


def _train(specs: list[ModelSpec], seed: int, features: dict[str, torch.Tensor], config: Config, fused: bool, progress: bool, desc: str):
    if fused and len(specs) > 1:
        from .fused import train_fused

        return train_fused(specs, [seed] * len(specs), features, config, progress=progress, desc=desc)
    out = []
    for ms in specs:
        model = init_model(ms, config, seed).to(next(iter(features.values())).device)
        hist = train_model(model, [features[s.name] for s in ms.inputs], ms.weights, config, seed=seed, progress=progress, name=f"{desc} {ms.name}")
        out.append((model, hist))
    return out


def parse_cell(cell: str) -> tuple[str, int, str]:
    """``"fan/0/dual-0-4-a0.5"`` -> ``("fan", 0, "dual-0-4-a0.5")``."""
    try:
        machine, seed, model = cell.split("/")
        return machine, int(seed.removeprefix("seed")), model
    except ValueError:
        raise ValueError(f"cell {cell!r} must look like 'fan/0/dual-0-4-a0.5' (machine/seed/model)") from None


def list_cells(spec: ExperimentSpec) -> list[str]:
    """Every cell of a spec as ``machine/seed/model``."""
    return [f"{m}/{s}/{ms.name}" for m in spec.machines for s in spec.seeds for ms in spec.model_specs()]


# -- the unit of work ---------------------------------------------------------------------------
@dataclass
class GridJob:
    """One unit of work: the wanted models of one machine type and one seed (a fused grid).

    Everything a process needs to run it, in plain data (it travels to Dask workers): the run
    folder, the spec, the machine's split (clip paths on the shared file system) and the feature
    cache folder.
    """

    store_path: str
    spec: dict
    machine: str
    seed: int
    models: list[str]
    train: pd.DataFrame
    test: pd.DataFrame
    data_root: str
    cache_dir: str
    device: str = "auto"

    @property
    def name(self) -> str:
        """``machine/seed`` (the grid's name in messages and task keys)."""
        return f"{self.machine}/seed{self.seed}"

    @property
    def cells(self) -> list[str]:
        return [f"{self.machine}/{self.seed}/{m}" for m in self.models]


@dataclass
class RunPlan:
    """A run prepared: its store, data, provenance and the grid jobs of the wanted cells."""

    spec: ExperimentSpec
    store: ResultsStore
    root: Path
    manifest: pd.DataFrame
    provenance: dict
    jobs: list[GridJob] = field(default_factory=list)

    def pending_cells(self) -> list[str]:
        return [c for job in self.jobs for c in job.cells if not self.store.cell_done(*parse_cell(c))]


def plan_run(
    spec: ExperimentSpec,
    results_dir: str | Path = "results",
    *,
    only: Iterable[str] | None = None,
    cache: FeatureCache | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
) -> RunPlan:
    """Open the run folder, prepare the data, check its identity, write the splits, list the grid jobs.

    Raises
    ------
    ValueError
        ``only`` names cells that are not in the spec.
    asdlib.results.DataChangedError
        The run folder holds results of other data (asdlib issue 14.3).
    """
    store = ResultsStore.open(Path(results_dir) / spec.run_id(), spec)
    wanted = set(list_cells(spec)) if only is None else set(only)
    unknown = wanted - set(list_cells(spec))
    if unknown:
        raise ValueError(f"cell(s) {sorted(unknown)} are not in this spec; `asdlib cells` lists them")
    device = resolve_device(spec.device)
    cache = cache if cache is not None else FeatureCache()
    root = prepare_data(spec, data_dir, progress)
    manifest = run_manifest(spec, root)
    store.use_data(data_identity(spec, manifest), manifest)
    prov = provenance(spec, manifest, device, root)
    plan = RunPlan(spec, store, Path(root), manifest, prov)
    for machine in spec.machines:
        by_seed = {seed: [ms.name for ms in spec.model_specs() if f"{machine}/{seed}/{ms.name}" in wanted] for seed in spec.seeds}
        if not any(by_seed.values()):
            continue
        split = split_machine(manifest, machine, n_train=spec.n_train, n_test=spec.n_test,
                              anomalous_fraction=spec.anomalous_fraction, seed=spec.split_seed,
                              groups=getattr(spec, "split_groups", "recording"))
        store.use_split(machine, pd.concat([split.train.assign(part="train"), split.test.assign(part="test")]).drop(columns="path"))
        for seed, models in by_seed.items():
            if models:
                plan.jobs.append(GridJob(str(store.path), spec.to_dict(), machine, seed, models, split.train, split.test,
                                         str(root), str(cache.directory), spec.device))
    return plan


def grid_features(job: GridJob, *, n_jobs: int = 1, progress: bool = False) -> tuple[FeatureSet, FeatureSet]:
    """The training and test features of a job's machine type (from the shared cache when there)."""
    spec = ExperimentSpec.from_dict(job.spec)
    inputs = grid_inputs(spec.model_specs())
    config, cache = spec.model_config(), FeatureCache(job.cache_dir)
    train_fs = extract_features(job.train["path"], inputs, config, cache=cache, n_jobs=n_jobs, progress=progress, desc=f"{job.machine} train features")
    test_fs = extract_features(job.test["path"], inputs, config, cache=cache, n_jobs=n_jobs, progress=progress, desc=f"{job.machine} test features")
    return train_fs, test_fs


def run_grid(
    job: GridJob,
    *,
    block: bool = True,
    features: Callable[[], tuple[FeatureSet, FeatureSet]] | None = None,
    device: str | None = None,
    progress: bool = False,
    on_cell: Callable[[str], None] | None = None,
) -> list[str] | None:
    """Claim a grid, train its pending cells and write them; safe with many processes on one folder.

    Parameters
    ----------
    job : GridJob
    block : bool
        Wait for the grid's lock when another process holds it (True), or return None at once.
    features : callable, optional
        Returns ``(train, test)`` feature sets (default :func:`grid_features`: the shared cache).
    device : str, optional
        Training device (default the job's).
    progress : bool
        Training progress bars.
    on_cell : callable, optional
        Called with ``machine/seed/model`` after each cell is written.

    Returns
    -------
    list of str or None
        The cells this call wrote (empty when all were done already), or None when ``block`` is
        False and another process holds the grid.
    """
    tune_malloc()
    store = ResultsStore(job.store_path)
    lock = store.grid_lock(job.machine, job.seed, timeout=-1 if block else 0)
    try:
        lock.acquire()
    except Timeout:
        return None
    try:
        with task_threads(TORCH_THREADS):
            return _run_claimed_grid(job, store, features, device, progress, on_cell)
    finally:
        lock.release()


def _run_claimed_grid(job, store, features, device, progress, on_cell) -> list[str]:
    machine, seed = job.machine, job.seed
    pending = [m for m in job.models if not store.cell_done(machine, seed, m)]
    if not pending:
        return []
    store.clean_grid(machine, seed)  # temporaries of a writer killed in this grid (we hold its lock)
    started = time.perf_counter()
    spec = ExperimentSpec.from_dict(job.spec)
    config = spec.model_config()
    dev = resolve_device(device or job.device)
    specs = {ms.name: ms for ms in spec.model_specs()}
    train_fs, test_fs = features() if features is not None else grid_features(job)
    tensors = {name: torch.from_numpy(v).to(dev) for name, v in train_fs.vectors.items()}
    sim_meta = simulator_metadata(job.data_root) if spec.simulated else None
    # fused: retrain the whole group so that a resumed run gives bit-identical results
    to_train = [specs[m] for m in (job.models if spec.fused else pending)]
    store.log("grid_started", grid=job.name, cells=len(pending), host=socket.gethostname(), device=str(dev), threads=torch.get_num_threads())
    for m in pending:
        store.log("cell_started", cell=f"{machine}/{seed}/{m}")
    trained = _train(to_train, seed, tensors, config, spec.fused, progress, f"{machine} seed {seed}")
    written = []
    for ms, (model, history) in zip(to_train, trained):
        if ms.name not in pending:
            continue
        _write_cell(store, machine, seed, ms, model, history, train_fs, test_fs, job.test, job.train, config, dev, list(spec.scores), sim_meta)
        cell = f"{machine}/{seed}/{ms.name}"
        store.log("cell_finished", cell=cell, train_seconds=round(history.seconds, 2))
        written.append(cell)
        if on_cell is not None:
            on_cell(cell)
    store.log("grid_finished", grid=job.name, cells=len(written), seconds=round(time.perf_counter() - started, 2))
    return written


# -- running a plan -----------------------------------------------------------------------------
def finish_run(plan: RunPlan, started: float, status: str | None = None, error: str | None = None) -> None:
    """Write ``metrics.csv`` and ``provenance.json`` (status complete, partial, failed or interrupted)."""
    store = plan.store
    metrics = store.metrics()
    with store.lock():
        atomic_write_csv(store.path / "metrics.csv", metrics)
    complete = store.is_complete()
    info = {**plan.provenance, "status": "complete" if complete else (status or "partial"),
            "wall_seconds_last_call": round(time.perf_counter() - started, 1)}
    if error and not complete:
        info["error"] = error
    store.write_json("provenance.json", info)


def run_experiment(
    spec: ExperimentSpec,
    results_dir: str | Path = "results",
    *,
    only: Iterable[str] | None = None,
    cache: FeatureCache | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
    engine=None,
) -> ResultsStore:
    """Run (or resume) every pending cell of ``spec`` into ``results_dir/<profile>-<digest>``.

    Parameters
    ----------
    spec : ExperimentSpec
    results_dir : path
        Parent folder of run folders.
    only : iterable of str, optional
        Cells to run (``machine/seed/model``, see :func:`list_cells`); default all.
    cache : FeatureCache, optional
        Feature cache (default: the user cache folder).
    data_dir : path, optional
        Where simulated data sets are generated (default :func:`default_data_dir`).
    progress : bool
        Progress bars (the grid's shows cells done and time left).
    engine : asdlib.distributed.DaskEngine, optional
        Run the grids on a Dask cluster (:mod:`asdlib.distributed`); default: here, one after
        another. Other processes (local or distributed) may work on the same folder at the same time.

    Returns
    -------
    ResultsStore
    """
    return run_experiments([spec], results_dir, only=only, cache=cache, data_dir=data_dir, progress=progress, engine=engine)[0]


def run_experiments(
    specs: Iterable[ExperimentSpec],
    results_dir: str | Path = "results",
    *,
    only: Iterable[str] | None = None,
    cache: FeatureCache | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
    engine=None,
) -> list[ResultsStore]:
    """Run (or resume) several specs: each into its own run folder, their grids side by side.

    Every spec is prepared first (data, splits, run folder), then all their grids go to ``engine``
    in one submission, so that its workers stay busy across runs (a book build's small grids fill
    the gaps left by the large ones); without an engine they run here, spec after spec. Parameters
    as :func:`run_experiment` (``only`` applies to every spec).

    Returns
    -------
    list of ResultsStore, one per spec, in order.
    """
    started = time.perf_counter()
    plans = [plan_run(spec, results_dir, only=only, cache=cache, data_dir=data_dir, progress=progress) for spec in specs]
    for plan in plans:
        plan.store.write_json("provenance.json", {**plan.provenance, "status": "running"})
    try:
        if engine is not None:
            engine.run(plans, progress=progress)
        else:
            for plan in plans:
                _run_here(plan, progress)
    except BaseException as err:
        status, reason = (("interrupted", "interrupted by the user") if isinstance(err, KeyboardInterrupt)
                          else ("failed", f"{type(err).__name__}: {err}"))
        for plan in plans:
            finish_run(plan, started, status, reason)
        raise
    for plan in plans:
        finish_run(plan, started)
    return [plan.store for plan in plans]


def _run_here(plan: RunPlan, progress: bool) -> None:
    """Run a plan's grids in this process; grids held by other processes are waited for last."""
    spec, store = plan.spec, plan.store
    wanted = [c for job in plan.jobs for c in job.cells]
    done = sum(store.cell_done(*parse_cell(c)) for c in wanted)
    bar = tqdm(total=len(wanted), initial=done, desc=f"grid {store.path.name}", unit="cell", disable=not progress)
    memo: dict[str, tuple[FeatureSet, FeatureSet]] = {}

    def features_of(job: GridJob) -> Callable[[], tuple[FeatureSet, FeatureSet]]:
        def get() -> tuple[FeatureSet, FeatureSet]:
            if job.machine not in memo:
                memo[job.machine] = grid_features(job, n_jobs=spec.n_jobs, progress=progress)
            return memo[job.machine]
        return get

    try:
        waiting = []
        for job in plan.jobs:
            if run_grid(job, block=False, features=features_of(job), progress=progress, on_cell=lambda c: bar.update()) is None:
                waiting.append(job)  # another process trains it now
        for job in waiting:
            run_grid(job, block=True, features=features_of(job), progress=progress, on_cell=lambda c: bar.update())
        bar.n = sum(store.cell_done(*parse_cell(c)) for c in wanted)
        bar.refresh()
    finally:
        bar.close()
