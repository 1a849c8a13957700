"""Tables of results: Table 1 in the paper's layout, summaries over seeds, comparison with the paper.

Every function takes the long-form metrics of :meth:`asdlib.results.ResultsStore.metrics` (one row
per machine, metric, score, model, mic pair, alpha and seed) and returns a DataFrame.
"""
from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from .metrics import harmonic_mean, mean_ci

KEY = ["machine", "metric", "score", "model", "mic_pair", "alpha"]
METRIC_NAMES = {"AUC": "AUC", "pAUC": "pAUC (McClish, p=0.1)", "pAUC_eq11": "pAUC (paper eq. 11)"}

# ----------------------------------------------------------------------------------------------
# Summaries and comparison with the paper
# ----------------------------------------------------------------------------------------------


def reported_table() -> pd.DataFrame:
    """The paper's Table 1 as reported (``asdlib/data/table1_reported.csv``), long form."""
    with resources.files("asdlib").joinpath("data/table1_reported.csv").open() as handle:
        frame = pd.read_csv(handle, dtype={"mic_pair": str})
    frame["mic_pair"] = frame["mic_pair"].fillna("")
    return frame


def with_average(metrics: pd.DataFrame) -> pd.DataFrame:
    """Add ``machine == "average"`` rows: the harmonic mean over machine types, per seed (as the paper)."""
    keys = [k for k in KEY if k != "machine"] + ["seed"]
    rows = []
    for group, frame in metrics[metrics["machine"] != "average"].groupby(keys, dropna=False):
        if (frame["value_percent"] > 0).all():
            rows.append({**dict(zip(keys, group)), "machine": "average", "value_percent": harmonic_mean(frame["value_percent"])})
    return pd.concat([metrics, pd.DataFrame(rows)], ignore_index=True) if rows else metrics


def summarize(metrics: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Mean over seeds with a Student-t interval (NaN with one seed) per cell of the table.

    Undefined values (NaN, e.g. ``pAUC_eq11`` on a test set with fewer than 10 normal clips) are left
    out; a cell with none defined is NaN. ``n_seeds`` counts the defined values.
    """
    rows = []
    alpha_filled = metrics.assign(alpha=metrics["alpha"].fillna(-1.0))
    for group, frame in alpha_filled.groupby(KEY, dropna=False):
        values = frame["value_percent"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        mean, low, high = mean_ci(values, confidence) if values.size else (np.nan, np.nan, np.nan)
        rows.append({**dict(zip(KEY, group)), "mean": mean, "ci_low": low, "ci_high": high, "n_seeds": int(values.size)})
    out = pd.DataFrame(rows)
    out["alpha"] = out["alpha"].where(out["alpha"] >= 0)
    return out


def compare_with_reported(metrics: pd.DataFrame) -> pd.DataFrame:
    """Our mean (over seeds, with the harmonic-mean average row) beside the paper's value.

    Returns
    -------
    pandas.DataFrame
        ``KEY`` columns, ``ours`` (mean %), ``ci_low``, ``ci_high``, ``n_seeds``, ``reported`` (%),
        ``difference`` (ours - reported, percentage points). Only the paper's metrics (AUC, pAUC)
        and cells we ran.
    """
    ours = summarize(with_average(metrics[metrics["metric"].isin(["AUC", "pAUC"])]))
    ours = ours.rename(columns={"mean": "ours"})
    reported = reported_table().rename(columns={"value_percent": "reported"})
    for frame in (ours, reported):
        frame["alpha_key"] = frame["alpha"].fillna(-1.0).round(4)
    merged = ours.merge(reported.drop(columns="alpha"), on=[k for k in KEY if k != "alpha"] + ["alpha_key"], how="left")
    merged = merged.drop(columns="alpha_key")
    merged["difference"] = merged["ours"] - merged["reported"]
    return merged


def table1_layout(frame: pd.DataFrame, value: str = "ours", decimals: int = 2) -> pd.DataFrame:
    """Pivot a long table into the paper's layout: rows (machine, metric), columns (score, mics, α)."""
    order_machine = ["fan", "slider", "pump", "valve", "average"]
    f = frame.copy()
    f["mics"] = np.where(f["model"] == "baseline", "Baseline", "MICS " + f["mic_pair"].astype(str))
    f["α"] = f["alpha"].map(lambda a: "" if pd.isna(a) else f"{a:g}")
    f["score"] = f["score"].str.upper().replace({"MAHALANOBIS": "MAHALANOBIS", "MSE": "MSE"})
    table = f.pivot_table(index=["machine", "metric"], columns=["score", "mics", "α"], values=value, aggfunc="first")
    machines = [m for m in order_machine if m in table.index.get_level_values(0)]
    table = table.reindex(machines, level=0)
    # baseline last within each score, as in the paper
    cols = sorted(table.columns, key=lambda c: (c[0] != "MSE", c[1] == "Baseline", c[1], float(c[2]) if c[2] else 0))
    return table[cols].round(decimals)


def best_cells(frame: pd.DataFrame, value: str = "ours") -> pd.DataFrame:
    """Per (machine, metric, score), the row with the highest ``value`` (the paper's bold cell)."""
    idx = frame.groupby(["machine", "metric", "score"])[value].idxmax()
    return frame.loc[idx.dropna().astype(int)]
