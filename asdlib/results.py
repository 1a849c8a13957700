"""The results store: one folder per run that reviewers can audit and recompute from.

Layout::

    <run>/spec.json              the ExperimentSpec (its digest is in the folder name)
    <run>/provenance.json        versions, git commit, device, data source and manifest hash, wall time
    <run>/data.json              what identifies the data (manifest hash, clip count, simulator version)
    <run>/journal.jsonl          one line per event (grid / cell started / finished), append-only
    <run>/locks/                 lock files (``filelock``): one per fused grid, the journal, the store
    <run>/manifest.csv           the clips the run saw (relative paths, labels, ...)
    <run>/splits/<machine>.csv   which clips trained and which tested
    <run>/cells/<machine>/seed<k>/<model>/
        model.pt                 the cell's fitted AutoencoderDetector (AutoencoderDetector.load; the format `asdlib fit` writes)
        test_scores.csv          per test clip: label, both scores, per-input parts, decisions
        train_scores.csv         per training clip: both scores (the gamma fit's data)
        history.json             training and validation loss per epoch
        cell.json                written last: metrics, thresholds, SHA-256 of the files above
    <run>/metrics.csv            long form, the columns of the paper's table1_reported.csv + seed

A cell counts as done only when ``cell.json`` exists, the checksums of its files match and it was
trained on this run's data (the hash of its machine type's split file and the data identity are in
``cell.json``); anything else (an interrupted or damaged cell) is redone. Every file is written
atomically.

Many writers, one folder: two ``asdlib run`` processes, or the workers of a Dask cluster, may work
on one run folder (on a shared file system). A fused grid (machine type x seed) is claimed with
:meth:`ResultsStore.grid_lock` before it is trained, so a cell is never trained twice; the files of
the folder's root are written under :meth:`ResultsStore.lock`; the journal is appended under its own
lock and a half-written last line (a writer killed mid-line) is skipped when read and never glued to
the next event.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock

from .experiments import ExperimentSpec
from .fileio import TMP_PREFIX, atomic_write_text, remove_stale_temporaries, sha256_file, sha256_text
from .tables import KEY


class DataChangedError(ValueError):
    """A results folder made from other data (clips added or removed, another simulator version)."""



def atomic_write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Write a DataFrame as CSV atomically."""
    atomic_write_text(path, frame.to_csv(index=False))


def _read_spec(path: Path) -> ExperimentSpec:
    """The spec a run folder holds; a damaged or foreign ``spec.json`` is a ``ValueError`` naming it."""
    try:
        return ExperimentSpec.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError, UnicodeDecodeError) as err:  # JSONDecodeError and SpecError are ValueErrors
        raise ValueError(f"{path}: not a spec this asdlib can read ({err}); the run folder is damaged or from another "
                         f"version: delete {path.parent} and run again") from None


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
        with store.lock():
            if spec_file.is_file():
                old = _read_spec(spec_file)
                if old.digest() != spec.digest():
                    raise ValueError(f"{store.path} holds a different experiment (spec digest {old.digest()} != {spec.digest()})")
            else:
                atomic_write_text(spec_file, json.dumps(spec.to_dict(), indent=2, sort_keys=True))
        return store

    @property
    def spec(self) -> ExperimentSpec:
        return _read_spec(self.path / "spec.json")

    # -- locks ---------------------------------------------------------------------------------
    def _lock(self, name: str, timeout: float = -1) -> FileLock:
        folder = self.path / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        return FileLock(folder / f"{name}.lock", timeout=timeout)

    def lock(self, timeout: float = -1) -> FileLock:
        """The store's lock: held while the folder's root files (data, splits, provenance) are written."""
        return self._lock("store", timeout)

    def grid_lock(self, machine: str, seed: int, timeout: float = -1) -> FileLock:
        """The lock that claims the fused grid ``machine`` x ``seed`` (``timeout=0``: try once).

        An operating-system lock (:class:`filelock.FileLock`): it is released when its holder exits,
        even when killed, so a grid whose worker died is taken over by the next claimant.
        """
        return self._lock(f"grid-{machine}-seed{seed}", timeout)

    def clean_grid(self, machine: str, seed: int) -> int:
        """Remove temporaries left in a grid's cell folders by killed writers (hold its lock); returns how many."""
        folder = self.path / "cells" / machine / f"seed{seed}"
        return remove_stale_temporaries(folder) if folder.is_dir() else 0

    def clean_root(self) -> int:
        """Remove temporaries left in the folder's root and ``splits/`` (hold :meth:`lock`); returns how many."""
        removed = 0
        for folder in (self.path, self.path / "splits"):
            for tmp in folder.glob(f"{TMP_PREFIX}*"):
                if tmp.is_file():
                    tmp.unlink(missing_ok=True)
                    removed += 1
        return removed

    # -- journal and provenance ------------------------------------------------------------------
    def log(self, event: str, **info: Any) -> None:
        """Append one event to ``journal.jsonl``, under the journal's lock (safe with many writers).

        A last line left without its newline by a killed writer is ended first, so the new event
        stays a line of its own.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        record = {"time": pd.Timestamp.now(tz="UTC").isoformat(), "event": event, "pid": os.getpid(), **info}
        line = (json.dumps(record, default=str) + "\n").encode()
        path = self.path / "journal.jsonl"
        with self._lock("journal"):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                size = os.fstat(fd).st_size
                if size:
                    with open(path, "rb") as handle:
                        handle.seek(size - 1)
                        if handle.read(1) != b"\n":
                            line = b"\n" + line
                os.write(fd, line)
            finally:
                os.close(fd)

    def journal(self) -> pd.DataFrame:
        """The journal's events (lines that are not whole JSON objects, such as a half-written one, are skipped)."""
        path = self.path / "journal.jsonl"
        if not path.exists():
            return pd.DataFrame(columns=["time", "event"])
        rows, bad = [], 0
        for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if isinstance(row, dict):
                rows.append(row)
            else:
                bad += 1
        if bad:
            warnings.warn(f"{path}: skipped {bad} damaged line(s) (a writer killed mid-line)", stacklevel=2)
        return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["time", "event"])

    def write_json(self, name: str, obj: Any) -> None:
        """Write ``<run>/<name>`` atomically, under the store's lock."""
        with self.lock():
            atomic_write_text(self.path / name, json.dumps(obj, indent=2, sort_keys=True, default=str))

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())

    # -- data identity and splits ----------------------------------------------------------------
    def use_data(self, identity: dict, manifest: pd.DataFrame | None = None) -> None:
        """Record the run's data identity, or check that it is the one recorded.

        Parameters
        ----------
        identity : dict
            From :func:`asdlib.datasets.data_identity` (manifest hash, clip count, simulator version).
        manifest : pandas.DataFrame, optional
            The clips (written to ``manifest.csv`` the first time).

        Raises
        ------
        DataChangedError
            The folder holds results of other data: its cells must not be reused, nor its split
            files overwritten.
        """
        with self.lock():
            self.clean_root()
            path = self.path / "data.json"
            if path.is_file():
                old = json.loads(path.read_text())
                if old != identity:
                    raise DataChangedError(
                        f"{self.path} holds results of other data ({old.get('n_clips')} clips, manifest "
                        f"{old.get('manifest_hash')}, simulator {old.get('simulator_version')}); the data now has "
                        f"{identity.get('n_clips')} clips, manifest {identity.get('manifest_hash')}, simulator "
                        f"{identity.get('simulator_version')}. Run into another folder (--results DIR) or delete this one"
                    )
            else:
                if manifest is not None:
                    atomic_write_text(self.path / "manifest.csv", manifest.drop(columns="path", errors="ignore").to_csv(index=False))
                atomic_write_text(path, json.dumps(identity, indent=2, sort_keys=True))

    def use_split(self, machine: str, table: pd.DataFrame) -> str:
        """Write ``splits/<machine>.csv`` (or check the one there); returns its SHA-256.

        An existing split file that differs is replaced only when no finished cell was trained on
        it; otherwise :class:`DataChangedError` (never overwrite the split of finished cells).
        """
        text = table.to_csv(index=False)
        path = self.path / "splits" / f"{machine}.csv"
        with self.lock():
            if path.is_file() and path.read_text() != text:
                old = sha256_file(path)
                used = [m["model"] for m in self._cell_metas(machine) if m.get("data", {}).get("split_sha256") == old]
                if used:
                    raise DataChangedError(
                        f"{path} differs from the split this run draws now, and {len(used)} finished cell(s) of "
                        f"{machine} were trained on it; run into another folder (--results DIR) or delete {self.path}"
                    )
            if not path.is_file() or path.read_text() != text:
                atomic_write_text(path, text)
        return sha256_text(text)

    def _cell_metas(self, machine: str) -> list[dict]:
        out = []
        for meta_file in sorted((self.path / "cells" / machine).glob("seed*/*/cell.json")):
            try:
                out.append(json.loads(meta_file.read_text()))
            except (OSError, ValueError):
                continue
        return out

    def cell_identity(self, machine: str) -> dict:
        """What a finished cell of ``machine`` must have been trained on: the data and the split file."""
        ident = {"split_sha256": None, "data_sha256": None}
        split = self.path / "splits" / f"{machine}.csv"
        data = self.path / "data.json"
        if split.is_file():
            ident["split_sha256"] = sha256_file(split)
        if data.is_file():
            ident["data_sha256"] = sha256_file(data)
        return ident

    # -- cells ---------------------------------------------------------------------------------
    def cell_dir(self, machine: str, seed: int, model: str) -> Path:
        return self.path / "cells" / machine / f"seed{seed}" / model

    def cell_done(self, machine: str, seed: int, model: str) -> bool:
        """True when the cell's ``cell.json`` exists, every file matches its checksum and it was
        trained on this run's data and split (:meth:`cell_identity`)."""
        cell = self.cell_dir(machine, seed, model)
        try:
            meta = json.loads((cell / "cell.json").read_text())
            if meta.get("data") != self.cell_identity(machine):
                return False
            return all(sha256_file(cell / name) == digest for name, digest in meta["files"].items())
        except (OSError, ValueError, KeyError, AttributeError):
            return False

    def finish_cell(self, machine: str, seed: int, model: str, meta: dict) -> None:
        """Write ``cell.json`` last, with the checksums of the cell's files and the identity of its
        data and split: the cell is now done."""
        cell = self.cell_dir(machine, seed, model)
        files = {name: sha256_file(cell / name) for name in self.CELL_FILES if (cell / name).exists()}
        record = {**meta, "data": self.cell_identity(machine), "files": files}
        atomic_write_text(cell / "cell.json", json.dumps(record, indent=2, default=float))

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
        config = spec.model_config()
        source = "**simulated** (asdlib.simulate, not MIMII)" if spec.simulated else f"**real MIMII recordings** ({prov['data_root']})"
        commit = (prov.get("git_commit") or "unknown")[:10] + (" (modified)" if prov.get("git_dirty") else "")
        return (
            f"Data: {source}. Run `{self.path.name}`: {len(spec.machines)} machine type{'s' if len(spec.machines) != 1 else ''} x {len(spec.model_specs())} models "
            f"x {len(spec.seeds)} seed{'s' if len(spec.seeds) != 1 else ''}; {spec.n_train} training / {spec.n_test} test clips per machine type; "
            f"{config.epochs} epochs, batch {config.batch_size}; device {prov['device']}; asdlib {prov['versions']['asdlib']}, commit {commit}."
        )

    def is_complete(self) -> bool:
        spec = self.spec
        return all(
            self.cell_done(m, s, ms.name) for m in spec.machines for s in spec.seeds for ms in spec.model_specs()
        )


