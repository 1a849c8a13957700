"""The page *How sure can we be?*: the spread over seeds, and the dual AE against the baseline clip by
clip (paired bootstrap, DeLong), with the sentences read off them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .text import finite, share, signed


def seed_spread(metrics: pd.DataFrame, metric_names=("AUC", "pAUC")) -> pd.DataFrame:
    """How far one run moves between training seeds: per cell, the range (max - min over seeds) in points."""
    from ..tables import KEY

    m = metrics[metrics["metric"].isin(list(metric_names))].assign(alpha=lambda f: f["alpha"].fillna(-1.0))
    spread = m.groupby(KEY)["value_percent"].agg(lambda v: float(v.max() - v.min()) if len(v) > 1 else np.nan)
    return spread.rename("seed range").reset_index()


def paired_comparisons(store, n_boot: int = 2000) -> pd.DataFrame:
    """Every dual configuration against the baseline, per machine type and score, on the same test clips.

    Columns: machine, score, model, baseline AUC, dual AUC (means over seeds, %), ΔAUC and its
    paired-bootstrap 95 % interval (points; test clips and training seeds resampled, the same clips
    and seeds for both models; with fewer than :data:`~asdlib.intervals.MIN_SEEDS_FOR_INTERVAL`
    seeds, the clips only: :func:`paired_interval_scope`), the bootstrap p-value, and DeLong's test run on each seed's pair of trained models:
    ``DeLong seeds +`` and ``DeLong seeds −``, the number of seeds where it finds the dual model
    better or worse at p < 0.05 (NaN where a class has fewer than 2 test clips). DeLong's test holds
    one trained pair fixed, so its seeds can disagree in sign; a median of their p-values would hide
    that.
    """
    from ..book_data import model_label
    from ..intervals import MIN_SEEDS_FOR_INTERVAL
    from ..metrics import paired_bootstrap_auc_difference, roc_auc

    spec = store.spec
    resample_seeds = len(spec.seeds) >= MIN_SEEDS_FOR_INTERVAL
    specs = spec.model_specs()
    baseline = next(ms for ms in specs if ms.kind == "baseline")
    rows = []
    for machine in spec.machines:
        base_tables = [store.test_scores(machine, s, baseline.name) for s in spec.seeds]
        y = base_tables[0]["y"].to_numpy()
        for score in spec.scores:
            b = np.stack([t[score].to_numpy() for t in base_tables])
            for ms in specs:
                if ms.kind != "dual":
                    continue
                d = np.stack([store.test_scores(machine, s, ms.name)[score].to_numpy() for s in spec.seeds])
                boot = paired_bootstrap_auc_difference(y, d, b, n_boot=n_boot, seed=0, resample_seeds=resample_seeds)
                rows.append({"machine": machine, "score": score, "model": model_label(ms),
                             "baseline AUC": 100 * np.mean([roc_auc(y, row) for row in b]),
                             "dual AUC": 100 * np.mean([roc_auc(y, row) for row in d]),
                             "ΔAUC": 100 * boot.difference, "Δ low": 100 * boot.ci_low, "Δ high": 100 * boot.ci_high,
                             "bootstrap p": boot.p_value, **_delong_by_seed(y, d, b)})
    return pd.DataFrame(rows)


def paired_interval_scope(n_seeds: int) -> str:
    """What the paired bootstrap of :func:`paired_comparisons` redraws for ``n_seeds`` training seeds,
    and so what its interval answers: a clause for the How-sure page.

    From :data:`~asdlib.intervals.MIN_SEEDS_FOR_INTERVAL` seeds on, the seeds are redrawn with the
    clips (the method); with fewer, two values say nothing about a spread, so only the clips are
    redrawn (these trained models).
    """
    from ..intervals import MIN_SEEDS_FOR_INTERVAL

    if n_seeds >= MIN_SEEDS_FOR_INTERVAL:
        return ("every replicate redraws the test clips and the training seeds, the same clips and seeds for both models, "
                "so the interval covers the training's randomness as well as the finite test set: it asks whether the "
                "method is better, not whether these trained models are")
    return (f"with {n_seeds} training seed{'s' if n_seeds != 1 else ''}, fewer than {MIN_SEEDS_FOR_INTERVAL}, the seeds "
            "are not redrawn: every replicate redraws the test clips only, the same clips for both models, so the interval "
            "covers the finite test set but not the training's randomness: it asks whether these trained models differ, "
            "not whether the method is better")


def _delong_by_seed(y: np.ndarray, dual: np.ndarray, base: np.ndarray, level: float = 0.05) -> dict[str, float]:
    """DeLong's test of each seed's dual scores ``dual[k]`` against its baseline scores ``base[k]``:
    how many seeds find the dual model significantly better (``DeLong seeds +``) and worse (``−``)."""
    from ..metrics import delong_test

    if min(int(y.sum()), int(y.size - y.sum())) < 2:  # DeLong's variance needs 2 of each class
        return {"DeLong seeds +": np.nan, "DeLong seeds −": np.nan}
    tests = [delong_test(y, d, b) for d, b in zip(dual, base)]
    return {"DeLong seeds +": float(sum(t.p_value < level and t.difference > 0 for t in tests)),
            "DeLong seeds −": float(sum(t.p_value < level and t.difference < 0 for t in tests))}


def paired_table(tests: pd.DataFrame) -> pd.DataFrame:
    """``tests`` (:func:`paired_comparisons` or :func:`best_of`) as the How-sure page shows it:
    indexed by machine, score and model, AUCs to 0.1 point, differences to 0.01, p-values to 0.001,
    DeLong's seed counts as integers; ``n_configs`` (the same in every row, stated in the text) left out."""
    shown = tests.drop(columns=["n_configs"], errors="ignore").set_index(["machine", "score", "model"])
    shown = shown.round({"baseline AUC": 1, "dual AUC": 1, "ΔAUC": 2, "Δ low": 2, "Δ high": 2, "bootstrap p": 3, "Bonferroni p": 3})
    return shown.astype({c: "Int64" for c in ("DeLong seeds +", "DeLong seeds −")})


def best_of(tests: pd.DataFrame) -> pd.DataFrame:
    """Per (machine, score), the dual configuration with the largest ΔAUC, its p-value Bonferroni-corrected
    for having been picked among ``n_configs`` configurations on the test data."""
    n_configs = int(tests.groupby(["machine", "score"]).size().max())
    best = tests.loc[tests.groupby(["machine", "score"])["ΔAUC"].idxmax()].copy()
    best["n_configs"] = n_configs
    best["Bonferroni p"] = np.minimum(1.0, best["bootstrap p"] * n_configs)
    return best.reset_index(drop=True)


def how_sure_summary(widths, seed_ranges, best: pd.DataFrame, n_seeds: int) -> str:
    """Sentences read off the How-sure page: interval widths, seed spread, gains that survive."""
    from ..intervals import MIN_SEEDS_FOR_INTERVAL

    w = finite(widths)
    r = finite(seed_ranges)
    gains = finite(best["ΔAUC"]) if len(best) else np.array([])
    parts = []
    if n_seeds < MIN_SEEDS_FOR_INTERVAL or w.size == 0:
        parts.append(f"with {n_seeds} seed{'s' if n_seeds != 1 else ''} no interval is computed; the per-seed values are shown.")
    else:
        parts.append(f"the median 95 % interval of a machine-type cell is {np.median(w):.1f} points wide "
                     f"(from {w.min():.1f} to {w.max():.1f}).")
    if r.size:
        parts.append(f"One run moves between seeds by {np.median(r):.1f} points in the median cell and by up to {r.max():.1f}.")
    if gains.size:
        significant = best["Bonferroni p"] < 0.05
        n_better, n_worse = int((significant & (best["ΔAUC"] > 0)).sum()), int((significant & (best["ΔAUC"] < 0)).sum())
        text = (f"The best dual configuration's gain over the baseline ranges from {signed(gains.min())} to {signed(gains.max())} "
                f"AUC points; after accounting for the choice among {int(best['n_configs'].iloc[0])} configurations, it is "
                f"significantly better than the baseline (5 %) in {share(n_better, len(best))} (machine type, score) pairs")
        if n_worse:
            text += (f", and significantly worse in {n_worse}: there every dual configuration scores below the baseline")
        if n_seeds < MIN_SEEDS_FOR_INTERVAL:
            text += (f" (for these trained models only: with {n_seeds} seed{'s' if n_seeds != 1 else ''} the paired bootstrap "
                     "redraws the test clips, not the seeds)")
        parts.append(text + ".")
        parts.append(delong_reading(best, n_seeds))
    text = " ".join(parts)
    return text[0].upper() + text[1:]


def delong_reading(best: pd.DataFrame, n_seeds: int) -> str:
    """A sentence on DeLong's per-seed tests behind the best gains (``DeLong seeds +``/``−`` of
    :func:`paired_comparisons`), and where the seeds split both ways; empty where none could run."""
    tested = best.dropna(subset=["DeLong seeds +", "DeLong seeds −"])
    if tested.empty:
        return ""
    plus, minus = int(tested["DeLong seeds +"].sum()), int(tested["DeLong seeds −"].sum())
    split = int(((tested["DeLong seeds +"] > 0) & (tested["DeLong seeds −"] > 0)).sum())
    text = (f"DeLong's test, run on one seed's pair of trained models at a time (p < 0.05, uncorrected), finds the dual "
            f"model better in {plus} and worse in {minus} of the {len(tested) * n_seeds} seed-level comparisons behind "
            f"these {len(tested)} gains")
    if split:
        text += (f"; in {share(split, len(tested))} the seeds split, one significantly better and another significantly "
                 "worse on the same clips. A difference DeLong finds for one trained pair can be reversed by another seed, "
                 "so the verdicts here rest on the bootstrap over seeds and clips.")
    else:
        text += "; no gain has seeds significant in both directions."
    sig = tested[(tested["Bonferroni p"] < 0.05) & (tested["ΔAUC"] > 0)]
    if len(sig):
        text += (f" For the {'gain that stays' if len(sig) == 1 else 'gains that stay'} significant, "
                 f"{int(sig['DeLong seeds +'].sum())} of {len(sig) * n_seeds} seeds are significantly better by DeLong's test "
                 f"and {int(sig['DeLong seeds −'].sum())} worse.")
    return text
