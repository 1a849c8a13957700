"""On-disk feature cache and feature extraction over many clips.

The cache key is a hash of everything that changes the result: the input waveform's *contents*
(SHA-256 of its float32 samples as read from the file, not the file's name or date), the input's
name (channel, difference of two, or channel mean), every feature parameter, and the versions of
asdlib, librosa, NumPy and soundfile. A changed parameter or a changed file therefore never reuses
stale features (the DCASE baseline's pickle cache had that defect).

Each entry is an ``.npy`` file followed by the SHA-256 of those bytes; a read verifies it, and an
entry that fails (changed values, zeroed or missing bytes) is recomputed with a
:class:`CacheWarning` naming it. Entries are written atomically (:mod:`asdlib.fileio`), so an
interrupted run leaves no half-written entry, and features that are not finite are refused
before they reach the cache (:func:`asdlib.features.log_mel`). Runs extracting the same clips at
the same time share the work: the missing entries of each group of up to :data:`GROUP_CLIPS` clips
are computed under a file lock in the cache's ``.locks`` folder, and a run skips the groups another
run holds and comes back to them at the end, when their features are in the cache.

Speed (issue 13): a 16-bit WAV is read as integers and only the channels the inputs need are
converted to float32 (bit for bit what ``librosa.load`` gives); only those input waveforms are
hashed (0.6 MB for one input of a 10 s clip, against 2.5 MB for the whole 8-channel file); the
cache object is built once per worker; and :class:`FeatureExtractor` keeps one pool of worker
processes for many calls (every machine type, train and test, of a run).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache as _memoise
from importlib.metadata import version
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
from tqdm import tqdm

from .config import Config, check_jobs
from .data import DataError, declared_frames, load_clip
from .features import InputSpec, input_waveforms, log_mel_frames, mel_filters, stack_frames
from .fileio import LOCK_FOLDER, atomic_write_bytes, claim

#: Version of the entry layout and arithmetic; part of every key (2: ``.npy`` bytes + their SHA-256;
#: 3: the mel product in librosa's orientation, which can round differently, see
#: :func:`asdlib.features._mel_power_frames`).
CACHE_FORMAT = 3
_CHECKSUM_BYTES = 32
#: The most clips whose features are computed under one lock (and in one task of the worker pool).
GROUP_CLIPS = 8
_PCM16_SCALE = np.float32(1.0 / 32768.0)  # libsndfile's int16 -> float normalisation (exact)


class CacheWarning(UserWarning):
    """A damaged feature-cache entry was found (and is being recomputed)."""


@_memoise
def _versions() -> dict[str, str]:
    return {name: version(name) for name in ("asdlib", "librosa", "numpy", "soundfile")}


def default_cache_dir() -> Path:
    """``$ASDLIB_CACHE/features``, default ``~/.cache/asdlib/features``."""
    return Path(os.environ.get("ASDLIB_CACHE", Path.home() / ".cache" / "asdlib")) / "features"


def waveform_digest(waveform: np.ndarray) -> str:
    """SHA-256 of a waveform's float32 samples (what the cache key calls the contents)."""
    return hashlib.sha256(np.ascontiguousarray(waveform, dtype=np.float32).data).hexdigest()


class FeatureCache:
    """Log-mel spectrograms on disk, keyed by content and parameters, each entry checksummed.

    Parameters
    ----------
    directory : str or Path, optional
        Where entries live (default :func:`default_cache_dir`).
    """

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self._versions = _versions()

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.directory)!r})"

    def key(self, content_digest: str, spec: InputSpec, config: Config) -> str:
        """The entry's key: a hash of contents (:func:`waveform_digest`), input, feature parameters and library versions."""
        payload = {
            "format": CACHE_FORMAT,
            "content": content_digest,
            "input": spec.name,
            "features": config.feature_params(),
            "versions": self._versions,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def path(self, key: str) -> Path:
        """File of the entry ``key``."""
        return self.directory / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The cached array, or None when absent or damaged.

        A damaged entry (its bytes no longer match their stored SHA-256, or they do not parse) is
        removed with a :class:`CacheWarning` naming it; the caller recomputes it.
        """
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        body, stored = data[:-_CHECKSUM_BYTES], data[-_CHECKSUM_BYTES:]
        problem = None
        if len(data) <= _CHECKSUM_BYTES or hashlib.sha256(body).digest() != stored:
            problem = "its checksum does not match its contents"
        else:
            try:
                return np.load(io.BytesIO(body), allow_pickle=False)
            except (ValueError, OSError, EOFError) as err:
                problem = f"it does not parse ({err})"
        warnings.warn(f"feature cache entry {path} is damaged ({problem}); recomputing it", CacheWarning, stacklevel=2)
        path.unlink(missing_ok=True)
        return None

    def lock(self, keys: Sequence[str]) -> Path:
        """The lock file under which the entries ``keys`` (the inputs of one clip or a group of clips) are computed.

        It is in the folder ``.locks`` of the cache, named by a hash of the keys, so runs that
        extract the same inputs of the same clips take the same lock (see :func:`asdlib.fileio.claim`).
        """
        return self.directory / LOCK_FOLDER / f"{hashlib.sha256(''.join(sorted(keys)).encode()).hexdigest()}.lock"

    def put(self, key: str, array: np.ndarray) -> None:
        """Store ``array`` atomically, followed by the SHA-256 of its ``.npy`` bytes."""
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        body = buffer.getvalue()
        atomic_write_bytes(self.path(key), body + hashlib.sha256(body).digest())


def read_inputs(path: str | Path, specs: Sequence[InputSpec], config: Config = Config()) -> np.ndarray:
    """Read one clip and build its input waveforms, decoding only the channels the inputs need.

    A 16-bit PCM file (MIMII's format) is read as integers and only the needed channels are
    converted to float32 (``x / 32768``: exactly what ``soundfile``/``librosa.load`` give); the
    channel mean is computed from the integer sum, which equals ``librosa.load(mono=True)`` bit for
    bit. Any other file, or one that fails a check, goes through :func:`asdlib.data.load_clip`
    (which validates it and names the problem).

    Parameters
    ----------
    path : str or Path
    specs : sequence of InputSpec
    config : Config
        Uses ``sr`` (files at another rate are refused) and ``n_fft`` (shortest clip).

    Returns
    -------
    np.ndarray [shape=(len(specs), n_samples), dtype=float32]
        Same values as ``input_waveforms(load_clip(path), specs)``.
    """
    mics = sorted({m for spec in specs for m in spec.mics})
    pcm = None
    try:
        with sf.SoundFile(str(path)) as handle:
            if (handle.subtype == "PCM_16" and handle.samplerate == config.sr and handle.channels > mics[-1]
                    and handle.frames >= config.n_fft):
                declared = declared_frames(path)
                if declared is None or declared <= handle.frames:
                    pcm = handle.read(dtype="int16", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError):
        pcm = None
    if pcm is None or len(pcm) < config.n_fft:  # the checked reader: errors and warnings name the file
        audio = load_clip(path, mics, sr=config.sr, min_samples=config.n_fft)
        full = np.zeros((mics[-1] + 1, audio.shape[1]), dtype=audio.dtype)
        full[mics] = audio
        return input_waveforms(full, specs)
    columns: dict[int, np.ndarray] = {}

    def column(m: int) -> np.ndarray:
        if m not in columns:
            columns[m] = pcm[:, m].astype(np.float32) * _PCM16_SCALE
        return columns[m]

    out = np.empty((len(specs), len(pcm)), dtype=np.float32)
    for row, spec in zip(out, specs):
        if spec.mean:
            n = len(spec.mics)
            # integer samples: every partial sum is an integer below 2**24, so float32 sums exactly (in any order)
            total = pcm[:, :n].astype(np.float32) @ np.ones(n, dtype=np.float32)
            np.multiply(total / np.float32(n), _PCM16_SCALE, out=row)
        elif spec.other is None:
            row[:] = column(spec.ref)
        else:
            np.subtract(column(spec.ref), column(spec.other), out=row)
    return out


def clip_logmels(
    path: str | Path, specs: Sequence[InputSpec], config: Config, cache: FeatureCache | None, *, wait: bool = True
) -> list[np.ndarray] | None:
    """Log-mels of one clip for each spec, from the cache when possible.

    :func:`group_logmels` for the one clip ``path`` (the other parameters, the lock and the errors
    are the same).

    Returns
    -------
    list of np.ndarray [shape=(T, n_mels)], or None
        Time-major, so that 5 consecutive rows flattened are one frame-major input vector. None
        only with ``wait=False``, when another run holds the clip's lock.
    """
    group = group_logmels([path], specs, config, cache, wait=wait)
    return None if group is None else group[0]


def group_logmels(
    paths: Sequence[str | Path], specs: Sequence[InputSpec], config: Config, cache: FeatureCache | None, *, wait: bool = True
) -> list[list[np.ndarray]] | None:
    """Log-mels of a few clips for each spec, from the cache when possible.

    What the cache lacks is computed under one file lock for the group (:meth:`FeatureCache.lock`
    of every clip's keys), so that concurrent runs on the same clips compute them once; one lock
    per group rather than per clip keeps the lock's cost (about 0.5 ms) to a small part of the work.

    Parameters
    ----------
    paths : sequence of str or Path
        The clips, in order (a run's groups are fixed slices of its list of clips, so that runs on
        the same list take the same locks).
    specs : sequence of InputSpec
    config : Config
    cache : FeatureCache or None
    wait : bool
        When another run is computing this group's features: wait for them (True), or return None
        at once (False; call again later with ``wait=True``).

    Returns
    -------
    list of (list of np.ndarray [shape=(T, n_mels)]), or None
        Per clip, per spec, as :func:`clip_logmels`. None only with ``wait=False``, when another
        run holds the group's lock.

    Raises
    ------
    ValueError
        A clip gives non-finite features (the message names the file); nothing of that clip is cached.
    """
    specs = list(specs)
    waves = [read_inputs(path, specs, config) for path in paths]
    if cache is None:
        return [list(log_mel_frames(w, config, source=str(path))) for path, w in zip(paths, waves)]
    keys = [[cache.key(waveform_digest(w), spec, config) for w, spec in zip(clip, specs)] for clip in waves]
    out = [[cache.get(k) for k in clip] for clip in keys]
    if all(h is not None for clip in out for h in clip):
        return out
    with claim(cache.lock([k for clip in keys for k in clip]), wait=wait) as held:
        if not held:
            return None
        for path, clip, clip_keys, mels in zip(paths, waves, keys, out):
            mels[:] = [h if h is not None else cache.get(k) for h, k in zip(mels, clip_keys)]  # another run may have written them
            missing = [i for i, h in enumerate(mels) if h is None]
            if missing:
                for i, mel in zip(missing, log_mel_frames(clip[missing], config, source=str(path))):  # raises before caching
                    cache.put(clip_keys[i], mel)
                    mels[i] = mel
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


# -- worker processes -------------------------------------------------------------------------

_WORKER_CACHE: FeatureCache | None = None


def _init_worker(cache_dir: str | None) -> None:
    global _WORKER_CACHE
    _WORKER_CACHE = FeatureCache(cache_dir) if cache_dir is not None else None


def _worker(paths, specs, config):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mels = group_logmels(paths, specs, config, _WORKER_CACHE, wait=False)
    return mels, [(w.category, str(w.message)) for w in caught]


class FeatureExtractor:
    """Feature extraction for many calls with one cache object and one pool of worker processes.

    Start it once per run and call :meth:`extract` for every machine type's train and test
    clips: the workers start once, at the first call that needs them (forked after the mel matrix
    is built, so they import nothing). This process is one of the ``n_jobs``: it works through
    the clips from the end while ``n_jobs - 1`` workers take them from the start, so a call costs
    no start-up wait. Close it (or use it as a context manager) to stop the workers.

    Parameters
    ----------
    cache : FeatureCache, optional
        On-disk cache; None computes everything.
    n_jobs : int
        Processes working, this one included (1: this process only).
    progress : bool
        Show a progress bar per call.

    Examples
    --------
    >>> with FeatureExtractor(FeatureCache(), n_jobs=2) as extract:  # doctest: +SKIP
    ...     train = extract(train_paths, inputs, config, desc="fan train features")
    ...     test = extract(test_paths, inputs, config, desc="fan test features")
    """

    def __init__(self, cache: FeatureCache | None = None, n_jobs: int = 1, progress: bool = True):
        self.cache = cache
        self.n_jobs = check_jobs(int(n_jobs))
        self.progress = progress
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "FeatureExtractor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes (pending work is cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _executor(self, config: Config) -> ProcessPoolExecutor:
        if self._pool is None:
            mel_filters(config)  # import librosa's filters and build the mel matrix once, before forking
            cache_dir = str(self.cache.directory) if self.cache is not None else None
            self._pool = ProcessPoolExecutor(max_workers=self.n_jobs - 1, initializer=_init_worker, initargs=(cache_dir,))
        return self._pool

    def __call__(self, paths, specs, config: Config = Config(), *, desc: str = "features") -> FeatureSet:
        return self.extract(paths, specs, config, desc=desc)

    def extract(
        self, paths: Sequence[str | Path], specs: Sequence[InputSpec], config: Config = Config(), *, desc: str = "features"
    ) -> FeatureSet:
        """Input vectors of every clip for every spec (see :func:`extract_features`)."""
        specs = list(dict.fromkeys(specs))
        paths = [str(p) for p in paths]
        if not paths:
            raise DataError("no clip to extract features from (the selection is empty)")
        if not specs:
            raise ValueError("no input to extract (the list of InputSpec is empty)")
        bar = tqdm(total=len(paths), desc=desc, unit="clip", disable=not self.progress, leave=False)
        groups = _groups(paths)
        try:
            if self.n_jobs > 1 and len(groups) > 1:
                results = self._parallel(groups, specs, config, bar)
            else:
                results = []
                for group in groups:
                    results.append(group_logmels(group, specs, config, self.cache, wait=False))
                    bar.update(len(group))
            # the groups another run was computing, last: by now their features are in the cache
            results = [r if r is not None else group_logmels(g, specs, config, self.cache) for g, r in zip(groups, results)]
        except BaseException:
            self.close()  # an interrupt or error leaves no worker behind
            raise
        finally:
            bar.close()
        return _assemble([clip for group in results for clip in group], specs, paths, config)

    def _parallel(self, groups: list[list[str]], specs: list[InputSpec], config: Config, bar) -> list:
        """Groups go to the workers from the front; this process takes groups from the back until they meet.

        Returns each group's :func:`group_logmels` with ``wait=False`` (None where another run held it).
        """
        pool = self._executor(config)
        futures = [pool.submit(_worker, group, specs, config) for group in groups]
        for group, future in zip(groups, futures):
            future.add_done_callback(lambda f, n=len(group): None if f.cancelled() else bar.update(n))
        mine: dict[int, list | None] = {}
        for i in reversed(range(len(groups))):
            if not futures[i].cancel():  # a worker has it already: the rest are theirs too
                break
            mine[i] = group_logmels(groups[i], specs, config, self.cache, wait=False)
            bar.update(len(groups[i]))
        results = []
        for i, future in enumerate(futures):
            if i in mine:
                results.append(mine[i])
                continue
            mels, caught = future.result()
            for category, message in caught:
                warnings.warn(message, category, stacklevel=3)
            results.append(mels)
        return results


def _groups(paths: list[str]) -> list[list[str]]:
    """Consecutive slices of ``paths``, each computed under one lock and one pool task.

    Up to :data:`GROUP_CLIPS` clips, fewer for short lists (about 8 groups, so that two processes
    share the work evenly). The slices depend only on the list, so runs on the same clips take the
    same locks, whatever their number of processes.
    """
    size = max(1, min(GROUP_CLIPS, len(paths) // 8))
    return [paths[i : i + size] for i in range(0, len(paths), size)]


def _assemble(results: list[list[np.ndarray]], specs: list[InputSpec], paths: list[str], config: Config) -> FeatureSet:
    """Per-clip time-major log-mels -> stacked vectors (through :func:`asdlib.features.stack_frames`)."""
    n = config.n_frames
    lengths = [r[0].shape[0] - n + 1 for r in results]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    vectors = {}
    for j, spec in enumerate(specs):
        out = np.empty((int(bounds[-1]), n * results[0][j].shape[-1]), dtype=np.float32)
        for r, start, stop in zip(results, bounds[:-1], bounds[1:]):
            stack_frames(np.swapaxes(r[j], -1, -2), n, out=out[start:stop])
        vectors[spec.name] = out
    clip_index = np.repeat(np.arange(len(paths)), lengths)
    return FeatureSet(vectors=vectors, clip_index=clip_index, paths=paths)


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

    One call starts (and stops) its own workers; for many calls in a run use one
    :class:`FeatureExtractor`.

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
    desc : str
        The progress bar's label.

    Returns
    -------
    FeatureSet
    """
    with FeatureExtractor(cache, n_jobs=n_jobs, progress=progress) as extractor:
        return extractor.extract(paths, specs, config, desc=desc)
