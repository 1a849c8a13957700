"""The ``asdlib`` command line: simulate, download, run grids, show tables, score WAV files.

Exit codes: 0 success; 2 a user mistake (bad option, missing folder, invalid spec: one line on
stderr, no traceback); 130 interrupted (finished work is kept; run the same command to resume);
1 an unexpected error (with traceback: please report it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXAMPLES = """examples:
  asdlib run --profile quick                    # the book's default grid on simulated data
  asdlib table --profile quick                  # Table 1: ours beside the paper's
  asdlib run --profile paper --data-root ~/mimii   # the paper's settings on real MIMII
  asdlib simulate --out data/sim --n-normal 100 --n-abnormal 20
  asdlib download --root ~/mimii --machines fan --snr 0 --list
  asdlib fit --data-root ~/mimii --machine fan --model dual --mics 0 4 --alpha 0.5 --out fan.pt
  asdlib score --detector fan.pt clip1.wav clip2.wav
"""


class UserError(Exception):
    """A mistake of the user's: printed as one line, exit code 2."""


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.replace(",", " ").split()]


def _pair(text: str) -> list[int]:
    try:
        a, b = text.split("-")
        return [int(a), int(b)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"mic pair {text!r} must look like 0-4") from None


def add_spec_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("experiment (a profile, then overrides)")
    g.add_argument("--profile", default="quick", help="named profile: quick (default), paper or smoke")
    g.add_argument("--spec", type=Path, help="a YAML/JSON spec file (overrides --profile)")
    g.add_argument("--data-root", help="a MIMII folder; default: the embedded simulator")
    g.add_argument("--machines", nargs="+", help="machine types, e.g. fan valve")
    g.add_argument("--pairs", nargs="+", type=_pair, help="mic pairs for the dual AE, e.g. 0-4 2-6")
    g.add_argument("--alphas", nargs="+", type=float, help="alpha values, e.g. 0.1 0.5 2 10")
    g.add_argument("--seeds", nargs="+", type=int, help="training seeds, e.g. 0 1 2")
    g.add_argument("--epochs", type=int, help="training epochs")
    g.add_argument("--n-train", type=int, help="normal training clips per machine type")
    g.add_argument("--n-test", type=int, help="test clips per machine type (half abnormal)")
    g.add_argument("--device", choices=["auto", "cpu", "cuda"], help="training device (default auto)")
    g.add_argument("--no-fused", action="store_true", help="train models one at a time (slower, same results)")
    g.add_argument("--jobs", type=int, help="processes for simulation and features (default 2)")
    g.add_argument("--results", type=Path, default=Path("results"), help="parent folder of runs (default ./results)")


def spec_from_args(args):
    from .experiments import ExperimentSpec, profile

    overrides = {}
    for name, key in [("data_root", "data_root"), ("machines", "machines"), ("pairs", "mic_pairs"), ("alphas", "alphas"),
                      ("seeds", "seeds"), ("n_train", "n_train"), ("n_test", "n_test"), ("device", "device"), ("jobs", "n_jobs")]:
        value = getattr(args, name, None)
        if value is not None:
            overrides[key] = str(Path(value).expanduser().resolve()) if key == "data_root" else value
    if getattr(args, "epochs", None) is not None:
        overrides["config"] = {"epochs": args.epochs}
    if getattr(args, "no_fused", False):
        overrides["fused"] = False
    if args.spec is not None:
        base = ExperimentSpec.from_file(args.spec)
        if "config" in overrides:
            overrides["config"] = {**base.config, **overrides["config"]}
        return base.replace(**overrides)
    return profile(args.profile, **overrides)


def cmd_run(args) -> int:
    from .runner import run_experiment

    spec = spec_from_args(args)
    print(f"run {spec.run_id()}: {spec.n_cells()} cells, data: {'simulated' if spec.simulated else spec.data_root}", file=sys.stderr)
    store = run_experiment(spec, args.results, only=args.cell)
    status = "complete" if store.is_complete() else "partial (run again to finish)"
    print(f"results: {store.path} ({status})")
    return 0


def cmd_cells(args) -> int:
    from .runner import list_cells

    for cell in list_cells(spec_from_args(args)):
        print(cell)
    return 0


def cmd_table(args) -> int:
    import pandas as pd

    from .results import ResultsStore
    from .tables import compare_with_reported, table1_layout

    path = args.run if args.run is not None else args.results / spec_from_args(args).run_id()
    store = ResultsStore.open(path)
    metrics = store.metrics()
    if metrics.empty:
        raise UserError(f"{path} has no finished cell yet; run `asdlib run` first")
    comp = compare_with_reported(metrics)
    prov = store.read_json("provenance.json")
    print(f"{path}  data: {prov['data_source']}  seeds: {sorted(metrics['seed'].unique().tolist())}")
    if args.long:
        with pd.option_context("display.max_rows", None, "display.width", 200):
            print(comp.round(2).to_string(index=False))
        return 0
    cells = comp.assign(cell=comp.apply(lambda r: f"{r['ours']:.2f} ({r['reported']:.2f})" if pd.notna(r["reported"]) else f"{r['ours']:.2f}", axis=1))
    with pd.option_context("display.max_columns", None, "display.width", 250, "display.max_colwidth", 20):
        for score in cells["score"].unique():
            print(f"\n{score.upper()}: ours, mean over seeds (paper's reported value)")
            print(table1_layout(cells[cells["score"] == score], value="cell").to_string())
    return 0


def cmd_fit(args) -> int:
    from .config import Config
    from .data import scan_mimii, split_machine
    from .detector import AutoencoderDetector

    manifest = scan_mimii(args.data_root, machines=[args.machine])
    split = split_machine(manifest, args.machine, n_train=args.n_train, n_test=2, seed=0)
    det = AutoencoderDetector(args.model, tuple(args.mics) if args.mics else None, args.alpha, args.score,
                              Config(epochs=args.epochs), device=args.device)
    det.fit(split.train)
    det.save(args.out)
    print(f"saved {args.out}: {det.spec_.name}, threshold ({args.score}) {det.offset_:.4g}")
    return 0


def cmd_score(args) -> int:
    from .detector import AutoencoderDetector

    if not Path(args.detector).is_file():
        raise UserError(f"detector file {str(args.detector)!r} does not exist; make one with `asdlib fit`")
    det = AutoencoderDetector.load(args.detector, device=args.device, cache=None)
    if args.score:
        det.score = args.score
    scores = det.score_samples(args.wavs)
    decisions = (scores > det.offset_).astype(int)
    print(f"# {det.spec_.name}, score {det.score}, threshold {det.offset_:.6g}")
    for path, s, d in zip(args.wavs, scores, decisions):
        print(f"{path}\t{s:.6g}\t{'anomalous' if d else 'normal'}")
    return 0


def cmd_features(args) -> int:
    """The smallest end-to-end run: one clip -> the paper's input vectors."""
    from .config import Config
    from .data import add_audio_info, load_clip, scan_mimii
    from .features import InputSpec, clip_vectors, pair_inputs

    manifest = add_audio_info(scan_mimii(args.data_root))
    clip = manifest.iloc[0]
    audio = load_clip(clip["path"])
    specs = [InputSpec(args.mics[0]), *pair_inputs(*args.mics)]
    vectors = clip_vectors(audio, specs, Config())
    print(f"{len(manifest)} clips, machines {sorted(manifest['machine'].unique())}; first: {clip['relpath']}")
    print(f"audio {audio.shape} ({clip['samplerate']} Hz, {clip['duration_s']:.1f} s)")
    for spec, v in zip(specs[1:], vectors[1:]):
        print(f"{spec.name:>10}: vectors {v.shape}, min {v.min():.1f} dB, max {v.max():.1f} dB")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asdlib",
        description="Anomalous sound detection with spatial information: the companion of Luzón-Álvarez et al. (2025).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("simulate", help="generate a MIMII-like data set (see `asdlib simulate --help`)", add_help=False)
    sub.add_parser("download", help="download real MIMII archives from Zenodo (see `asdlib download --help`)", add_help=False)

    p = sub.add_parser("run", help="run (or resume) an experiment grid into a results folder")
    add_spec_arguments(p)
    p.add_argument("--cell", nargs="+", help="run only these cells (machine/seed/model, see `asdlib cells`)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("cells", help="list a spec's cells, one per line (to fan out on a scheduler)")
    add_spec_arguments(p)
    p.set_defaults(func=cmd_cells)

    p = sub.add_parser("table", help="Table 1: our numbers beside the paper's")
    add_spec_arguments(p)
    p.add_argument("--run", type=Path, help="a run folder (default: the one the spec options name)")
    p.add_argument("--long", action="store_true", help="long form with intervals and differences")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("fit", help="train one detector on a machine type's normal clips and save it")
    p.add_argument("--data-root", required=True, help="MIMII (or simulated) folder")
    p.add_argument("--machine", required=True)
    p.add_argument("--model", choices=["baseline", "dual", "multi"], default="dual")
    p.add_argument("--mics", nargs="+", type=int, help="microphones (default 0 for the baseline, 0 4 otherwise)")
    p.add_argument("--alpha", type=float)
    p.add_argument("--score", choices=["mse", "mahalanobis"], default="mse")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("score", help="score WAV files with a saved detector")
    p.add_argument("--detector", type=Path, required=True)
    p.add_argument("--score", choices=["mse", "mahalanobis"])
    p.add_argument("--device", default="auto")
    p.add_argument("wavs", nargs="+")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("features", help="print the input vectors' shapes for the first clip of a folder")
    p.add_argument("--data-root", required=True)
    p.add_argument("--mics", nargs=2, type=int, default=[0, 4])
    p.set_defaults(func=cmd_features)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("simulate", "download"):
        from importlib import import_module

        return import_module(f"asdlib.{argv[0]}").main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .data import DataError
    from .experiments import SpecError

    try:
        return args.func(args)
    except (UserError, SpecError, DataError, FileNotFoundError, ValueError) as err:
        print(f"asdlib {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nasdlib {args.command}: interrupted; finished work is kept, run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
