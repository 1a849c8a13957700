"""The feature cache verifies every entry (issue 14, item 6) and the extractor keeps one pool per run."""
from __future__ import annotations

import warnings

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
