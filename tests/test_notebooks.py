"""Every notebook re-executes under papermill with non-default parameters and shows the smaller grid;
the README's papermill example runs as written; the real-data path says "real MIMII" everywhere."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

papermill = pytest.importorskip("papermill")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + [ROOT / "book" / "reproduce.ipynb"]
# one machine, one pair, two α, one seed, 2 s simulated clips, 2 epochs
SMALL = dict(profile="smoke", machines=["fan"], seeds=[0], epochs=2, overrides={"mic_pairs": [[0, 4]], "alphas": [0.5, 2.0]})
# notebook-specific: a smaller sweep of the spatial anomaly's direction
EXTRA = {"08_dipole.ipynb": dict(sweep_azimuths_deg=[0, 90, 180], n_per_azimuth=2, n_normal=4)}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("papermill")
    mp = pytest.MonkeyPatch()
    mp.setenv("ASDLIB_DATA", str(base / "data"))
    mp.setenv("ASDLIB_CACHE", str(base / "cache"))
    mp.setenv("ASDLIB_RESULTS", str(base / "results"))
    mp.setenv("MPLBACKEND", "Agg")
    yield base
    mp.undo()


def _parameters(nb_path: Path) -> set[str]:
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return {line.split("=")[0].strip() for line in "".join(cell["source"]).splitlines() if "=" in line and not line.startswith("#")}
    return set()


def _run(nb_path: Path, env: Path, **extra) -> dict:
    names = _parameters(nb_path)
    params = {k: v for k, v in {**SMALL, **extra}.items() if k in names}
    out = env / f"out-{nb_path.name}"
    papermill.execute_notebook(str(nb_path), str(out), parameters=params, cwd=str(env), kernel_name="python3", progress_bar=False)
    return json.loads(out.read_text())


def _text(nb: dict) -> str:
    chunks = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            chunks.append("".join(output.get("text", "")))
            for key in ("text/plain", "text/html", "text/markdown", "application/papermill.record/text/plain",
                        "application/papermill.record/text/markdown"):
                chunks.append("".join(output.get("data", {}).get(key, "")))
    return "\n".join(chunks)


def test_every_notebook_has_a_parameters_cell():
    assert len(NOTEBOOKS) >= 11
    for nb in NOTEBOOKS:
        if nb.name != "reproduce.ipynb":
            assert _parameters(nb), f"{nb.name} has no cell tagged 'parameters'"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_with_small_parameters(nb_path, env):
    if nb_path.name == "reproduce.ipynb":
        from asdlib import book

        if not (env / "results" / book.make_spec("smoke").run_id() / "provenance.json").exists():
            pytest.skip("reproduce.ipynb reads the build's grid; it runs after the grid pages (checked by the book build too)")
    nb = _run(nb_path, env, **EXTRA.get(nb_path.name, {}))
    text = _text(nb)
    assert "simulated" in text, f"{nb_path.name} does not say which data it shows"
    if nb_path.name == "08_dipole.ipynb":
        assert all(f"{a}-{b}" in text for a, b in [(0, 4), (1, 5), (2, 6), (3, 7)])
    if nb_path.name == "04_table1.ipynb":
        assert "MICS 0-4" in text and "MICS 2-6" not in text
        runs = list((env / "results").glob("smoke-*/table1_ours_vs_reported.csv"))
        assert runs, "the Table 1 CSV goes into the run's folder"
        table = pd.read_csv(runs[0])
        assert set(table["machine"]) == {"fan", "average"}
        assert set(table["alpha"].dropna()) == {0.5, 2.0}
        assert set(table["mic_pair"].dropna().astype(str)) <= {"0-4"}


def test_readme_papermill_example_runs_as_written(env, tmp_path):
    """The README's first papermill line, verbatim (the build's profile chosen by $ASDLIB_PROFILE)."""
    readme = (ROOT / "README.md").read_text()
    line = next(l for l in readme.splitlines() if l.startswith(".venv/bin/papermill") and "machines" in l)
    args = shlex.split(line)
    args[0] = str(Path(sys.executable).parent / "papermill")
    args = [str(ROOT / a) if a.startswith("notebooks/") else a for a in args]
    out = tmp_path / "out.ipynb"
    args = [str(out) if a == "out.ipynb" else a for a in args]
    run_env = {**os.environ, "ASDLIB_PROFILE": "smoke"}
    result = subprocess.run(args, cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "unknown parameter" not in result.stderr.lower(), result.stderr[-2000:]
    text = _text(json.loads(out.read_text()))
    assert "1 machine type x" in text  # -p machines '["fan"]' was read as one machine, not three letters


SAMPLES = os.environ.get("ASDLIB_MIMII_SAMPLES")


@pytest.mark.slow
@pytest.mark.skipif(not SAMPLES, reason="set ASDLIB_MIMII_SAMPLES to the 32 real MIMII sample clips")
@pytest.mark.parametrize("name", ["01_dataset.ipynb", "04_table1.ipynb", "07_how_sure.ipynb", "10_spatial_vs_spectral.ipynb"])
def test_pages_on_real_mimii_say_so(name, env, tmp_path):
    """The build's real-data path (ASDLIB_DATA_ROOT, as `make book DATA_ROOT=...` sets it) on the sample clips."""
    mp = pytest.MonkeyPatch()
    mp.setenv("ASDLIB_DATA_ROOT", SAMPLES)
    mp.setenv("ASDLIB_PROFILE", "smoke")
    try:
        params = {"overrides": {"n_train": 3, "n_test": 2, "mic_pairs": [[0, 4]], "alphas": [2.0]}, "machines": ["fan", "valve"],
                  "results_dir": str(tmp_path / "results")}
        names = _parameters(ROOT / "notebooks" / name)
        out = tmp_path / name
        papermill.execute_notebook(str(ROOT / "notebooks" / name), str(out), parameters={k: v for k, v in params.items() if k in names},
                                   cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    finally:
        mp.undo()
    text = _text(json.loads(out.read_text()))
    assert "real MIMII" in text
    assert not re.search(r"simulated data \(asdlib", text), "a caption claims simulated data on a real-data page"
