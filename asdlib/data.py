"""MIMII data: discovery (a manifest table), the paper's splits, and multichannel loading.

The MIMII release (Purohit et al., 2019; Zenodo record 3384388) unpacks to
``<root>/<snr>_dB_<machine>/<machine>/id_XX/<normal|abnormal>/NNNNNNNN.wav``. People name the SNR
folder in several ways (``-6_dB_fan``, ``min6dB``, ``6dB`` ...), so clips are found by the
``id_XX/<label>/*.wav`` pattern, and the machine and SNR are read from the folders above.
The simulator (:mod:`asdlib.simulate`) writes the same layout.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from .config import MACHINES, N_MICS

LABELS = ("normal", "abnormal")
MANIFEST_COLUMNS = ["path", "relpath", "machine", "snr_db", "machine_id", "label", "clip"]

_ID_RE = re.compile(r"^id_\d+$")
# "-6_dB_fan", "0_dB_fan", "6_dB", "min6dB", "6dB", "m6_db", "neg6dB", "+6dB"
_SNR_RE = re.compile(r"^(?P<sign>-|\+|min|minus|neg|m)?(?P<value>\d+(?:\.\d+)?)_?db(?:_(?P<machine>[a-z]+))?$", re.I)


class DataError(ValueError):
    """A problem with the user's data: the message names the file and the fix."""


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
        (relative to ``root``: stable across machines), ``machine``, ``snr_db`` (NaN when no
        folder above names it), ``machine_id`` (``"id_00"``), ``label`` (``"normal"`` or
        ``"abnormal"``) and ``clip`` (file stem). :func:`add_audio_info` adds the audio format.

    Raises
    ------
    FileNotFoundError
        ``root`` does not exist.
    DataError
        No clip in the MIMII layout was found under ``root``.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"MIMII folder {str(root)!r} does not exist. Pass the folder that holds e.g. '0_dB_fan/', "
            "download the data with `asdlib download --root DIR`, or simulate some with `asdlib simulate --out DIR`."
        )
    rows = []
    for path in root.rglob("*.wav"):
        label_dir = path.parent
        id_dir = label_dir.parent
        machine_dir = id_dir.parent
        if label_dir.name not in LABELS or not _ID_RE.match(id_dir.name):
            continue
        machine = machine_dir.name.lower()
        snr = None
        for folder in reversed(path.relative_to(root).parts[:-4]):  # folders above <machine>/
            snr = parse_snr(folder)
            if snr is not None:
                break
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


def _audio_info(path: Path):
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise DataError(f"{path}: not a readable WAV file ({err}). Re-download or delete this file.") from None


def manifest_hash(manifest: pd.DataFrame) -> str:
    """A short hash of a manifest's content (relative paths and labels): identifies a data set."""
    text = "\n".join(manifest["relpath"] + "\t" + manifest["label"])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_clip(
    path: str | Path,
    mics: tuple[int, ...] | list[int] | None = None,
    *,
    sr: int = 16_000,
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
        raise DataError(f"{path}: cannot decode audio ({err}); the file is corrupt. Re-download or delete it.") from None
    audio = audio.T
    if mics is not None:
        audio = audio[list(mics)]
    if not np.all(np.isfinite(audio)):
        raise DataError(f"{path}: contains NaN or Inf samples; the file is corrupt. Re-download or delete it.")
    return np.ascontiguousarray(audio)


# ----------------------------------------------------------------------------------------------
# Splits
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Training and test clips of one machine type.

    Attributes
    ----------
    train : pandas.DataFrame
        Normal clips only.
    test : pandas.DataFrame
        Normal and abnormal clips, disjoint from ``train``.
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


def largest_split(n_normal: int, n_abnormal: int, n_train: int, n_test: int, anomalous_fraction: float = 0.5) -> tuple[int, int]:
    """The largest ``(n_train, n_test)`` with the requested ratios that ``n_normal``/``n_abnormal`` clips allow."""
    best = (0, 0)
    for scale in np.linspace(1.0, 0.0, 1001):
        tr, te = int(n_train * scale), int(n_test * scale)
        te_ab = round(te * anomalous_fraction)
        if tr + te - te_ab <= n_normal and te_ab <= n_abnormal:
            best = (tr, te)
            break
    return best


def split_machine(
    manifest: pd.DataFrame,
    machine: str,
    *,
    n_train: int = 1000,
    n_test: int = 200,
    anomalous_fraction: float = 0.5,
    seed: int = 0,
) -> Split:
    """The paper's split for one machine type.

    ``n_train`` normal clips for training and a test set of ``n_test`` clips (a fraction
    ``anomalous_fraction`` of them abnormal), disjoint, each stratified over machine ID and SNR
    (the paper "mixes different individual units and noise levels"). The draw depends only on
    ``seed`` and the clips' relative paths, so it is the same on every machine.

    Parameters
    ----------
    manifest : pandas.DataFrame
        From :func:`scan_mimii`.
    machine : str
        Machine type.
    n_train, n_test : int
        Paper: 1,000 and 200.
    anomalous_fraction : float
        Share of abnormal clips in the test set. The paper does not say; 0.5 by default.
    seed : int
        Seed of the draw.

    Raises
    ------
    SplitError
        The data has too few clips; the message gives the largest valid split.
    """
    if n_train < 1 or n_test < 2:
        raise SplitError(f"need n_train >= 1 and n_test >= 2, got n_train={n_train}, n_test={n_test}")
    if not 0 < anomalous_fraction < 1:
        raise SplitError(f"anomalous_fraction must be in (0, 1), got {anomalous_fraction}")
    clips = manifest[manifest["machine"] == machine].sort_values("relpath", ignore_index=True)
    if clips.empty:
        raise SplitError(f"no clip of machine type {machine!r}; found {sorted(manifest['machine'].unique())}")
    normal = clips[clips["label"] == "normal"]
    abnormal = clips[clips["label"] == "abnormal"]
    n_test_ab = round(n_test * anomalous_fraction)
    n_test_norm = n_test - n_test_ab
    if n_test_ab < 1 or n_test_norm < 1:
        raise SplitError(f"a test set of {n_test} clips cannot hold both classes at anomalous_fraction={anomalous_fraction}")
    if len(normal) < n_train + n_test_norm or len(abnormal) < n_test_ab:
        tr, te = largest_split(len(normal), len(abnormal), n_train, n_test, anomalous_fraction)
        raise SplitError(
            f"machine type {machine!r} has {len(normal)} normal and {len(abnormal)} abnormal clip(s); "
            f"n_train={n_train}, n_test={n_test} needs {n_train + n_test_norm} normal and {n_test_ab} abnormal. "
            f"The largest valid split with the same proportions is n_train={tr}, n_test={te}."
        )
    rng = np.random.default_rng([seed, _stable_int(machine)])

    def shuffled(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.iloc[rng.permutation(len(frame))]

    normal = shuffled(normal)
    abnormal = shuffled(abnormal)
    normal_groups = normal.groupby(_stratum(normal), sort=True)
    n_tr = _allocate(normal_groups.size(), n_train)
    remaining = normal_groups.size() - n_tr
    n_te = _allocate(remaining, n_test_norm)
    train_parts, test_parts = [], []
    for name, group in normal_groups:
        train_parts.append(group.iloc[: n_tr[name]])
        test_parts.append(group.iloc[n_tr[name] : n_tr[name] + n_te[name]])
    ab_groups = abnormal.groupby(_stratum(abnormal), sort=True)
    n_ab = _allocate(ab_groups.size(), n_test_ab)
    for name, group in ab_groups:
        test_parts.append(group.iloc[: n_ab[name]])
    train = pd.concat(train_parts).sort_values("relpath", ignore_index=True)
    test = pd.concat(test_parts).sort_values("relpath", ignore_index=True)
    return Split(train=train, test=test)


def _stratum(clips: pd.DataFrame) -> pd.Series:
    """Stratum of each clip: machine ID and SNR."""
    return clips["machine_id"] + "|" + clips["snr_db"].astype(str)


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
