"""What every page's captions and sentences are made of: where the data come from
(:func:`data_caption`), numbers and lists as text, captions, and tables as a reader sees them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..experiments import ExperimentSpec


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


def intervals_overlap(intervals) -> bool:
    """Whether all ``intervals``, ``(low, high)`` pairs, share a point."""
    intervals = list(intervals)
    return max(low for low, _ in intervals) <= min(high for _, high in intervals)


def seeds_interval_text(n_seeds: int, where: str = "") -> str:
    """A caption's account of a mean over seeds and its interval, true to ``n_seeds``:
    ``"mean over 3 seeds and its 95 % interval over seeds and test clips"`` + ``where``, or, with fewer than
    :data:`~asdlib.intervals.MIN_SEEDS_FOR_INTERVAL` seeds, ``"mean over 2 seeds; no interval with fewer than 3 seeds"``."""
    from ..intervals import MIN_SEEDS_FOR_INTERVAL

    seeds = f"mean over {n_seeds} seed{'s' if n_seeds != 1 else ''}"
    if n_seeds >= MIN_SEEDS_FOR_INTERVAL:
        return f"{seeds} and its 95 % interval over seeds and test clips{where}"
    return f"{seeds}; no interval with fewer than {MIN_SEEDS_FOR_INTERVAL} seeds"
