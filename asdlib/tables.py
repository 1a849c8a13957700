"""Tables of results: Table 1 in the paper's layout, summaries over seeds, comparison with the paper.

Every function takes the long-form metrics of :meth:`asdlib.results.ResultsStore.metrics` (one row
per machine, metric, score, model, mic pair, alpha and seed) and returns a DataFrame.
"""
from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from .metrics import harmonic_mean

KEY = ["machine", "metric", "score", "model", "mic_pair", "alpha"]
MEAN_INPUT = "mean"  # the mic_pair of the baseline trained on the mean of the channels


def is_channel_baseline(frame: pd.DataFrame) -> pd.Series:
    """Rows of the baseline on one microphone (the paper's Table 1 baseline), not the channel-mean baseline."""
    return (frame["model"] == "baseline") & (frame["mic_pair"].fillna("").astype(str) != MEAN_INPUT)
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


def summarize(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per cell of the table, with the per-seed values (no interval).

    Undefined values (NaN, e.g. ``pAUC_eq11`` on a test set with fewer than 10 normal clips) are left
    out; a cell with none defined is NaN. ``n_seeds`` counts the defined values; ``seed_values`` lists
    them (what a page shows when there are too few seeds for an interval). Intervals over seeds *and*
    test clips come from :func:`interval_summary`, which needs the per-clip scores.
    """
    rows = []
    alpha_filled = metrics.assign(alpha=metrics["alpha"].fillna(-1.0))
    for group, frame in alpha_filled.groupby(KEY, dropna=False):
        frame = frame.sort_values("seed")
        values = frame["value_percent"].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        rows.append({**dict(zip(KEY, group)), "mean": float(finite.mean()) if finite.size else np.nan,
                     "ci_low": np.nan, "ci_high": np.nan, "n_seeds": int(finite.size),
                     "seed_values": ", ".join(f"{v:.1f}" for v in finite)})
    out = pd.DataFrame(rows)
    out["alpha"] = out["alpha"].where(out["alpha"] >= 0)
    return out


def _harmonic_rows(values: np.ndarray) -> np.ndarray:
    """Harmonic mean over the first axis (machine types), NaN where a value is <= 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = values.shape[0] / np.sum(1.0 / values, axis=0)
    return np.where(np.all(values > 0, axis=0), out, np.nan)


def interval_summary(store, metric_names=("AUC", "pAUC"), n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """:func:`summarize` of a finished run with intervals over training seeds and test clips.

    Each replicate redraws the test clips (stratified by label; the same draw for every model and
    seed of a machine type) and the seeds (with replacement); a cell's replicate is the seed-weighted
    mean of its metric, the "average" row's the harmonic mean over machine types per seed, as the
    point estimate. The interval is the percentile interval of the replicates (within [0, 100]); see
    :mod:`asdlib.intervals`. With fewer than :data:`asdlib.intervals.MIN_SEEDS_FOR_INTERVAL` seeds the
    interval is NaN and ``seed_values`` is what to show.

    Parameters
    ----------
    store : asdlib.results.ResultsStore
        A run whose cells are all finished.
    metric_names : sequence of {"AUC", "pAUC"}
    n_boot : int
        Replicates.
    confidence : float
        Level of the interval.
    seed : int
        Seed of the resampling (the same seed gives the same intervals).

    Returns
    -------
    pandas.DataFrame
        ``KEY`` columns, ``mean``, ``ci_low``, ``ci_high``, ``n_seeds``, ``seed_values``, with the
        "average" rows.
    """
    from .intervals import MIN_SEEDS_FOR_INTERVAL, clip_draws, percentile_interval, replicate_metrics, seed_draws

    spec = store.spec
    metrics = store.metrics()
    point = summarize(with_average(metrics[metrics["metric"].isin(list(metric_names))]))
    seeds = sorted(metrics["seed"].unique().tolist())
    if len(seeds) < MIN_SEEDS_FOR_INTERVAL:
        return point
    weights = seed_draws(n_boot, len(seeds), seed)  # (B, S)
    replicates: dict[tuple, np.ndarray] = {}
    for machine in spec.machines:
        y = None
        for ms in spec.model_specs():
            frames = [store.test_scores(machine, s, ms.name) for s in seeds]
            labels = frames[0]["y"].to_numpy(int)
            if y is None:
                y = labels
                w_pos, w_neg = clip_draws(y, n_boot, key=machine, seed=seed)
            if any(not np.array_equal(f["y"].to_numpy(int), y) for f in frames):
                raise ValueError(f"{store.path}: the test clips of {machine} differ between cells; intervals need one test set")
            for score in spec.scores:
                reps = replicate_metrics(y, np.stack([f[score].to_numpy(float) for f in frames]), w_pos, w_neg)
                for name in metric_names:
                    replicates[(machine, name, score, ms.kind, ms.mic_pair, ms.alpha)] = reps[name]
    by_rest: dict[tuple, list] = {}
    for key, reps in replicates.items():
        by_rest.setdefault(key[1:], []).append(reps)
    for rest, per_machine in by_rest.items():
        if len(per_machine) == len(spec.machines):
            replicates[("average", *rest)] = _harmonic_rows(np.stack(per_machine))
    low, high = [], []
    for row in point.itertuples(index=False):
        alpha = None if pd.isna(row.alpha) else float(row.alpha)
        reps = replicates.get((row.machine, row.metric, row.score, row.model, row.mic_pair, alpha))
        if reps is None:
            low.append(np.nan); high.append(np.nan)
            continue
        lo, hi = percentile_interval(row.mean, np.sum(reps * weights, axis=1), confidence)
        low.append(lo); high.append(hi)
    return point.assign(ci_low=low, ci_high=high)


def compare_with_reported(metrics: pd.DataFrame, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Our mean (over seeds, with the harmonic-mean average row) beside the paper's value.

    ``summary`` (from :func:`interval_summary`) supplies the intervals; without it the cells have
    none (:func:`summarize`).

    Returns
    -------
    pandas.DataFrame
        ``KEY`` columns, ``ours`` (mean %), ``ci_low``, ``ci_high``, ``n_seeds``, ``reported`` (%),
        ``difference`` (ours - reported, percentage points). Only the paper's metrics (AUC, pAUC)
        and cells we ran. The Average row's ``reported`` is NaN unless we ran every machine type of
        the paper's table: its Average is over all four.
    """
    if summary is None:
        summary = summarize(with_average(metrics[metrics["metric"].isin(["AUC", "pAUC"])]))
    ours = summary[summary["metric"].isin(["AUC", "pAUC"])].copy()
    ours = ours.rename(columns={"mean": "ours"})
    reported = reported_table().rename(columns={"value_percent": "reported"})
    for frame in (ours, reported):
        frame["alpha_key"] = frame["alpha"].fillna(-1.0).round(4)
    merged = ours.merge(reported.drop(columns="alpha"), on=[k for k in KEY if k != "alpha"] + ["alpha_key"], how="left")
    merged = merged.drop(columns="alpha_key")
    ran = set(ours.loc[ours["machine"] != "average", "machine"])
    if ran != set(reported.loc[reported["machine"] != "average", "machine"]):  # the paper averages its four types
        merged.loc[merged["machine"] == "average", "reported"] = np.nan
    merged["difference"] = merged["ours"] - merged["reported"]
    return merged


def table1_layout(frame: pd.DataFrame, value: str = "ours", decimals: int = 2) -> pd.DataFrame:
    """Pivot a long table into the paper's layout: rows (machine, metric), columns (score, mics, α)."""
    order_machine = ["fan", "slider", "pump", "valve", "average"]
    f = frame.copy()
    f["mics"] = np.where(f["model"] != "baseline", "MICS " + f["mic_pair"].astype(str),
                         np.where(f["mic_pair"].astype(str) == MEAN_INPUT, "Baseline (mean of channels)", "Baseline"))
    f["α"] = f["alpha"].map(lambda a: "" if pd.isna(a) else f"{a:g}")
    f["score"] = f["score"].str.upper()  # the paper's headers: MSE, MAHALANOBIS
    table = f.pivot_table(index=["machine", "metric"], columns=["score", "mics", "α"], values=value, aggfunc="first")
    machines = [m for m in order_machine if m in table.index.get_level_values(0)]
    table = table.reindex(machines, level=0)
    # baseline last within each score, as in the paper
    cols = sorted(table.columns, key=lambda c: (c[0] != "MSE", c[1].startswith("Baseline"), c[1], float(c[2]) if c[2] else 0))
    return table[cols].round(decimals)


def best_cells(frame: pd.DataFrame, value: str = "ours") -> pd.DataFrame:
    """Per (machine, metric, score), the row with the highest ``value`` (the paper's bold cell)."""
    idx = frame.groupby(["machine", "metric", "score"])[value].idxmax()
    return frame.loc[idx.dropna().astype(int)]
