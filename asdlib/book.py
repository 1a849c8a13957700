"""The book's layer: what a notebook page calls, so its code cells stay a few lines long.

A page's parameters cell holds papermill parameters; :func:`load_run` turns them into a spec and a
finished results store (running or resuming the grid when needed). The build decides the profile and
the data for every page at once: ``make book PROFILE=paper DATA_ROOT=~/mimii`` sets the environment
variables :data:`PROFILE_ENV` and :data:`DATA_ROOT_ENV`, which a page's ``profile = None`` and
``data_root = None`` defer to. Papermill passes ``-p machines '["fan"]'`` as a string; list
parameters accept JSON or YAML text.

The other functions compute what pages show and say: where the numbers come from
(:func:`data_caption`), Table 1 with intervals (:func:`table1_frame`, :func:`table1_cell_text`), the
best dual configuration against the baseline (:func:`best_dual_gain`), AUCs per anomaly kind
(:func:`auc_by_anomaly_kind`), and sentences read off those results.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .experiments import ExperimentSpec, default_results_dir, spec_from_parameters

PROFILE_ENV = "ASDLIB_PROFILE"
DATA_ROOT_ENV = "ASDLIB_DATA_ROOT"
DEFAULT_PROFILE = "book"
LIST_PARAMETERS = ("machines", "mic_pairs", "alphas", "seeds", "models", "pairs")

__all__ = [
    "build_profile",
    "build_data_root",
    "parse_list",
    "make_spec",
    "load_run",
    "data_caption",
    "table1_frame",
    "table1_cell_text",
    "average_row_gap",
    "best_dual_gain",
    "auc_by_anomaly_kind",
    "signed",
]


def build_profile(profile: str | None = None) -> str:
    """``profile`` if given, else ``$ASDLIB_PROFILE``, else ``"book"``."""
    return profile or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE


def build_data_root(data_root: str | None = None) -> str | None:
    """``data_root`` if given, else ``$ASDLIB_DATA_ROOT`` (empty: the simulator), else None."""
    value = data_root if data_root is not None else os.environ.get(DATA_ROOT_ENV) or None
    return str(Path(value).expanduser()) if value else None


def parse_list(value: Any, name: str = "parameter") -> list | None:
    """A list parameter as given by Python, or as the JSON/YAML text papermill passes (``'["fan"]'``).

    A bare word (``fan``) or comma-separated words (``fan,valve``) become a list of words.

    Raises
    ------
    ValueError
        The text is not a list (nor words), naming the parameter.
    """
    if value is None or isinstance(value, (list, tuple)):
        return None if value is None else list(value)
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ValueError(f"{name}={value!r} is not a list; write it as JSON, e.g. '[\"fan\", \"valve\"]' ({err})") from None
        if isinstance(parsed, list):
            return parsed
        if isinstance(parsed, str):
            return [w.strip() for w in parsed.split(",") if w.strip()]
        if isinstance(parsed, (int, float)):
            return [parsed]
    raise ValueError(f"{name}={value!r} is not a list; write it as JSON, e.g. '[\"fan\", \"valve\"]'")


def parse_overrides(overrides: Any) -> dict:
    """A page's ``overrides`` parameter as a dict: a dict, None, or the JSON/YAML text papermill's ``-p`` passes.

    Raises
    ------
    ValueError
        The text is not a mapping of spec fields.
    """
    if overrides is None:
        return {}
    if isinstance(overrides, str):
        try:
            overrides = yaml.safe_load(overrides) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"overrides={overrides!r} is not a mapping; write it as JSON, e.g. '{{\"n_train\": 50}}' ({err})") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"overrides={overrides!r} is not a mapping of spec fields; e.g. '{{\"n_train\": 50}}'")
    return dict(overrides)


def merge_parameters(overrides: Any = None, **named: Any) -> dict:
    """A page's named parameters over its ``overrides``: None values dropped (they keep the profile's).

    ``merge_parameters('{"n_train": 3}', machines=["fan"], epochs=None) == {"n_train": 3, "machines": ["fan"]}``.
    """
    return {**parse_overrides(overrides), **{k: v for k, v in named.items() if v is not None}}


def make_spec(profile: str | None = None, data_root: str | None = None, overrides: Any = None, **parameters: Any) -> ExperimentSpec:
    """The spec a page's parameters describe: named parameters (None keeps the profile's value) over
    ``overrides`` (any other spec field; a dict or its JSON text)."""
    parameters = merge_parameters(overrides, **parameters)
    for key in LIST_PARAMETERS:
        if key in parameters:
            parameters[key] = parse_list(parameters[key], key)
    if parameters.get("device") is None:
        parameters.pop("device", None)
    return spec_from_parameters(build_profile(profile), data_root=build_data_root(data_root), **parameters)


def page_machine(machine: str | None, spec: ExperimentSpec) -> str:
    """The machine type a data page shows: its ``machine`` parameter, or the first of ``spec.machines``
    when that is None.

    Raises
    ------
    ValueError
        ``machine`` is not among the spec's machine types, in one line naming both parameters and the fix.
    """
    if machine is None:
        return spec.machines[0]
    if machine not in spec.machines:
        raise ValueError(f"machine={machine!r} is not among machines {list(spec.machines)}: the page shows a clip of one of "
                         f"them; choose one, e.g. -p machine {spec.machines[0]}, or add {machine} to machines")
    return machine


def load_run(profile: str | None = None, data_root: str | None = None, results_dir: str | Path | None = None,
             overrides: Any = None, progress: bool = False, **parameters: Any):
    """The spec of a page's parameters and its finished results store.

    Runs (or resumes) the grid when some cell is missing; a build that ran the experiment first finds
    every cell done and returns at once.

    Returns
    -------
    spec : ExperimentSpec
    store : asdlib.results.ResultsStore
    """
    from .runner import run_experiment

    spec = make_spec(profile, data_root, overrides, **parameters)
    store = run_experiment(spec, results_dir or default_results_dir(), progress=progress)
    return spec, store


def data_caption(spec: ExperimentSpec) -> str:
    """Where a table's or figure's numbers come from, in one line.

    Examples: ``"simulated data (asdlib.simulate, not MIMII), book profile: 60 training + 320 test
    clips of 10 s per machine type at 0 dB SNR, 5 epochs, batch 64, 3 seeds"`` or ``"real MIMII
    recordings (/data/mimii), paper profile: ..."`` (the SNR levels when the spec chooses some).
    """
    config = spec.model_config()
    if spec.simulated:
        sim = spec.simulator_settings()
        source = "simulated data (asdlib.simulate, not MIMII)"
        length = f" of {sim['duration_s']:g} s"
        snrs = sim["snrs_db"] if spec.snrs_db is None else spec.snrs_db
    else:
        source = f"real MIMII recordings ({spec.data_root})"
        length = ""
        snrs = spec.snrs_db  # None: every SNR folder found
    at = "" if snrs is None else f" at {and_join(f'{float(v):g}' for v in snrs)} dB SNR"
    seeds = len(spec.seeds)
    return (f"{source}, {spec.profile} profile: {spec.n_train} training + {spec.n_test} test clips{length} per machine type{at}, "
            f"{config.epochs} epochs, batch {config.batch_size}, {seeds} seed{'s' if seeds != 1 else ''}")


def score_name(score: str) -> str:
    """``"MSE"`` / ``"Mahalanobis"``: a score's name as a sentence prints it."""
    return {"mse": "MSE", "mahalanobis": "Mahalanobis"}.get(score, score)


def signed(value: float, decimals: int = 1) -> str:
    """``+4.3`` / ``-1.0`` / ``0.0``: a difference as a page prints it."""
    text = f"{value:+.{decimals}f}"
    return text.replace("-0." + "0" * decimals, "0." + "0" * decimals).replace("+0." + "0" * decimals, "0." + "0" * decimals)


def table1_frame(store, n_boot: int = 1000) -> pd.DataFrame:
    """Table 1 in long form: ours (mean over seeds) with its interval beside the reported value.

    Columns: machine, metric, score, model, mic_pair, alpha, ours, ci_low, ci_high, n_seeds,
    seed_values, reported, difference, best (True for the highest "ours" per machine, metric and
    score, the baseline included: the paper's bold cell; every cell of a tie).
    """
    from .tables import compare_with_reported, interval_summary

    from .tables import MEAN_INPUT

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
    from .metrics import harmonic_mean
    from .tables import KEY

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
    from .tables import is_channel_baseline

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


def auc_by_anomaly_kind(store, kinds: tuple = ("spectral", "spatial")) -> pd.DataFrame:
    """AUC (%) of every cell against each anomaly kind alone (simulated data: its metadata has the kind).

    Returns long form: model (name), kind, mic_pair, alpha, machine, seed, anomaly, score, AUC.
    """
    from .metrics import roc_auc

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


def share(n: int, total: int) -> str:
    """``"3 of 4"``: a count as a page prints it."""
    return f"{n} of {total}"


def mean_interval_text(row) -> str:
    """``"77.4 [71.6, 82.5]"``: a row's ``mean`` and, where there is one, its interval (``ci_low``,
    ``ci_high``), to 0.1; a no-break space inside the brackets, so a narrow cell wraps before them."""
    text = f"{row['mean']:.1f}"
    return text + (f" [{row['ci_low']:.1f},\u00a0{row['ci_high']:.1f}]" if pd.notna(row["ci_low"]) else "")


def finite(values) -> np.ndarray:
    """The finite values of an array-like, as float."""
    v = np.asarray(values, dtype=float)
    return v[np.isfinite(v)]


def caption(label: str, text: str, spec: ExperimentSpec | None = None):
    """A numbered caption under a table or figure, with the data's origin: Markdown for ``display``.

    ``caption("Figure 5.1", "AUC against α, MSE score.", spec)`` gives
    "**Figure 5.1.** AUC against α, MSE score. *Data: simulated data (...), book profile: ...*".
    """
    from IPython.display import Markdown

    origin = f" *Data: {data_caption(spec)}.*" if spec is not None else ""
    return Markdown(f"**{label}.** {text}{origin}")


def table1_caption(score: str, spec: ExperimentSpec, reported: bool = True) -> str:
    """The caption text of one score's Table 1, true to the run: what a cell holds with this many seeds,
    and, when the run leaves out some of the paper's machine types, what its Average row is over
    (``reported``: the table shows the paper's values in parentheses)."""
    from .intervals import MIN_SEEDS_FOR_INTERVAL

    n = len(spec.seeds)
    under = ("the 95 % interval over seeds and test clips under it" if n >= MIN_SEEDS_FOR_INTERVAL else
             f"the seeds' values under it, no interval with fewer than {MIN_SEEDS_FOR_INTERVAL} seeds" if n > 1 else "one seed")
    text = (f"{score.upper()} score: ours, the mean over {n} seed{'s' if n != 1 else ''} ({under})"
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
             f"baseline trained on the average of the 8 channels, as the DCASE 2023 code would load MIMII (see the Choices page); "
             f"it is left out of the bold cells.")
    return text


OPPOSITE_PAIRS = [[0, 4], [1, 5], [2, 6], [3, 7]]
CHANNEL_SETS = {2: [4], 4: [4, 2, 6], 8: [1, 2, 3, 4, 5, 6, 7]}


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
    from .config import N_MICS

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


#: How a table shows the library's field names in its headers.
DISPLAY_NAMES = {"mic_pair": "mics", "alpha": "α", "n_configs": "configurations compared"}


def for_display(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy for display: truth values read "yes"/"no"/"–" (:func:`yes_no`) and the library's field
    names in the headers (``mic_pair``, ``alpha``) read as a page writes them (:data:`DISPLAY_NAMES`)."""
    out = yes_no(frame).rename(columns=DISPLAY_NAMES)
    names = lambda axis: [DISPLAY_NAMES.get(n, n) for n in axis.names]  # noqa: E731
    out.index = out.index.set_names(names(out.index))
    out.columns = out.columns.set_names(names(out.columns))
    return out


def yes_no(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy for display in which every column of truth values (booleans, possibly missing) reads
    "yes", "no" or "–" instead of Python's ``True``/``False``/``<NA>``; other columns are unchanged."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        known = values[values.notna()]
        if len(known) and all(isinstance(v, (bool, np.bool_)) for v in known):
            out[column] = ["–" if pd.isna(v) else ("yes" if v else "no") for v in values]
    return out


def and_join(items) -> str:
    """``"2, 4 and 8"``: items as text, the last two joined by "and"."""
    words = [str(i) for i in items]
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


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
    from .modelspec import ModelSpec

    channel_sets = parse_channel_sets(channel_sets)
    models = [ModelSpec.baseline(0).to_dict()]
    models += [ModelSpec(0, tuple(o), (alpha / len(o),) * len(o)).to_dict() for o in channel_sets.values()]
    return make_spec(profile, data_root, machines=parse_list(machines, "machines"), models=models,
                     seeds=parse_list(seeds, "seeds"), **parameters)


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


def build_specs(profile: str | None = None, data_root: str | None = None) -> list[ExperimentSpec]:
    """Every grid the book's pages read with their default parameters: Table 1's first."""
    return [make_spec(profile, data_root), pairs_spec(profile, data_root), channels_spec(profile, data_root),
            *leak_specs(profile, data_root).values()]


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


def figure5_reading(summary: pd.DataFrame, score: str = "mse", metric: str = "AUC") -> tuple[pd.DataFrame, str]:
    """What Figure 5 shows, per machine type: the best pair, and whether each pair has an α above the baseline.

    Returns a table (one row per machine: baseline, best value and α per pair, the best pair, how
    many pairs have an α above the baseline, and whether that α's interval lies wholly above the
    baseline's) and a sentence read off it.
    """
    from .tables import is_channel_baseline

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
                    "pairs' best intervals overlap": (_intervals_overlap([(x["ci_low"], x["ci_high"]) for x in tops])
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


def _intervals_overlap(intervals) -> bool:
    """Whether all ``intervals``, ``(low, high)`` pairs, share a point."""
    intervals = list(intervals)
    return max(low for low, _ in intervals) <= min(high for _, high in intervals)


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


def seed_spread(metrics: pd.DataFrame, metric_names=("AUC", "pAUC")) -> pd.DataFrame:
    """How far one run moves between training seeds: per cell, the range (max - min over seeds) in points."""
    from .tables import KEY

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
    from .book_data import model_label
    from .intervals import MIN_SEEDS_FOR_INTERVAL
    from .metrics import paired_bootstrap_auc_difference, roc_auc

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
    from .intervals import MIN_SEEDS_FOR_INTERVAL

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
    from .metrics import delong_test

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
    from .intervals import MIN_SEEDS_FOR_INTERVAL

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


def pair_gains_towards_machines(pairs=OPPOSITE_PAIRS, band_hz=(100.0, 8000.0), floor_db: float = -60.0) -> pd.DataFrame:
    """Per simulated machine unit (indexed by machine and id): its azimuth and distance, and each pair's mean gain (dB) towards it.

    A pair exactly broadside to a unit cancels it completely (an exact null, -inf dB in theory); such
    gains are shown as ``floor_db``.
    """
    from . import simulate
    from .spatial import band_gain_db

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
    from .sweep import CANCELS_DB

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


def channels_reading(summary: pd.DataFrame, score: str, metric: str = "AUC") -> tuple[pd.DataFrame, str]:
    """The more-microphones curve as a table (channels -> mean and interval) and a sentence read off it
    (saying so when there is no interval to test a difference with)."""
    from .intervals import MIN_SEEDS_FOR_INTERVAL

    s = summary[(summary["score"] == score) & (summary["metric"] == metric) & (summary["machine"] != "average")].copy()
    s["channels"] = s["mic_pair"].map(lambda p: 1 if p == "" else len(str(p).split("-")))
    table = s.groupby(["machine", "channels"])[["mean", "ci_low", "ci_high", "n_seeds"]].first()
    parts = []
    for machine, t in table.groupby(level="machine"):
        t = t.droplevel("machine")
        curve = " → ".join(f"{v:.1f}" for v in t["mean"])
        best_n = int(t["mean"].idxmax())
        text = f"{machine}: {metric} ({score.upper()}) {curve} % for {', '.join(str(n) for n in t.index)} channels; best with {best_n}"
        if 2 in t.index and t[["ci_low", "ci_high"]].notna().all().all():
            dual_low, dual_high = t.loc[2, "ci_low"], t.loc[2, "ci_high"]
            apart = [n for n in t.index if n > 2 and not _intervals_overlap([(t.loc[n, "ci_low"], t.loc[n, "ci_high"]),
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


def seeds_interval_text(n_seeds: int, where: str = "") -> str:
    """A caption's account of a mean over seeds and its interval, true to ``n_seeds``:
    ``"mean over 3 seeds and its 95 % interval over seeds and test clips"`` + ``where``, or, with fewer than
    :data:`~asdlib.intervals.MIN_SEEDS_FOR_INTERVAL` seeds, ``"mean over 2 seeds; no interval with fewer than 3 seeds"``."""
    from .intervals import MIN_SEEDS_FOR_INTERVAL

    seeds = f"mean over {n_seeds} seed{'s' if n_seeds != 1 else ''}"
    if n_seeds >= MIN_SEEDS_FOR_INTERVAL:
        return f"{seeds} and its 95 % interval over seeds and test clips{where}"
    return f"{seeds}; no interval with fewer than {MIN_SEEDS_FOR_INTERVAL} seeds"


def channels_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`channels_reading`'s table as the page shows it: rounded, its columns named, and the interval
    columns left out when no row has an interval (fewer than three seeds) rather than shown as NaN."""
    shown = table.drop(columns=[c for c in ("ci_low", "ci_high") if table[c].isna().all()])
    return shown.round(1).rename(columns={"mean": "mean over seeds", "ci_low": "95 % low", "ci_high": "95 % high", "n_seeds": "seeds"})


KIND_GAP_POINTS = 2.0
"""Smallest mean difference (points) between the gains on spatial and on spectral anomalies that
:func:`anomaly_kind_verdict` reads as a direction."""

CHANCE_AUC = 50.0
"""AUC (%) of a detector that ranks at random."""

CHANCE_MARGIN_POINTS = 2.0
"""A detector whose mean AUC is at most :data:`CHANCE_AUC` plus this many points does not beat chance
on the Spatial-versus-spectral page (:func:`at_chance`)."""


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


def training_projection(spec: ExperimentSpec, results_dir: str | Path | None = None) -> pd.DataFrame:
    """Training seconds of a finished run, and the paper profile's training time projected from them.

    A fused group's models share its wall time (each cell records its share), so the sum over cells is
    the total. Time is taken as proportional to training vectors x epochs x models x seeds x machine
    types, as :func:`grid_cost_projection` scales a grid's training; the paper's clips are 10 s.
    """
    import json

    from .experiments import profile
    from .features import n_vectors

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
    from .intervals import MIN_SEEDS_FOR_INTERVAL

    if not intervals or any(np.isnan(np.asarray(pair, dtype=float)).any() for pair in intervals):
        return (f"with {n_seeds} seed{'s' if n_seeds != 1 else ''} no interval is computed (fewer than {MIN_SEEDS_FOR_INTERVAL}), so "
                "this comparison cannot tell a leak effect from the seeds' and test clips' spread; the split by recording stays the correct one")
    if all(_intervals_overlap(pair) for pair in intervals):
        return ("the intervals overlap in every case, so this comparison cannot show a leak effect at this size (an overlap does not "
                "show that there is none); the split by recording stays the correct one")
    return "in some cases the intervals are apart: the leak changes the result"


def leak_comparison(stores: dict) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The Choices page's split comparison: twins across each split, the metrics both ways, a sentence.

    ``stores`` maps ``"recording"`` and ``"clip"`` to finished stores of :func:`leak_specs`.
    """
    from .tables import interval_summary

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
    from .tables import MEAN_INPUT, interval_summary, is_channel_baseline

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
             + (", and its Average AUC differs by " + ", ".join(f"{signed(v)} points ({sc.upper()})" for sc, v in avg.items()) if len(avg) else "")
             + ". " + reason)
    return table, text


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

    from .experiments import profile
    from .features import n_vectors

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


def dipole_gains_at(freq_hz: float = 200.0, pair=(0, 4)) -> dict[str, str]:
    """What the dipole page says about one frequency: gains (dB re one microphone) on axis and 10° off
    broadside, far and 10 cm away, and whether broadside is an exact null. Keys are glue names."""
    from .spatial import difference_response

    def gain_db(az: float, distance: float | None) -> float:
        return float(20 * np.log10(difference_response(np.array([freq_hz]), np.array([az]), pair, distance=distance)[0, 0]))

    exact_null = difference_response(np.array([freq_hz]), np.array([90.0]), pair, distance=None)[0, 0] < 1e-9
    return {"g200_0_far": f"{gain_db(0.0, None):.0f}", "g200_80_far": f"{gain_db(80.0, None):.0f}", "g200_80_near": f"{gain_db(80.0, 0.1):.0f}",
            "null_text": "exactly zero (a null: both microphones receive the same signal)" if exact_null else "not exactly zero"}
