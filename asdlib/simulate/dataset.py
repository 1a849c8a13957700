"""Data sets of simulated clips on disk, in MIMII's folder layout, with ``metadata.csv``."""
from __future__ import annotations

import hashlib
import io
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import soundfile as sf

from ..config import MACHINES, Config, check_jobs
from ..fileio import LOCK_FOLDER, atomic_path, atomic_write_text, check_space, claim, no_space_error, remove_stale_temporaries
from ..geometry import N_MICS, SR
from ..memory import tune_malloc
from .anomalies import ANOMALY_KINDS, DEFAULT_ANOMALY_STRENGTH
from . import kernels
from .clip import clip_layout, simulate_clip
from .machines import MACHINE_IDS

__all__ = ["DATA_VERSION", "LABELS", "MAX_ABS_DB", "MIN_DURATION_S", "SettingsMismatchError", "recording_seed", "clip_seed",
           "simulate_dataset"]

#: Version of the simulated clips, and what a cache of simulated data sets should key on. Bump it
#: whenever a clip's samples change beyond float rounding. It is part of every seed key, so a bump
#: also re-draws every clip. History: 1: first version. 2: the SNR folders of one recording share
#: its machine sound and anomaly (issue 15); single-precision propagation (issue 13, the same
#: signal to ~3e-7 of its RMS); WAV samples ``round(x * 32768)`` instead of libsndfile's conversion.
DATA_VERSION = "asdlib.simulate/2"
LABELS = ("normal", "abnormal")
#: Largest magnitude (dB) of an SNR or an anomaly strength: generous (MIMII uses -6 to 6 dB), and it
#: keeps the gains ``10 ** (dB / 10)`` finite and non-zero.
MAX_ABS_DB = 100.0
#: Shortest clip (s): one feature frame (``Config.n_fft`` = 1,024 samples at 16 kHz), which every
#: later command needs.
MIN_DURATION_S = Config().n_fft / SR
#: A temporary ``.tmp-*`` file this old (s) is left over from a killed run; younger ones may be
#: being written by a run into the same folder at the same time.
STALE_TEMPORARY_S = 600.0


class SettingsMismatchError(ValueError):
    """A data set folder already holds clips simulated with other settings."""


def _snr_text(snr_db: float) -> str:
    return f"{float(snr_db) + 0.0:g}"  # + 0.0 turns -0.0 into 0.0


def _hash63(*fields) -> int:
    key = "|".join([DATA_VERSION, *map(str, fields)])
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1


def recording_seed(seed: int, machine: str, machine_id: int, label: str, index: int) -> int:
    """The seed of one recording of a data set: its machine sound and anomaly, in every SNR folder.

    As in MIMII, where each recording is mixed with factory noise at -6, 0 and 6 dB, the clips
    ``<snr>_dB_<machine>/<machine>/id_XX/<label>/<index>.wav`` of all SNR levels share this seed
    (the same machine sound and anomaly) and differ in their background (:func:`clip_seed`).
    A stable 63-bit hash (SHA-256 of a canonical text including :data:`DATA_VERSION`, not
    Python's randomised ``hash``), so a clip is the same whatever else the data set holds.

    Parameters
    ----------
    seed : int
        The data set's global seed.
    machine : str
    machine_id : int
    label : {"normal", "abnormal"}
    index : int
        The clip's number within its ``id_XX/<label>`` folder.

    Returns
    -------
    int
        In ``[0, 2**63)``; the ``seed`` of :func:`~asdlib.simulate.simulate_clip`.
    """
    return _hash63(int(seed), machine, int(machine_id), label, int(index))


def clip_seed(seed: int, machine: str, machine_id: int, snr_db: float, label: str, index: int) -> int:
    """The background seed of one clip of a data set: a stable 63-bit hash of what identifies the clip.

    It depends only on these fields (SHA-256 of a canonical text including :data:`DATA_VERSION`,
    not Python's randomised ``hash``), so a clip is the same whatever else the data set holds. The
    machine sound and anomaly come from :func:`recording_seed`, which leaves out the SNR.

    Parameters
    ----------
    seed : int
        The data set's global seed.
    machine : str
    machine_id : int
    snr_db : float
    label : {"normal", "abnormal"}
    index : int
        The clip's number within its ``id_XX/<label>`` folder.

    Returns
    -------
    int
        In ``[0, 2**63)``; the ``background_seed`` of :func:`~asdlib.simulate.simulate_clip`.
    """
    return _hash63(int(seed), machine, int(machine_id), _snr_text(snr_db), label, int(index))


def _spread(total: int, parts: int) -> list[int]:
    """``total`` split as evenly as possible into ``parts`` (the first ones get the remainder)."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def _relpath(machine: str, machine_id: int, snr_db: float, label: str, index: int) -> str:
    return f"{_snr_text(snr_db)}_dB_{machine}/{machine}/id_{int(machine_id):02d}/{label}/{index:08d}.wav"


def _wav_size(n_frames: int, sr: int = SR) -> int:
    """Bytes of an 8-channel 16-bit WAV of ``n_frames`` as soundfile writes it."""
    buf = io.BytesIO()
    sf.write(buf, np.zeros((1, N_MICS), dtype=np.int16), sr, subtype="PCM_16", format="WAV")
    return buf.getbuffer().nbytes - N_MICS * 2 + n_frames * N_MICS * 2


def _check_root(root: Path, what: str = "root") -> None:
    if root.exists() and not root.is_dir():
        raise ValueError(f"{what} {str(root)!r} is an existing file, not a folder; give a new or existing folder for the data set")


def _check_dataset_args(machines, machine_ids, snrs_db, n_normal, n_abnormal, duration_s, anomaly_kinds, n_jobs,
                        anomaly_strength=DEFAULT_ANOMALY_STRENGTH, names: dict | None = None) -> None:
    """Raise ``ValueError`` naming the first bad argument; ``names`` maps a parameter to how to call it (``--snr``)."""
    def name(param: str) -> str:
        return (names or {}).get(param, param)

    try:
        strength = float(anomaly_strength)
    except (TypeError, ValueError):
        strength = float("nan")
    if not (np.isfinite(strength) and abs(strength) <= MAX_ABS_DB):
        raise ValueError(f"{name('anomaly_strength')} must be a finite number of dB from -{MAX_ABS_DB:g} to {MAX_ABS_DB:g} "
                         f"(default {DEFAULT_ANOMALY_STRENGTH:g}), got {anomaly_strength!r}")
    for m in machines:
        if m not in MACHINES:
            raise ValueError(f"unknown machine {m!r}; choose from {', '.join(MACHINES)}")
    for i in machine_ids:
        if i not in MACHINE_IDS:
            raise ValueError(f"unknown machine id {i!r} in {name('machine_ids')}; choose from {', '.join(map(str, MACHINE_IDS))}")
    for param, value in (("n_normal", n_normal), ("n_abnormal", n_abnormal)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name(param)} must be a whole number >= 0, got {value!r}")
    if n_normal == 0 and n_abnormal == 0:
        raise ValueError(f"{name('n_normal')} and {name('n_abnormal')} are both 0: nothing to simulate; give at least one clip")
    for snr in snrs_db:
        if not np.isfinite(snr):
            raise ValueError(f"{name('snrs_db')} {snr!r} dB is not a finite number; MIMII uses -6, 0 and 6")
        if abs(snr) > MAX_ABS_DB:
            raise ValueError(f"{name('snrs_db')} {snr!r} dB is outside -{MAX_ABS_DB:g} to {MAX_ABS_DB:g} dB; "
                             "MIMII uses -6, 0 and 6")
    if not (duration_s > 0 and np.isfinite(duration_s)):
        raise ValueError(f"{name('duration_s')} must be a positive number of seconds, got {duration_s!r}")
    if duration_s < MIN_DURATION_S:
        raise ValueError(f"{name('duration_s')} {duration_s!r} s is too short: a clip needs at least {Config().n_fft} samples "
                         f"({MIN_DURATION_S:g} s at {SR} Hz) for one feature frame; give at least {MIN_DURATION_S:g}")
    for k in anomaly_kinds:
        if k not in ANOMALY_KINDS:
            raise ValueError(f"unknown anomaly kind {k!r} in {name('anomaly_kinds')}; choose from {', '.join(ANOMALY_KINDS)}")
    if n_abnormal and not anomaly_kinds:
        raise ValueError(f"{name('anomaly_kinds')} is empty but {name('n_abnormal')} > 0; give 'spectral' and/or 'spatial'")
    for param, values in (("machines", machines), ("machine_ids", machine_ids), ("snrs_db", snrs_db)):
        if not values:
            raise ValueError(f"{name(param)} is empty; give at least one value")
    check_jobs(n_jobs, name("n_jobs"))


def _anomaly_kind(kinds: Sequence[str], machine_id: int, index: int) -> str:
    """Kind of abnormal clip ``index`` of a unit: the kinds in turn, starting one further for each ID."""
    return kinds[(index + MACHINE_IDS.index(machine_id)) % len(kinds)]


def _plan(machines, machine_ids, snrs_db, n_normal, n_abnormal, seed, anomaly_kinds) -> list[dict]:
    jobs = []
    for snr in snrs_db:
        for machine in machines:
            for label, total in (("normal", n_normal), ("abnormal", n_abnormal)):
                for mid, count in zip(machine_ids, _spread(total, len(machine_ids))):
                    for index in range(count):
                        kind = _anomaly_kind(anomaly_kinds, mid, index) if label == "abnormal" else None
                        jobs.append({
                            "path": _relpath(machine, mid, snr, label, index),
                            "machine": machine, "machine_id": int(mid), "snr_db": float(snr) + 0.0,
                            "label": label, "index": index, "anomaly": kind,
                            "seed": recording_seed(seed, machine, mid, label, index),
                            "background_seed": clip_seed(seed, machine, mid, snr, label, index),
                        })
    return jobs


def _metadata_row(job: dict, duration_s: float, strength: float) -> dict:
    lay = clip_layout(job["machine"], job["machine_id"], seed=job["seed"], anomaly=job["anomaly"], anomaly_strength=strength,
                      background_seed=job["background_seed"])
    an = lay["anomaly"]
    row = {
        "path": job["path"], "machine": job["machine"], "machine_id": f"id_{job['machine_id']:02d}",
        "snr_db": job["snr_db"], "label": job["label"], "anomaly_kind": an["kind"] or "none",
        "anomaly_type": an["type"] or "none", "anomaly_level_db": an["level_db"], "seed": job["seed"],
        "background_seed": job["background_seed"],
        "duration_s": duration_s,
    }
    points = {"machine": lay["machine_position"], "anomaly": an["position"]}
    points.update({f"bg{i}": b["position"] for i, b in enumerate(lay["background"])})
    for name, pos in points.items():
        for axis, value in zip("xyz", pos if pos is not None else (np.nan,) * 3):
            row[f"{name}_{axis}"] = round(float(value), 6)
    for i, b in enumerate(lay["background"]):
        row[f"bg{i}_kind"] = b["kind"]
    return row


def _to_pcm16(audio: np.ndarray) -> np.ndarray:
    """(channels, n) float32 in [-1, 1] -> (n, channels) int16: ``round(x * 32768)``, clipped to int16.

    Done here rather than by libsndfile so that the stored samples do not depend on its version; a
    reader that divides by 32768 (soundfile, librosa) gets back ``x`` within half a step.
    """
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    pcm = np.empty(audio.shape[::-1], dtype=np.int16)
    kernels.pcm16(audio, pcm)
    return pcm


def _write_wav_atomic(path: Path, audio: np.ndarray, sr: int) -> None:
    pcm = _to_pcm16(audio)
    try:
        with atomic_path(path) as tmp:
            sf.write(str(tmp), pcm, sr, subtype="PCM_16", format="WAV")
    except (OSError, RuntimeError) as err:  # libsndfile says "System error." when the disk is full
        full = no_space_error(path, pcm.nbytes, err)
        if full is None:
            raise
        raise full from err


def _make_file(root: Path, job: dict, duration_s: float, strength: float) -> float:
    """Simulate and write one clip; returns its peak before clipping."""
    audio, info = simulate_clip(
        job["machine"], job["machine_id"], snr_db=job["snr_db"], anomaly=job["anomaly"], seed=job["seed"],
        duration_s=duration_s, anomaly_strength=strength, background_seed=job["background_seed"],
    )
    if not np.isfinite(info["peak"]):  # a NaN has no 16-bit sample: never write one
        raise FloatingPointError(f"simulated clip {job['path']} has non-finite samples (seed {job['seed']}); nothing was written")
    _write_wav_atomic(root / job["path"], audio, SR)
    return info["peak"]


def _lock_name(job: dict) -> str:
    """The file name of a clip's lock in ``<root>/.locks`` (its relative path, ``/`` as ``~``)."""
    return job["path"].replace("/", "~") + ".lock"


def _make_clip(task: tuple) -> tuple[bool, str, float | None]:
    """Simulate one clip under its lock unless it is on disk (a process-pool task).

    Returns ``(done, path, peak)``. ``done`` is False when ``wait`` is False and another run holds
    the clip's lock (nothing is simulated; the caller comes back to it). ``peak`` is the clip's
    peak before clipping when this call simulated it, ``None`` when another run wrote it. The lock
    file is removed once the clip is written: a run that takes the lock later, on this file or on a
    new one, finds the clip on disk.
    """
    root, job, duration_s, strength, size, wait = task
    root = Path(root)
    with claim(root / LOCK_FOLDER / _lock_name(job), wait=wait) as held:
        if not held:
            return False, job["path"], None
        path = root / job["path"]
        peak = None
        if not (path.is_file() and path.stat().st_size == size):  # or another run wrote it meanwhile
            peak = _make_file(root, job, duration_s, strength)
        return True, job["path"], peak


def simulate_dataset(
    root: str | Path,
    machines: Sequence[str] = MACHINES,
    machine_ids: Sequence[int] = MACHINE_IDS,
    snrs_db: Sequence[float] = (0.0,),
    n_normal: int = 1100,
    n_abnormal: int = 100,
    duration_s: float = 10.0,
    seed: int = 0,
    anomaly_kinds: Sequence[str] = ANOMALY_KINDS,
    anomaly_strength: float = DEFAULT_ANOMALY_STRENGTH,
    n_jobs: int = 2,
    progress: bool = True,
) -> pd.DataFrame:
    """Write a MIMII-layout data set of simulated clips, resuming where a previous call stopped.

    Files: ``<root>/<snr>_dB_<machine>/<machine>/id_<XX>/<normal|abnormal>/<NNNNNNNN>.wav``
    (8 channels, 16 kHz, PCM_16) and ``<root>/metadata.csv``. A file that already exists with the
    expected size is kept (clips are deterministic, so it holds the same content); each WAV is
    written to a temporary file and renamed. Temporary files older than :data:`STALE_TEMPORARY_S`
    (left by a killed run) are removed first; younger ones may belong to a run writing into the
    same folder at the same time, and are left alone (:func:`asdlib.data.scan_mimii` never lists them).
    Runs that simulate into one folder at the same time share the work: each simulates a clip under
    a file lock in ``<root>/.locks``, skips the clips another run holds, and at the end waits for
    them (simulating what a stopped run left undone).

    Parameters
    ----------
    root : str or Path
        Output folder (created).
    machines : sequence of str
        Machine types, from ``("fan", "pump", "slider", "valve")``.
    machine_ids : sequence of int
        Units, from ``(0, 2, 4, 6)``.
    snrs_db : sequence of float
        SNR levels in dB; each gets its own folder (``-6_dB_fan``, ``0_dB_fan``, ...).
    n_normal, n_abnormal : int
        Clips per machine type and SNR, spread evenly over ``machine_ids`` (the defaults, 1,100 and
        100, fill the paper's split: 1,000 training and 200 test clips, half of them abnormal).
    duration_s : float
        Clip length in seconds.
    seed : int
        Global seed. Each clip's ``seed`` (machine sound and anomaly) is :func:`recording_seed` of it
        and the recording's identity, the same in every SNR folder as in MIMII; its
        ``background_seed`` is :func:`clip_seed`, which also depends on the SNR.
    anomaly_kinds : sequence of str
        Kinds of anomaly, taken in turn: abnormal clip ``i`` of the unit with ID ``k``-th in
        ``(0, 2, 4, 6)`` gets ``anomaly_kinds[(i + k) % len(anomaly_kinds)]``.
    anomaly_strength : float
        See :func:`simulate_clip` (dB relative to the machine's sound).
    n_jobs : int
        Processes (``concurrent.futures.ProcessPoolExecutor`` when > 1).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    pandas.DataFrame
        The metadata, one row per clip of this call (added to ``metadata.csv``, which keeps the rows
        of other machine types simulated into ``root`` before): ``path`` (relative to
        ``root``), ``machine``, ``machine_id`` (``"id_00"``), ``snr_db``, ``label``,
        ``anomaly_kind`` (``"none"`` for normal clips), ``anomaly_type``, ``anomaly_level_db``,
        ``seed``, ``background_seed``, ``duration_s``, source positions ``machine_x/y/z``, ``anomaly_x/y/z`` (NaN when
        normal), ``bg<i>_x/y/z`` and ``bg<i>_kind``. ``attrs["simulated"]`` is how many of them this
        call simulated (the others were on disk already, or written by a run beside it).

    Raises
    ------
    ValueError
        An argument out of range: an unknown machine, ID or anomaly kind; no clip to simulate; an SNR or
        ``anomaly_strength`` beyond ±:data:`MAX_ABS_DB` dB; a clip shorter than :data:`MIN_DURATION_S`;
        ``n_jobs`` above :func:`asdlib.config.max_jobs`.
    SettingsMismatchError
        ``root`` holds clips simulated with another seed, duration, anomaly strength or anomaly kinds
        (as its ``metadata.csv`` records them).
    """
    from tqdm import tqdm

    machines, machine_ids = list(machines), [int(i) if isinstance(i, (int, np.integer)) else i for i in machine_ids]
    snrs_db, anomaly_kinds = [float(s) for s in snrs_db], list(anomaly_kinds)
    _check_dataset_args(machines, machine_ids, snrs_db, n_normal, n_abnormal, duration_s, anomaly_kinds, n_jobs, anomaly_strength)
    root = Path(root).expanduser()
    _check_root(root)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(root, older_than=STALE_TEMPORARY_S)  # a killed run's; not those of a run beside this one
    jobs = _plan(machines, machine_ids, snrs_db, n_normal, n_abnormal, seed, anomaly_kinds)
    meta = pd.DataFrame([_metadata_row(j, duration_s, anomaly_strength) for j in jobs])
    _check_settings(root, meta)
    size = _wav_size(int(round(duration_s * SR)))
    todo = [j for j in jobs if not ((root / j["path"]).is_file() and (root / j["path"]).stat().st_size == size)]
    check_space(root, len(todo) * size, f"simulating {len(todo):,} clips of {duration_s:g} s",
                hint="free some space, or set ASDLIB_DATA (or --out) to a folder on a larger disk")
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="simulate", unit="clip", disable=not progress)
    clipped, simulated = [], 0
    try:
        # first every clip no other run is simulating, then, waiting for their locks, those another run had
        for wait in (False, True):
            tasks = [(str(root), job, duration_s, anomaly_strength, size, wait) for job in todo]
            if n_jobs > 1 and len(tasks) > 1:
                kernels.load()  # once here, inherited by the forked workers
                with ProcessPoolExecutor(max_workers=n_jobs, initializer=tune_malloc) as pool:
                    results = list(_counted(pool.map(_make_clip, tasks, chunksize=1), bar))
            else:
                tune_malloc()
                results = list(_counted(map(_make_clip, tasks), bar))
            simulated += sum(peak is not None for _, _, peak in results)
            clipped += [(path, peak) for _, path, peak in results if peak is not None and peak > 1.0]
            todo = [job for job, (done, _, _) in zip(todo, results) if not done]
            if not todo:
                break
    finally:
        bar.close()
    if clipped:
        worst = max(clipped, key=lambda c: c[1])
        warnings.warn(
            f"{len(clipped)} simulated clip(s) exceeded full scale and were clipped (worst: {worst[0]}, "
            f"peak {worst[1]:.2f}); lower anomaly_strength or raise the SNR",
            stacklevel=2,
        )
    _merge_metadata(root, meta)
    meta.attrs["simulated"] = simulated
    return meta


def _counted(results, bar):
    """``results`` of :func:`_make_clip` passed through, advancing ``bar`` for each clip done."""
    for result in results:
        bar.update(result[0])
        yield result


#: What ``metadata.csv`` records of each setting: a clip's columns that the setting determines.
_SETTING_COLUMNS = {"seed": ("seed", "background_seed"), "duration": ("duration_s",),
                    "anomaly strength": ("anomaly_level_db",), "anomaly kinds": ("anomaly_kind",)}


def _check_settings(root: Path, meta: pd.DataFrame) -> None:
    """Raise :class:`SettingsMismatchError` when clips on disk were simulated with other settings than ``meta``'s.

    Compares, for the clips of ``meta`` that exist in ``root``, the rows ``<root>/metadata.csv``
    holds for them with the planned ones (the seeds, duration, anomaly level and kind), and the
    duration of every clip listed (one root holds one duration). A folder without ``metadata.csv``
    passes.
    """
    path = root / "metadata.csv"
    if not path.is_file():
        return
    try:
        old = pd.read_csv(path, dtype={"machine_id": str})
    except (OSError, ValueError) as err:
        raise SettingsMismatchError(f"{path}: cannot be read ({err}); delete {root} and simulate again, "
                                    "or simulate into a new folder") from None
    columns = [c for cols in _SETTING_COLUMNS.values() for c in cols]
    if "path" not in old.columns or not set(columns) <= set(old.columns):
        raise SettingsMismatchError(f"{path} is not a simulator's metadata (columns {list(old.columns)[:6]}...); "
                                    f"simulate into a new folder, or delete {root}")
    both = meta[["path", *columns]].merge(old[["path", *columns]], on="path", suffixes=("", "_old"))
    both = both.loc[np.array([(root / p).is_file() for p in both["path"]], dtype=bool)]
    differ = [setting for setting, cols in _SETTING_COLUMNS.items() if any(not _same(both[c], both[f"{c}_old"]) for c in cols)]
    if "anomaly strength" in differ and {"seed", "anomaly kinds"} & set(differ):
        # a clip's anomaly level also follows its seed (the jitter) and kind (the type's offset): compare
        # the levels of the clips whose seed and kind agree only
        same_kind = both["anomaly_kind"].astype(str) == both["anomaly_kind_old"].astype(str)
        alike = ((both["seed"] == both["seed_old"]) & same_kind).to_numpy()
        if _same(both.loc[alike, "anomaly_level_db"], both.loc[alike, "anomaly_level_db_old"]):
            differ.remove("anomaly strength")
    durations = sorted(set(old["duration_s"]) - set(meta["duration_s"]))
    if durations and "duration" not in differ:
        differ.append("duration")
    if differ:
        detail = f" (its clips are {durations[0]:g} s, now {meta['duration_s'].iloc[0]:g} s)" if durations else ""
        raise SettingsMismatchError(
            f"{root} holds clips simulated with another {', '.join(differ)}{detail}, and one folder holds clips of one "
            f"set of settings: simulate into a new folder, or delete {root} to start again")


def _same(new: pd.Series, old: pd.Series) -> bool:
    """Whether two columns agree: numbers to float rounding (NaN equal to NaN), anything else exactly."""
    if pd.api.types.is_numeric_dtype(new) and pd.api.types.is_numeric_dtype(old):
        if pd.api.types.is_integer_dtype(new) and pd.api.types.is_integer_dtype(old):
            return bool((new.to_numpy() == old.to_numpy()).all())
        return bool(np.allclose(new.to_numpy(float), old.to_numpy(float), rtol=1e-9, atol=1e-9, equal_nan=True))
    return bool((new.astype(str).to_numpy() == old.astype(str).to_numpy()).all())


def _merge_metadata(root: Path, meta: pd.DataFrame) -> None:
    """Add ``meta``'s rows to ``<root>/metadata.csv`` (replacing rows of the same clips), atomically.

    One root holds every machine type simulated with the same settings: a call for some machine
    types must not drop the rows of the others (a run on ``fan`` alone, then one on all four, share
    the fan clips). Concurrent writers take turns on a file lock.
    """
    from filelock import FileLock

    path = root / "metadata.csv"
    with FileLock(str(root / ".metadata.csv.lock")):
        if path.is_file():
            old = pd.read_csv(path, dtype={"machine_id": str})
            meta = pd.concat([old[~old["path"].isin(meta["path"])], meta], ignore_index=True)
        meta = meta.sort_values("path", kind="stable", ignore_index=True)
        atomic_write_text(path, meta.to_csv(index=False))
