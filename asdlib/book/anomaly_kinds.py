"""The page *Spatial versus spectral anomalies*: AUC against each anomaly kind alone, the gain of the
dual AE on each, and the page's verdict on its premise.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .text import and_join, finite, score_name, share, signed
from .table1 import CHANCE_AUC, CHANCE_MARGIN_POINTS


def auc_by_anomaly_kind(store, kinds: tuple = ("spectral", "spatial")) -> pd.DataFrame:
    """AUC (%) of every cell against each anomaly kind alone (simulated data: its metadata has the kind).

    Returns long form: model (name), kind, mic_pair, alpha, machine, seed, anomaly, score, AUC.
    """
    from ..metrics import roc_auc

    spec = store.spec
    rows = []
    for ms in spec.model_specs():
        for machine in spec.machines:
            for seed in spec.seeds:
                t = store.test_scores(machine, seed, ms.name)
                if "anomaly_kind" not in t:
                    raise ValueError("anomaly kinds are known only for simulated data; this run has none")
                for anomaly in kinds:
                    sel = ((t["y"] == 0) | (t["anomaly_kind"] == anomaly)).to_numpy()
                    for score in spec.scores:
                        kind = "baseline (mean of channels)" if ms.mic_pair == "mean" else ms.kind
                        rows.append({"model": ms.name, "kind": kind, "mic_pair": ms.mic_pair, "alpha": ms.alpha,
                                     "machine": machine, "seed": seed, "anomaly": anomaly, "score": score,
                                     "AUC": 100 * roc_auc(t.loc[sel, "y"], t.loc[sel, score])})
    return pd.DataFrame(rows)


KIND_GAP_POINTS = 2.0
"""Smallest mean difference (points) between the gains on spatial and on spectral anomalies that
:func:`anomaly_kind_verdict` reads as a direction."""


def gain_by_anomaly_kind(auc: pd.DataFrame) -> pd.DataFrame:
    """The dual AE's gain per anomaly kind, from :func:`auc_by_anomaly_kind`.

    Parameters
    ----------
    auc : pandas.DataFrame
        Long form with columns score, anomaly, machine, kind, model, seed, AUC (and, optionally,
        mic_pair and alpha, which name the configuration).

    Returns
    -------
    pandas.DataFrame
        Indexed by (score, anomaly, machine): the baseline's AUC, the best dual's (the configuration
        with the highest mean over seeds, picked separately for each anomaly kind and machine type
        on these test clips), the gain in points, the lowest and highest gain of one seed (that
        configuration against the baseline of the same seed), the configuration as the page names
        it (``best config``, e.g. ``"0-4, α=0.1"``) and its model name (``best model``).
    """
    keys = ["score", "anomaly", "machine"]
    mean = auc.groupby(keys + ["kind", "model"])["AUC"].mean().reset_index()
    base = mean[mean["kind"] == "baseline"].set_index(keys)["AUC"]
    duals = mean[mean["kind"] == "dual"]
    best = duals.loc[duals.groupby(keys)["AUC"].idxmax()].set_index(keys)
    out = pd.DataFrame({"baseline": base, "best dual": best["AUC"]})
    out["gain"] = out["best dual"] - out["baseline"]
    per_seed = seed_gains(auc, best["model"])
    out["gain, lowest seed"] = per_seed.groupby(level=keys).min()
    out["gain, highest seed"] = per_seed.groupby(level=keys).max()
    out["best config"] = best["model"].map(config_names(auc))
    out["best model"] = best["model"]
    return out


def config_names(auc: pd.DataFrame) -> dict:
    """Model name → ``"0-4, α=0.1"`` (mic pair and α, as Table 10.1 prints a configuration), from the
    mic_pair and alpha columns of :func:`auc_by_anomaly_kind`; the model name where they are missing."""
    models = auc.drop_duplicates("model").set_index("model")
    if not {"mic_pair", "alpha"} <= set(models.columns):
        return {m: m for m in models.index}
    return {m: f"{r['mic_pair']}, α={r['alpha']:g}" for m, r in models.iterrows()}


def seed_gains(auc: pd.DataFrame, best_model: pd.Series) -> pd.Series:
    """Per (score, anomaly, machine, seed): the AUC of ``best_model`` (indexed by score, anomaly, machine)
    minus the baseline's on that seed, in points."""
    keys = ["score", "anomaly", "machine"]
    base = auc[auc["kind"] == "baseline"].set_index(keys + ["seed"])["AUC"]
    chosen = auc.merge(best_model.rename("best").reset_index(), on=keys)
    dual = chosen[chosen["model"] == chosen["best"]].set_index(keys + ["seed"])["AUC"]
    return (dual - base).dropna()


def at_chance(auc_percent: float) -> bool:
    """Whether a mean AUC (%) does not beat chance: at most :data:`CHANCE_AUC` +
    :data:`CHANCE_MARGIN_POINTS`."""
    return bool(auc_percent <= CHANCE_AUC + CHANCE_MARGIN_POINTS)


def all_seeds_agree_by_chance(n_seeds: int) -> float:
    """Probability that ``n_seeds`` independent differences, each as likely positive as negative, all
    have the same sign: ``0.5 ** (n_seeds - 1)`` (50 % for 2 seeds, 6 % for 5)."""
    return 0.5 ** (n_seeds - 1)


def anomaly_kind_rule(n_seeds: int) -> str:
    """The rule :func:`anomaly_kind_verdict` applies, in words, for a run with ``n_seeds`` seeds."""
    limit = f"{CHANCE_AUC + CHANCE_MARGIN_POINTS:g} %"
    text = (f"The page names a direction only when (1) every machine type's baseline beats chance on both kinds "
            f"(mean AUC above {limit}; at or below it a gain lifts a detector toward chance, so no verdict is read), "
            f"(2) there are at least 2 training seeds and every seed's difference, spatial minus spectral gain (mean over "
            f"machine types), has the same sign, (3) the mean difference is at least {KIND_GAP_POINTS:g} points, and "
            f"(4) more than half of the machine types show it; otherwise it says there is no clear difference and why.")
    if n_seeds < 2:
        return text + (f" This run has {n_seeds} seed: training is chaotic and one seed is one sample, "
                       "so no direction is stated.")
    chance = all_seeds_agree_by_chance(n_seeds)
    return text + (f" This is a consistency rule, not a significance test: with {n_seeds} seeds and no true difference, "
                   f"all seeds agree in sign by chance with probability {100 * chance:.0f} %.")


def anomaly_kind_verdict(seed_diffs, machine_diffs, baselines) -> tuple[str, list[str]]:
    """Which kind the dual AE helps more, by the rule of :func:`anomaly_kind_rule`.

    Parameters
    ----------
    seed_diffs : array-like
        Per training seed, the gain on spatial anomalies minus the gain on spectral ones (points,
        mean over machine types).
    machine_diffs : array-like
        The same per machine type (mean over seeds).
    baselines : array-like
        The baseline's mean AUC (%) on every (anomaly kind, machine type).

    Returns
    -------
    verdict : str
        ``"spatial"`` or ``"spectral"`` (the kind helped more), ``"unclear"`` (no clear
        difference), ``"chance"`` (a baseline does not beat chance) or ``"one seed"``.
    reasons : list of str
        For ``"unclear"``, the conditions that failed, as clauses.
    """
    seed_diffs, machine_diffs = finite(seed_diffs), finite(machine_diffs)
    if any(at_chance(b) for b in finite(baselines)):
        return "chance", []
    if len(seed_diffs) < 2:
        return "one seed", []
    mean = float(seed_diffs.mean())
    sign = np.sign(mean)
    reasons = []
    if not (np.sign(seed_diffs) == sign).all() or sign == 0:
        reasons.append("the seeds do not all have the same sign")
    if abs(mean) < KIND_GAP_POINTS:
        reasons.append(f"the mean difference, {signed(mean)} points, is under {KIND_GAP_POINTS:g}")
    n_with = int((np.sign(machine_diffs) == sign).sum()) if sign != 0 else 0
    if sign != 0 and 2 * n_with <= len(machine_diffs):
        reasons.append(f"only {share(n_with, len(machine_diffs))} machine types have the larger gain on "
                       f"{'spatial' if sign > 0 else 'spectral'} anomalies")
    if reasons:
        return "unclear", reasons
    return ("spatial" if sign > 0 else "spectral"), []


def _configs_clause(g: pd.DataFrame) -> str:
    """The best configurations in one score's rows of :func:`gain_by_anomaly_kind`, as a clause:
    ``"0-4, α=0.1 for both kinds"``, ``"0-4, α=0.1 for spatial anomalies, 2-6, α=10 for spectral ones"``,
    or, where a kind's best configuration differs between machine types, a pointer to Table 10.1."""
    spatial, spectral = (g.xs(kind, level="anomaly")["best config"].unique() for kind in ("spatial", "spectral"))
    if len(spatial) > 1 or len(spectral) > 1:
        return "one per kind and machine type, named in Table 10.1"
    if spatial[0] == spectral[0]:
        return f"{spatial[0]} for both kinds"
    return f"{spatial[0]} for spatial anomalies, {spectral[0]} for spectral ones"


def _chance_clause(g: pd.DataFrame) -> str:
    """The detectors of one score that do not beat chance (:func:`at_chance`), as a clause; ``""`` if none."""
    cells = [f"the {detector} on {anomaly} anomalies of {machine} ({auc:.1f} %)"
             for (anomaly, machine), row in g.droplevel("score").iterrows()
             for detector, auc in (("baseline", row["baseline"]), ("best dual", row["best dual"])) if at_chance(auc)]
    if not cells:
        return ""
    return f"at or below chance (mean AUC at most {CHANCE_AUC + CHANCE_MARGIN_POINTS:g} %): {and_join(cells)}"


def anomaly_kind_reading(gains: pd.DataFrame, per_seed: pd.Series) -> str:
    """Sentences read off :func:`gain_by_anomaly_kind`: which kind the dual AE helps more, by the rule of
    :func:`anomaly_kind_rule`, and whether that agrees with the premise that the difference channel
    helps with *spatial* anomalies.

    Parameters
    ----------
    gains : pandas.DataFrame
        :func:`gain_by_anomaly_kind`.
    per_seed : pandas.Series
        :func:`seed_gains` of the same configurations: each seed's difference between the kinds.

    Returns
    -------
    str
        One sentence per score (the configurations, the mean gains, the per-machine count, the seeds'
        range, detectors that do not beat chance, the verdict), then what they say about the premise.
    """
    parts, verdicts = [], {}
    for score, g in gains.groupby(level="score"):
        per_machine = g["gain"].droplevel("score").unstack("anomaly")
        if not {"spatial", "spectral"} <= set(per_machine):
            continue
        machine_diffs = (per_machine["spatial"] - per_machine["spectral"]).dropna()
        by_seed = per_seed.xs(score, level="score").groupby(level=["anomaly", "seed"]).mean().unstack("anomaly")
        seed_diffs = (by_seed["spatial"] - by_seed["spectral"]).dropna()
        verdict, reasons = anomaly_kind_verdict(seed_diffs, machine_diffs, g["baseline"])
        verdicts[score] = verdict
        spatial, spectral = per_machine["spatial"].mean(), per_machine["spectral"].mean()
        text = (f"{score_name(score)}: the best dual configuration of each kind, picked on these test clips "
                f"({_configs_clause(g)}), "
                f"changes the AUC by {signed(spatial)} points on spatial anomalies and {signed(spectral)} on spectral ones "
                f"(mean over machine types); the gain is larger on spatial anomalies for "
                f"{share(int((machine_diffs > 0).sum()), len(machine_diffs))} machine types")
        if len(seed_diffs) > 1:
            text += (f"; from one seed to another, spatial minus spectral ranges from {signed(seed_diffs.min())} to "
                     f"{signed(seed_diffs.max())} points")
        else:
            text += "; with one training seed this is one sample of a chaotic training"
        chance = _chance_clause(g)
        if chance:
            text += f"; {chance}"
        text += " — " + {
            "chance": "a gain from a baseline that does not beat chance lifts a detector toward chance rather than showing "
                      "what the difference channel hears, so no verdict on the premise is read off this score",
            "one seed": "so no direction is stated",
            "spatial": "the dual AE helps spatial anomalies more, as the premise of this page expects",
            "spectral": "against the premise of this page, the dual AE helps spectral anomalies more than spatial ones",
            "unclear": "no clear difference between the kinds, since " + " and ".join(reasons),
        }[verdict]
        parts.append(text)
    return ". ".join(parts) + ". " + _premise_summary(verdicts) + (
        " Each kind's best configuration is picked on the same test clips, so both gains are optimistic.")


def _premise_summary(verdicts: dict) -> str:
    """What the scores' verdicts (:func:`anomaly_kind_verdict`) say together about the page's premise."""
    found = {v: [score_name(s) for s, x in verdicts.items() if x == v] for v in ("spatial", "spectral")}
    if found["spatial"] and found["spectral"]:
        return "The scores disagree, so the data neither support nor contradict the premise of this page."
    if found["spatial"]:
        return f"So the data support the premise of this page ({', '.join(found['spatial'])}), by the rule below."
    if found["spectral"]:
        return f"So the data go against the premise of this page ({', '.join(found['spectral'])})."
    if "unclear" in verdicts.values():
        return "So the data do not support the premise of this page."
    return "So this run cannot test the premise of this page."
