"""On-disk feature cache and feature extraction over many clips.

The cache key is a hash of everything that changes the result: the file's *contents* (SHA-256 of
its bytes, not its name or date), the input (channel or difference of two), every feature
parameter, and the versions of asdlib, librosa, NumPy and soundfile. A changed parameter therefore
never reuses stale features (the DCASE baseline's pickle cache had that defect). Entries are
written atomically (temporary file, then ``os.replace``), so an interrupted run leaves no
half-written entry.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from .config import Config
from .data import DataError, load_clip
from .features import InputSpec, input_waveforms, log_mel

CACHE_FORMAT = 1


def _versions() -> dict[str, str]:
    return {name: version(name) for name in ("asdlib", "librosa", "numpy", "soundfile")}


def default_cache_dir() -> Path:
    """``$ASDLIB_CACHE`` or ``~/.cache/asdlib/features``."""
    return Path(os.environ.get("ASDLIB_CACHE", Path.home() / ".cache" / "asdlib")) / "features"


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` atomically (readers see the old file or the whole new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FeatureCache:
    """Log-mel spectrograms on disk, keyed by content and parameters.

    Parameters
    ----------
    directory : str or Path, optional
        Where entries live (default :func:`default_cache_dir`).
    """

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self._versions = _versions()

    def key(self, content_digest: str, spec: InputSpec, config: Config) -> str:
        """The entry's key: a hash of contents, input, feature parameters and library versions."""
        payload = {
            "format": CACHE_FORMAT,
            "content": content_digest,
            "input": spec.name,
            "features": config.feature_params(),
            "versions": self._versions,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The cached array, or None (a damaged entry counts as missing and is removed)."""
        path = self._path(key)
        if not path.exists():
            return None
        try:
            return np.load(path)
        except (ValueError, OSError, EOFError):
            path.unlink(missing_ok=True)
            return None

    def put(self, key: str, array: np.ndarray) -> None:
        """Store ``array`` atomically."""
        atomic_save_npy(self._path(key), array)


def clip_logmels(path: str | Path, specs: Sequence[InputSpec], config: Config, cache: FeatureCache | None) -> list[np.ndarray]:
    """Log-mels of one clip for each spec, from the cache when possible.

    Returns
    -------
    list of np.ndarray [shape=(T, n_mels)]
        Time-major, so that 5 consecutive rows flattened are one frame-major input vector.
    """
    keys = None
    if cache is not None:
        digest = file_digest(path)
        keys = [cache.key(digest, spec, config) for spec in specs]
        hits = [cache.get(k) for k in keys]
        if all(h is not None for h in hits):
            return hits
    mics = sorted({m for spec in specs for m in spec.mics})
    audio = load_clip(path, mics, sr=config.sr, min_samples=config.n_fft)
    full = np.zeros((max(mics) + 1, audio.shape[1]), dtype=audio.dtype)
    full[mics] = audio
    waves = input_waveforms(full, specs)
    mels = np.ascontiguousarray(np.swapaxes(log_mel(waves, config), -1, -2))  # (n_specs, T, n_mels)
    out = list(mels)
    if cache is not None:
        for key, mel in zip(keys, out):
            cache.put(key, mel)
    return out


@dataclass
class FeatureSet:
    """Input vectors of many clips for several inputs.

    Attributes
    ----------
    vectors : dict[str, np.ndarray [shape=(n_vectors_total, n_frames * n_mels)]]
        Keyed by :attr:`InputSpec.name`; row ``i`` belongs to clip ``clip_index[i]``.
    clip_index : np.ndarray [shape=(n_vectors_total,)]
        Which clip (position in ``paths``) each vector comes from.
    paths : list of str
        The clips, in order.
    """

    vectors: dict[str, np.ndarray]
    clip_index: np.ndarray
    paths: list[str]

    @property
    def n_clips(self) -> int:
        return len(self.paths)

    def __getitem__(self, spec: InputSpec | str) -> np.ndarray:
        return self.vectors[spec if isinstance(spec, str) else spec.name]


def _worker(args):
    path, specs, config, cache_dir = args
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    return clip_logmels(path, specs, config, cache)


def extract_features(
    paths: Sequence[str | Path],
    specs: Sequence[InputSpec],
    config: Config = Config(),
    *,
    cache: FeatureCache | None = None,
    n_jobs: int = 1,
    progress: bool = True,
    desc: str = "features",
) -> FeatureSet:
    """Input vectors of every clip for every spec (cached, optionally in parallel).

    Parameters
    ----------
    paths : sequence of path
        WAV files.
    specs : sequence of InputSpec
        Inputs to compute (e.g. ``pair_inputs(0, 4)``).
    config : Config
        Feature parameters.
    cache : FeatureCache, optional
        On-disk cache; None computes everything.
    n_jobs : int
        Worker processes (1: in this process).
    progress : bool
        Show a progress bar.

    Returns
    -------
    FeatureSet
    """
    specs = list(dict.fromkeys(specs))
    paths = [str(p) for p in paths]
    if not paths:
        raise DataError("no clip to extract features from (the selection is empty)")
    cache_dir = cache.directory if cache is not None else None
    jobs = [(p, specs, config, cache_dir) for p in paths]
    bar = tqdm(total=len(paths), desc=desc, unit="clip", disable=not progress, leave=False)
    results = []
    if n_jobs > 1 and len(paths) > 1:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            for mels in pool.map(_worker, jobs, chunksize=max(1, min(32, len(paths) // (4 * n_jobs)))):
                results.append(mels)
                bar.update()
    else:
        for job in jobs:
            results.append(_worker(job))
            bar.update()
    bar.close()
    n = config.n_frames
    vectors = {}
    for j, spec in enumerate(specs):
        per_clip = [np.lib.stride_tricks.sliding_window_view(r[j], n, axis=0) for r in results]  # (T-n+1, n_mels, n)
        vectors[spec.name] = np.concatenate(
            [w.transpose(0, 2, 1).reshape(w.shape[0], -1) for w in per_clip]
        ).astype(np.float32, copy=False)
    lengths = [r[0].shape[0] - n + 1 for r in results]
    clip_index = np.repeat(np.arange(len(paths)), lengths)
    return FeatureSet(vectors=vectors, clip_index=clip_index, paths=paths)
