"""What the book's first pages (data, input vectors, training) compute, so their cells stay short.

:mod:`asdlib.book` resolves a page's parameters into a spec and a results store; this module turns a
spec, its data folder and its store into the clips, tables and long-form frames those pages show:
example clips and their audio players, the train/test split, loss curves over seeds, training times
and the decisions at the gamma threshold. :func:`glue_figure` hands a figure to MyST-NB's ``glue``
so a page can number and caption it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .modelspec import ModelSpec

__all__ = [
    "prepare",
    "load_data",
    "example_clips",
    "source_positions",
    "audio_players",
    "split_counts",
    "model_label",
    "loss_curves",
    "training_times",
    "decision_table",
    "flag_rates",
    "flag_sentence",
    "cell_threshold",
    "glue_figure",
    "captioned",
    "difference_level",
    "clip_inputs",
    "difference_sentence",
    "loss_change",
    "loss_sentence",
    "parse_overrides",
    "merge_parameters",
]


def prepare(spec) -> Path:
    """The data folder of ``spec``: the user's MIMII folder, or the simulated one (generated if missing)."""
    try:
        from .datasets import prepare_data
    except ImportError:
        from .runner import prepare_data
    return Path(prepare_data(spec, progress=False))


def load_data(profile: str | None = None, data_root: str | None = None, **parameters):
    """The spec a page's parameters describe, its data folder and the clips found there.

    ``parameters`` (e.g. ``machines``; None keeps the profile's value) and the fields of
    ``overrides`` (a dict or its JSON text, e.g. ``{"n_train": 50}``) go to :func:`asdlib.book.make_spec`.

    Returns
    -------
    spec : asdlib.experiments.ExperimentSpec
    root : pathlib.Path
    manifest : pandas.DataFrame
        One row per clip (:func:`asdlib.data.scan_mimii`) of the spec's machine types.
    """
    from .book import make_spec
    from .data import scan_mimii

    spec = make_spec(profile, data_root, **merge_parameters(parameters.pop("overrides", None), **parameters))
    root = prepare(spec)
    return spec, root, scan_mimii(root, machines=spec.machines)


def example_clips(manifest: pd.DataFrame, machine: str) -> pd.DataFrame:
    """A normal and an abnormal clip of one machine, from the same unit and SNR when there is one.

    Returns two rows (normal first) of ``manifest``, with the audio information
    (:func:`asdlib.data.add_audio_info`) added.

    Raises
    ------
    ValueError
        ``machine`` has no normal or no abnormal clip in ``manifest``.
    """
    from .data import add_audio_info

    clips = manifest[manifest["machine"] == machine].sort_values("relpath")
    for label in ("normal", "abnormal"):
        if not (clips["label"] == label).any():
            raise ValueError(f"machine {machine!r} has no {label} clip in the data folder; choose another machine")
    abnormal = clips[clips["label"] == "abnormal"]
    normal = clips[clips["label"] == "normal"]
    for _, ab in abnormal.iterrows():
        same = normal[(normal["machine_id"] == ab["machine_id"]) & (normal["snr_db"] == ab["snr_db"])]
        if len(same):
            return add_audio_info(pd.DataFrame([same.iloc[0], ab]).reset_index(drop=True))
    return add_audio_info(pd.DataFrame([normal.iloc[0], abnormal.iloc[0]]).reset_index(drop=True))


def source_positions(spec, root: Path, clip: pd.Series) -> dict[str, tuple[float, float]]:
    """Where the machine (and, for an abnormal simulated clip, its anomaly) sits, in metres (x, y).

    Simulated data: the positions the simulator wrote to ``metadata.csv``. Real MIMII publishes only
    the distance (50 cm, 10 cm for valves), drawn on the x axis and labelled nominal.
    """
    machine = clip["machine"]
    if not spec.simulated:
        d = 0.1 if machine == "valve" else 0.5
        return {f"{machine} (nominal, {100 * d:.0f} cm; MIMII gives no angle)": (d, 0.0)}
    meta = pd.read_csv(Path(root) / "metadata.csv")
    row = meta[meta["path"] == clip["relpath"]]
    row = row.iloc[0] if len(row) else meta[meta["machine"] == machine].iloc[0]
    out = {f"{machine} {row['machine_id']} (simulated position)": (row["machine_x"], row["machine_y"])}
    if "anomaly_x" in row and pd.notna(row["anomaly_x"]):
        out[f"anomaly: {row.get('anomaly_type', 'source')} (simulated)"] = (row["anomaly_x"], row["anomaly_y"])
    return out


def audio_players(clips: pd.DataFrame, mic: int = 0, origin: str = ""):
    """One IPython ``Audio`` player per clip (microphone ``mic``), all on one common level scale.

    The players are not normalised one by one, so a louder clip sounds louder. ``origin`` (e.g.
    ``"simulated"``) opens each label, so that a player says where its sound comes from.

    Returns
    -------
    list of (str, IPython.display.Audio)
        A label (origin, label, unit, SNR, file) and its player.
    """
    from IPython.display import Audio

    from .data import load_clip

    signals = [load_clip(row["path"], mics=[mic])[0] for _, row in clips.iterrows()]
    peak = max(float(np.abs(s).max()) for s in signals) or 1.0
    out = []
    for (_, row), s in zip(clips.iterrows(), signals):
        label = f"{origin + ' ' if origin else ''}{row['label']} — {row['machine']} {row['machine_id']}, {row['snr_db']:g} dB SNR, mic {mic} (`{row['relpath']}`)"
        out.append((label, Audio(s / peak, rate=int(row["samplerate"]), normalize=False)))
    return out


def split_counts(spec, manifest: pd.DataFrame) -> pd.DataFrame:
    """Clips per machine type and unit on each side of the paper's split (train normal, test normal/abnormal).

    Raises
    ------
    AssertionError
        A clip appears on both sides (the split would leak).
    """
    from .data import split_machine

    parts = []
    for m in spec.machines:
        s = split_machine(manifest, m, n_train=spec.n_train, n_test=spec.n_test,
                          anomalous_fraction=spec.anomalous_fraction, seed=spec.split_seed)
        parts += [s.train.assign(part="train"), s.test.assign(part="test")]
    split = pd.concat(parts)
    assert not split.duplicated("relpath").any(), "a clip is on both sides of the split"
    split["column"] = split["part"] + " " + split["label"]
    counts = split.pivot_table(index=["machine", "machine_id"], columns="column", values="relpath", aggfunc="count", fill_value=0)
    counts = counts.reindex(columns=[c for c in ("train normal", "test normal", "test abnormal") if c in counts.columns])
    counts.columns.name = None
    return counts.astype(int)


def _baseline_label(ms: ModelSpec) -> str:
    return "baseline (mean of channels)" if ms.source == "mean" else f"baseline (mic {ms.ref})"


def model_label(ms: ModelSpec) -> str:
    """``"baseline (mic 0)"``, ``"baseline (mean of channels)"`` or ``"dual 0-4, α=0.5"``: a model as the pages name it."""
    if ms.kind == "baseline":
        return _baseline_label(ms)
    alphas = ", ".join(f"{a:g}" for a in ms.alphas)
    return f"{ms.kind} {ms.mic_pair}, α={alphas}"


def _family(ms: ModelSpec) -> str:
    return _baseline_label(ms) if ms.kind == "baseline" else f"{ms.kind} AE, mics {ms.mic_pair}"


def loss_curves(store, machine: str) -> pd.DataFrame:
    """Loss per epoch of every model of one machine type, every seed, training and validation.

    Returns
    -------
    pandas.DataFrame
        Long form: model, family ("baseline (mic 0)", "dual AE, mics 0-4"), alpha, seed, epoch,
        split ("training"/"validation"), loss.
    """
    rows = []
    for ms in store.spec.model_specs():
        for seed in store.spec.seeds:
            h = store.history(machine, seed, ms.name)
            for split, key in (("training", "train_loss"), ("validation", "val_loss")):
                for epoch, loss in enumerate(h[key], start=1):
                    rows.append({"model": model_label(ms), "family": _family(ms), "alpha": ms.alpha, "seed": seed,
                                 "epoch": epoch, "split": split, "loss": float(loss)})
    return pd.DataFrame(rows)


def training_times(store) -> pd.DataFrame:
    """Seconds of training per grid (machine type x seed): its models, the total, and per model.

    A grid's models train together as one stacked computation (:func:`asdlib.fused.train_fused`),
    so only the grid's wall time exists; each of its cells records an equal share of it
    (``train_seconds``), which this table sums back. Index (machine, seed).
    """
    cells = pd.DataFrame(store.cells())
    out = cells.groupby(["machine", "seed"])["train_seconds"].agg(["count", "sum"])
    out["per model"] = out["sum"] / out["count"]
    return out.rename(columns={"count": "models", "sum": "total (s)", "per model": "per model (s)"}).round(2)


def decision_table(store) -> pd.DataFrame:
    """Precision, recall and F1 (%) of the "anomalous" decisions at the gamma threshold, per model.

    Mean over seeds and machine types; one row per model of the grid (only models that exist, in the
    grid's order), columns (score, metric).
    """
    m = store.metrics()
    dec = m[m["metric"].isin(["precision", "recall", "F1"])]
    specs = store.spec.model_specs()
    labels = {ms.name: model_label(ms) for ms in specs}
    name_of = {(ms.kind if ms.kind != "baseline" else "baseline", ms.mic_pair, ms.alpha): ms.name for ms in specs}
    key = [name_of.get((mo, mp if isinstance(mp, str) else "", None if pd.isna(a) else a)) for mo, mp, a in
           zip(dec["model"], dec["mic_pair"].fillna(""), dec["alpha"])]
    dec = dec.assign(name=key).dropna(subset=["name"])
    table = dec.pivot_table(index="name", columns=["score", "metric"], values="value_percent", aggfunc="mean")
    table = table.reindex([ms.name for ms in specs if ms.name in table.index])
    table = table.reindex(columns=[c for s in store.spec.scores for c in ((s, "precision"), (s, "recall"), (s, "F1")) if c in table.columns])
    table.index = [labels[n] for n in table.index]
    table.index.name = "model"
    return table.round(1)


def flag_rates(store) -> pd.DataFrame:
    """How often the gamma threshold flags a clip, per finished cell and score.

    Columns: machine, seed, model, score, percentile (the threshold's, e.g. 0.9), ``train flagged``
    (% of the model's training clips whose score exceeds the threshold) and ``normal test flagged``
    (% of the normal test clips decided anomalous: the false alarms).
    """
    from .threshold import GammaThreshold

    rows = []
    for meta in store.cells():
        machine, seed, model = meta["machine"], meta["seed"], meta["model"]
        train, test = store.train_scores(machine, seed, model), store.test_scores(machine, seed, model)
        normal = test[test["y"] == 0]
        for score, th in meta["thresholds"].items():
            rows.append({"machine": machine, "seed": seed, "model": model, "score": score, "percentile": th["percentile"],
                         "train flagged": 100 * float(GammaThreshold.from_dict(th).predict(train[score]).mean()),
                         "normal test flagged": 100 * float(normal[f"decision_{score}"].mean())})
    return pd.DataFrame(rows)


def flag_sentence(rates: pd.DataFrame) -> str:
    """What the threshold's percentile promises and what the normal test clips got, read off
    :func:`flag_rates` (means over models, seeds and machine types, and the range over cells)."""
    if rates.empty:
        return "No cell has finished, so no clip has been flagged yet."
    percentile = 100 * float(rates["percentile"].iloc[0])
    by_score = rates.groupby("score", sort=False)
    train = " and ".join(f"{g['train flagged'].mean():.1f} % with {score}" for score, g in by_score)
    test = " and ".join(f"{g['normal test flagged'].mean():.1f} % with {score} (from {g['normal test flagged'].min():.0f} "
                        f"to {g['normal test flagged'].max():.0f} % by cell)" for score, g in by_score)
    gap = rates["normal test flagged"].mean() - rates["train flagged"].mean()
    how = ("more than the training clips: normal clips a model was not fitted to score higher on the whole" if gap > 1
           else "about as many as the training clips" if gap >= -1 else "fewer than the training clips")
    return (f"The threshold is the {percentile:.0f}th percentile of a gamma distribution fitted to each model's training "
            f"scores, so about {100 - percentile:.0f} % of the training clips lie above it (here {train}). Of the normal "
            f"test clips it flags {test}, {how}. Recall says how many abnormal clips are flagged.")


def cell_threshold(store, machine: str, seed: int, model: str, score: str = "mse"):
    """Training scores, test scores and the fitted gamma threshold of one cell.

    Returns
    -------
    train : pandas.Series
    test : pandas.DataFrame
        Columns y (1 = abnormal) and one per score.
    threshold : dict
        shape, loc, scale, percentile, threshold.
    """
    import json

    meta = json.loads((store.cell_dir(machine, seed, model) / "cell.json").read_text())
    return store.train_scores(machine, seed, model)[score], store.test_scores(machine, seed, model), meta["thresholds"][score]


def glue_figure(name: str, fig) -> None:
    """Give ``fig`` to MyST-NB's ``glue`` under ``name`` (for a numbered ``{glue:figure}``) and close it.

    Closing keeps the inline backend from showing the figure a second time where the code cell is.
    """
    import matplotlib.pyplot as plt
    from myst_nb import glue

    glue(name, fig, display=False)
    plt.close(fig)


def captioned(frame: pd.DataFrame, caption: str, precision: int = 1):
    """``frame`` as a pandas Styler whose caption (the table's own header) says what it is and where from."""
    return frame.style.set_caption(caption).format(precision=precision).set_table_styles(
        [{"selector": "caption", "props": "caption-side: top; text-align: left; font-weight: normal; padding-bottom: 0.5em;"},
         {"selector": "th, td", "props": "padding: 0.2em 0.7em;"}])  # numbers in neighbouring columns stay apart


def difference_level(logmels: np.ndarray, config=None, split_hz: float = 1000.0) -> dict[str, float]:
    """Mean level (dB) of the difference channel relative to the reference: all bands, below and above ``split_hz``.

    ``logmels`` has shape (2, n_mels, n_frames): the reference's log-mel spectrogram, then the
    difference channel's. Opposite microphones record nearly the same low-frequency sound, so the
    difference is quietest there.
    """
    import librosa

    from .config import Config

    config = config or Config()
    centres = librosa.mel_frequencies(config.n_mels + 2, fmin=config.fmin, fmax=config.fmax or config.sr / 2)[1:-1]
    diff = (np.asarray(logmels[1]) - np.asarray(logmels[0])).mean(axis=1)  # per band
    low = centres < split_hz
    return {"all": float(diff.mean()), "low": float(diff[low].mean()), "high": float(diff[~low].mean()), "split_hz": split_hz}


def clip_inputs(spec, manifest: pd.DataFrame, machine: str, label: str, mic_pair):
    """The first clip (by file name) of one machine and label, as the dual AE's two inputs.

    Returns
    -------
    clip : pandas.Series
        Its manifest row.
    vectors : np.ndarray [shape=(2, n_vectors, 640)]
        Input vectors of the reference channel (mic ``mic_pair[0]``) and of the difference channel.
    logmels : np.ndarray [shape=(2, n_mels, n_frames)]
        Their log-mel spectrograms.
    """
    from .data import load_clip
    from .features import clip_vectors, input_waveforms, log_mel, pair_inputs

    rows = manifest[(manifest["machine"] == machine) & (manifest["label"] == label)].sort_values("relpath")
    if rows.empty:
        raise ValueError(f"no {label} clip of machine {machine!r} in the data folder; choose another machine or label")
    clip = rows.iloc[0]
    config, inputs = spec.model_config(), list(pair_inputs(*mic_pair))
    audio = load_clip(clip["path"])
    return clip, clip_vectors(audio, inputs, config), log_mel(input_waveforms(audio, inputs), config)


def difference_sentence(level: dict, mic_pair) -> str:
    """What :func:`difference_level` measured, as a page says it."""
    return (f"Against the reference, the difference channel (mics {mic_pair[0]} − {mic_pair[1]}) is {level['low']:+.1f} dB "
            f"in the mel bands under {level['split_hz'] / 1000:g} kHz and {level['high']:+.1f} dB above (mean over the clip).")


def loss_change(curves: pd.DataFrame) -> pd.DataFrame:
    """Per model and split, the change of the seed-mean loss from the first to the last epoch, in % (negative: it fell)."""
    mean = curves.groupby(["model", "split", "epoch"])["loss"].mean()
    first = mean.groupby(level=["model", "split"]).first()
    last = mean.groupby(level=["model", "split"]).last()
    return (100 * (last / first - 1)).unstack("split")


def loss_sentence(curves: pd.DataFrame, machine: str) -> str:
    """How much the validation and training losses of one machine type's models moved, as a page says it."""
    change = loss_change(curves)

    def span(col: str) -> str:
        lo, hi = change[col].min(), change[col].max()
        return f"{lo:+.1f} %" if round(lo, 1) == round(hi, 1) else f"{lo:+.1f} % to {hi:+.1f} %"

    verdict = "fell for every model" if (change["validation"] < 0).all() else "did not fall for every model"
    return (f"from the first to the last epoch the {machine} models' validation loss changed by {span('validation')} "
            f"(training loss: {span('training')}): it {verdict}")


from .book import merge_parameters, parse_overrides  # noqa: E402  (one parser of a page's parameters, re-exported here)
