"""The ``asdlib`` command line: simulate, download, run grids, show tables, score WAV files.

Every command is parsed here (one parser, one error convention). Exit codes: 0 success; 2 a user
mistake (bad option, missing folder, invalid spec, full disk: one line on stderr naming the file
or field and the fix, no traceback); 1 a failure that is not the user's input -- a broken download
(one line saying how to resume) or an unexpected error (with traceback: please report it);
130 interrupted (``run``, ``simulate`` and ``download`` keep what they finished: the same command resumes). Warnings and errors are
printed on their own lines, never on top of a progress bar.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import warnings
from pathlib import Path

EXAMPLES = """examples:
  asdlib run --profile book                     # the book's default grid on simulated data
  asdlib table --profile book                   # Table 1: ours beside the paper's
  asdlib run --profile quick                    # a fast look: undertrained models, near chance
  asdlib run --profile paper --data-root ~/mimii   # the paper's settings on real MIMII
  asdlib simulate --out data/sim --n-normal 100 --n-abnormal 20
  asdlib download --root ~/mimii --machines fan --snr 0 --list
  asdlib fit --data-root ~/mimii --machine fan --model dual --mics 0 4 --alpha 0.5 --out fan.pt
  asdlib score --detector fan.pt clip1.wav clip2.wav
"""


#: Fewest bootstrap replicates ``asdlib table --n-boot`` accepts: below it a 95 % interval's ends
#: rest on a handful of replicates.
MIN_BOOT = 100


class UserError(Exception):
    """A mistake of the user's: printed as one line, exit code 2."""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage mistake raises :class:`UserError` (one line) instead of printing the usage."""

    def error(self, message: str):
        raise UserError(f"{message} (see `{self.prog} --help`)")


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _device(text: str) -> str:
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"device {text!r} is not one of auto, cpu, cuda, cuda:N")


def _pair(text: str) -> list[int]:
    try:
        a, b = text.split("-")
        return [int(a), int(b)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"mic pair {text!r} must look like 0-4") from None


def add_spec_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("experiment (a profile, then overrides)")
    g.add_argument("--profile", default="book", help="named profile: book (default, what the book shows), quick, paper or smoke")
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
    g.add_argument("--results", type=Path, default=None,
                   help="parent folder of runs (default $ASDLIB_RESULTS, else results/ of the repository, where `make book` writes)")


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
    from .config import check_jobs
    from .runner import run_experiment

    spec = spec_from_args(args)
    check_jobs(spec.n_jobs, "--jobs" if args.jobs is not None or args.spec is None else f"n_jobs ({args.spec})")
    print(f"run {spec.run_id()}: {spec.n_cells()} cells, data: {'simulated' if spec.simulated else spec.data_root}", file=sys.stderr)
    if args.scheduler is None and args.cluster is None:  # the default: here, no Dask process
        store = run_experiment(spec, args.results, only=args.cell)
    else:
        from .distributed import DaskEngine, GridFailure

        with DaskEngine.from_options(args.scheduler, args.cluster, args.cluster_config) as engine:
            where = args.scheduler or f"{args.cluster} ({engine.client.scheduler.address})"
            print(f"dask: {where}" + (f", dashboard {engine.dashboard}" if engine.dashboard else ""), file=sys.stderr)
            try:
                store = run_experiment(spec, args.results, only=args.cell, engine=engine)
            except GridFailure as err:
                _close_progress_bars()
                for grid, (cells, error) in err.failures.items():
                    print(f"asdlib run: error: grid {grid} failed ({' '.join(cells)}): {_one_line(error)}", file=sys.stderr)
                print("asdlib run: the other grids finished; run the same command again to retry the failed ones", file=sys.stderr)
                return 1
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

    from .book import table1_frame
    from .results import ResultsStore
    from .tables import table1_layout

    if args.n_boot < MIN_BOOT:
        raise UserError(f"--n-boot {args.n_boot} is too few for a 95 % interval; give at least {MIN_BOOT} (default 1000)")
    path = args.run if args.run is not None else args.results / spec_from_args(args).run_id()
    if not (Path(path) / "spec.json").is_file():
        raise UserError(f"{path} is not a run folder (no spec.json); run `asdlib run` with the same options first, or pass --run")
    store = ResultsStore.open(path)
    if not store.is_complete():
        raise UserError(f"{path} is not complete; run `asdlib run` with the same options to finish it")
    frame = table1_frame(store, n_boot=args.n_boot)
    columns = ["machine", "metric", "score", "model", "mic_pair", "alpha", "ours", "ci_low", "ci_high", "n_seeds", "reported", "difference"]
    if args.format == "csv":
        out = frame[columns] if args.long else table1_layout(frame, value="ours")
        sys.stdout.write(out.round(4).to_csv(index=args.long is False))
        return 0
    prov = store.read_json("provenance.json")
    print(f"{path}  data: {prov['data_source']}  seeds: {store.spec.seeds}")
    if args.long:
        with pd.option_context("display.max_rows", None, "display.width", 200):
            print(frame[columns].round(2).to_string(index=False))
        return 0
    def cell(r):
        text = f"{r['ours']:.2f}" + (f" ({r['reported']:.2f})" if pd.notna(r["reported"]) else "")
        return text + (f" [{r['ci_low']:.1f}, {r['ci_high']:.1f}]" if pd.notna(r["ci_low"]) else "")
    cells = frame.assign(cell=frame.apply(cell, axis=1))
    with pd.option_context("display.max_columns", None, "display.width", 250, "display.max_colwidth", 30):
        for score in cells["score"].unique():
            print(f"\n{score.upper()}: ours, mean over seeds (paper's reported value) [95 % interval over seeds and test clips]")
            print(table1_layout(cells[cells["score"] == score], value="cell").to_string())
    return 0


def _check_output_file(path: Path, option: str) -> None:
    """A file to be written: not an existing folder, and its folder must exist."""
    if path.is_dir():
        raise UserError(f"{option} {str(path)!r} is a folder; give a file name such as {str(path / 'detector.pt')!r}")
    if not path.parent.is_dir():
        raise UserError(f"{option} {str(path)!r}: folder {str(path.parent)!r} does not exist; create it first")
    try:  # before any work: an unwritable folder is found now, not after training
        tempfile.TemporaryFile(dir=path.parent).close()
    except OSError as err:
        raise UserError(f"{option} {str(path)!r}: cannot write into folder {str(path.parent)!r} ({err.strerror}); "
                        "choose a folder you can write to") from None


def cmd_fit(args) -> int:
    from .config import Config
    from .data import scan_mimii, split_machine
    from .detector import AutoencoderDetector

    _check_output_file(args.out, "--out")
    if args.n_train < 3:
        raise UserError(f"--n-train {args.n_train} is too few: the threshold's gamma fit needs at least 3 normal clips")
    try:
        config = Config(epochs=args.epochs)
    except ValueError as err:
        raise UserError(f"--epochs: {err}") from None
    manifest = scan_mimii(args.data_root, machines=[args.machine])
    # fitting uses normal clips only: a training-only split (no abnormal clip needed)
    split = split_machine(manifest, args.machine, n_train=args.n_train, n_test=0, seed=0)
    alpha = {} if args.alpha is None else {"alpha": args.alpha}
    det = AutoencoderDetector(args.model, tuple(args.mics) if args.mics else None, score=args.score, config=config,
                              device=args.device, **alpha)
    det.fit(split.train)
    det.save(args.out)
    print(f"saved {args.out}: {det.spec_.name}, threshold ({args.score}) {det.offset_:.4g}")
    return 0


def cmd_score(args) -> int:
    from .detector import AutoencoderDetector

    if not Path(args.detector).is_file():
        raise UserError(f"detector file {str(args.detector)!r} does not exist; make one with `asdlib fit`")
    try:
        det = AutoencoderDetector.load(args.detector, device=args.device, cache=None)
    except RuntimeError as err:  # load_state_dict: missing keys or wrong shapes
        if "state_dict" not in str(err):
            raise
        raise UserError(f"{args.detector}: not a detector of this asdlib version ({str(err).splitlines()[0]}); "
                        "fit it again with `asdlib fit`") from None
    if args.score:
        det.score = args.score
    scores = det.score_samples(args.wavs)  # raises when the threshold is not a finite number
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


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``asdlib download``."""
    from .config import MACHINES

    parser.add_argument("--root", required=True, type=Path, help="data folder (archives/ and <snr>_dB_<machine>/)")
    parser.add_argument("--machines", nargs="+", metavar="MACHINE", help=f"any of {', '.join(MACHINES)} (default: all)")
    parser.add_argument("--snr", nargs="+", type=int, metavar="DB", help="any of -6 0 6 (default: all)")
    parser.add_argument("--base-url", help="download <base-url>/<file> instead of from Zenodo (a mirror)")
    parser.add_argument("--list", action="store_true", help="print the selected archives and their sizes, then exit")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--no-keep-archives", dest="keep_archives", action="store_false",
                        help="delete each zip file once it is unpacked")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def cmd_download(args) -> int:
    from .download import archives, download_mimii, listing

    rows = archives(args.machines, args.snr)
    if args.list:
        print(listing(rows))
        return 0
    size_gb = rows["bytes"].sum() / 1e9
    if not args.yes:
        if not _stdin_is_tty():
            raise UserError(f"this downloads {size_gb:.1f} GB; pass --yes to confirm when not running in a terminal")
        answer = input(f"Download {len(rows)} archive(s), {size_gb:.1f} GB (+ about {size_gb:.1f} GB "
                       f"unpacked) into {args.root}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing downloaded", file=sys.stderr)
            return 0
    folders = download_mimii(args.root, args.machines, args.snr, base_url=args.base_url,
                             keep_archives=args.keep_archives, progress=args.progress)
    for folder in folders:
        print(folder)
    return 0


def _add_simulate(sub, options: bool = True) -> None:
    """``asdlib simulate``: its options and its run function come from :mod:`asdlib.simulate.cli`.

    ``options=False`` only lists the command (importing the simulator takes seconds; other commands skip it).
    """
    help_ = "generate a MIMII-like data set (see `asdlib simulate --help`)"
    if not options:
        sub.add_parser("simulate", help=help_)
        return
    from .simulate import cli as sim

    p = sub.add_parser("simulate", help=help_, description=sim.DESCRIPTION, epilog=sim.EPILOG)
    sim.add_arguments(p)
    p.set_defaults(func=sim.run)


def build_parser(simulate_options: bool = True) -> argparse.ArgumentParser:
    """The ``asdlib`` parser, every command in it (``simulate_options=False``: without simulate's options)."""
    parser = _ArgumentParser(
        prog="asdlib",
        description="Anomalous sound detection with spatial information: the companion of Luzón-Álvarez et al. (2025).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_simulate(sub, simulate_options)

    p = sub.add_parser(
        "download", help="download real MIMII archives from Zenodo (see `asdlib download --help`)",
        description="Download and unpack the MIMII dataset (Zenodo record 3384388, CC BY-SA 4.0; 12 archives, "
                    "about 100 GB, as much again unpacked). Re-running resumes.")
    add_download_arguments(p)
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("run", help="run (or resume) an experiment grid into a results folder")
    add_spec_arguments(p)
    p.add_argument("--cell", nargs="+", help="run only these cells (machine/seed/model, see `asdlib cells`)")
    g = p.add_argument_group("more machines (Dask; pip install 'asdlib[cluster]')")
    g.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="send the grids to a running Dask scheduler (`dask scheduler`)")
    g.add_argument("--cluster", metavar="local:N|slurm", help="start a Dask cluster: local:N worker processes, or SLURM jobs")
    g.add_argument("--cluster-config", type=Path, metavar="YAML", help="--cluster slurm: queue, cores, memory, walltime, gpus, jobs")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("cells", help="list a spec's cells, one per line (to fan out on a scheduler)")
    add_spec_arguments(p)
    p.set_defaults(func=cmd_cells)

    p = sub.add_parser("table", help="Table 1: our numbers beside the paper's")
    add_spec_arguments(p)
    p.add_argument("--run", type=Path, help="a run folder (default: the one the spec options name)")
    p.add_argument("--long", action="store_true", help="long form with intervals and differences")
    p.add_argument("--format", choices=["text", "csv"], default="text", help="text (default) or csv (machine-readable)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates of the intervals (default 1000)")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("fit", help="train one detector on a machine type's normal clips and save it")
    p.add_argument("--data-root", required=True, help="MIMII (or simulated) folder")
    p.add_argument("--machine", required=True)
    p.add_argument("--model", choices=["baseline", "dual", "multi"], default="dual")
    p.add_argument("--mics", nargs="+", type=int, help="microphones (default 0 for the baseline, 0 4 otherwise)")
    p.add_argument("--alpha", type=_finite_float, help="weight of the difference channel (default 1)")
    p.add_argument("--score", choices=["mse", "mahalanobis"], default="mse")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--n-train", type=int, default=1000, help="normal clips to train on (default 1000)")
    p.add_argument("--device", type=_device, default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--out", type=Path, required=True, help="detector file to write, e.g. fan.pt")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("score", help="score WAV files with a saved detector")
    p.add_argument("--detector", type=Path, required=True)
    p.add_argument("--score", choices=["mse", "mahalanobis"])
    p.add_argument("--device", type=_device, default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("wavs", nargs="+")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("features", help="print the input vectors' shapes for the first clip of a folder")
    p.add_argument("--data-root", required=True)
    p.add_argument("--mics", nargs=2, type=int, default=[0, 4])
    p.set_defaults(func=cmd_features)
    return parser


def _close_progress_bars() -> None:
    """Close live tqdm bars so that the next line is printed on a line of its own."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        try:
            bar.close()
        except Exception:  # noqa: BLE001 - a bar that cannot close must not hide the error
            pass


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line each, written above any progress bar (``tqdm.write``)."""
    from tqdm import tqdm

    tqdm.write(f"asdlib: warning: {message}", file=sys.stderr)


# torch.save's messages when the disk fills up (its C++ writer hides the errno)
_TORCH_WRITE_FAILURES = ("basic_ios::clear", "file write failed", "unexpected pos")


def _no_space_message(err: BaseException, args) -> str | None:
    """"no space left on <path>" for a full disk (OSError ENOSPC, or torch's stream error), else None."""
    target = next((getattr(args, name) for name in ("out", "results", "root") if getattr(args, name, None)), "the disk")
    from .fileio import is_disk_full

    if is_disk_full(err):
        where = err.filename or target
        return f"no space left on {where}; free some space (or choose another folder) and run the same command again"
    if isinstance(err, RuntimeError) and any(text in str(err) for text in _TORCH_WRITE_FAILURES):
        where = target
        return (f"no space left on {where} (torch could not write: {str(err).splitlines()[0]}); "
                "free some space and run the same command again")
    return None


#: What an interrupted command leaves (the others write nothing, or print as they go).
INTERRUPTED = {
    "simulate": "finished clips are kept, run the same command to resume",
    "download": "finished archives are kept, run the same command to resume",
    "run": "finished cells are kept, run the same command to resume",
    "fit": "nothing was saved; run it again to fit from the start",
}


def main(argv: list[str] | None = None) -> int:
    """Run the ``asdlib`` command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = ("simulate", "download", "run", "cells", "table", "fit", "score", "features")
    prog = f"asdlib {argv[0]}" if argv and argv[0] in commands else "asdlib"
    # SpecError, DataError, CheckpointError, ... are ValueErrors: nothing to import before it is needed
    user_errors = (UserError, ValueError, FileNotFoundError)
    args = None
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            parser = build_parser(simulate_options=not argv or argv[0] not in commands or argv[0] == "simulate")
            args = parser.parse_args(argv)
            if not getattr(args, "func", None):
                parser.print_help()
                return 2
            if hasattr(args, "results") and args.results is None:
                from .experiments import default_results_dir

                args.results = default_results_dir()
            return args.func(args)
        except SystemExit as exit_:  # --help (or a command that exits by itself)
            return exit_.code if isinstance(exit_.code, int) else 0
        except KeyboardInterrupt:
            _close_progress_bars()
            print(f"{prog}: interrupted; {INTERRUPTED.get(prog.removeprefix('asdlib '), 'nothing was written')}", file=sys.stderr)
            return 130
        except (OSError, RuntimeError, *user_errors) as err:
            download = sys.modules.get("asdlib.download")
            if download is not None and isinstance(err, download.DownloadError):
                _close_progress_bars()  # network or checksum: not the user's input; the message says how to resume
                print(f"{prog}: error: {_one_line(err)}", file=sys.stderr)
                return 1
            message = _no_space_message(err, args)
            if message is None:
                if isinstance(err, user_errors):
                    message = str(err)
                elif isinstance(err, (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)):
                    message = f"{err.filename}: {err.strerror}" if err.filename else str(err)
                else:
                    raise  # unexpected: keep the traceback
            _close_progress_bars()
            print(f"{prog}: error: {_one_line(message)}", file=sys.stderr)
            return 2


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


if __name__ == "__main__":
    sys.exit(main())
