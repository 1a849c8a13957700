"""Run an experiment grid: data, features, training, scores, thresholds, metrics, into a store.

Each (machine type, seed, model) cell is an independent unit with its own inputs (the machine's
split, the seed, the model spec) and outputs (its folder in the store). :func:`run_experiment` runs
the pending cells of a spec; ``only=`` restricts it to some cells, so a scheduler (SLURM, Dask,
Ray) can run cells on many machines, each process calling ``asdlib run --cell machine/seed/model``
into a shared results folder.

Within one process the models of one (machine, seed) share features and, by default, are trained
together as one stacked computation (:func:`asdlib.fused.train_fused`). Each model is trained once;
both scores (MSE, Mahalanobis), the gamma thresholds and every metric are derived from it.
Interrupt at any time: finished cells are kept, the rest are redone on the next call.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .cache import FeatureCache, FeatureSet, extract_features
from .config import Config
from .data import DataError, manifest_hash, scan_mimii, split_machine
from .detector import AutoencoderDetector
from .experiments import ExperimentSpec
from .metrics import decision_metrics, pauc_eq11, pauc_mcclish, roc_auc
from .modelspec import ModelSpec, grid_inputs
from .fileio import atomic_write_text
from .results import ResultsStore, atomic_write_csv
from .scoring import weighted_scores
from .train import init_model, resolve_device, train_model


def default_data_dir() -> Path:
    """Where simulated data sets go: ``$ASDLIB_DATA`` or ``~/.cache/asdlib/data``."""
    return Path(os.environ.get("ASDLIB_DATA", Path.home() / ".cache" / "asdlib" / "data"))


def simulated_root(spec: ExperimentSpec, data_dir: str | Path | None = None) -> Path:
    """The folder of the simulated data set a spec uses (named by its settings and simulator code)."""
    from . import simulate

    settings = {k: v for k, v in spec.simulator_settings().items()}
    code = hashlib.sha256(inspect.getsource(simulate).encode()).hexdigest()[:8]
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return Path(data_dir or default_data_dir()) / f"sim-{digest}-{code}"


def prepare_data(spec: ExperimentSpec, data_dir: str | Path | None = None, progress: bool = True) -> Path:
    """The data root: the user's MIMII folder, or a simulated one (generated if missing, resumable)."""
    if not spec.simulated:
        root = Path(spec.data_root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(
                f"data_root {str(root)!r} does not exist; pass a MIMII folder (see `asdlib download --help`) "
                "or leave data_root unset to use the simulator"
            )
        return root
    from .simulate import simulate_dataset

    settings = spec.simulator_settings()
    root = simulated_root(spec, data_dir)
    simulate_dataset(root, machines=tuple(spec.machines), n_jobs=spec.n_jobs, progress=progress, **settings)
    return root


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
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)",
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


def _load_sim_meta(root: Path) -> pd.DataFrame | None:
    path = root / "metadata.csv"
    if not path.is_file():
        return None
    meta = pd.read_csv(path)
    if "path" in meta.columns and "relpath" not in meta.columns:
        meta = meta.rename(columns={"path": "relpath"})
    keep = [c for c in ("relpath", "anomaly_kind") if c in meta.columns]
    return meta[keep] if "relpath" in keep and len(keep) > 1 else None


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


def run_experiment(
    spec: ExperimentSpec,
    results_dir: str | Path = "results",
    *,
    only: Iterable[str] | None = None,
    cache: FeatureCache | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
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

    Returns
    -------
    ResultsStore
    """
    started = time.perf_counter()
    store = ResultsStore.open(Path(results_dir) / spec.run_id(), spec)
    wanted = set(list_cells(spec)) if only is None else set(only)
    unknown = wanted - set(list_cells(spec))
    if unknown:
        raise ValueError(f"cell(s) {sorted(unknown)} are not in this spec; `asdlib cells` lists them")
    config = spec.model_config()
    device = resolve_device(spec.device)
    cache = cache if cache is not None else FeatureCache()
    root = prepare_data(spec, data_dir, progress)
    manifest = scan_mimii(root, machines=spec.machines)
    if spec.snrs_db is not None:
        manifest = manifest[manifest["snr_db"].isin(spec.snrs_db)].reset_index(drop=True)
        if manifest.empty:
            raise DataError(f"no clip at SNR {spec.snrs_db} dB under {root}")
    atomic_write_csv(store.path / "manifest.csv", manifest.drop(columns="path"))
    prov = provenance(spec, manifest, device, root)
    store.write_json("provenance.json", {**prov, "status": "running"})
    sim_meta = _load_sim_meta(root) if spec.simulated else None
    model_specs = spec.model_specs()
    kinds = list(spec.scores)
    done = sum(store.cell_done(*parse_cell(c)) for c in wanted)
    bar = tqdm(total=len(wanted), initial=done, desc=f"grid {store.path.name}", unit="cell", disable=not progress)
    for machine in spec.machines:
        group_cells = {seed: [ms for ms in model_specs if f"{machine}/{seed}/{ms.name}" in wanted] for seed in spec.seeds}
        if not any(group_cells.values()):
            continue
        split = split_machine(manifest, machine, n_train=spec.n_train, n_test=spec.n_test, anomalous_fraction=spec.anomalous_fraction, seed=spec.split_seed)
        split_table = pd.concat([split.train.assign(part="train"), split.test.assign(part="test")]).drop(columns="path")
        atomic_write_csv(store.path / "splits" / f"{machine}.csv", split_table)
        features: dict[str, torch.Tensor] | None = None
        for seed in spec.seeds:
            pending = [ms for ms in group_cells[seed] if not store.cell_done(machine, seed, ms.name)]
            if not pending:
                continue
            if features is None:
                inputs = grid_inputs(model_specs)
                train_fs = extract_features(split.train["path"], inputs, config, cache=cache, n_jobs=spec.n_jobs, progress=progress, desc=f"{machine} train features")
                test_fs = extract_features(split.test["path"], inputs, config, cache=cache, n_jobs=spec.n_jobs, progress=progress, desc=f"{machine} test features")
                features = {name: torch.from_numpy(v).to(device) for name, v in train_fs.vectors.items()}  # resident
            # fused: retrain the whole group so that a resumed run gives bit-identical results
            to_train = group_cells[seed] if spec.fused else pending
            for ms in pending:
                store.log("cell_started", cell=f"{machine}/{seed}/{ms.name}")
            trained = _train(to_train, seed, features, config, spec.fused, progress, f"{machine} seed {seed}")
            for ms, (model, history) in zip(to_train, trained):
                if ms not in pending:
                    continue
                _write_cell(store, machine, seed, ms, model, history, train_fs, test_fs, split.test, split.train, config, device, kinds, sim_meta)
                store.log("cell_finished", cell=f"{machine}/{seed}/{ms.name}", train_seconds=round(history.seconds, 2))
                bar.update()
    bar.close()
    metrics = store.metrics()
    atomic_write_csv(store.path / "metrics.csv", metrics)
    store.write_json(
        "provenance.json",
        {**prov, "status": "complete" if store.is_complete() else "partial", "wall_seconds_last_call": round(time.perf_counter() - started, 1)},
    )
    return store

