"""The page *More microphones*: the numbers of channels compared, their grid and its reading.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import yaml

from ..experiments import ExperimentSpec
from .parameters import make_spec, parse_list
from .text import intervals_overlap, score_name


CHANNEL_SETS = {2: [4], 4: [4, 2, 6], 8: [1, 2, 3, 4, 5, 6, 7]}


CHANNEL_SETS_HINT = ("give it as JSON mapping a number of channels to the microphones subtracted from mic 0, "
                     "e.g. -p channel_sets '{\"2\": [4], \"3\": [4, 2]}'")


def _channel_count(key: Any) -> int | None:
    """A ``channel_sets`` key as an int (JSON keys are strings), or None when it is not a whole number."""
    if isinstance(key, str) and key.strip().isdigit():
        return int(key)
    return key if isinstance(key, int) and not isinstance(key, bool) else None


def parse_channel_sets(channel_sets: Any = None) -> dict[int, list[int]]:
    """The more-microphones page's ``channel_sets`` parameter, checked: number of channels -> the
    microphones whose differences from mic 0 are the extra channels, ordered by number of channels.

    Parameters
    ----------
    channel_sets : dict, str or None
        A dict, the JSON/YAML text papermill's ``-p`` passes (``'{"2": [4], "3": [4, 2]}'``; its string
        keys become ints), or None for :data:`CHANNEL_SETS`.

    Raises
    ------
    ValueError
        In one line naming ``channel_sets`` and the fix: the text is not a mapping, a key is not the
        number of channels (1 + the microphones listed), or a microphone is not one of 1-7 or repeats.
    """
    from ..config import N_MICS

    if channel_sets is None:
        return {n: list(m) for n, m in sorted(CHANNEL_SETS.items())}
    value = channel_sets
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            value = None
    if not isinstance(value, dict) or not value:
        raise ValueError(f"channel_sets={channel_sets!r} is not a mapping; {CHANNEL_SETS_HINT}")
    sets = {}
    for key, mics in value.items():
        ok = isinstance(mics, (list, tuple)) and mics and len(set(mics)) == len(mics)
        if not (ok and all(isinstance(m, int) and not isinstance(m, bool) and 1 <= m < N_MICS for m in mics)):
            raise ValueError(f"channel_sets: {key!r}: {mics!r} is not a list of distinct microphones 1-{N_MICS - 1}; {CHANNEL_SETS_HINT}")
        n, many = _channel_count(key), "s" if len(mics) > 1 else ""
        if n != len(mics) + 1:
            raise ValueError(f"channel_sets: key {key!r} should be {len(mics) + 1}, the number of channels of {mics!r} "
                             f"(mic 0 and {len(mics)} difference{many}); {CHANNEL_SETS_HINT}")
        if n in sets:
            raise ValueError(f"channel_sets: {n} channels are given twice; {CHANNEL_SETS_HINT}")
        sets[n] = [int(m) for m in mics]
    return dict(sorted(sets.items()))


def channel_sets_text(channel_sets: Any = None) -> str:
    """What each number of channels is, for a caption: ``"1: the baseline on mic 0; 2: mic 0 and its
    difference with mic 4; ..."`` (``channel_sets`` as :func:`parse_channel_sets` takes it)."""
    parts = ["1: the baseline on mic 0"]
    for n, mics in parse_channel_sets(channel_sets).items():
        many = "s" if len(mics) > 1 else ""
        parts.append(f"{n}: mic 0 and its difference{many} with mic{many} {', '.join(map(str, mics))}")
    return "; ".join(parts)


def channels_spec(profile: str | None = None, data_root: str | None = None, machines=("fan",), alpha: float = 1.0,
                  channel_sets: Any = None, seeds=None, **parameters: Any) -> ExperimentSpec:
    """The more-microphones grid: the baseline and the multi-channel AE with each number of channels of
    ``channel_sets`` (:func:`parse_channel_sets`; default :data:`CHANNEL_SETS`: 2, 4 and 8).

    The differences are taken from microphone 0; the difference channels share a total weight
    ``alpha`` (``alpha_k = alpha / (N - 1)``) so that only the number of channels changes.
    ``machines`` and ``seeds`` are lists or their JSON text, as papermill's ``-p`` passes them.
    """
    from ..modelspec import ModelSpec

    channel_sets = parse_channel_sets(channel_sets)
    models = [ModelSpec.baseline(0).to_dict()]
    models += [ModelSpec(0, tuple(o), (alpha / len(o),) * len(o)).to_dict() for o in channel_sets.values()]
    return make_spec(profile, data_root, machines=parse_list(machines, "machines"), models=models,
                     seeds=parse_list(seeds, "seeds"), **parameters)


def channels_reading(summary: pd.DataFrame, score: str, metric: str = "AUC") -> tuple[pd.DataFrame, str]:
    """The more-microphones curve as a table (channels -> mean and interval) and a sentence read off it
    (saying so when there is no interval to test a difference with)."""
    from ..intervals import MIN_SEEDS_FOR_INTERVAL

    s = summary[(summary["score"] == score) & (summary["metric"] == metric) & (summary["machine"] != "average")].copy()
    s["channels"] = s["mic_pair"].map(lambda p: 1 if p == "" else len(str(p).split("-")))
    table = s.groupby(["machine", "channels"])[["mean", "ci_low", "ci_high", "n_seeds"]].first()
    parts = []
    for machine, t in table.groupby(level="machine"):
        t = t.droplevel("machine")
        curve = " → ".join(f"{v:.1f}" for v in t["mean"])
        best_n = int(t["mean"].idxmax())
        text = f"{machine}: {metric} ({score_name(score)}) {curve} % for {', '.join(str(n) for n in t.index)} channels; best with {best_n}"
        if 2 in t.index and t[["ci_low", "ci_high"]].notna().all().all():
            dual_low, dual_high = t.loc[2, "ci_low"], t.loc[2, "ci_high"]
            apart = [n for n in t.index if n > 2 and not intervals_overlap([(t.loc[n, "ci_low"], t.loc[n, "ci_high"]),
                                                                              (dual_low, dual_high)])]
            text += ("; every count of channels has an interval overlapping the dual AE's (2 channels), so none is shown to "
                     "differ from it (an overlap does not show that they are equal)" if not apart
                     else f"; intervals apart from the dual AE's (2 channels) for {', '.join(map(str, apart))} channels")
        parts.append(text)
    text = ". ".join(parts) + "."
    if table[["ci_low", "ci_high"]].isna().any().any():
        n = int(table["n_seeds"].min())
        text += (f" With {n} seed{'s' if n != 1 else ''} no interval is computed (fewer than {MIN_SEEDS_FOR_INTERVAL}), "
                 "so no difference between these counts of channels is tested: other seeds may pick another best.")
    return table, text


def channels_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`channels_reading`'s table as the page shows it: rounded, its columns named, and the interval
    columns left out when no row has an interval (fewer than three seeds) rather than shown as NaN."""
    shown = table.drop(columns=[c for c in ("ci_low", "ci_high") if table[c].isna().all()])
    return shown.round(1).rename(columns={"mean": "mean over seeds", "ci_low": "95 % low", "ci_high": "95 % high", "n_seeds": "seeds"})
