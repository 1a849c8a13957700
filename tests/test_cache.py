"""The feature cache verifies every entry (issue 14, item 6) and the extractor keeps one pool per run."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from asdlib.cache import CacheWarning, FeatureCache, FeatureExtractor, clip_logmels, extract_features, read_inputs, waveform_digest
from asdlib.config import Config
from asdlib.data import scan_mimii
from asdlib.features import InputSpec, clip_vectors, pair_inputs

from .conftest import write_wav


@pytest.fixture()
def clip(tmp_path):
    rng = np.random.default_rng(11)
    return write_wav(tmp_path / "clip.wav", 0.1 * rng.standard_normal((8, 8000)).astype(np.float32))


def _entry(cache: FeatureCache, path, spec: InputSpec, config: Config = Config()):
    return cache.path(cache.key(waveform_digest(read_inputs(path, [spec], config)[0]), spec, config))


def _damage_values(entry) -> None:
    """Rewrite an entry as a *valid* .npy with changed values, keeping its old checksum."""
    data = entry.read_bytes()
    body, checksum = data[:-32], data[-32:]
    array = np.load(__import__("io").BytesIO(body))
    array[10, 5] += 3.0
    buffer = __import__("io").BytesIO()
    np.save(buffer, array)
    entry.write_bytes(buffer.getvalue() + checksum)


def _zero_middle(entry) -> None:
    data = bytearray(entry.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)
    entry.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_damage_values, _zero_middle, lambda e: e.write_bytes(e.read_bytes()[:100])])
def test_a_damaged_entry_is_recomputed_with_a_warning_naming_it(tmp_path, clip, damage):
    cache = FeatureCache(tmp_path / "cache")
    specs = [InputSpec(0), InputSpec(0, 4)]
    first = clip_logmels(clip, specs, Config(), cache)
    entry = _entry(cache, clip, InputSpec(0, 4))
    good = entry.read_bytes()
    damage(entry)
    assert entry.read_bytes() != good
    with pytest.warns(CacheWarning, match=str(entry.name)) as record:
        again = clip_logmels(clip, specs, Config(), cache)
    assert len(record) == 1  # only the damaged entry; the intact one is used silently
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert entry.read_bytes() == good  # rewritten whole
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clip_logmels(clip, specs, Config(), cache)  # healthy again: no warning


def test_entries_carry_their_checksum_and_round_trip(tmp_path):
    cache = FeatureCache(tmp_path / "c")
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache.put("ab" + "0" * 62, array)
    np.testing.assert_array_equal(cache.get("ab" + "0" * 62), array)
    assert cache.get("cd" + "0" * 62) is None
    assert not list((tmp_path / "c").rglob(".tmp-*"))


def test_cache_key_follows_the_samples_not_the_file_name(tmp_path):
    rng = np.random.default_rng(12)
    audio = 0.1 * rng.standard_normal((8, 8000))
    a = write_wav(tmp_path / "a.wav", audio)
    b = write_wav(tmp_path / "b.wav", audio)
    cache = FeatureCache(tmp_path / "cache")
    clip_logmels(a, [InputSpec(0)], Config(), cache)
    clip_logmels(b, [InputSpec(0)], Config(), cache)  # same samples: the same entry
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 1
    audio[0, 100] += 0.01
    write_wav(b, audio)
    clip_logmels(b, [InputSpec(0)], Config(), cache)
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 2


def test_one_extractor_serves_many_calls_with_one_pool(tiny_mimii, tmp_path):
    manifest = scan_mimii(tiny_mimii)
    fan, valve = (manifest[manifest["machine"] == m]["path"].tolist()[:6] for m in ("fan", "valve"))
    specs = [*pair_inputs(0, 4), InputSpec.channel_mean()]
    serial = {m: extract_features(p, specs, progress=False) for m, p in (("fan", fan), ("valve", valve))}
    with FeatureExtractor(FeatureCache(tmp_path / "cache"), n_jobs=2, progress=False) as extract:
        got = {"fan": extract(fan, specs)}
        pool = extract._pool
        got["valve"] = extract(valve, specs, desc="valve")
        assert pool is not None and extract._pool is pool  # started once
        cached = extract(fan, specs)
    assert extract._pool is None
    for machine, fs in got.items():
        assert fs.paths == (fan if machine == "fan" else valve)
        np.testing.assert_array_equal(fs.clip_index, serial[machine].clip_index)
        for spec in specs:
            np.testing.assert_array_equal(fs[spec], serial[machine][spec])
    for spec in specs:
        np.testing.assert_array_equal(cached[spec], got["fan"][spec])
    # the vectors are the one path's: clip_vectors on the waveforms
    audio = read_inputs(fan[0], specs)
    np.testing.assert_array_equal(serial["fan"]["mean"][: (serial["fan"].clip_index == 0).sum()],
                                  clip_vectors(audio[2:3], [InputSpec(0)])[0])


def test_warnings_from_worker_processes_reach_the_caller(tiny_mimii, tmp_path):
    paths = scan_mimii(tiny_mimii, machines=["fan"])["path"].tolist()[:8]
    cache = FeatureCache(tmp_path / "cache")
    extract_features(paths, [InputSpec(0)], cache=cache, progress=False)
    for path in paths:
        _zero_middle(_entry(cache, path, InputSpec(0)))
    with pytest.warns(CacheWarning) as record:
        extract_features(paths, [InputSpec(0)], cache=cache, n_jobs=2, progress=False)
    assert sorted(str(r.message).split()[3] for r in record) == sorted(str(_entry(cache, p, InputSpec(0))) for p in paths)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_jobs"):
        FeatureExtractor(n_jobs=0)
    with pytest.raises(ValueError, match="no input"):
        FeatureExtractor().extract([str(tmp_path / "x.wav")], [])


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_bad_clip_stops_extraction_naming_it(tiny_mimii, tmp_path, n_jobs):
    paths = scan_mimii(tiny_mimii, machines=["valve"])["path"].tolist()[:7]
    bad = write_wav(tmp_path / "loud.wav", 1e30 * np.ones((8, 16000), dtype=np.float32) * np.sin(np.arange(16000))[None], subtype="FLOAT")
    cache = FeatureCache(tmp_path / "cache")
    with pytest.raises(ValueError, match=r"loud\.wav: log-mel features are not finite"):
        extract_features([*paths[:3], str(bad), *paths[3:]], [InputSpec(0)], cache=cache, n_jobs=n_jobs, progress=False)
    bad_entry = _entry(cache, bad, InputSpec(0))
    assert not bad_entry.exists()


def _extract_counting(paths: list[str], cache_dir: str, n_jobs: int, log: str) -> dict[str, np.ndarray]:
    """One of two runs at once (a process-pool task); each clip it computes is a line of ``log``."""
    import asdlib.cache as cache_module

    compute = cache_module.log_mel_frames

    def counting(waves, config, *, source=None):
        with open(log, "a") as f:  # also from this run's own worker processes (forked with this function)
            f.write(f"{source}\n")
        return compute(waves, config, source=source)

    cache_module.log_mel_frames = counting
    try:
        return extract_features(paths, pair_inputs(0, 4), cache=FeatureCache(cache_dir), n_jobs=n_jobs, progress=False).vectors
    finally:
        cache_module.log_mel_frames = compute


def test_two_runs_at_once_share_the_clips(tiny_mimii, tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    paths = scan_mimii(tiny_mimii)["path"].tolist()
    logs = [str(tmp_path / "one.log"), str(tmp_path / "two.log")]
    with ProcessPoolExecutor(2) as pool:  # one run in one process, one with a worker: the same groups of clips
        runs = list(pool.map(_extract_counting, [paths] * 2, [str(tmp_path / "cache")] * 2, [1, 2], logs))
    computed = [Path(log).read_text().split() if Path(log).exists() else [] for log in logs]
    # whichever way the two interleave, each clip's features are computed once, by one of them
    assert sorted(computed[0] + computed[1]) == sorted(paths), [len(c) for c in computed]
    alone = extract_features(paths, pair_inputs(0, 4), progress=False)
    for vectors in runs:
        for name, array in alone.vectors.items():
            np.testing.assert_array_equal(vectors[name], array)
    assert list((tmp_path / "cache" / ".locks").iterdir()) == []  # every lock file goes once its clips are cached


def test_a_clip_another_run_holds_is_left_for_later(tmp_path, clip):
    from filelock import FileLock

    cache, specs = FeatureCache(tmp_path / "cache"), pair_inputs(0, 4)
    keys = [cache.key(waveform_digest(w), s, Config()) for w, s in zip(read_inputs(clip, specs), specs)]
    lock = cache.lock(keys)
    assert lock.parent == tmp_path / "cache" / ".locks" and cache.lock(keys[::-1]) == lock
    lock.parent.mkdir(parents=True)
    with FileLock(str(lock)):  # another run is on this clip
        assert clip_logmels(clip, specs, Config(), cache, wait=False) is None
    assert not list((tmp_path / "cache").rglob("*.npy"))
    first = clip_logmels(clip, specs, Config(), cache, wait=False)
    assert len(first) == 2 and len(list((tmp_path / "cache").rglob("*.npy"))) == 2
    assert list(lock.parent.iterdir()) == []  # the lock file goes once the clip is cached
    written = [cache.path(k).stat().st_mtime_ns for k in keys]
    # coming back to a clip another run cached: nothing is computed again
    again = clip_logmels(clip, specs, Config(), cache)
    assert [cache.path(k).stat().st_mtime_ns for k in keys] == written
    for a, b in zip(again, first):
        np.testing.assert_array_equal(a, b)
