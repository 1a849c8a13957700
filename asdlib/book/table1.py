"""The paper's pages (Table 1, Figure 5, the paper's claims): Table 1 with intervals, the best dual
configuration against the baseline, and the sentences read off them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..experiments import ExperimentSpec
from .text import intervals_overlap, score_name, share, signed


def table1_frame(store, n_boot: int = 1000) -> pd.DataFrame:
    """Table 1 in long form: ours (mean over seeds) with its interval beside the reported value.

    Columns: machine, metric, score, model, mic_pair, alpha, ours, ci_low, ci_high, n_seeds,
    seed_values, reported, difference, best (True for the highest "ours" per machine, metric and
    score, the baseline included: the paper's bold cell; every cell of a tie).
    """
    from ..tables import compare_with_reported, interval_summary

    from ..tables import MEAN_INPUT

    frame = compare_with_reported(store.metrics(), interval_summary(store, n_boot=n_boot))
    frame["best"] = False
    rows = frame[(frame["machine"] != "average") & (frame["mic_pair"].astype(str) != MEAN_INPUT)]  # the paper's columns only
    top = rows.groupby(["machine", "metric", "score"])["ours"].transform("max")
    frame.loc[rows.index[np.isclose(rows["ours"], top, rtol=0, atol=1e-9)], "best"] = True  # every cell of a tie
    return frame


def average_row_gap(frame: pd.DataFrame) -> float:
    """How far Table 1's Average row lies below the harmonic mean of the per-machine cells shown
    above it, at most over the table's columns (points).

    The Average is the harmonic mean over machine types per seed, then the mean over seeds; the
    cells above it are means over seeds. A mean of harmonic means never exceeds the harmonic mean
    of the means (the harmonic mean is concave), so the gap is ``>= 0``. ``frame`` is
    :func:`table1_frame`'s output (``ours`` per machine, ``machine == "average"`` rows).
    """
    from ..metrics import harmonic_mean
    from ..tables import KEY

    keys = [k for k in KEY if k != "machine"]  # a Table 1 column, as tables.with_average groups them
    f = frame.assign(alpha=frame["alpha"].fillna(-1.0), mic_pair=frame["mic_pair"].fillna("").astype(str))
    per_machine = f[f["machine"] != "average"].groupby(keys)["ours"].agg(
        lambda v: harmonic_mean(v) if np.isfinite(v).all() and (v > 0).all() else np.nan)
    average = f[f["machine"] == "average"].set_index(keys)["ours"]
    gap = (per_machine - average).dropna()
    return float(gap.max()) if len(gap) else float("nan")


def table1_cell_text(row, reported: bool = True) -> str:
    """One Table 1 cell as HTML: ours (bold when best), the reported value, the interval or the seeds."""
    ours = f"{row['ours']:.2f}"
    if row.get("best", False):
        ours = f"<b>{ours}</b>"
    text = ours
    if reported and pd.notna(row.get("reported")):
        text += f"<span style='color:gray'> ({row['reported']:.2f})</span>"
    if pd.notna(row.get("ci_low")):
        text += f"<br><small style='white-space:nowrap'>[{row['ci_low']:.1f}, {row['ci_high']:.1f}]</small>"
    elif row.get("seed_values") and int(row.get("n_seeds", 0)) > 1:
        text += f"<br><small style='white-space:nowrap'>seeds: {row['seed_values']}</small>"
    return text


def best_dual_gain(frame: pd.DataFrame, value: str = "ours", by: tuple = ("machine", "metric", "score")) -> pd.DataFrame:
    """Per group, the best dual configuration (chosen on the test results) minus the baseline.

    ``frame`` is long form with ``model`` ("baseline"/"dual"), ``mic_pair``, ``alpha`` and ``value``.
    Returns the groups with ``baseline``, ``best dual``, ``best config`` (``"0-4, α=2"``),
    ``n_configs`` (how many dual configurations the best was picked from) and ``gain``.
    """
    from ..tables import is_channel_baseline

    by = list(by)
    base = frame[is_channel_baseline(frame)].set_index(by)[value]
    duals = frame[frame["model"] == "dual"]
    idx = duals.groupby(by)[value].idxmax().dropna().astype(int)
    best = duals.loc[idx.to_numpy()].set_index(by)
    out = pd.DataFrame({
        "baseline": base,
        "best dual": best[value],
        "best config": [f"{p}, α={a:g}" for p, a in zip(best["mic_pair"], best["alpha"])],
        "n_configs": duals.groupby(by)[value].count(),
    })
    out["gain"] = out["best dual"] - out["baseline"]
    return out.dropna(subset=["baseline", "best dual"])


def table1_caption(score: str, spec: ExperimentSpec, reported: bool = True) -> str:
    """The caption text of one score's Table 1, true to the run: what a cell holds with this many seeds,
    and, when the run leaves out some of the paper's machine types, what its Average row is over
    (``reported``: the table shows the paper's values in parentheses)."""
    from ..intervals import MIN_SEEDS_FOR_INTERVAL

    n = len(spec.seeds)
    under = ("the 95 % interval over seeds and test clips under it" if n >= MIN_SEEDS_FOR_INTERVAL else
             f"the seeds' values under it, no interval with fewer than {MIN_SEEDS_FOR_INTERVAL} seeds" if n > 1 else "one seed")
    text = (f"{score_name(score)} score: ours, the mean over {n} seed{'s' if n != 1 else ''} ({under})"
            + ("; the paper's reported value in parentheses" if reported else "") + "; AUC and pAUC in %.")
    paper_machines = ("fan", "pump", "slider", "valve")
    if reported and set(spec.machines) != set(paper_machines):
        text += (f" The Average row is the harmonic mean over {', '.join(spec.machines)} only; the paper's Average, over all "
                 "four machine types, is not comparable and is left out.")
    return text


def dual_configurations_text(spec: ExperimentSpec) -> str:
    """How many dual configurations ``spec`` trains, and how they are made up: ``"8 dual configurations
    (2 microphone pairs × 4 α)"``, ``"1 dual configuration"``."""
    n = sum(ms.kind == "dual" for ms in spec.model_specs())
    text = f"{n} dual configuration{'s' if n != 1 else ''}"
    pairs, alphas = len(spec.mic_pairs), len(spec.alphas)
    if n > 1 and n == pairs * alphas:
        text += f" ({pairs} microphone pair{'s' if pairs != 1 else ''} × {alphas} α)"
    return text


def table1_summary(frame: pd.DataFrame, average_gain: pd.DataFrame) -> str:
    """Two sentences read off Table 1: the Average AUCs and who holds the bold cells.

    ``frame`` is :func:`table1_frame`'s output, ``average_gain`` :func:`best_dual_gain` of its
    "average" rows by (metric, score).
    """
    parts = []
    chance = CHANCE_AUC + CHANCE_MARGIN_POINTS
    for (metric, score), g in average_gain.iterrows():
        if metric != "AUC":
            continue
        verdict = f"a gain of {g['gain']:.2f} points" if g["gain"] > 0 else f"no gain ({signed(g['gain'], 2)} points)"
        if max(g["baseline"], g["best dual"]) <= chance:
            verdict += f", between detectors that do not beat chance ({CHANCE_AUC:g} %; at most {chance:g} % here)"
        elif g["baseline"] <= chance:
            verdict += f", from a baseline that does not beat chance ({CHANCE_AUC:g} %)"
        parts.append(f"{score_name(score)} {g['baseline']:.2f} % for the baseline against {g['best dual']:.2f} % for the best dual "
                     f"configuration ({g['best config']}): {verdict}")
    bold = frame[(frame["machine"] != "average") & frame["best"]]
    groups = bold.groupby(["machine", "metric", "score"])["model"].agg(lambda m: (set(m) == {"dual"}, set(m) == {"baseline"}))
    n_dual, n_base = sum(d for d, _ in groups), sum(b for _, b in groups)
    text = "Average AUC: " + "; ".join(parts) + ". " if parts else ""
    text += (f"The bold (best) cell is a dual configuration in {share(n_dual, len(groups))} (machine type, metric, score) groups "
             f"and the baseline in {n_base}")
    if len(groups) - n_dual - n_base:
        text += f"; in {len(groups) - n_dual - n_base} the baseline and a dual configuration tie (both bold)"
    text += (". The column \"Baseline (mean of channels)\" is not in the paper: it is the "
             "baseline trained on the average of the 8 channels, as the DCASE 2023 code would load MIMII (see the Choices page); "
             "it is left out of the bold cells.")
    return text


def figure5_reading(summary: pd.DataFrame, score: str = "mse", metric: str = "AUC") -> tuple[pd.DataFrame, str]:
    """What Figure 5 shows, per machine type: the best pair, and whether each pair has an α above the baseline.

    Returns a table (one row per machine: baseline, best value and α per pair, the best pair, how
    many pairs have an α above the baseline, and whether that α's interval lies wholly above the
    baseline's) and a sentence read off it.
    """
    from ..tables import is_channel_baseline

    s = summary[(summary["score"] == score) & (summary["metric"] == metric) & (summary["machine"] != "average")]
    rows = []
    for machine, sm in s.groupby("machine", sort=False):
        base = sm[is_channel_baseline(sm)]
        if base.empty:
            continue
        b = base.iloc[0]
        row = {"machine": machine, "baseline": b["mean"]}
        clear = 0
        above = 0
        tops = []
        best_pair, best_value = None, -np.inf
        for pair, group in sm[sm["model"] == "dual"].groupby("mic_pair"):
            top = group.loc[group["mean"].idxmax()]
            row[f"best {pair}"] = top["mean"]
            row[f"α {pair}"] = f"{top['alpha']:g}"  # as the other tables print α
            above += bool(top["mean"] > b["mean"])
            clear += bool(pd.notna(top["ci_low"]) and pd.notna(b["ci_high"]) and top["ci_low"] > b["ci_high"])
            tops.append(top)
            if top["mean"] > best_value:
                best_pair, best_value = pair, top["mean"]
        has_intervals = all(pd.notna(x["ci_low"]) for x in [b, *tops])
        row.update({"best pair": best_pair, "pairs with an α above the baseline": above,
                    "pairs whose best α is clearly above (intervals apart)": clear if has_intervals else pd.NA,
                    "pairs' best intervals overlap": (intervals_overlap([(x["ci_low"], x["ci_high"]) for x in tops])
                                                      if has_intervals else pd.NA)})
        rows.append(row)
    table = pd.DataFrame(rows).set_index("machine")
    if table.empty:
        return table, "There is no dual configuration to read."
    pair_cols = [c for c in table.columns if c.startswith("best ") and c != "best pair"]
    n_pairs, n = len(pair_cols), len(table)
    pairs = table["best pair"].value_counts()
    types = "machine type" if n == 1 else "machine types"
    text = (f"The best pair ({metric}, {score_name(score)}) is " +
            ", ".join(f"{p} for {share(int(k), n)} {types}" for p, k in pairs.items()))
    if n == 1:
        text += " (with one machine type, whether the best pair depends on the machine, as the paper reads, cannot be seen)"
    else:
        text += " — it differs between machines, as in the paper" if len(pairs) > 1 else " — the same pair on every machine, unlike the paper's reading"
    if n_pairs > 1:
        close = int(((table[pair_cols].max(axis=1) - table[pair_cols].min(axis=1)) < 2.0).sum())
        text += f"; the pairs' best values are within 2 points of each other for {share(close, n)} {types}"
        overlap = table["pairs' best intervals overlap"].dropna()
        if len(overlap) == n:
            text += f", and their intervals overlap for {share(int(overlap.astype(bool).sum()), n)}"
    text += (f". Some α of every pair is above the baseline for {share(int((table['pairs with an α above the baseline'] == n_pairs).sum()), n)} "
             f"{types} (the paper: all four)")
    clear = table["pairs whose best α is clearly above (intervals apart)"].dropna()
    if len(clear) == n:
        text += (f"; with intervals apart from the baseline's for {share(int((clear == n_pairs).sum()), n)} (a strict test: "
                 "overlapping intervals can hide a real difference; the How sure? page tests the gains paired on the same clips).")
    else:
        text += ("; whether clearly so cannot be read: with fewer than 3 seeds no interval is computed (the How sure? page "
                 "compares the configurations paired on the same clips).")
    return table, text


def gain_reading_sentence(readings: pd.DataFrame, stated: dict, tolerance: float = 0.015) -> str:
    """What the stated gains match in a table of candidate readings (rows: readings, columns: metrics)."""
    parts = []
    for metric, value in stated.items():
        found = [(reading, col) for (reading, col), x in readings.stack().items() if abs(x - value) <= tolerance]
        if found:
            parts.append(f"the stated {value} for the {metric} equals " + " and ".join(f"“{r}” computed on the {c}" for r, c in found))
        else:
            nearest = (readings[metric] - value).abs().idxmin()
            parts.append(f"no reading gives the stated {value} for the {metric} (nearest: “{nearest}”, {readings.loc[nearest, metric]:.2f})")
    text = "In the reported table, " + "; ".join(parts) + "."
    per_pair = [r for r in readings.index if r.startswith("mics")]
    if all(any(abs(readings.loc[r, "AUC"] - v) <= tolerance for r in per_pair) for v in stated.values()):
        best_cell = readings.loc["best Average cell - baseline", "AUC"]
        text += (" So the sentence most likely means the AUC rises by these amounts with the two microphone pairs, "
                 "α chosen per machine type on the test results (an oracle, not a configuration fixed in advance); "
                 f"no single fixed configuration reaches it (the best Average AUC cell is {signed(best_cell, 2)} points).")
    return text


CHANCE_AUC = 50.0
"""AUC (%) of a detector that ranks at random."""


CHANCE_MARGIN_POINTS = 2.0
"""A detector whose mean AUC is at most :data:`CHANCE_AUC` plus this many points does not beat chance
on the Spatial-versus-spectral page (:func:`at_chance`)."""
