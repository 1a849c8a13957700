"""The *Reproduce* and *Running the grid on more machines* pages: every grid the book reads
(:func:`build_specs`), and the projected cost of training them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..experiments import ExperimentSpec, default_results_dir
from .parameters import make_spec
from .dipole import pairs_spec
from .more_mics import channels_spec
from .choices import leak_specs


def build_specs(profile: str | None = None, data_root: str | None = None) -> list[ExperimentSpec]:
    """Every grid the book's pages read with their default parameters: Table 1's first."""
    return [make_spec(profile, data_root), pairs_spec(profile, data_root), channels_spec(profile, data_root),
            *leak_specs(profile, data_root).values()]


def training_projection(spec: ExperimentSpec, results_dir: str | Path | None = None) -> pd.DataFrame:
    """Training seconds of a finished run, and the paper profile's training time projected from them.

    A fused group's models share its wall time (each cell records its share), so the sum over cells is
    the total. Time is taken as proportional to training vectors x epochs x models x seeds x machine
    types, as :func:`grid_cost_projection` scales a grid's training; the paper's clips are 10 s.
    """
    import json

    from ..experiments import profile
    from ..features import n_vectors

    path = Path(results_dir or default_results_dir()) / spec.run_id()
    cells = [json.loads(p.read_text()) for p in path.glob("cells/*/seed*/*/cell.json")]
    if not cells:
        raise ValueError(f"{path} has no finished cell; run the book's grid first (make book)")
    seconds = float(sum(c["train_seconds"] for c in cells))
    prov = json.loads((path / "provenance.json").read_text())

    def work(s: ExperimentSpec) -> float:
        clip_s = s.simulator_settings()["duration_s"] if s.simulated else 10.0
        return (0.9 * s.n_train * n_vectors(int(clip_s * 16_000), s.model_config()) * s.model_config().epochs
                * len(s.model_specs()) * len(s.seeds) * len(s.machines))

    paper = profile("paper", data_root="/mimii")
    hours = seconds * work(paper) / work(spec) / 3600
    return pd.DataFrame({"training seconds measured": [round(seconds)], "run": [spec.run_id()],
                         "projected hours, paper profile": [round(hours, 1)],
                         "projected hours per seed": [round(hours / len(paper.seeds), 1)], "device": [prov["device"]]})


def grid_cost_projection(spec: ExperimentSpec, results_dir: str | Path | None = None, workers=(2, 16, 32)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The measured cost of this build's grids, and the paper profile's wall time projected from it.

    A grid's cost is read from the run's journal (``grid_finished`` seconds) and split into training
    (the cells' ``train_seconds``) and the rest (features, scoring, writing). The paper grid's
    training is scaled by training vectors x epochs (the same models; the paper's batch of 256 is
    cheaper per vector than the book's 64, so this errs long), the rest by the number of clips.

    Returns
    -------
    measured : pandas.DataFrame
        One row: grids, mean seconds per grid, of which training, the run and its device.
    projected : pandas.DataFrame
        One row per worker count: rounds of grids and the expected wall time in hours.
    """
    import json
    import math

    from ..experiments import profile
    from ..features import n_vectors

    path = Path(results_dir or default_results_dir()) / spec.run_id()
    events = [json.loads(line) for line in (path / "journal.jsonl").read_text().splitlines() if line.strip().startswith("{")]
    grids = [e for e in events if e.get("event") == "grid_finished" and e.get("cells", 0) > 0]
    if not grids:
        raise ValueError(f"{path} has no finished grid in its journal; run the book's grid first (make book)")
    cells = [json.loads(p.read_text()) for p in path.glob("cells/*/seed*/*/cell.json")]
    n_grids = len({(c["machine"], c["seed"]) for c in cells})
    grid_s = float(np.mean([g["seconds"] for g in grids]))
    train_s = float(sum(c["train_seconds"] for c in cells)) / max(n_grids, 1)
    rest_s = max(grid_s - train_s, 0.0)
    paper = profile("paper", data_root="/mimii")

    def vectors(s: ExperimentSpec) -> float:
        clip_s = s.simulator_settings()["duration_s"] if s.simulated else 10.0
        return 0.9 * s.n_train * n_vectors(int(clip_s * 16_000), s.model_config()) * s.model_config().epochs

    scale_train = vectors(paper) / vectors(spec) * len(paper.model_specs()) / len(spec.model_specs())
    scale_rest = (paper.n_train + paper.n_test) / (spec.n_train + spec.n_test)
    paper_grid_h = (train_s * scale_train + rest_s * scale_rest) / 3600
    n_paper_grids = len(paper.machines) * len(paper.seeds)
    measured = pd.DataFrame({"grids measured": [len(grids)], "seconds per grid": [round(grid_s)],
                             "of which training": [round(train_s)], "run": [spec.run_id()],
                             "paper grid, projected (core-hours)": [round(paper_grid_h, 1)]})
    projected = pd.DataFrame([{"workers": w, "rounds of grids": math.ceil(n_paper_grids / w),
                               "expected wall time (h)": round(math.ceil(n_paper_grids / w) * paper_grid_h, 1)} for w in workers])
    return measured, projected
