"""Download and unpack the real MIMII dataset from Zenodo, resumably and safely.

MIMII (Purohit et al., 2019) is Zenodo record 3384388, licence CC BY-SA 4.0: twelve archives
``{-6,0,6}_dB_{fan,pump,slider,valve}.zip``, about 100 GB in all. The registry of file names,
byte sizes, MD5 sums and URLs ships with the package (``asdlib/data/mimii_zenodo.tsv``).

For each selected archive, :func:`download_mimii`

1. downloads it into ``<root>/archives/`` with :func:`pooch.retrieve`, whose ``known_hash``
   checks the MD5. The downloader (:class:`ResumableDownloader`) appends to
   ``<file>.part`` and, when the connection breaks, the next run continues from where it
   stopped with an HTTP ``Range`` request;
2. unpacks it into ``<root>/<snr>_dB_<machine>/`` (:func:`unpack_archive`): every member is
   checked first (no absolute paths, no ``..``, no symbolic links), the files are written into
   a temporary sibling folder, a completion marker is written last, and the folder is renamed
   into place, so a folder under its final name is always complete.

The result is the layout that :func:`asdlib.data.scan_mimii` reads,
``<root>/0_dB_fan/fan/id_00/normal/00000000.wav``. Re-running the command is cheap: unpacked
archives are skipped without any network request, and verified archives are not downloaded again.

Command line (:mod:`asdlib.cli`): ``asdlib download --root DIR [--machines ...] [--snr ...] [--list] [--yes]``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import zipfile
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

import pandas as pd
import pooch
import requests
from filelock import FileLock
from tqdm import tqdm

from .config import MACHINES
from .fileio import InsufficientSpaceError, check_space  # noqa: F401 - InsufficientSpaceError: raised here, part of this API

SNRS_DB = (-6, 0, 6)
_SPACE_HINT = "free some space or pick another --root"  # what a refused download or unpack tells the user
ZENODO_RECORD = "https://zenodo.org/record/3384388"
REGISTRY_COLUMNS = ["file", "machine", "snr_db", "bytes", "md5", "url"]
ARCHIVES_DIR = "archives"
MARKER_NAME = ".asdlib-unpacked.json"

_FILE_RE = re.compile(r"^(?P<snr>[+-]?\d+)_dB_(?P<machine>[a-z]+)\.zip$")
_CHUNK = 1 << 20  # 1 MiB per read/write
_TIMEOUT_S = (30, 120)  # (connect, read) seconds for each HTTP request


class DownloadError(ValueError):
    """A download that could not finish; the message says how to resume."""


class ChecksumError(DownloadError):
    """A downloaded archive whose MD5 differs from the registry's."""


class UnsafeArchiveError(ValueError):
    """A zip member that would be written outside the target folder."""


# ----------------------------------------------------------------------------- registry


def load_registry(path: str | Path | None = None) -> pd.DataFrame:
    """Read an archive registry (tab-separated: ``file, bytes, md5, url``).

    Parameters
    ----------
    path : str or Path, optional
        A TSV file. Default: the packaged MIMII registry ``asdlib/data/mimii_zenodo.tsv``.

    Returns
    -------
    pandas.DataFrame
        One row per archive, columns ``file, machine, snr_db, bytes, md5, url``; machine and
        SNR are read from the file name (``-6_dB_fan.zip`` -> ``fan``, ``-6``).
    """
    if path is None:
        with resources.files("asdlib").joinpath("data", "mimii_zenodo.tsv").open("r") as fh:
            table = pd.read_csv(fh, sep="\t", dtype={"file": str, "md5": str, "url": str})
        source = "asdlib/data/mimii_zenodo.tsv"
    else:
        table = pd.read_csv(path, sep="\t", dtype={"file": str, "md5": str, "url": str})
        source = str(path)
    return _normalise_registry(table, source)


def _normalise_registry(table: pd.DataFrame, source: str = "registry") -> pd.DataFrame:
    """Check the columns of a registry table and add ``machine`` and ``snr_db``."""
    missing = {"file", "bytes", "md5", "url"} - set(table.columns)
    if missing:
        raise ValueError(f"{source}: missing column(s) {sorted(missing)}; expected file, bytes, md5, url")
    table = table.copy()
    parsed = [_FILE_RE.match(str(name)) for name in table["file"]]
    bad = [name for name, match in zip(table["file"], parsed) if match is None]
    if bad:
        raise ValueError(f"{source}: archive name {bad[0]!r} is not '<snr>_dB_<machine>.zip'")
    table["machine"] = [match["machine"] for match in parsed]
    table["snr_db"] = [int(match["snr"]) for match in parsed]
    table["bytes"] = table["bytes"].astype("int64")
    table["md5"] = table["md5"].str.lower()
    return table[REGISTRY_COLUMNS].reset_index(drop=True)


def _as_list(values) -> list | None:
    """``None`` stays ``None``; one value becomes a one-element list."""
    if values is None:
        return None
    if isinstance(values, (str, int, float)):
        return [values]
    return list(values)


def _select(registry: pd.DataFrame, machines, snrs_db) -> pd.DataFrame:
    """Rows of ``registry`` for the given machines and SNRs (all when ``None``)."""
    machines = _as_list(machines)
    snrs_db = _as_list(snrs_db)
    if machines is not None:
        unknown = [m for m in machines if m not in MACHINES]
        if unknown:
            raise ValueError(f"unknown machine {unknown[0]!r}; valid machines: {', '.join(MACHINES)}")
    if snrs_db is not None:
        unknown = [s for s in snrs_db if not _is_valid_snr(s)]
        if unknown:
            raise ValueError(f"unknown SNR {unknown[0]!r} dB; valid SNRs: {', '.join(map(str, SNRS_DB))}")
        snrs_db = [int(float(s)) for s in snrs_db]
    keep = pd.Series(True, index=registry.index)
    if machines is not None:
        keep &= registry["machine"].isin(machines)
    if snrs_db is not None:
        keep &= registry["snr_db"].isin(snrs_db)
    return registry[keep].reset_index(drop=True)


def _is_valid_snr(value) -> bool:
    try:
        return float(value) in SNRS_DB
    except (TypeError, ValueError):
        return False


def archives(machines: Sequence[str] | str | None = None,
             snrs_db: Sequence[int] | int | None = None) -> pd.DataFrame:
    """The MIMII archives for some machines and SNRs, from the packaged registry.

    Parameters
    ----------
    machines : sequence of str or str, optional
        Any of ``fan, pump, slider, valve``. Default: all four.
    snrs_db : sequence of int or int, optional
        Any of ``-6, 0, 6``. Default: all three.

    Returns
    -------
    pandas.DataFrame
        One row per archive, columns ``file, machine, snr_db, bytes, md5, url``, in registry
        order.

    Raises
    ------
    ValueError
        For an unknown machine or SNR; the message lists the valid values.

    Examples
    --------
    >>> archives("fan", [0])["file"].tolist()
    ['0_dB_fan.zip']
    """
    return _select(load_registry(), machines, snrs_db)


# ----------------------------------------------------------------------------- download


def file_md5(path: str | Path) -> str:
    """MD5 of a file as 32 lowercase hex digits (read in 1 MiB blocks)."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class ResumableDownloader:
    """A pooch downloader that resumes a partial download with an HTTP ``Range`` request.

    Bytes go to ``part_path`` (appended when it already holds the start of the file). When the
    file is complete and its MD5 matches, ``part_path`` is renamed to pooch's ``output_file``;
    pooch then checks the hash once more and moves it to the final name. A server that ignores
    ``Range`` (answers 200 rather than 206) makes the download start again from byte 0.

    Parameters
    ----------
    part_path : Path
        Where the partial download lives between runs (``<archive>.part``).
    size : int
        Expected size in bytes.
    md5 : str
        Expected MD5 (32 hex digits).
    progress : bool
        Show a tqdm progress bar on stderr.

    Attributes
    ----------
    resumed_from : int
        Byte offset the last call resumed from (0 for a fresh download).
    """

    def __init__(self, part_path: Path, size: int, md5: str, progress: bool = True):
        self.part_path = Path(part_path)
        self.size = int(size)
        self.md5 = md5.lower()
        self.progress = progress
        self.resumed_from = 0

    def __call__(self, url: str, output_file: str, pooch_obj=None) -> None:
        """Download ``url`` to ``output_file`` (pooch's downloader protocol)."""
        name = self.part_path.name[: -len(".part")]
        offset = self.part_path.stat().st_size if self.part_path.exists() else 0
        if offset > self.size:  # not the start of this file: begin again
            self.part_path.unlink()
            offset = 0
        self.resumed_from = offset
        if offset < self.size:
            self._fetch(url, offset, name)
        got = self.part_path.stat().st_size
        if got < self.size:
            raise DownloadError(
                f"{name}: the server sent only {got} of {self.size} bytes from {url}; "
                f"re-run the same command to resume from {self.part_path}")
        actual = file_md5(self.part_path)
        if actual != self.md5 or got != self.size:
            corrupt = self.part_path.with_name(name + ".corrupt")
            os.replace(self.part_path, corrupt)
            raise ChecksumError(
                f"{name} downloaded from {url} is corrupt: MD5 expected {self.md5}, got {actual} "
                f"({got} bytes, expected {self.size}); the bytes were moved to {corrupt}: "
                "delete it and re-run the same command to download it again")
        os.replace(self.part_path, output_file)

    def _fetch(self, url: str, offset: int, name: str) -> None:
        """Append the bytes from ``offset`` on to ``part_path``; start over on 200 or 416."""
        try:
            response = self._request(url, offset)
            if offset and response.status_code == 416:  # the part is no prefix of this file
                response.close()
                self.part_path.unlink()
                offset = self.resumed_from = 0
                response = self._request(url, 0)
            with response:
                response.raise_for_status()
                if offset and not _continues_at(response, offset):
                    offset = self.resumed_from = 0  # Range ignored: the whole file comes again
                self._write(response, offset, name)
        except requests.RequestException as exc:
            have = self.part_path.stat().st_size if self.part_path.exists() else 0
            raise DownloadError(
                f"{name}: download from {url} failed after {have} of {self.size} bytes ({exc}); "
                "re-run the same command to resume") from exc

    @staticmethod
    def _request(url: str, offset: int) -> requests.Response:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        return requests.get(url, headers=headers, stream=True, timeout=_TIMEOUT_S)

    def _write(self, response: requests.Response, offset: int, name: str) -> None:
        self.part_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.part_path, "ab" if offset else "wb") as fh, tqdm(
                total=self.size, initial=offset, unit="B", unit_scale=True,
                desc=name, disable=not self.progress, leave=False) as bar:
            for chunk in response.iter_content(chunk_size=_CHUNK):
                fh.write(chunk)
                bar.update(len(chunk))


def _continues_at(response: requests.Response, offset: int) -> bool:
    """True when ``response`` is a 206 whose ``Content-Range`` starts at ``offset``."""
    if response.status_code != 206:
        return False
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return bool(match) and int(match[1]) == offset


def fetch_archive(url: str, dest_dir: str | Path, file_name: str, md5: str, size: int,
                  *, progress: bool = True) -> Path:
    """Download one archive into ``dest_dir`` and verify its MD5 (resumable).

    Parameters
    ----------
    url : str
        Where to download it from.
    dest_dir : str or Path
        Folder for the archive (created when missing).
    file_name : str
        Final name, e.g. ``"0_dB_fan.zip"``; the partial download is ``<file_name>.part``.
    md5 : str
        Expected MD5, 32 hex digits.
    size : int
        Expected size in bytes.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        ``dest_dir / file_name``, verified. An existing file whose MD5 matches is not
        downloaded again (no HTTP request); one whose MD5 differs is downloaded again.

    Raises
    ------
    ChecksumError
        When the downloaded bytes have another MD5; they are moved to ``<file_name>.corrupt``
        and nothing is left under ``file_name``.
    DownloadError
        When the connection fails; ``<file_name>.part`` is kept and the next call resumes.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    downloader = ResumableDownloader(dest_dir / f"{file_name}.part", size, md5, progress)
    path = pooch.retrieve(url, known_hash=f"md5:{md5}", fname=file_name, path=dest_dir,
                          downloader=downloader, progressbar=False)
    return Path(path)


# ----------------------------------------------------------------------------- unpacking


def is_unpacked(target_dir: str | Path) -> bool:
    """True when ``target_dir`` was completely unpacked by :func:`unpack_archive`."""
    return (Path(target_dir) / MARKER_NAME).is_file()


def _member_path(archive: Path, info: zipfile.ZipInfo) -> PurePosixPath:
    """The relative path of a zip member, or :class:`UnsafeArchiveError` when it would escape."""
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is an absolute path; refusing to unpack")
    if ".." in path.parts:
        raise UnsafeArchiveError(f"{archive}: member {info.filename!r} escapes the target folder ('..'); "
                                 "refusing to unpack")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a symbolic link (MIMII archives "
                                 "hold none, and a link may point outside the target folder); refusing to unpack")
    return PurePosixPath(*[part for part in path.parts if part not in ("", ".")])


def _check_members(archive: Path, zf: zipfile.ZipFile, root: Path) -> list[tuple[zipfile.ZipInfo, Path]]:
    """Every member with the path it will be written to under ``root``; nothing is written."""
    resolved_root = root.resolve()
    plan = []
    for info in zf.infolist():
        relative = _member_path(archive, info)
        if not relative.parts:
            continue
        dest = root.joinpath(*relative.parts)
        if not dest.resolve().is_relative_to(resolved_root):
            raise UnsafeArchiveError(f"{archive}: member {info.filename!r} resolves outside the target "
                                     "folder; refusing to unpack")
        plan.append((info, dest))
    return plan


def unpack_archive(zip_path: str | Path, target_dir: str | Path, *, progress: bool = True) -> Path:
    """Unpack a zip archive into ``target_dir``, atomically and without leaving the folder.

    All members are checked before anything is written: an absolute path, a ``..`` component
    or a symbolic link is refused. Files are written into a temporary sibling folder
    (``.<name>.unpacking-*``); a completion marker (``.asdlib-unpacked.json``) is written last
    and the folder is renamed to ``target_dir``. A lock file (``.<name>.lock``, :mod:`filelock`)
    lets one process at a time unpack into ``target_dir``: a second one started meanwhile waits,
    then finds the folder complete and returns.

    Parameters
    ----------
    zip_path : str or Path
        The archive, e.g. ``root/archives/0_dB_fan.zip`` holding ``fan/id_00/...``.
    target_dir : str or Path
        Final folder, e.g. ``root/0_dB_fan``; must not exist, unless it holds the marker, in
        which case nothing is done.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        ``target_dir``.

    Raises
    ------
    UnsafeArchiveError
        A member would be written outside ``target_dir`` (the message names archive and member).
    InsufficientSpaceError
        The unpacked files would not fit on the disk.
    ValueError
        ``target_dir`` exists but was not unpacked by this function.
    """
    zip_path, target_dir = Path(zip_path), Path(target_dir)
    if is_unpacked(target_dir):
        return target_dir
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    # One unpacker per target at a time: another process waits here, then finds the marker.
    with FileLock(str(target_dir.parent / f".{target_dir.name}.lock")):
        return _unpack_locked(zip_path, target_dir, progress)


def _unpack_locked(zip_path: Path, target_dir: Path, progress: bool) -> Path:
    if is_unpacked(target_dir):
        return target_dir
    if target_dir.exists():
        raise ValueError(f"{target_dir} exists but has no completion marker ({MARKER_NAME}): it may be "
                         f"half-unpacked or copied by hand; delete it and re-run to unpack {zip_path.name}")
    if not zip_path.is_file():
        raise FileNotFoundError(f"{zip_path}: archive not found; run the download again")
    parent = target_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_unpacking(parent, target_dir.name)
    with zipfile.ZipFile(zip_path) as zf:
        staging = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.unpacking-", dir=parent))
        try:
            plan = _check_members(zip_path, zf, staging)
            total = sum(info.file_size for info, _ in plan)
            check_space(parent, total, f"unpacking {zip_path.name}", hint=_SPACE_HINT)
            _extract(zf, plan, total, zip_path.name, progress)
            _write_marker(staging, {"archive": zip_path.name, "members": len(plan), "bytes": total})
            os.replace(staging, target_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target_dir


def _remove_stale_unpacking(parent: Path, name: str) -> None:
    """Delete temporary folders that an interrupted earlier run of ours left behind."""
    for stale in parent.glob(f".{name}.unpacking-*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale)


def _extract(zf: zipfile.ZipFile, plan: list[tuple[zipfile.ZipInfo, Path]], total: int,
             name: str, progress: bool) -> None:
    with tqdm(total=total, unit="B", unit_scale=True, desc=f"unpack {name}",
              disable=not progress, leave=False) as bar:
        for info, dest in plan:
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            bar.update(info.file_size)


def _write_marker(folder: Path, content: dict) -> None:
    """Write ``folder/MARKER_NAME`` atomically (temporary file, then os.replace)."""
    fd, tmp = tempfile.mkstemp(prefix=".marker-", dir=folder)
    with os.fdopen(fd, "w") as fh:
        json.dump(content, fh)
    os.replace(tmp, folder / MARKER_NAME)


# ----------------------------------------------------------------------------- the whole thing


def _space_needed(rows: pd.DataFrame, root: Path, keep_archives: bool) -> int:
    """Bytes still to be written for ``rows`` (the unpacked size is taken as the archive size)."""
    downloads, unpacks = [], []
    for row in rows.itertuples():
        if is_unpacked(root / row.file[: -len(".zip")]):
            continue
        archive = root / ARCHIVES_DIR / row.file
        part = archive.with_name(row.file + ".part")
        have = archive.stat().st_size if archive.exists() else part.stat().st_size if part.exists() else 0
        downloads.append(max(row.bytes - have, 0))
        unpacks.append(row.bytes)
    if not unpacks:
        return 0
    return sum(unpacks) + (sum(downloads) if keep_archives else max(downloads))


def download_mimii(root: str | Path, machines: Sequence[str] | str | None = None,
                   snrs_db: Sequence[int] | int | None = None, *, base_url: str | None = None,
                   keep_archives: bool = True, progress: bool = True,
                   registry: pd.DataFrame | str | Path | None = None) -> list[Path]:
    """Download, verify and unpack MIMII archives into ``root``.

    Parameters
    ----------
    root : str or Path
        Data folder; archives go to ``root/archives/``, their contents to
        ``root/<snr>_dB_<machine>/<machine>/id_XX/<normal|abnormal>/NNNNNNNN.wav``.
    machines : sequence of str or str, optional
        Any of ``fan, pump, slider, valve``. Default: all.
    snrs_db : sequence of int or int, optional
        Any of ``-6, 0, 6``. Default: all.
    base_url : str, optional
        Download ``base_url + "/" + file`` instead of the Zenodo URL (a mirror, or a local
        server in tests).
    keep_archives : bool
        Keep the zip files after unpacking (default). ``False`` deletes each one once unpacked.
    progress : bool
        Show progress bars on stderr.
    registry : pandas.DataFrame or str or Path, optional
        Another registry (columns ``file, bytes, md5, url``, or a TSV file with them) instead of
        the packaged MIMII one, e.g. a small archive in tests.

    Returns
    -------
    list of Path
        The unpacked folders ``root/<snr>_dB_<machine>``, in registry order.

    Raises
    ------
    ValueError
        Unknown machine or SNR.
    InsufficientSpaceError
        Before any download, when the free space in ``root`` is smaller than what is still to
        be downloaded plus its unpacked size.
    ChecksumError, DownloadError, UnsafeArchiveError
        See :func:`fetch_archive` and :func:`unpack_archive`.
    """
    if registry is None:
        table = load_registry()
    elif isinstance(registry, pd.DataFrame):
        table = _normalise_registry(registry)
    else:
        table = load_registry(registry)
    rows = _select(table, machines, snrs_db)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    check_space(root, _space_needed(rows, root, keep_archives),
                f"{len(rows)} archive(s) (downloaded and unpacked)", hint=_SPACE_HINT)
    return [_download_one(row, root, base_url, keep_archives, progress) for row in rows.itertuples()]


def _download_one(row, root: Path, base_url: str | None, keep_archives: bool, progress: bool) -> Path:
    target = root / row.file[: -len(".zip")]
    if is_unpacked(target):
        return target
    url = f"{base_url.rstrip('/')}/{row.file}" if base_url else row.url
    archives_dir = root / ARCHIVES_DIR
    archives_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(archives_dir / f".{row.file}.lock")):  # two downloads of one archive: one waits
        if is_unpacked(target):
            return target
        archive = fetch_archive(url, archives_dir, row.file, row.md5, row.bytes, progress=progress)
        unpack_archive(archive, target, progress=progress)
        if not keep_archives:
            archive.unlink()
    return target


# ----------------------------------------------------------------------------- command line


def listing(rows: pd.DataFrame) -> str:
    """A table of archives and sizes (``asdlib download --list``)."""
    width = max([len("archive"), *map(len, rows["file"])])
    lines = [f"{'archive':<{width}}  {'size':>9}"]
    lines += [f"{row.file:<{width}}  {row.bytes / 1e9:>6.2f} GB" for row in rows.itertuples()]
    lines.append(f"{len(rows)} archive(s), {rows['bytes'].sum() / 1e9:.2f} GB to download "
                 "(about as much again unpacked)")
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m asdlib.download ...``: the same as ``asdlib download ...`` (see :mod:`asdlib.cli`)."""
    from .cli import main as cli_main

    return cli_main(["download", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
