"""Atomic file writes and file hashes: the one place the package writes results to disk.

Every writer goes through a temporary file in the target folder and ``os.replace``, so a reader
never sees a half-written file and an interrupted run leaves at most a ``.tmp-*`` file behind
(:func:`remove_stale_temporaries` cleans those). Files are created with the permissions the
process's umask gives (not ``mkstemp``'s 0600), so a results folder shared on a cluster stays
readable to the group.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

TMP_PREFIX = ".tmp-"


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


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def sha256_text(text: str, length: int | None = None) -> str:
    """SHA-256 hex digest of a string (UTF-8), optionally cut to ``length`` characters."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return digest[:length] if length else digest


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete ``.tmp-*`` files left under ``folder`` by killed writers; returns how many."""
    removed = 0
    for tmp in Path(folder).rglob(f"{TMP_PREFIX}*"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed
