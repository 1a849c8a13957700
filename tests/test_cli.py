"""The ``asdlib`` command line: one parser, and one line + exit code 2 for every bad input (issue 14.8).

Each bad input is checked for the exact line on stderr, the exit code and the absence of a
traceback; faults (a full disk, a damaged checkpoint) are produced for real (``/dev/full``, a
checkpoint with a key removed or a tensor of the wrong shape).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tqdm import tqdm

from asdlib import cli
from asdlib.cli import main

from .conftest import tone_clip, write_wav


@pytest.fixture(scope="module")
def normal_only(tmp_path_factory) -> Path:
    """Issue 14.9: a folder of normal clips only, no SNR folder (machine folder under the root)."""
    root = tmp_path_factory.mktemp("normal_only")
    rng = np.random.default_rng(0)
    for mid in ("id_00", "id_02"):
        for i in range(4):
            write_wav(root / "fan" / mid / "normal" / f"{i:08d}.wav", tone_clip(rng, n=8192))
    return root


@pytest.fixture(scope="module")
def detector_file(normal_only, tmp_path_factory) -> Path:
    """``asdlib fit`` on normal clips only: 8 normal clips, no abnormal one, trains and saves."""
    out = tmp_path_factory.mktemp("fit") / "fan.pt"
    assert main(["fit", "--data-root", str(normal_only), "--machine", "fan", "--model", "dual", "--epochs", "1",
                 "--n-train", "8", "--device", "cpu", "--out", str(out)]) == 0
    return out


def _run(capsys, argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    return err[:-1]


def test_fit_uses_normal_clips_only(detector_file, normal_only, capsys):
    wavs = sorted(str(p) for p in normal_only.rglob("*.wav"))[:2]
    assert main(["score", "--detector", str(detector_file), "--device", "cpu", *wavs]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("# dual-0-4-a1") and len(lines) == 3
    assert [line.split("\t")[0] for line in lines[1:]] == wavs


def test_bad_inputs_give_one_line_and_exit_2(tmp_path, normal_only, capsys):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("machines: [fan\n  bad: :\n")
    string_n = tmp_path / "n8.yaml"
    string_n.write_text('profile: smoke\nn_train: "8"\n')
    string_machines = tmp_path / "fan.yaml"
    string_machines.write_text("profile: smoke\nmachines: fan\n")
    bool_seed = tmp_path / "seed.yaml"
    bool_seed.write_text("profile: smoke\nseeds: [true]\n")
    folder = tmp_path / "outdir"
    folder.mkdir()
    fit = ["fit", "--data-root", normal_only, "--machine", "fan", "--n-train", "4", "--epochs", "1", "--device", "cpu"]
    cases = [
        (["cells", "--spec", bad_yaml],
         f"asdlib cells: error: {bad_yaml}: not valid YAML (expected ',' or ']', but got ':' at line 2, column 6); "
         "fix the file or start from `asdlib run --profile`"),
        (["cells", "--spec", string_n], "asdlib cells: error: n_train must be an integer (not a string or a boolean), got '8'"),
        (["cells", "--spec", string_machines],
         "asdlib cells: error: machines must be a list of machine types, e.g. [fan] (not a bare string), got 'fan'"),
        (["cells", "--spec", bool_seed], "asdlib cells: error: seeds must be a list of integers, e.g. [0, 1], got [True]"),
        (["cells", "--profile", "smoke", "--epochs", "0"],
         "asdlib cells: error: config overrides: epochs must be an integer >= 1, got 0"),
        (["cells", "--profile", "smoke", "--alphas", "nan"], "asdlib cells: error: alpha nan must be a finite number >= 0"),
        ([*fit, "--alpha", "inf", "--out", tmp_path / "x.pt"],
         "asdlib fit: error: argument --alpha: 'inf' is not a finite number (see `asdlib fit --help`)"),
        ([*fit, "--device", "tpu", "--out", tmp_path / "x.pt"],
         "asdlib fit: error: argument --device: device 'tpu' is not one of auto, cpu, cuda, cuda:N (see `asdlib fit --help`)"),
        ([*fit, "--out", folder],
         f"asdlib fit: error: --out {str(folder)!r} is a folder; give a file name such as {str(folder / 'detector.pt')!r}"),
        ([*fit, "--epochs", "-3", "--out", tmp_path / "x.pt"], "asdlib fit: error: --epochs: epochs must be an integer >= 1, got -3"),
        (["fit", "--data-root", normal_only, "--machine", "fan", "--out", tmp_path / "x.pt"],
         "asdlib fit: error: machine type 'fan' has 8 normal and 0 abnormal clip(s); n_train=1000, n_test=0 needs 1000 normal. "
         "The largest valid split with the same proportions is n_train=8, n_test=0."),
        (["download", "--root", tmp_path / "m", "--machines", "fridge"],
         "asdlib download: error: unknown machine 'fridge'; valid machines: fan, pump, slider, valve"),
        (["download", "--root", tmp_path / "m", "--snr", "3"], "asdlib download: error: unknown SNR 3 dB; valid SNRs: -6, 0, 6"),
        (["download", "--list"],
         "asdlib download: error: the following arguments are required: --root (see `asdlib download --help`)"),
        (["nonsense"], "asdlib: error: argument COMMAND: invalid choice: 'nonsense' (choose from 'simulate', 'download', "
                       "'run', 'cells', 'table', 'fit', 'score', 'features') (see `asdlib --help`)"),
    ]
    for argv, expected in cases:
        code, err = _run(capsys, argv)
        assert (code, _one_line(err)) == (2, expected), argv
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "m").exists()


def test_download_without_yes_off_a_terminal(tmp_path, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, err = _run(capsys, ["download", "--root", tmp_path / "m", "--machines", "fan"])
    assert (code, _one_line(err)) == (
        2, "asdlib download: error: this downloads 31.4 GB; pass --yes to confirm when not running in a terminal")


def test_download_list_through_the_one_parser(tmp_path, capsys):
    assert main(["download", "--root", str(tmp_path / "m"), "--machines", "fan", "pump", "--snr", "-6", "0", "--list"]) == 0
    out = capsys.readouterr().out
    assert "-6_dB_fan.zip" in out and "10.88 GB" in out and "0_dB_pump.zip" in out and "7.87 GB" in out
    assert "4 archive(s), 37.40 GB" in out
    assert not (tmp_path / "m").exists()


def test_simulate_is_a_subcommand_of_the_one_parser(tmp_path, capsys):
    existing = tmp_path / "afile"
    existing.write_text("not a folder")
    code, err = _run(capsys, ["simulate", "--out", existing, "--machines", "fan", "--n-normal", "2", "--n-abnormal", "1",
                              "--duration", "1", "--jobs", "1", "--quiet"])
    line = _one_line(err)
    assert code == 2 and line.startswith("asdlib simulate: error: ") and str(existing) in line
    assert existing.read_text() == "not a folder"
    code, err = _run(capsys, ["simulate", "--n-normal", "2"])
    assert (code, _one_line(err)) == (
        2, "asdlib simulate: error: the following arguments are required: --out (see `asdlib simulate --help`)")
    assert main(["simulate", "--help"]) == 0
    assert "--n-normal" in capsys.readouterr().out


def test_a_folder_named_like_a_clip(tmp_path, capsys):
    write_wav(tmp_path / "fan" / "id_00" / "normal" / "00000000.wav", np.zeros((8, 4096), np.float32))
    bad = tmp_path / "fan" / "id_00" / "normal" / "00000001.wav"
    bad.mkdir()
    code, err = _run(capsys, ["features", "--data-root", tmp_path])
    assert (code, _one_line(err)) == (
        2, f"asdlib features: error: {bad}: is a folder, not a WAV file; rename it or move it out of the data folder")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux) to fill a disk for real")
@pytest.mark.parametrize("writer", ["python", "torch"])
def test_full_disk_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch, normal_only, writer):
    def fit_onto_a_full_disk(args):
        if writer == "python":
            with open("/dev/full", "wb") as fh:  # the kernel answers ENOSPC, as a full disk does
                fh.write(b"x" * 65536)
                fh.flush()
        else:
            torch.save({"w": torch.zeros(100_000)}, "/dev/full")
        return 0

    monkeypatch.setattr(cli, "cmd_fit", fit_onto_a_full_disk)
    out = tmp_path / "fan.pt"
    code, err = _run(capsys, ["fit", "--data-root", normal_only, "--machine", "fan", "--out", out])
    line = _one_line(err)
    assert code == 2
    assert line.startswith(f"asdlib fit: error: no space left on {out}")
    assert line.endswith("run the same command again")


def test_damaged_checkpoints_are_one_line(detector_file, normal_only, tmp_path, capsys):
    wav = normal_only / "fan" / "id_00" / "normal" / "00000000.wav"
    ckpt = torch.load(detector_file, weights_only=True)
    state = ckpt["state_dict"]
    name = next(iter(state))
    missing = tmp_path / "missing.pt"
    torch.save({**ckpt, "state_dict": {k: v for k, v in state.items() if k != name}}, missing)
    wrong = tmp_path / "wrong.pt"
    torch.save({**ckpt, "state_dict": {**state, name: torch.zeros(3, 3)}}, wrong)
    for path in (missing, wrong):
        code, err = _run(capsys, ["score", "--detector", path, "--device", "cpu", wav])
        line = _one_line(err)
        assert code == 2 and line.startswith(f"asdlib score: error: {path}"), line


def test_truncated_wav_warns_on_its_own_line(tmp_path, capsys):
    full = write_wav(tmp_path / "whole.wav", tone_clip(np.random.default_rng(0), n=8192))
    cut = tmp_path / "fan" / "id_00" / "normal" / "00000000.wav"
    cut.parent.mkdir(parents=True)
    cut.write_bytes(full.read_bytes()[: 44 + 8 * 2 * 5000])
    code = main(["features", "--data-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 0
    assert err == (f"asdlib: warning: {cut.resolve()}: truncated WAV, read 5000 of the 8192 frames its header declares; "
                   "using the frames read (replace the file to use all of it)\n")


def test_error_is_not_printed_on_the_progress_bar_line(tmp_path, capsys, monkeypatch):
    """Issue 14.12: a failing command's error must start a line of its own, after the bar."""
    from asdlib.data import DataError

    def fails_mid_bar(args):
        bar = tqdm(total=10, desc="features", file=sys.stderr)  # left open, as a failing loop leaves it
        bar.update(3)
        raise DataError("x.wav: contains NaN or Inf samples; the file is corrupt. Replace it (download or simulate it again) or delete it.")

    monkeypatch.setattr(cli, "cmd_features", fails_mid_bar)
    code, err = _run(capsys, ["features", "--data-root", tmp_path])
    assert code == 2
    assert err.endswith("\nasdlib features: error: x.wav: contains NaN or Inf samples; the file is corrupt. "
                        "Replace it (download or simulate it again) or delete it.\n")
    assert "features:  30%" in err.split("\n")[-3]  # the bar's last state, on the line above


def test_help_and_no_command(capsys):
    assert main(["--help"]) == 0
    assert "download" in capsys.readouterr().out
    assert main(["download", "--help"]) == 0
    assert "--no-keep-archives" in capsys.readouterr().out
    assert main([]) == 2


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_threshold_is_refused_naming_the_field(detector_file, normal_only, tmp_path, capsys, value):
    """Audit F3: a detector whose threshold is NaN or infinite must not turn a score into a decision."""
    from asdlib.checkpoint import CheckpointError
    from asdlib.detector import AutoencoderDetector

    wav = normal_only / "fan" / "id_00" / "normal" / "00000000.wav"
    ckpt = torch.load(detector_file, weights_only=True)
    ckpt["thresholds"]["mse"]["threshold"] = value
    tampered = tmp_path / "tampered.pt"
    torch.save(ckpt, tampered)
    code, err = _run(capsys, ["score", "--detector", tampered, "--device", "cpu", wav])
    assert (code, _one_line(err)) == (2, f"asdlib score: error: {tampered}: damaged detector file (thresholds.mse.threshold "
                                         f"{value} is not a finite number); fit it again with `asdlib fit`")
    assert capsys.readouterr().out == ""
    with pytest.raises(CheckpointError, match=r"thresholds\.mse\.threshold"):
        AutoencoderDetector.load(tampered, device="cpu", cache=None)


def test_grid_options_out_of_range_are_one_line_before_any_work(tmp_path, capsys):
    """Audit F4, F10, F11, F13: refused up front, naming the option (or the spec file) and the range."""
    from asdlib.config import check_jobs, max_jobs

    nope = tmp_path / "nope.yaml"
    nope.write_text("profile: quik\nmachines: [fan]\n")
    results = tmp_path / "results"
    cases = [
        (["run", "--profile", "smoke", "--machines", "fan", "--n-train", "2", "--device", "cpu", "--results", results],
         "asdlib run: error: n_train (--n-train) 2 is too few: the threshold's gamma fit needs at least 3 normal training clips"),
        (["cells", "--profile", "smoke", "--n-train", "1"],
         "asdlib cells: error: n_train (--n-train) 1 is too few: the threshold's gamma fit needs at least 3 normal training clips"),
        (["run", "--profile", "smoke", "--machines", "fan", "--jobs", str(max_jobs() + 1), "--device", "cpu", "--results", results],
         f"asdlib run: error: --jobs {max_jobs() + 1} is more than 4 x the {max_jobs() // 4} CPU(s) of this machine; "
         f"give at most {max_jobs()} (more processes only stall the machine)"),
        (["cells", "--spec", nope],
         f"asdlib cells: error: {nope}: unknown profile 'quik'; choose one of ['book', 'paper', 'quick', 'smoke'], "
         "or leave `profile` out (or write `custom`) for a grid of the fields given"),
    ]
    cases += [(["table", "--profile", "smoke", "--results", results, "--n-boot", n],
               f"asdlib table: error: --n-boot {n} is too few for a 95 % interval; give at least 100 (default 1000)")
              for n in ("0", "1", "-5", "99")]
    for argv, expected in cases:
        code, err = _run(capsys, argv)
        assert (code, _one_line(err)) == (2, expected), argv
    assert not results.exists()
    assert check_jobs(max_jobs(), "--jobs") == max_jobs()  # the limit itself is allowed


def test_unclear_messages_of_the_audit_name_the_problem(tmp_path, detector_file, normal_only, capsys, monkeypatch):
    """Audit F8 and F14: each mistake gets the message that fits it, one line, exit 2, before any work."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    run_folder = tmp_path / "res" / "smoke-0"
    run_folder.mkdir(parents=True)
    (run_folder / "spec.json").write_text("{bad")
    slurm = tmp_path / "slurm.yaml"
    cases = [
        (["score", "--detector", detector_file, "--device", "cpu", tmp_path / "missing.wav"],
         f"asdlib score: error: audio file {str(tmp_path / 'missing.wav')!r} does not exist; check the path"),
        (["score", "--detector", detector_file, "--device", "cpu", normal_only],
         f"asdlib score: error: {normal_only} is a folder, not a WAV file; give the clips' file names "
         f"(e.g. {str(normal_only / '00000000.wav')!r})"),
        (["features", "--data-root", a_file],
         f"asdlib features: error: {str(a_file)!r} is a file, not a MIMII folder; pass the folder that holds e.g. '0_dB_fan/'"),
        (["table", "--run", run_folder],
         f"asdlib table: error: {run_folder / 'spec.json'}: not a spec this asdlib can read (Expecting property name "
         f"enclosed in double quotes: line 1 column 2 (char 1)); the run folder is damaged or from another version: "
         f"delete {run_folder} and run again"),
    ]
    if sys.platform == "linux" and Path("/sys").is_dir():  # sysfs: no one can create a file there, not even root
        cases.append((["fit", "--data-root", normal_only, "--machine", "fan", "--n-train", "4", "--epochs", "1",
                       "--out", "/sys/fan.pt"],
                      "asdlib fit: error: --out '/sys/fan.pt': cannot write into folder '/sys' (Permission denied); "
                      "choose a folder you can write to"))
    for argv, expected in cases:
        code, err = _run(capsys, argv)
        assert (code, _one_line(err)) == (2, expected), argv
    pytest.importorskip("dask_jobqueue")
    for text, expected in [("memory: lots\ncores: 4\n", f"{slurm}: memory must be an amount per job such as '32GB', got 'lots'"),
                           ("memory: 1\ncores: 4\n", f"{slurm}: memory must be an amount per job such as '32GB', got 1"),
                           ("memory: 32GB\n", "--cluster slurm needs cores per job: set `cores: 8` in the --cluster-config "
                                              "YAML, or jobqueue.slurm.cores in Dask's configuration")]:
        slurm.write_text(text)
        code, err = _run(capsys, ["run", "--profile", "smoke", "--data-root", normal_only, "--results", tmp_path / "res",
                                  "--cluster", "slurm", "--cluster-config", slurm])
        assert (code, err.splitlines()[-1]) == (2, f"asdlib run: error: {expected}"), text


@pytest.mark.parametrize("command, expected", [
    ("fit", "nothing was saved; run it again to fit from the start"),
    ("run", "finished cells are kept, run the same command to resume"),
    ("table", "nothing was written"),
])
def test_ctrl_c_says_what_was_kept(command, expected, capsys, monkeypatch):
    """Audit F14: ``fit`` interrupted used to promise a resume it cannot do."""
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, f"cmd_{command}", interrupted)
    argv = {"fit": ["fit", "--data-root", ".", "--machine", "fan", "--out", "x.pt"], "run": ["run", "--profile", "smoke"],
            "table": ["table", "--profile", "smoke"]}[command]
    code, err = _run(capsys, argv)
    assert (code, _one_line(err)) == (130, f"asdlib {command}: interrupted; {expected}")
