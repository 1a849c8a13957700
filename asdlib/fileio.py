"""Atomic file writes and file hashes: the one place the package writes results to disk.

Every writer goes through a temporary file in the target folder and ``os.replace``, so a reader
never sees a half-written file and an interrupted run leaves at most a ``.tmp-*`` file behind
(:func:`remove_stale_temporaries` cleans those). Files are created with the permissions the
process's umask gives (not ``mkstemp``'s 0600), so a results folder shared on a cluster stays
readable to the group.

Work that concurrent runs may both want to do (simulate a clip, compute a clip's features) is
done under :func:`claim`, a file lock per piece of work, so that the runs share it.
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

TMP_PREFIX = ".tmp-"
#: The folder that holds :func:`claim`'s lock files inside the folder whose work they guard (a data
#: set, the feature cache): a dot-folder, never scanned for clips; each lock file goes once its work is done.
LOCK_FOLDER = ".locks"


class InsufficientSpaceError(ValueError):
    """Not enough free disk space for what is about to be written; the message says how much."""


def check_space(folder: str | Path, needed: int, what: str, hint: str = "free some space or pick another folder") -> None:
    """Raise :class:`InsufficientSpaceError` when ``folder``'s file system has fewer than ``needed`` bytes free.

    Parameters
    ----------
    folder : str or Path
        An existing folder on the file system that will receive the data.
    needed : int
        Bytes about to be written.
    what : str
        What needs them, for the message (``"simulating 1,520 clips"``).
    hint : str
        How to fix it, for the message.
    """
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise InsufficientSpaceError(
            f"not enough disk space in {folder} for {what}: {_size(needed)} needed, {_size(free)} free; {hint}")


def _size(n_bytes: int) -> str:
    """``2.51 GB``, ``5.1 MB``: decimal units, as ``df -H`` and disk vendors count."""
    return f"{n_bytes / 1e9:.2f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:.1f} MB"


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` is the operating system's "no space left" (``ENOSPC``, or ``EDQUOT`` for a quota)."""
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


def no_space_error(path: str | Path, needed: int, err: BaseException) -> OSError | None:
    """An ``OSError(ENOSPC)`` naming ``path`` when a failed write of ``needed`` bytes is explained by a full disk.

    Some writers (libsndfile's "System error.", torch's stream errors) hide the errno; this looks at the
    free space of ``path``'s folder after the failure instead. Returns None when space is not the cause.
    """
    if is_disk_full(err):
        return err
    try:
        free = shutil.disk_usage(Path(path).parent).free
    except OSError:
        return None
    if free >= needed:
        return None
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The temporary file keeps ``path``'s extension unless ``suffix`` is given (some writers, such as
    ``torch.save`` and ``numpy.save``, look at it). It is removed when the block raises (also on
    ``KeyboardInterrupt``).

    Examples
    --------
    >>> with atomic_path(folder / "x.npy", suffix=".npy") as tmp:  # doctest: +SKIP
    ...     np.save(tmp, array)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX, suffix=path.suffix if suffix is None else suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_with(path: str | Path, write: Callable[[Path], None], suffix: str | None = None) -> None:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically (e.g. ``torch.save``)."""
    with atomic_path(path, suffix=suffix) as tmp:
        write(tmp)


@contextmanager
def claim(lock: str | Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold the operating-system file lock ``lock`` while doing work another process may want to do too.

    Yields True while the lock is held; with ``wait=False`` it yields False at once when another
    process holds the lock (do nothing then, and come back later with ``wait=True``). When the
    block finishes without an error, the lock file is removed, still under the lock. A process that
    takes the lock after that, on the removed file or on a new one, must therefore check again
    whether the work is done before doing it. The lock is released when its holder exits, even
    when killed (:class:`filelock.FileLock`), so work a stopped run held is taken over.

    Parameters
    ----------
    lock : str or Path
        The lock file; its folder is created when missing.
    wait : bool
        Wait for another holder to finish (True), or give up at once (False).

    Examples
    --------
    >>> with claim(root / ".locks" / "clip.lock", wait=False) as held:  # doctest: +SKIP
    ...     if held and not done():
    ...         do_it()
    """
    from filelock import FileLock, Timeout

    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    handle = FileLock(str(lock), timeout=-1 if wait else 0)
    try:
        handle.acquire()
    except Timeout:
        yield False
        return
    try:
        yield True
        lock.unlink(missing_ok=True)
    finally:
        handle.release()


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def sha256_text(text: str, length: int | None = None) -> str:
    """SHA-256 hex digest of a string (UTF-8), optionally cut to ``length`` characters."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return digest[:length] if length else digest


def remove_stale_temporaries(folder: str | Path, older_than: float = 0.0) -> int:
    """Delete ``.tmp-*`` files left under ``folder`` by killed writers; returns how many.

    Parameters
    ----------
    folder : str or Path
        Searched recursively.
    older_than : float
        Only files last modified more than this many seconds ago. 0 (the default) removes every
        temporary file: call it so only while holding a lock that keeps other writers out. A
        positive age leaves alone the files that writers running at the same time are writing
        (a writer's temporary file lives for one file's write).
    """
    import time

    removed = 0
    cutoff = time.time() - older_than
    for tmp in Path(folder).rglob(f"{TMP_PREFIX}*"):
        try:
            if tmp.is_file() and (older_than <= 0 or tmp.stat().st_mtime < cutoff):
                tmp.unlink(missing_ok=True)
                removed += 1
        except FileNotFoundError:  # renamed or removed by its writer meanwhile
            continue
    return removed
