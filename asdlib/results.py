"""The results store: one folder per run that reviewers can audit and recompute from.

Layout::

    <run>/spec.json              the ExperimentSpec (its digest is in the folder name)
    <run>/provenance.json        versions, git commit, device, data source and manifest hash, wall time
    <run>/journal.jsonl          one line per event (cell started / finished / redone), append-only
    <run>/manifest.csv           the clips the run saw (relative paths, labels, ...)
    <run>/splits/<machine>.csv   which clips trained and which tested
    <run>/cells/<machine>/seed<k>/<model>/
        model.pt                 the cell's fitted AutoencoderDetector (AutoencoderDetector.load; the format `asdlib fit` writes)
        test_scores.csv          per test clip: label, both scores, per-input parts, decisions
        train_scores.csv         per training clip: both scores (the gamma fit's data)
        history.json             training and validation loss per epoch
        cell.json                written last: metrics, thresholds, SHA-256 of the files above
    <run>/metrics.csv            long form, the columns of the paper's table1_reported.csv + seed

A cell counts as done only when ``cell.json`` exists and the checksums of its files match; anything
else (an interrupted or damaged cell) is redone. Every file is written atomically.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .experiments import ExperimentSpec
from .fileio import atomic_write_text, sha256_file
from .tables import KEY



def atomic_write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Write a DataFrame as CSV atomically."""
    atomic_write_text(path, frame.to_csv(index=False))


class ResultsStore:
    """A run's folder.

    Parameters
    ----------
    path : str or Path
        The run folder (``results/<profile>-<digest>``).
    """

    CELL_FILES = ("model.pt", "test_scores.csv", "train_scores.csv", "history.json")

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- creation ------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, spec: ExperimentSpec | None = None) -> "ResultsStore":
        """Open a run folder; with ``spec``, create it or check that it holds the same spec."""
        store = cls(path)
        spec_file = store.path / "spec.json"
        if spec is None:
            if not spec_file.is_file():
                raise FileNotFoundError(f"{str(store.path)!r} is not a results folder (no spec.json); run `asdlib run` first")
            return store
        if spec_file.is_file():
            old = ExperimentSpec.from_dict(json.loads(spec_file.read_text()))
            if old.digest() != spec.digest():
                raise ValueError(f"{store.path} holds a different experiment (spec digest {old.digest()} != {spec.digest()})")
        else:
            atomic_write_text(spec_file, json.dumps(spec.to_dict(), indent=2, sort_keys=True))
        return store

    @property
    def spec(self) -> ExperimentSpec:
        return ExperimentSpec.from_dict(json.loads((self.path / "spec.json").read_text()))

    # -- journal and provenance ------------------------------------------------------------------
    def log(self, event: str, **info: Any) -> None:
        """Append one event to ``journal.jsonl`` (one short line, appended atomically by the OS)."""
        self.path.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"time": pd.Timestamp.now(tz="UTC").isoformat(), "event": event, **info}, default=str)
        with open(self.path / "journal.jsonl", "a") as handle:
            handle.write(line + "\n")

    def journal(self) -> pd.DataFrame:
        path = self.path / "journal.jsonl"
        if not path.exists():
            return pd.DataFrame(columns=["time", "event"])
        return pd.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line.strip()])

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_text(self.path / name, json.dumps(obj, indent=2, sort_keys=True, default=str))

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())

    # -- cells ---------------------------------------------------------------------------------
    def cell_dir(self, machine: str, seed: int, model: str) -> Path:
        return self.path / "cells" / machine / f"seed{seed}" / model

    def cell_done(self, machine: str, seed: int, model: str) -> bool:
        """True when the cell's ``cell.json`` exists and every file matches its checksum."""
        cell = self.cell_dir(machine, seed, model)
        try:
            meta = json.loads((cell / "cell.json").read_text())
            return all(sha256_file(cell / name) == digest for name, digest in meta["files"].items())
        except (OSError, ValueError, KeyError):
            return False

    def finish_cell(self, machine: str, seed: int, model: str, meta: dict) -> None:
        """Write ``cell.json`` last, with the checksums of the cell's files: the cell is now done."""
        cell = self.cell_dir(machine, seed, model)
        files = {name: sha256_file(cell / name) for name in self.CELL_FILES if (cell / name).exists()}
        atomic_write_text(cell / "cell.json", json.dumps({**meta, "files": files}, indent=2, default=float))

    def cells(self) -> list[dict]:
        """Metadata of every finished cell."""
        out = []
        for meta_file in sorted((self.path / "cells").glob("*/seed*/*/cell.json")):
            out.append(json.loads(meta_file.read_text()))
        return out

    def test_scores(self, machine: str, seed: int, model: str) -> pd.DataFrame:
        return pd.read_csv(self.cell_dir(machine, seed, model) / "test_scores.csv")

    def train_scores(self, machine: str, seed: int, model: str) -> pd.DataFrame:
        return pd.read_csv(self.cell_dir(machine, seed, model) / "train_scores.csv")

    def history(self, machine: str, seed: int, model: str) -> dict:
        return json.loads((self.cell_dir(machine, seed, model) / "history.json").read_text())

    # -- tables --------------------------------------------------------------------------------
    def detector(self, machine: str, seed: int, model: str, score: str = "mse", device: str = "auto", cache=True):
        """The trained detector of a finished cell, ready to score new clips.

        Parameters
        ----------
        machine, seed, model : str, int, str
            The cell (``model`` is a model name such as ``"dual-0-4-a0.5"``).
        score : {"mse", "mahalanobis"}
            What ``score_samples`` returns (``score_all`` gives both).
        device : str
            ``"auto"``, ``"cpu"`` or ``"cuda"``.
        cache : FeatureCache, str, Path, bool or None
            Feature cache of the returned detector (see :class:`asdlib.detector.AutoencoderDetector`).

        Returns
        -------
        AutoencoderDetector
            Fitted: the cell's weights, inverse covariances, gamma thresholds and training history.
        """
        from .detector import AutoencoderDetector

        if not self.cell_done(machine, seed, model):
            raise ValueError(f"cell {machine}/{seed}/{model} of {self.path} is not finished; run the experiment first")
        return AutoencoderDetector.load(self.cell_dir(machine, seed, model) / "model.pt", score=score, device=device,
                                        cache=cache, progress=False)

    def metrics(self) -> pd.DataFrame:
        """Every metric of every finished cell, long form (``KEY`` columns + ``seed``, ``value_percent``)."""
        rows = [row for meta in self.cells() for row in meta["metrics"]]
        frame = pd.DataFrame(rows, columns=[*KEY, "seed", "value_percent"])
        frame["mic_pair"] = frame["mic_pair"].fillna("").astype(str)
        return frame

    def describe(self) -> str:
        """One Markdown line for a page: where the numbers come from (data, run, sizes, device)."""
        spec, prov = self.spec, self.read_json("provenance.json")
        source = "**simulated** (asdlib.simulate, not MIMII)" if spec.simulated else f"**real MIMII recordings** ({prov['data_root']})"
        commit = (prov.get("git_commit") or "unknown")[:10] + (" (modified)" if prov.get("git_dirty") else "")
        return (
            f"Data: {source}. Run `{self.path.name}`: {len(spec.machines)} machine type(s) x {len(spec.model_specs())} models "
            f"x {len(spec.seeds)} seed(s); {spec.n_train} training / {spec.n_test} test clips per machine type; "
            f"{spec.model_config().epochs} epochs; device {prov['device']}; asdlib {prov['versions']['asdlib']}, commit {commit}."
        )

    def is_complete(self) -> bool:
        spec = self.spec
        return all(
            self.cell_done(m, s, ms.name) for m in spec.machines for s in spec.seeds for ms in spec.model_specs()
        )


