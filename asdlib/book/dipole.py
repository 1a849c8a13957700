"""The page *The dipole*: the grid of the four opposite pairs, the pair sweep's settings, and how much
each pair hears of each simulated machine.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..experiments import ExperimentSpec
from .parameters import make_spec, parse_list
from .text import and_join, mean_interval_text


OPPOSITE_PAIRS = [[0, 4], [1, 5], [2, 6], [3, 7]]


def pairs_spec(profile: str | None = None, data_root: str | None = None, machines=("fan",), alpha: float = 2.0,
               seeds=None, **parameters: Any) -> ExperimentSpec:
    """The four-pair grid of the dipole page: the baseline and the dual AE on every opposite pair, one α.

    ``machines`` and ``seeds`` are lists or their JSON text, as papermill's ``-p`` passes them.
    """
    seeds = parse_list(seeds, "seeds") or make_spec(profile, data_root).seeds
    return make_spec(profile, data_root, machines=parse_list(machines, "machines"), mic_pairs=OPPOSITE_PAIRS,
                     alphas=[float(alpha)], seeds=seeds, baseline_mean=False, **parameters)


def sweep_skip_reason(spec: ExperimentSpec, machine: str = "fan") -> str | None:
    """Why the dipole page's direction sweep cannot run on ``spec``'s grid, with the fix; None when it can.

    The sweep moves a spatial anomaly of a simulated ``machine`` unit around the array and scores it with
    that machine type's detectors of the grid: it needs simulated data and ``machine`` among ``machines``.
    """
    if not spec.simulated:
        return "it needs simulated data: real recordings cannot move an anomaly"
    if machine not in spec.machines:
        chosen = ",".join(f'"{m}"' for m in [machine, *spec.machines])  # no space: a wrapped line keeps it whole
        return (f"it moves an anomaly of a simulated {machine}, and {machine} is not among machines ({', '.join(spec.machines)}); "
                f"add it, e.g. -p machines '[{chosen}]'")
    return None


def pairs_table(summary: pd.DataFrame, metric: str = "AUC") -> pd.DataFrame:
    """The dipole page's pair table: per machine type and score (rows) and pair (columns, the baseline
    last), the mean over seeds of ``metric`` (%) and, in brackets, its 95 % interval over seeds and test
    clips (:func:`asdlib.tables.interval_summary`; none with fewer than three seeds)."""
    s = summary[(summary["metric"] == metric) & (summary["machine"] != "average")].copy()
    s["pair"] = s["mic_pair"].replace("", "baseline")
    s["cell"] = s.apply(mean_interval_text, axis=1)
    table = s.pivot_table(index=["machine", "score"], columns="pair", values="cell", aggfunc="first")
    return table[[c for c in table.columns if c != "baseline"] + ["baseline"]].rename_axis(columns=None)


def pair_gains_towards_machines(pairs=OPPOSITE_PAIRS, band_hz=(100.0, 8000.0), floor_db: float = -60.0) -> pd.DataFrame:
    """Per simulated machine unit (indexed by machine and id): its azimuth and distance, and each pair's mean gain (dB) towards it.

    A pair exactly broadside to a unit cancels it completely (an exact null, -inf dB in theory); such
    gains are shown as ``floor_db``.
    """
    from .. import simulate
    from ..spatial import band_gain_db

    rows = []
    for machine in simulate.MACHINES:
        for machine_id in simulate.MACHINE_IDS:
            pos = simulate.clip_layout(machine, machine_id, seed=0)["machine_position"]
            az, dist = float(np.rad2deg(np.arctan2(pos[1], pos[0]))), float(np.hypot(pos[0], pos[1]))
            row = {"machine": machine, "id": machine_id, "azimuth (°)": round(az, 1), "distance (cm)": round(100 * dist, 1)}
            for a, b in pairs:
                row[f"{a}-{b} (dB)"] = round(band_gain_db((a, b), az, dist, band_hz, floor_db=floor_db), 1)
            rows.append(row)
    return pd.DataFrame(rows).set_index(["machine", "id"])


def cancelling_pairs_reading(gains: pd.DataFrame) -> str:
    """A sentence read off :func:`pair_gains_towards_machines`' table: which units have a pair that
    cancels their sound (a gain of :data:`asdlib.sweep.CANCELS_DB` or less), and how much the others'
    quietest pair still passes."""
    from ..sweep import CANCELS_DB

    columns = [c for c in gains.columns if c.endswith(" (dB)")]
    least, quietest = gains[columns].min(axis=1), gains[columns].idxmin(axis=1).str.removesuffix(" (dB)")
    cancel = least <= CANCELS_DB
    units = [f"{machine} {unit_id} ({quietest[(machine, unit_id)]}, {least[(machine, unit_id)]:+.1f} dB)"
             for machine, unit_id in least.index[cancel]]
    n, k = len(gains), int(cancel.sum())
    text = (f"In Table 8.1, {k} of {n} unit{'s' if n != 1 else ''} {'has' if k == 1 else 'have'} a pair that cancels "
            f"{'its' if n == 1 else 'their'} sound (a gain of {CANCELS_DB:g} dB or less"
            + (f": {and_join(units)})" if units else ")"))
    if k < n:
        text += (f"; for the other {n - k}, even the quietest pair passes it at {least[~cancel].min():+.1f} dB or more. "
                 "Averaged over 100 Hz–8 kHz, a pair cancels a source only when the source lies almost exactly broadside "
                 "to it, so the first expectation above "
                 + ("can be tested only on those units." if k else "cannot be tested on these units."))
    else:
        text += "."
    return text


def dipole_gains_at(freq_hz: float = 200.0, pair=(0, 4)) -> dict[str, str]:
    """What the dipole page says about one frequency: gains (dB re one microphone) on axis and 10° off
    broadside, far and 10 cm away, and whether broadside is an exact null. Keys are glue names."""
    from ..spatial import difference_response

    def gain_db(az: float, distance: float | None) -> float:
        return float(20 * np.log10(difference_response(np.array([freq_hz]), np.array([az]), pair, distance=distance)[0, 0]))

    exact_null = difference_response(np.array([freq_hz]), np.array([90.0]), pair, distance=None)[0, 0] < 1e-9
    return {"g200_0_far": f"{gain_db(0.0, None):.0f}", "g200_80_far": f"{gain_db(80.0, None):.0f}", "g200_80_near": f"{gain_db(80.0, 0.1):.0f}",
            "null_text": "exactly zero (a null: both microphones receive the same signal)" if exact_null else "not exactly zero"}
