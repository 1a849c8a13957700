"""MIMII data: discovery (a manifest table), the paper's splits, and multichannel loading.

The MIMII release (Purohit et al., 2019; Zenodo record 3384388) unpacks to
``<root>/<snr>_dB_<machine>/<machine>/id_XX/<normal|abnormal>/NNNNNNNN.wav``. People name the SNR
folder in several ways (``-6_dB_fan``, ``min6dB``, ``6dB`` ...), so clips are found by the
``id_XX/<label>/*.wav`` pattern, and the machine and SNR are read from the folders above. A machine
folder straight under the root (``0_dB_fan/`` itself given as the root, or no SNR folder at all) is
a valid layout too. The simulator (:mod:`asdlib.simulate`) writes the same layout.

The split (:func:`split_machine`) keeps each recording on one side: MIMII stores the same recording,
mixed at -6, 0 and 6 dB, under the same name in each SNR folder.
"""
from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from .config import MACHINES
from .geometry import N_MICS, SR

LABELS = ("normal", "abnormal")
MANIFEST_COLUMNS = ["path", "relpath", "machine", "snr_db", "machine_id", "label", "clip"]

_ID_RE = re.compile(r"^id_\d+$")
# "-6_dB_fan", "0_dB_fan", "6_dB", "min6dB", "6dB", "m6_db", "neg6dB", "+6dB"
_SNR_RE = re.compile(r"^(?P<sign>-|\+|min|minus|neg|m)?(?P<value>\d+(?:\.\d+)?)_?db(?:_(?P<machine>[a-z]+))?$", re.I)


class DataError(ValueError):
    """A problem with the user's data: the message names the file and the fix."""


class TruncatedAudioWarning(UserWarning):
    """A WAV file holds fewer frames than its header declares (an interrupted copy or download)."""


def parse_snr(folder_name: str) -> float | None:
    """SNR in dB from a folder name, or None when the name is not an SNR folder.

    Examples
    --------
    >>> parse_snr("-6_dB_fan"), parse_snr("min6dB"), parse_snr("6dB"), parse_snr("fan")
    (-6.0, -6.0, 6.0, None)
    """
    match = _SNR_RE.match(folder_name)
    if not match:
        return None
    value = float(match["value"])
    return -value if match["sign"] and match["sign"] != "+" else value


def _is_hidden(relpath: Path) -> bool:
    """Whether a path (relative to the data root) is a dot-file or lies under a dot-folder.

    Writers never leave a finished clip under such a name: :func:`asdlib.fileio.atomic_path` writes
    to ``.tmp-*`` files beside the clip, and ``asdlib download`` unpacks into ``.<name>.unpacking-*``
    folders; either may be half-written, or left behind by a killed process.
    """
    return any(part.startswith(".") for part in relpath.parts)


def scan_mimii(root: str | Path, machines: tuple[str, ...] | list[str] | None = None) -> pd.DataFrame:
    """Find every MIMII clip under ``root`` and return a manifest table.

    Parameters
    ----------
    root : str or Path
        A folder holding MIMII (or simulated) data in any of the usual spellings.
    machines : sequence of str, optional
        Keep only these machine types.

    Returns
    -------
    pandas.DataFrame
        One row per clip, sorted by ``relpath``, with columns ``path`` (absolute), ``relpath``
        (relative to ``root``: stable across machines), ``machine``, ``snr_db`` (from the
        nearest SNR folder between ``root`` and the machine folder, else from ``root``'s own name,
        else NaN: a machine folder straight under ``root`` is a valid layout), ``machine_id`` (``"id_00"``), ``label`` (``"normal"`` or
        ``"abnormal"``) and ``clip`` (file stem). :func:`add_audio_info` adds the audio format.
        Dot-files and anything under a dot-folder (below ``root``) are skipped: they are writers'
        temporary files (``.tmp-*.wav``) and download staging folders (``.0_dB_fan.unpacking-*``).

    Raises
    ------
    FileNotFoundError
        ``root`` does not exist.
    DataError
        No clip in the MIMII layout was found under ``root``, or a folder is named like a clip.
    """
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise DataError(f"{str(root)!r} is a file, not a MIMII folder; pass the folder that holds e.g. '0_dB_fan/'")
    if not root.is_dir():
        raise FileNotFoundError(
            f"MIMII folder {str(root)!r} does not exist. Pass the folder that holds e.g. '0_dB_fan/', "
            "download the data with `asdlib download --root DIR`, or simulate some with `asdlib simulate --out DIR`."
        )
    rows = []
    root_snr = parse_snr(root.resolve().name)  # root itself is an SNR folder, e.g. ".../0_dB_fan"
    for path in root.rglob("*.wav"):
        label_dir = path.parent
        id_dir = label_dir.parent
        machine_dir = id_dir.parent
        if label_dir.name not in LABELS or not _ID_RE.match(id_dir.name):
            continue
        if _is_hidden(path.relative_to(root)):  # a writer's temporary file or a staging folder
            continue
        if not path.is_file():
            raise DataError(f"{path}: is a folder, not a WAV file; rename it or move it out of the data folder")
        machine = machine_dir.name.lower()
        snr = None
        for folder in reversed(path.relative_to(root).parts[:-4]):  # folders above <machine>/
            snr = parse_snr(folder)
            if snr is not None:
                break
        if snr is None:
            snr = root_snr
        rows.append(
            {
                "path": str(path.resolve()),
                "relpath": path.relative_to(root).as_posix(),
                "machine": machine,
                "snr_db": np.nan if snr is None else snr,
                "machine_id": id_dir.name,
                "label": label_dir.name,
                "clip": path.stem,
            }
        )
    if not rows:
        raise DataError(
            f"no clip found under {str(root)!r}: expected files like "
            "'<root>/0_dB_fan/fan/id_00/normal/00000000.wav' (the MIMII layout)."
        )
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS).sort_values("relpath", ignore_index=True)
    if machines is not None:
        unknown = sorted(set(machines) - set(manifest["machine"]))
        if unknown:
            raise DataError(
                f"machine type(s) {unknown} not found under {str(root)!r}; "
                f"found: {sorted(manifest['machine'].unique())}"
            )
        manifest = manifest[manifest["machine"].isin(machines)].reset_index(drop=True)
    return manifest


def add_audio_info(manifest: pd.DataFrame) -> pd.DataFrame:
    """Add ``channels``, ``samplerate``, ``frames`` and ``duration_s`` columns (reads WAV headers).

    Raises
    ------
    DataError
        A file cannot be read as audio (names the file).
    """
    info = [_audio_info(Path(p)) for p in manifest["path"]]
    out = manifest.copy()
    out["channels"] = [i.channels for i in info]
    out["samplerate"] = [i.samplerate for i in info]
    out["frames"] = [i.frames for i in info]
    out["duration_s"] = out["frames"] / out["samplerate"]
    return out


#: What to do with a damaged clip, wherever it came from.
_REPLACE_IT = "Replace it (download or simulate it again) or delete it."


def _audio_info(path: Path):
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a WAV file; give the clips' file names (e.g. {str(path / '00000000.wav')!r})")
    if not path.exists():
        raise FileNotFoundError(f"audio file {str(path)!r} does not exist; check the path")
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise DataError(f"{path}: not a readable WAV file ({err}). {_REPLACE_IT}") from None


def declared_frames(path: str | Path) -> int | None:
    """Frames a RIFF/WAVE file's header declares (its ``data`` chunk size), or None if not a plain WAV.

    libsndfile reports the frames actually present, so a file cut short (an interrupted copy)
    reads without error; comparing with this number detects it.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = None
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                chunk_id, size = chunk[:4], int.from_bytes(chunk[4:], "little")
                if chunk_id == b"fmt ":
                    fmt = fh.read(size)
                    if len(fmt) < 14:
                        return None
                    block_align = int.from_bytes(fmt[12:14], "little")
                    if size % 2:
                        fh.seek(1, 1)
                elif chunk_id == b"data":
                    if not block_align or size in (0, 0xFFFFFFFF):  # 0 / -1: written by a stream
                        return None
                    return size // block_align
                else:
                    fh.seek(size + size % 2, 1)
    except OSError:
        return None


def manifest_hash(manifest: pd.DataFrame) -> str:
    """A short hash of a manifest's content (relative paths and labels): identifies a data set."""
    text = "\n".join(manifest["relpath"] + "\t" + manifest["label"])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_clip(
    path: str | Path,
    mics: tuple[int, ...] | list[int] | None = None,
    *,
    sr: int = SR,
    min_samples: int = 1024,
) -> np.ndarray:
    """Read one clip's channels.

    Parameters
    ----------
    path : str or Path
        A WAV file.
    mics : sequence of int, optional
        Microphones to return, in that order (all channels when None).
    sr : int
        Expected sample rate; a file at another rate is refused (no silent resampling).
    min_samples : int
        Refuse clips shorter than this (one STFT frame).

    Returns
    -------
    np.ndarray [shape=(len(mics), n_samples), dtype=float32]
        Samples scaled to [-1, 1) as ``librosa.load`` would give them.

    Raises
    ------
    FileNotFoundError, DataError
        Missing file, unreadable or corrupt WAV, wrong sample rate, too few channels, a
        microphone index out of range, too short, or NaN samples; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file {str(path)!r} does not exist; re-scan the data folder")
    if mics is not None:
        for mic in mics:
            if not (isinstance(mic, (int, np.integer)) and 0 <= mic < N_MICS):
                raise DataError(f"microphone index {mic!r} is out of range: MIMII has microphones 0-{N_MICS - 1}")
    info = _audio_info(path)
    if info.samplerate != sr:
        raise DataError(
            f"{path}: sample rate {info.samplerate} Hz, expected {sr} Hz (MIMII is 16 kHz). "
            f"Resample the file to {sr} Hz, or set Config(sr={info.samplerate}) if that is intended."
        )
    if mics is not None and max(mics) >= info.channels:
        raise DataError(
            f"{path}: has {info.channels} channel(s) but microphone {max(mics)} was requested; "
            "MIMII clips have 8 channels. Use an 8-channel file or choose microphones that exist."
        )
    if info.frames < min_samples:
        raise DataError(f"{path}: {info.frames} samples is too short (need at least {min_samples})")
    try:
        audio, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise DataError(f"{path}: cannot decode audio ({err}); the file is corrupt. {_REPLACE_IT}") from None
    declared = declared_frames(path)
    if declared is not None and len(audio) < declared:
        warnings.warn(
            f"{path}: truncated WAV, read {len(audio)} of the {declared} frames its header declares; "
            "using the frames read (replace the file to use all of it)",
            TruncatedAudioWarning,
            stacklevel=2,
        )
    audio = audio.T
    if mics is not None:
        audio = audio[list(mics)]
    if not np.all(np.isfinite(audio)):
        raise DataError(f"{path}: contains NaN or Inf samples; the file is corrupt. {_REPLACE_IT}")
    return np.ascontiguousarray(audio)


# ----------------------------------------------------------------------------------------------
# Splits
# ----------------------------------------------------------------------------------------------


SPLIT_GROUPS = ("recording", "clip")


@dataclass(frozen=True)
class Split:
    """Training and test clips of one machine type.

    Attributes
    ----------
    train : pandas.DataFrame
        Normal clips only.
    test : pandas.DataFrame
        Normal and abnormal clips, disjoint from ``train`` (empty for a training-only split).
    """

    train: pd.DataFrame
    test: pd.DataFrame


class SplitError(DataError):
    """The data cannot supply the requested split sizes."""


def _allocate(sizes: pd.Series, total: int) -> pd.Series:
    """Split ``total`` over strata proportionally to ``sizes`` (largest remainder), capped by sizes."""
    if total == 0 or sizes.sum() == 0:
        return sizes * 0
    exact = sizes / sizes.sum() * total
    counts = np.floor(exact).astype(int).clip(upper=sizes)
    remainder = (exact - counts).sort_values(ascending=False, kind="stable")
    for key in remainder.index:
        if counts.sum() >= total:
            break
        if counts[key] < sizes[key]:
            counts[key] += 1
    # if rounding left some short (strata exhausted), fill from strata with room, largest first
    for key in sizes.sort_values(ascending=False, kind="stable").index:
        while counts.sum() < total and counts[key] < sizes[key]:
            counts[key] += 1
    return counts


def _test_sizes(n_test: int, anomalous_fraction: float) -> tuple[int, int]:
    """(normal, abnormal) clips of a test set of ``n_test``."""
    n_ab = round(n_test * anomalous_fraction)
    return n_test - n_ab, n_ab


def _valid_sizes(n_train: int, n_test: int, anomalous_fraction: float, train_only: bool) -> bool:
    if n_train < 1:
        return False
    if train_only:
        return True
    n_norm, n_ab = _test_sizes(n_test, anomalous_fraction)
    return n_norm >= 1 and n_ab >= 1


def largest_split(n_normal: int, n_abnormal: int, n_train: int, n_test: int, anomalous_fraction: float = 0.5) -> tuple[int, int]:
    """The largest valid ``(n_train, n_test)`` with the requested ratio that the clip counts allow.

    Valid means ``n_train >= 1`` and, unless ``n_test`` is 0 (a training-only split), a test set
    with at least one normal and one abnormal clip. ``(0, 0)`` when no valid split fits.
    """
    for tr, te in _candidates(n_train, n_test, anomalous_fraction):
        te_norm, te_ab = _test_sizes(te, anomalous_fraction)
        if tr + te_norm <= n_normal and te_ab <= n_abnormal:
            return tr, te
    return 0, 0


def _candidates(n_train: int, n_test: int, anomalous_fraction: float):
    """Valid (n_train, n_test) pairs with the requested ratio, largest first."""
    seen = set()
    for scale in np.linspace(1.0, 0.0, 1001):
        pair = (int(n_train * scale), int(n_test * scale))
        if pair not in seen and _valid_sizes(*pair, anomalous_fraction, train_only=n_test == 0):
            seen.add(pair)
            yield pair


def split_machine(
    manifest: pd.DataFrame,
    machine: str,
    *,
    n_train: int = 1000,
    n_test: int = 200,
    anomalous_fraction: float = 0.5,
    seed: int = 0,
    groups: str = "recording",
) -> Split:
    """The paper's split for one machine type.

    ``n_train`` normal clips for training and a test set of ``n_test`` clips (a fraction
    ``anomalous_fraction`` of them abnormal), disjoint, each stratified over machine ID and SNR
    (the paper "mixes different individual units and noise levels"; clips with no SNR folder form
    their own stratum). The draw depends only on ``seed`` and the clips' relative paths, so it is
    the same on every machine.

    MIMII mixes each recording with factory noise at -6, 0 and 6 dB and stores the three mixtures
    under the same name (``id_00/normal/00000000.wav``) in three SNR folders. With
    ``groups="recording"`` (default) a recording -- machine, ID, label and file name -- is on one
    side only: the test clips are drawn first, then the training clips from the recordings the test
    set does not use. ``groups="clip"`` draws clips independently (a recording may then be in
    training at one SNR and in the test at another), for comparison.

    Parameters
    ----------
    manifest : pandas.DataFrame
        From :func:`scan_mimii`.
    machine : str
        Machine type.
    n_train, n_test : int
        Paper: 1,000 and 200. ``n_test=0`` gives a training-only split (no abnormal clip needed).
    anomalous_fraction : float
        Share of abnormal clips in the test set. The paper does not say; 0.5 by default.
    seed : int
        Seed of the draw.
    groups : {"recording", "clip"}
        Unit kept on one side of the split.

    Returns
    -------
    Split
        Exactly ``n_train`` training and ``n_test`` test clips.

    Raises
    ------
    SplitError
        The data has too few clips; the message gives the largest valid split.
    """
    if groups not in SPLIT_GROUPS:
        raise SplitError(f"split groups {groups!r} must be one of {list(SPLIT_GROUPS)}")
    if not 0 < anomalous_fraction < 1:
        raise SplitError(f"anomalous_fraction must be in (0, 1), got {anomalous_fraction}")
    train_only = n_test == 0
    if n_train < 1 or not (train_only or n_test >= 2):
        raise SplitError(f"need n_train >= 1 and n_test >= 2 (or 0: no test set), got n_train={n_train}, n_test={n_test}")
    n_test_norm, n_test_ab = _test_sizes(n_test, anomalous_fraction)
    if not _valid_sizes(n_train, n_test, anomalous_fraction, train_only):
        raise SplitError(f"a test set of {n_test} clips cannot hold both classes at anomalous_fraction={anomalous_fraction}")
    clips = manifest[manifest["machine"] == machine].sort_values("relpath", ignore_index=True)
    if clips.empty:
        raise SplitError(f"no clip of machine type {machine!r}; found {sorted(manifest['machine'].unique())}")
    normal = clips[clips["label"] == "normal"]
    abnormal = clips[clips["label"] == "abnormal"]
    split = _draw(normal, abnormal, n_train, n_test_norm, n_test_ab, [seed, _stable_int(machine)], groups)
    if split is None:
        def fits(tr: int, te: int) -> bool:
            return _draw(normal, abnormal, tr, *_test_sizes(te, anomalous_fraction), [seed, _stable_int(machine)], groups) is not None

        need = f"{n_train + n_test_norm} normal" + ("" if train_only else f" and {n_test_ab} abnormal")
        grouped = " (no recording on both sides)" if groups == "recording" and not train_only else ""
        proportional = next((c for c in _candidates(n_train, n_test, anomalous_fraction) if fits(*c)), None)
        same_test = None
        if proportional is None:
            same_test = next((tr for tr in range(min(n_train, len(normal) - n_test_norm), 0, -1) if fits(tr, n_test)), None)
        if proportional is not None:
            hint = f"The largest valid split{grouped} with the same proportions is n_train={proportional[0]}, n_test={proportional[1]}."
        elif same_test is not None:
            hint = f"The largest valid split{grouped} with n_test={n_test} is n_train={same_test}, n_test={n_test}."
        else:
            hint = ("No valid split fits: a test set needs at least 1 normal and 1 abnormal clip "
                    "besides at least 1 training clip.")
        raise SplitError(
            f"machine type {machine!r} has {len(normal)} normal and {len(abnormal)} abnormal clip(s); "
            f"n_train={n_train}, n_test={n_test} needs {need}{grouped}. {hint}"
        )
    if len(split.train) != n_train or len(split.test) != n_test:  # pragma: no cover - a bug, not bad data
        raise AssertionError(f"split of {len(split.train)}/{len(split.test)} clips, asked {n_train}/{n_test}")
    return split


def _draw(normal, abnormal, n_train, n_test_norm, n_test_ab, seed, groups) -> Split | None:
    """One stratified draw, or None when the clips cannot supply these sizes."""
    if len(abnormal) < n_test_ab or len(normal) < n_train + n_test_norm:
        return None
    rng = np.random.default_rng(seed)
    normal = normal.iloc[rng.permutation(len(normal))]
    abnormal = abnormal.iloc[rng.permutation(len(abnormal))]
    if groups == "clip":
        sizes = _sizes(normal)
        n_tr = _allocate(sizes, n_train)
        n_te = _allocate(sizes - n_tr, n_test_norm)
        rank, stratum = normal.groupby(_stratum(normal), sort=True).cumcount(), _stratum(normal)
        first = stratum.map(n_tr)
        train = normal[rank < first]
        test_normal = normal[(rank >= first) & (rank < first + stratum.map(n_te))]
    else:
        test_normal = _take(normal, _allocate(_sizes(normal), n_test_norm))
        pool = normal[~recording_key(normal).isin(set(recording_key(test_normal)))]
        if len(pool) < n_train:
            return None
        train = _take(pool, _allocate(_sizes(pool), n_train))
    test = pd.concat([test_normal, _take(abnormal, _allocate(_sizes(abnormal), n_test_ab))])
    return Split(train=train.sort_values("relpath", ignore_index=True), test=test.sort_values("relpath", ignore_index=True))


def _sizes(clips: pd.DataFrame) -> pd.Series:
    return clips.groupby(_stratum(clips), sort=True).size()


def _take(clips: pd.DataFrame, counts: pd.Series) -> pd.DataFrame:
    """The first ``counts[s]`` clips (in the frame's order) of each stratum ``s``."""
    stratum = _stratum(clips)
    return clips[clips.groupby(stratum, sort=True).cumcount() < stratum.map(counts)]


def _stratum(clips: pd.DataFrame) -> pd.Series:
    """Stratum of each clip: machine ID and SNR (``"none"`` when no folder names the SNR)."""
    snr = clips["snr_db"].map(lambda v: "none" if pd.isna(v) else f"{float(v):g}")
    return (clips["machine_id"].astype(str) + "|" + snr).astype(object)


def recording_key(clips: pd.DataFrame) -> pd.Series:
    """The recording a clip comes from: machine, ID, label and file name (the same in every SNR folder)."""
    return (clips["machine"] + "/" + clips["machine_id"] + "/" + clips["label"] + "/" + clips["clip"]).astype(object)


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
