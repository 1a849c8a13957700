"""The paper's claims as computations on a Table 1 (the reported one or ours).

Each function takes a long-form table with the columns of ``table1_reported.csv`` (machine,
metric, score, model, mic_pair, alpha, value_percent) and returns what the claims page shows: a
table and a verdict. Verdicts are one of :data:`HOLDS`, :data:`HOLDS_UNDER_A_READING` and
:data:`DOES_NOT_HOLD` -- "not derivable as written" is not "false".
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import harmonic_mean
from .tables import is_channel_baseline

HOLDS = "holds"
HOLDS_UNDER_A_READING = "holds under one reading"
DOES_NOT_HOLD = "does not hold"
KEYS = ["metric", "score", "model", "mic_pair", "alpha"]

__all__ = [
    "HOLDS", "HOLDS_UNDER_A_READING", "DOES_NOT_HOLD",
    "average_rows", "gain_readings", "stated_gain_verdict", "outperform", "each_pair_beats_baseline", "chance_band", "at_chance",
]


def _machines(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["machine"] != "average"]


def average_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Per (metric, score, model, pair, α): the harmonic and arithmetic means of the machine rows beside the Average row."""
    t = table.assign(alpha=table["alpha"].fillna(-1))
    avg = t[t["machine"] == "average"].set_index(KEYS)["value_percent"]
    check = _machines(t).groupby(KEYS)["value_percent"].agg(harmonic=harmonic_mean, arithmetic="mean")
    check["reported_average"] = avg
    check["matches_harmonic"] = (check["harmonic"] - check["reported_average"]).abs() <= 0.01
    check["matches_arithmetic"] = (check["arithmetic"] - check["reported_average"]).abs() <= 0.01
    return check


def gain_readings(table: pd.DataFrame, score: str, metric: str) -> pd.Series:
    """Candidate readings of "the dual AE improves the average <metric> by X %" (points unless said).

    Includes the reading per microphone pair that fits the paper's "4.29 % and 3.45 %": for each
    machine the best α within the pair (chosen on the test results), the harmonic mean over machines,
    minus the baseline's Average.
    """
    t = table[(table["score"] == score) & (table["metric"] == metric)]
    avg = t[t["machine"] == "average"]
    base = avg.loc[avg["model"] == "baseline", "value_percent"].iloc[0]
    duals = avg.loc[avg["model"] == "dual", "value_percent"]
    per_machine = _machines(t)
    dual_m = per_machine[per_machine["model"] == "dual"]
    best_m = dual_m.groupby("machine")["value_percent"].max()
    base_m = per_machine[per_machine["model"] == "baseline"].set_index("machine")["value_percent"]
    out = {
        "best Average cell - baseline": duals.max() - base,
        "same, relative (%)": 100 * (duals.max() - base) / base,
        "mean over machines of (best dual - baseline)": (best_m - base_m).mean(),
        "harmonic mean of per-machine bests - baseline": harmonic_mean(best_m) - base,
        "mean of all dual Average cells - baseline": duals.mean() - base,
    }
    for pair, group in dual_m.groupby("mic_pair"):
        out[f"mics {pair}: harmonic mean of per-machine best α - baseline"] = harmonic_mean(group.groupby("machine")["value_percent"].max()) - base
    return pd.Series(out)


def stated_gain_verdict(readings: pd.DataFrame, metric: str, value: float, tolerance: float = 0.015) -> tuple[str, str]:
    """What the readings say of the stated gain "the average ``metric`` rises by ``value``".

    Parameters
    ----------
    readings : pandas.DataFrame
        :func:`gain_readings` as columns, one per metric (e.g. ``AUC``, ``pAUC``).
    metric : str
        The metric the sentence names.
    value : float
        The stated gain, in points.
    tolerance : float
        How close a reading must come (the table's values are rounded to 0.01).

    Returns
    -------
    (str, str)
        The readings that give ``value`` and the verdict: :data:`HOLDS` when a plain reading of this
        metric gives it, :data:`HOLDS_UNDER_A_READING` when only a per-pair oracle reading of this metric
        does, else :data:`DOES_NOT_HOLD` (a reading of *another* metric that gives the number is named,
        but does not support a claim about this one).
    """
    found = [(reading, m) for (reading, m), x in readings.stack().items() if abs(x - value) <= tolerance]
    same_metric = [reading for reading, m in found if m == metric]
    if same_metric:
        plain = [reading for reading in same_metric if not reading.startswith("mics")]
        return "; ".join(f"{metric}: {r}" for r in same_metric), HOLDS if plain else HOLDS_UNDER_A_READING
    computed = f"no {metric} reading gives it"
    if found:
        computed += " (the number is " + "; ".join(f"the {m} by {r}" for r, m in found) + ")"
    return computed, DOES_NOT_HOLD


def outperform(table: pd.DataFrame) -> pd.DataFrame:
    """Per (machine, metric, score): the baseline, the best dual cell, and the share of dual cells above the baseline."""
    t = _machines(table)
    base = t[is_channel_baseline(t)].set_index(["machine", "metric", "score"])["value_percent"]
    duals = t[t["model"] == "dual"].groupby(["machine", "metric", "score"])["value_percent"]
    frame = pd.DataFrame({"baseline": base, "best dual": duals.max()})
    frame["share of dual cells above baseline"] = [
        float(np.mean(np.asarray(values) > frame.loc[key, "baseline"])) for key, values in duals.apply(list).items()
    ]
    frame["best dual > baseline"] = frame["best dual"] > frame["baseline"]
    return frame


def each_pair_beats_baseline(table: pd.DataFrame) -> pd.DataFrame:
    """Per (machine, metric, score) and pair: does some α beat the baseline?"""
    t = _machines(table)
    base = t[is_channel_baseline(t)].set_index(["machine", "metric", "score"])["value_percent"]
    best = t[t["model"] == "dual"].groupby(["machine", "metric", "score", "mic_pair"])["value_percent"].max().unstack("mic_pair")
    return best.gt(base, axis=0)


def chance_band(n_anomalous: int, n_normal: int, confidence: float = 0.95, n_sim: int = 20000, seed: int = 0) -> dict:
    """Where a chance detector's AUC and McClish pAUC (p = 0.1) fall, in %, for a test set of this size.

    Computed by simulation: random scores for ``n_anomalous`` + ``n_normal`` clips, ``n_sim`` times.
    The AUC's band agrees with the Hanley-McNeil/DeLong null variance ``(m + n + 1) / (12 m n)``.

    Returns
    -------
    dict
        ``{"AUC": (low, high), "pAUC": (low, high)}`` central ``confidence`` ranges in %.
    """
    rng = np.random.default_rng(seed)
    m, n = int(n_anomalous), int(n_normal)
    # a chance detector ranks the clips in random order: a random permutation of the labels, best first
    ranked = np.argsort(rng.random((n_sim, m + n)), axis=1) < m  # (n_sim, m + n): True = anomalous
    tp = np.cumsum(ranked, axis=1)
    fp = np.cumsum(~ranked, axis=1)
    auc = (tp * ~ranked).sum(axis=1) / (m * n)
    p = 0.1
    width = np.clip(fp / n, 0, p) - np.clip((fp - 1) / n, 0, p)
    area = (tp / m * width * ~ranked).sum(axis=1)
    pauc = 0.5 * (1 + (area - p**2 / 2) / (p - p**2 / 2))
    q = [0.5 - confidence / 2, 0.5 + confidence / 2]
    return {"AUC": tuple(float(v) for v in 100 * np.quantile(auc, q)), "pAUC": tuple(float(v) for v in 100 * np.quantile(pauc, q))}


def at_chance(table: pd.DataFrame, machine: str, band: dict) -> pd.DataFrame:
    """The machine's cells with whether each lies inside the chance band of its metric."""
    t = table[table["machine"] == machine].copy()
    low = t["metric"].map(lambda m: band[m][0])
    high = t["metric"].map(lambda m: band[m][1])
    t["inside chance band"] = (t["value_percent"] >= low) & (t["value_percent"] <= high)
    return t
