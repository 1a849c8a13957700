"""Process memory settings: glibc's allocator for processes that churn through large arrays."""
from __future__ import annotations

import os
import sys

__all__ = ["MALLOC_MMAP_THRESHOLD", "MALLOC_TRIM_THRESHOLD", "HUGEPAGE_TUNABLE", "HUGEPAGES_ENV", "tune_malloc", "hugepage_environ",
           "anon_hugepages_bytes"]

#: glibc ``malloc`` settings of a process that trains grids or simulates clips (:func:`tune_malloc`):
#: blocks up to 32 MiB (glibc's largest) come from the heap, which is returned to the system above
#: 256 MiB free.
MALLOC_MMAP_THRESHOLD = 32 * 2**20
MALLOC_TRIM_THRESHOLD = 256 * 2**20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers (glibc's malloc.h)
_malloc_tuned = False


def tune_malloc() -> bool:
    """Keep a process's large arrays on the heap instead of a fresh ``mmap`` per array (glibc only).

    By default glibc maps each block above a threshold (128 KiB at start, raised as mapped blocks
    are freed) and gives heap memory above twice that threshold back to the system, so
    megabyte-sized arrays and tensors are often page-faulted and zeroed afresh. Dask's nanny starts
    every worker with ``MALLOC_TRIM_THRESHOLD_=65536``, and an explicit threshold also freezes the
    ``mmap`` threshold at 128 KiB: each tensor above that (most of a fused training step's) is then
    mapped, page-faulted and unmapped again. A ``book`` grid took 90 s instead of 71 s that way, with
    4x the system time; in a plain process a simulated 10 s clip took 83 ms of CPU instead of 72.
    Called once per process by :func:`asdlib.runner.run_grid` and by the simulator's worker
    processes; the arithmetic, hence every result, is unchanged. Returns whether glibc accepted the
    settings.
    """
    global _malloc_tuned
    if _malloc_tuned:
        return True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD))
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to tune
        return False
    _malloc_tuned = ok
    return ok


#: The glibc tunable (glibc 2.35+) that makes ``malloc`` back its heap and mapped blocks with
#: transparent huge pages (``madvise(MADV_HUGEPAGE)``): read once, when a process starts.
HUGEPAGE_TUNABLE = "glibc.malloc.hugetlb=1"
#: Set to ``0`` to start worker processes without :data:`HUGEPAGE_TUNABLE`.
HUGEPAGES_ENV = "ASDLIB_HUGEPAGES"


def hugepage_environ(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a *new* process whose ``malloc`` hands out 2 MiB transparent huge pages.

    A fused training step streams about 130 MB (activations, weights, gradients, Adam's moments)
    through the cache, and the gather reads random rows of the feature tensors: with 4 KiB pages
    that is tens of thousands of pages, far more than the TLB holds. With huge pages the same
    memory is a few hundred. Measured on 2 cores (one grid per core, as the runner trains; 24
    paired runs of the 9-model grid, 2026-11-26/27), training was faster in 18 of 24 pairs, by a
    median of 3 %; ``benchmarks/bench_training.py`` prints the paired ratio (``hugepages``). The
    arithmetic is the same, so every result is unchanged.

    glibc reads ``GLIBC_TUNABLES`` only at start-up, so this is for processes about to be started:
    :mod:`asdlib.distributed` gives it to its Dask workers (local and SLURM), and
    ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1 asdlib run ...`` does the same for a run in one
    process. It does nothing where the kernel's transparent huge pages are ``never`` or where the
    C library is not glibc.

    Parameters
    ----------
    environ : dict, optional
        The environment to extend (default ``os.environ``); not modified.

    Returns
    -------
    dict
        ``{"GLIBC_TUNABLES": ...}``: the given tunables with :data:`HUGEPAGE_TUNABLE` added (kept
        as they are when they already set ``glibc.malloc.hugetlb``), or ``{}`` when
        ``ASDLIB_HUGEPAGES=0`` or the platform is not Linux.
    """
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or environ.get(HUGEPAGES_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return {}
    tunables = [t for t in environ.get("GLIBC_TUNABLES", "").split(":") if t]
    key = HUGEPAGE_TUNABLE.split("=")[0]
    if not any(t.split("=")[0] == key for t in tunables):
        tunables.append(HUGEPAGE_TUNABLE)
    return {"GLIBC_TUNABLES": ":".join(tunables)}


def anon_hugepages_bytes() -> int | None:
    """Bytes of this process's memory on transparent huge pages (``AnonHugePages`` of
    ``/proc/self/smaps_rollup``), or None where the kernel does not say."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
