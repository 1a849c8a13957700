"""Build the book offline: MathJax from the installed Python package, then `jupyter-book build`.

Usage: python tools/build_book.py [extra jupyter-book flags, e.g. -W --keep-going]

First the book's default experiment (the ``quick`` profile on the embedded simulator) runs here with
progress bars, resuming whatever an earlier build finished; the notebooks then read its results
(executing them re-uses the finished store instead of training in silence).

Sphinx loads MathJax from a CDN by default; the book must build and read without the internet, so
MathJax 3 (shipped by the `django-static-mathjax` wheel) is copied into `_static/mathjax/` and
`_config.yml` points `mathjax_path` at it.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import mathjax

ROOT = Path(__file__).resolve().parents[1]


def copy_mathjax() -> None:
    src = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    dst = ROOT / "_static" / "mathjax"
    if (dst / "tex-chtml.js").exists():
        return
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / "tex-chtml.js", dst / "tex-chtml.js")
    shutil.copytree(src / "output" / "chtml" / "fonts" / "woff-v2", dst / "output" / "chtml" / "fonts" / "woff-v2", dirs_exist_ok=True)


def run_default_experiment() -> None:
    from asdlib.experiments import default_results_dir, profile
    from asdlib.runner import run_experiment

    print("running the book's default experiment (quick profile, simulated data); Ctrl-C stops it, the next build resumes", flush=True)
    run_experiment(profile("quick"), default_results_dir(), progress=True)


def main() -> int:
    copy_mathjax()
    start = time.perf_counter()
    run_default_experiment()
    exe = Path(sys.executable).parent / "jupyter-book"
    rc = subprocess.call([str(exe), "build", str(ROOT), *sys.argv[1:]])
    print(f"jupyter-book build finished in {time.perf_counter() - start:.0f} s with exit code {rc}; open {ROOT / '_build/html/index.html'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
