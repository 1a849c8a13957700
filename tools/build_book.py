"""Build the book offline: MathJax from the installed Python package, then `jupyter-book build`.

Usage: python tools/build_book.py [extra jupyter-book flags, e.g. -W --keep-going]

First the book's experiments run here with progress bars, resuming whatever an earlier build finished:
the profile and data of ``$ASDLIB_PROFILE`` and ``$ASDLIB_DATA_ROOT`` (``make book PROFILE=paper
DATA_ROOT=~/mimii``; default: the ``book`` profile on the embedded simulator), the grid of Table 1 and
the extra grids of the "beyond the paper" pages (:func:`asdlib.book.build_specs`). The notebooks then
read the finished results (executing them re-uses the store instead of training in silence).

Sphinx loads MathJax from a CDN by default; the book must build and read without the internet, so
MathJax 3 (shipped by the `django-static-mathjax` wheel) is copied into `_mathjax/mathjax/`, which
`_config.yml` lists in `html_static_path` (so it lands in `_build/html/_static/mathjax/`) and points
`mathjax_path` at. (Not into `_static/`: Jupyter Book adds every `.js` file there as a page script,
and MathJax would load twice.)

Jupyter Book 1.0.4 with Sphinx 7.4 emits the inline configuration scripts of sphinx-thebe and
sphinx-togglebutton twice per page; the second `const THEBE_JS_URL` is a JavaScript error in every
page. After the build, repeated identical inline scripts are removed from the HTML.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mathjax

ROOT = Path(__file__).resolve().parents[1]


def copy_mathjax() -> None:
    src = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    dst = ROOT / "_mathjax" / "mathjax"
    if (dst / "tex-chtml.js").exists():
        return
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / "tex-chtml.js", dst / "tex-chtml.js")
    shutil.copytree(src / "output" / "chtml" / "fonts" / "woff-v2", dst / "output" / "chtml" / "fonts" / "woff-v2", dirs_exist_ok=True)


INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def drop_repeated_inline_scripts(html_dir: Path) -> int:
    """Remove the second and later copies of identical inline ``<script>`` blocks; returns how many."""
    removed = 0
    for page in html_dir.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        seen: set[str] = set()

        def keep_first(match: re.Match) -> str:
            nonlocal removed
            body = match.group(1).strip()
            if body in seen:
                removed += 1
                return ""
            seen.add(body)
            return match.group(0)

        new = INLINE_SCRIPT.sub(keep_first, text)
        if new != text:
            page.write_text(new, encoding="utf-8")
    return removed


def run_book_experiments() -> None:
    """Run (or resume) every grid the pages read, with progress bars, before the pages execute."""
    from asdlib import book
    from asdlib.experiments import default_results_dir
    from asdlib.runner import run_experiments

    specs = book.build_specs()
    main = specs[0]
    origin = "simulated data" if main.simulated else f"real MIMII at {main.data_root}"
    print(f"running the book's experiments ({main.profile} profile, {origin}; {sum(s.n_cells() for s in specs)} cells in "
          f"{len(specs)} grids); Ctrl-C stops them, the next build resumes", flush=True)
    engine = _local_engine()
    try:
        run_experiments(specs, default_results_dir(), progress=True, engine=engine)
    finally:
        if engine is not None:
            engine.close()


def _local_engine():
    """A Dask cluster of one single-threaded worker per core (``$ASDLIB_BUILD_WORKERS``, default all
    cores, at most 4), so the grids train side by side with the arithmetic of every other run
    (:data:`asdlib.runner.TORCH_THREADS` per grid); None, to run here one grid after another, when
    Dask is not installed or one worker is asked for."""
    import os

    workers = int(os.environ.get("ASDLIB_BUILD_WORKERS", min(os.cpu_count() or 1, 4)))
    if workers < 2:
        return None
    try:
        from asdlib.distributed import DaskEngine

        engine = DaskEngine.from_options(cluster=f"local:{workers}")
    except Exception as err:  # noqa: BLE001 - the build still works, one grid at a time
        print(f"building without Dask workers ({type(err).__name__}: {err}); the grids run one after another", flush=True)
        return None
    print(f"training on {workers} Dask worker processes (one thread each)", flush=True)
    return engine


def main() -> int:
    copy_mathjax()
    start = time.perf_counter()
    try:
        run_book_experiments()
    except (OSError, ValueError) as err:  # a full disk, a bad ASDLIB_PROFILE or data root: one line, not a traceback
        from asdlib.fileio import is_disk_full

        if isinstance(err, OSError) and not is_disk_full(err):
            raise
        if isinstance(err, OSError):
            message = f"no space left on {err.filename or 'the disk'}; free some space and build again"
        else:
            message = str(err)  # asdlib's own errors (a ValueError each) name the file or setting and the fix
        print(f"make book: error: {message}", file=sys.stderr)
        return 2
    exe = Path(sys.executable).parent / "jupyter-book"
    rc = subprocess.call([str(exe), "build", "--all", str(ROOT), *sys.argv[1:]])  # --all: every page again (the profile may have changed)
    if (ROOT / "_build" / "html").is_dir():
        drop_repeated_inline_scripts(ROOT / "_build" / "html")
    print(f"jupyter-book build finished in {time.perf_counter() - start:.0f} s with exit code {rc}; open {ROOT / '_build/html/index.html'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
