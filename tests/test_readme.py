"""The README's command-line examples, as written.

Every ``.venv/bin/asdlib`` line of the README must be a valid command of this version (its options
parse), and the one that needs no data, ``asdlib download ... --list``, runs verbatim. The papermill
example runs verbatim in ``test_notebooks.py``. The rest need the ~100 GB of MIMII (their code paths
run on simulated data and the real sample clips elsewhere in the suite).
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from asdlib.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.startswith(".venv/bin/asdlib ")]


def words(command: str) -> list[str]:
    """The command's words as the shell splits them: comments dropped, stopped at a redirection."""
    out = []
    for word in shlex.split(command, comments=True):
        if word in (">", ">>", "|", "&&", ";"):
            break
        out.append(word)
    return out


def test_the_readme_has_cli_examples():
    commands = readme_commands()
    assert len(commands) >= 5
    assert {words(c)[1] for c in commands} >= {"download", "run", "table"}


@pytest.mark.parametrize("command", readme_commands())
def test_readme_cli_example_parses(command, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    argv = [os.path.expanduser(a) for a in words(command)[1:]]
    parser = build_parser(simulate_options=argv[0] == "simulate")
    try:
        args = parser.parse_args(argv)
    except SystemExit as err:  # pragma: no cover - the failure message
        pytest.fail(f"README example {command!r} does not parse (exit {err.code})")
    assert callable(getattr(args, "func", None)), command


def test_readme_download_list_runs_as_written(tmp_path):
    """Lists what it would fetch, with sizes and MD5s, and fetches nothing."""
    command = next(c for c in readme_commands() if " download " in c and "--list" in c)
    home = str(tmp_path)  # ~ is this test's home: nothing is written outside it
    argv = [str(Path(sys.executable).parent / "asdlib"), *[home + a[1:] if a.startswith("~") else a for a in words(command)[1:]]]
    result = subprocess.run(argv, env={**os.environ, "HOME": str(tmp_path)}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "6_dB_fan.zip" in result.stdout and "-6_dB_fan.zip" not in result.stdout
    assert not (tmp_path / "mimii").exists() or not any((tmp_path / "mimii").iterdir())
