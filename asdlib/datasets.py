"""Where the clips come from: the user's MIMII folder or a simulated data set, and its clip list.

This is the data layer of a run, without torch: a notebook lists the clips of a spec with
``scan_run_data(spec)`` (or :func:`prepare_data` then :func:`asdlib.data.scan_mimii`) and never
imports the training code.

* :func:`default_data_dir` -- where simulated data sets are written (``$ASDLIB_DATA``).
* :func:`simulated_root` -- the folder of the simulated data set a spec uses, named by the
  simulator settings and the simulator's data version (:data:`asdlib.simulate.DATA_VERSION`).
* :func:`prepare_data` -- the data root of a spec, generating simulated clips when needed.
* :func:`run_manifest` -- the clips a run sees (the spec's machine types and SNR levels).
* :func:`simulator_metadata` -- per-clip anomaly kinds of a simulated data set.
* :func:`data_identity` -- what identifies the data of a run (manifest hash, simulator version).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .data import DataError, manifest_hash, scan_mimii
from .fileio import sha256_text

if TYPE_CHECKING:  # pragma: no cover - the spec module imports torch; this one does not
    from .experiments import ExperimentSpec


def default_data_dir() -> Path:
    """Where simulated data sets go: ``$ASDLIB_DATA`` or ``~/.cache/asdlib/data``."""
    return Path(os.environ.get("ASDLIB_DATA", Path.home() / ".cache" / "asdlib" / "data"))


def simulator_version() -> str:
    """The simulated data's version (:data:`asdlib.simulate.DATA_VERSION`): bumped when clips change."""
    from . import simulate

    version = getattr(simulate, "DATA_VERSION", None)
    if version is None:  # pragma: no cover - an older single-module simulator: hash its source
        import inspect

        version = "source-" + sha256_text(inspect.getsource(simulate), 16)
    return str(version)


def simulated_root(spec: "ExperimentSpec", data_dir: str | Path | None = None) -> Path:
    """The folder of the simulated data set a spec uses (named by its settings and the data version)."""
    settings = dict(spec.simulator_settings())
    digest = sha256_text(json.dumps(settings, sort_keys=True), 10)
    return Path(data_dir or default_data_dir()) / f"sim-{digest}-{sha256_text(simulator_version(), 8)}"


def prepare_data(spec: "ExperimentSpec", data_dir: str | Path | None = None, progress: bool = True) -> Path:
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

    root = simulated_root(spec, data_dir)
    simulate_dataset(root, machines=tuple(spec.machines), n_jobs=spec.n_jobs, progress=progress, **spec.simulator_settings())
    return root


def run_manifest(spec: "ExperimentSpec", root: str | Path) -> pd.DataFrame:
    """The clips a run of ``spec`` sees under ``root``: its machine types, and its SNR levels if it names some."""
    manifest = scan_mimii(root, machines=spec.machines)
    if spec.snrs_db is not None:
        manifest = manifest[manifest["snr_db"].isin(spec.snrs_db)].reset_index(drop=True)
        if manifest.empty:
            raise DataError(f"no clip at SNR {spec.snrs_db} dB under {root}")
    return manifest


def scan_run_data(spec: "ExperimentSpec", data_dir: str | Path | None = None, progress: bool = False) -> pd.DataFrame:
    """:func:`prepare_data` then :func:`run_manifest`: the clip list of a spec, in one call."""
    return run_manifest(spec, prepare_data(spec, data_dir, progress))


def simulator_metadata(root: str | Path) -> pd.DataFrame | None:
    """``relpath`` and ``anomaly_kind`` of each clip of a simulated data set (None for other data)."""
    path = Path(root) / "metadata.csv"
    if not path.is_file():
        return None
    meta = pd.read_csv(path)
    if "path" in meta.columns and "relpath" not in meta.columns:
        meta = meta.rename(columns={"path": "relpath"})
    keep = [c for c in ("relpath", "anomaly_kind") if c in meta.columns]
    return meta[keep] if "relpath" in keep and len(keep) > 1 else None


def data_identity(spec: "ExperimentSpec", manifest: pd.DataFrame) -> dict:
    """What identifies a run's data: the manifest's hash and clip count, and the simulator's version.

    A results folder remembers it; cells trained on other data (clips added to the data root, a new
    simulator version) are never reused for this data.
    """
    return {
        "manifest_hash": manifest_hash(manifest),
        "n_clips": int(len(manifest)),
        "simulator_version": simulator_version() if spec.simulated else None,
    }
