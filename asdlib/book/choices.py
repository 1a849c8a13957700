"""The *Choices* page: the split of clips into training and test sets (by recording or by clip) and
the baseline's input (one microphone or the mean of channels), each compared on its own grid.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..experiments import ExperimentSpec
from .parameters import build_data_root, make_spec, parse_list
from .text import intervals_overlap, mean_interval_text, score_name, share, signed


LEAK_SNRS = [-6.0, 0.0, 6.0]


def leak_specs(profile: str | None = None, data_root: str | None = None, machines=("fan",)) -> dict[str, ExperimentSpec]:
    """The split-leak comparison of the Choices page: the same baseline grid split by recording and by clip.

    The data has every recording at MIMII's three SNR levels (on the simulator, twinned as in MIMII:
    the same machine sound and anomaly, different noise); ``"recording"`` keeps each recording on one
    side of the split, ``"clip"`` draws clips independently, so a test clip's twin can be trained on.
    """
    base = dict(machines=parse_list(machines, "machines"), models=[{"ref": 0}], n_test=min(100, make_spec(profile, data_root).n_test))
    if build_data_root(data_root) is None:
        base["simulator"] = {"snrs_db": LEAK_SNRS}
    return {groups: make_spec(profile, data_root, split_groups=groups, **base) for groups in ("recording", "clip")}


def twins_across_split(store) -> pd.DataFrame:
    """Per machine type: test clips whose recording (same machine, ID, label and file name, any SNR
    folder) is also in the training set."""
    rows = []
    for machine in store.spec.machines:
        split = pd.read_csv(store.path / "splits" / f"{machine}.csv")
        part_col = "part" if "part" in split.columns else "split"
        rel = split["relpath"].astype(str)
        recording = rel.str.split("/").str[-4:].str.join("/")  # machine/id_XX/label/name.wav
        split = split.assign(recording=recording)
        train = set(split.loc[split[part_col] == "train", "recording"])
        test = split[split[part_col] == "test"]
        rows.append({"machine": machine, "test clips": len(test), "test clips with a twin in training": int(test["recording"].isin(train).sum())})
    return pd.DataFrame(rows)


def leak_verdict(intervals, n_seeds: int) -> str:
    """What the split comparison's AUC intervals show, as the end of :func:`leak_comparison`'s sentence.

    Parameters
    ----------
    intervals : list of ((low, high), (low, high))
        Per (machine type, score), the 95 % interval split by recording and split by clip; NaN bounds
        where none was computed.
    n_seeds : int
        Seeds of the runs, named when there is no interval.
    """
    from ..intervals import MIN_SEEDS_FOR_INTERVAL

    if not intervals or any(np.isnan(np.asarray(pair, dtype=float)).any() for pair in intervals):
        return (f"with {n_seeds} seed{'s' if n_seeds != 1 else ''} no interval is computed (fewer than {MIN_SEEDS_FOR_INTERVAL}), so "
                "this comparison cannot tell a leak effect from the seeds' and test clips' spread; the split by recording stays the correct one")
    if all(intervals_overlap(pair) for pair in intervals):
        return ("the intervals overlap in every case, so this comparison cannot show a leak effect at this size (an overlap does not "
                "show that there is none); the split by recording stays the correct one")
    return "in some cases the intervals are apart: the leak changes the result"


def leak_comparison(stores: dict) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The Choices page's split comparison: twins across each split, the metrics both ways, a sentence.

    ``stores`` maps ``"recording"`` and ``"clip"`` to finished stores of :func:`leak_specs`.
    """
    from ..tables import interval_summary

    twins = pd.concat({g: twins_across_split(s) for g, s in stores.items()}, names=["split by"]).droplevel(1).reset_index()
    frames = {}
    stores_summary = {}
    for groups, store in stores.items():
        summary = interval_summary(store)
        summary = summary[summary["machine"] != "average"].set_index(["machine", "metric", "score"])
        for key, r in summary.iterrows():
            stores_summary[(groups,) + tuple(key)] = (r["ci_low"], r["ci_high"])
        frames[groups] = summary.apply(mean_interval_text, axis=1)
        frames[f"{groups} mean"] = summary["mean"]
    table = pd.DataFrame({"by recording": frames["recording"], "by clip": frames["clip"],
                          "clip − recording (points)": (frames["clip mean"] - frames["recording mean"]).round(1)})
    n_twins = twins.loc[twins["split by"] == "clip", "test clips with a twin in training"].sum()
    n_test = twins.loc[twins["split by"] == "clip", "test clips"].sum()
    n_twins_rec = twins.loc[twins["split by"] == "recording", "test clips with a twin in training"].sum()
    auc = table.xs("AUC", level="metric")["clip − recording (points)"]
    verdict = leak_verdict([(stores_summary[("recording", m, "AUC", sc)], stores_summary[("clip", m, "AUC", sc)]) for m, sc in auc.index],
                           len(stores["recording"].spec.seeds))
    sentence = (f"Split by clip, {n_twins} of {n_test} test clips had their recording in the training set (by recording: {n_twins_rec}). "
                f"The baseline's AUC changed by " + ", ".join(f"{signed(v)} points ({m}, {score_name(sc)})" for (m, sc), v in auc.items())
                + f" when split by clip instead of by recording; {verdict}.")
    return twins, table, sentence


def baseline_input_comparison(store, n_boot: int = 1000) -> tuple[pd.DataFrame | None, str]:
    """The baseline on channel 0 beside the baseline on the mean of the channels (when the grid has
    both, else None), and a paragraph read off it saying which input the paper most plausibly used."""
    from ..tables import MEAN_INPUT, interval_summary, is_channel_baseline

    reason = ("The paper most plausibly used a single microphone, channel 0: its Figure 1 shows \"the input channel on the "
              "baseline and the reference channel on our proposal\" as one spectrogram, and it compares with \"the traditional "
              "single-channel audio processing model\"; the DCASE 2023 code, given an 8-channel MIMII file, would instead "
              "average the channels (`librosa.load(mono=True)`). Table 1 therefore uses channel 0 as *the* baseline.")
    summary = interval_summary(store, n_boot=n_boot)
    base = summary[summary["model"] == "baseline"]
    channel = base[is_channel_baseline(base)].set_index(["machine", "metric", "score"])
    mean = base[base["mic_pair"].astype(str) == MEAN_INPUT].set_index(["machine", "metric", "score"])
    if mean.empty:
        return None, ("This build's grid has no channel-mean baseline (set `baseline_mean: true` in the spec to add it). " + reason)
    table = pd.DataFrame({"channel 0": channel.apply(mean_interval_text, axis=1), "mean of 8 channels": mean.apply(mean_interval_text, axis=1),
                          "mean − channel 0 (points)": (mean["mean"] - channel["mean"]).round(1) + 0.0}).dropna()
    auc = table.xs("AUC", level="metric")["mean − channel 0 (points)"]
    machines = auc.drop("average", level="machine", errors="ignore")
    higher = int((machines > 0).sum())
    avg = auc.xs("average", level="machine") if "average" in auc.index.get_level_values("machine") else pd.Series(dtype=float)
    text = (f"The channel-mean baseline has the higher AUC in {share(higher, len(machines))} (machine type, score) cells"
             + (", and its Average AUC differs by " + ", ".join(f"{signed(v)} points ({score_name(sc)})" for sc, v in avg.items()) if len(avg) else "")
             + ". " + reason)
    return table, text
