"""Process memory settings: glibc's allocator for processes that churn through large arrays."""
from __future__ import annotations

__all__ = ["MALLOC_MMAP_THRESHOLD", "MALLOC_TRIM_THRESHOLD", "tune_malloc"]

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
