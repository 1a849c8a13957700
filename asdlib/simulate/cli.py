"""The ``asdlib simulate`` command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..config import MACHINES
from .anomalies import ANOMALY_JITTER_DB, ANOMALY_KINDS, DEFAULT_ANOMALY_STRENGTH
from .dataset import SettingsMismatchError, _check_dataset_args, _check_root, simulate_dataset
from .machines import MACHINE_IDS

__all__ = ["add_arguments", "run", "build_parser", "main"]


def _split_words(values: list[str] | None) -> list[str] | None:
    """``["fan,pump", "valve"]`` -> ``["fan", "pump", "valve"]``."""
    if values is None:
        return None
    return [w for v in values for w in str(v).split(",") if w]


def _parse_id(text: str) -> int:
    t = text.lower().removeprefix("id_")
    if not t.isdigit():
        raise ValueError(f"machine id {text!r} is not a number; use 0, 2, 4, 6 (or id_00 ...)")
    return int(t)


def _parse_float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None


#: How the messages of :func:`~asdlib.simulate.dataset._check_dataset_args` name the options.
OPTION_NAMES = {"n_normal": "--n-normal", "n_abnormal": "--n-abnormal", "snrs_db": "--snr", "duration_s": "--duration",
                "anomaly_strength": "--anomaly-strength", "n_jobs": "--jobs", "machines": "--machines", "machine_ids": "--ids",
                "anomaly_kinds": "--anomaly-kinds"}

DESCRIPTION = (
    "Generate a MIMII-like simulated data set (8 microphones, 16 kHz, 16-bit WAV) and "
    "metadata.csv. Resumable: existing clips are kept. Numbers computed from it are simulated, not MIMII."
)
EPILOG = "example: asdlib simulate --out data/sim --machines fan valve --snr -6 0 6 --n-normal 100 --n-abnormal 20"


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``asdlib simulate`` options to ``p`` (a parser or a sub-command's parser); returns it.

    Values are kept as given (strings for lists, floats for numbers); :func:`run` checks them.
    """
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--machines", nargs="+", action="extend", help=f"machine types (default: all of {', '.join(MACHINES)})")
    p.add_argument("--ids", nargs="+", action="extend", help="machine IDs (default: 0 2 4 6)")
    p.add_argument("--snr", nargs="+", action="extend", help="SNR levels in dB, e.g. --snr -6 0 6 (default: 0)")
    p.add_argument("--n-normal", type=int, default=1100, help="normal clips per machine type and SNR (default 1100)")
    p.add_argument("--n-abnormal", type=int, default=100, help="abnormal clips per machine type and SNR (default 100)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per clip (default 10)")
    p.add_argument("--seed", type=int, default=0, help="global seed (default 0)")
    p.add_argument("--anomaly-kinds", nargs="+", action="extend", help="spectral and/or spatial (default: both)")
    p.add_argument(
        "--anomaly-strength", type=float, default=DEFAULT_ANOMALY_STRENGTH,
        help=(f"anomaly level in dB (its power relative to the machine is this + a per-type offset, "
              f"±{ANOMALY_JITTER_DB:g} dB per clip; default {DEFAULT_ANOMALY_STRENGTH:g})"),
    )
    p.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def build_parser() -> argparse.ArgumentParser:
    """The stand-alone ``asdlib simulate`` argument parser."""
    return add_arguments(argparse.ArgumentParser(prog="asdlib simulate", description=DESCRIPTION, epilog=EPILOG))


def run(args: argparse.Namespace) -> int:
    """Run ``asdlib simulate`` with parsed arguments (from a parser set up by :func:`add_arguments`).

    Returns
    -------
    int
        0 on success; 2 after printing one line on stderr for a mistake in the arguments (an
        unknown machine, a negative count, a NaN anomaly strength, ``--out`` naming a file, ``--out``
        holding clips simulated with other settings, ...).
    """
    try:
        snrs = [_parse_float(s, "SNR") for s in _split_words(args.snr) or ["0"]]
        ids = [_parse_id(i) for i in _split_words(args.ids) or [str(i) for i in MACHINE_IDS]]
        kwargs = dict(
            machines=_split_words(args.machines) or list(MACHINES), machine_ids=ids, snrs_db=snrs,
            n_normal=args.n_normal, n_abnormal=args.n_abnormal, duration_s=args.duration, seed=args.seed,
            anomaly_kinds=_split_words(args.anomaly_kinds) or list(ANOMALY_KINDS),
            anomaly_strength=args.anomaly_strength, n_jobs=args.jobs,
        )
        _check_dataset_args(*(kwargs[k] for k in (
            "machines", "machine_ids", "snrs_db", "n_normal", "n_abnormal", "duration_s", "anomaly_kinds", "n_jobs",
            "anomaly_strength")), names=OPTION_NAMES)
        out = Path(args.out).expanduser()
        _check_root(out, "--out")
    except ValueError as err:
        print(f"asdlib simulate: error: {err}", file=sys.stderr)
        return 2
    try:
        meta = simulate_dataset(out, progress=not args.quiet, **kwargs)
    except SettingsMismatchError as err:
        print(f"asdlib simulate: error: {err}", file=sys.stderr)
        return 2
    counts = meta["label"].value_counts()
    simulated = meta.attrs.get("simulated", len(meta))
    fresh = "" if simulated == len(meta) else f", {simulated} simulated now and {len(meta) - simulated} already there"
    print(
        f"{len(meta)} clips ({counts.get('normal', 0)} normal, {counts.get('abnormal', 0)} abnormal{fresh}) in {out}; "
        f"metadata: {out / 'metadata.csv'} (simulated data, not MIMII)"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``asdlib simulate`` from a command line; returns 0, or 2 (one line on stderr) for a mistake."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its message (or the help)
        return int(exit_.code or 0)
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
