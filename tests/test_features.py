"""Log-mel, frame stacking, the difference channel, and the feature cache."""
from __future__ import annotations

import sys

import librosa
import numpy as np
import pytest

from asdlib.cache import FeatureCache, clip_logmels, extract_features
from asdlib.config import Config
from asdlib.data import DataError, load_clip, scan_mimii
from asdlib.features import InputSpec, clip_vectors, input_waveforms, log_mel, n_vectors, pair_inputs, stack_frames

from .conftest import write_wav


def test_logmel_matches_a_direct_librosa_computation(mimii_samples):
    path = scan_mimii(mimii_samples)["path"][5]
    y, sr = librosa.load(path, sr=None, mono=False)  # what the DCASE baseline reads
    ours = log_mel(load_clip(path)[0])
    mel = librosa.feature.melspectrogram(y=y[0], sr=sr, n_fft=1024, hop_length=512, n_mels=128, power=2.0)
    expected = 20.0 / 2.0 * np.log10(np.maximum(mel, sys.float_info.epsilon))
    assert sr == 16000 and ours.shape == (128, 313)
    np.testing.assert_allclose(ours, expected, atol=1e-3)


def test_ten_second_clip_gives_309_vectors_of_640(mimii_samples):
    audio = load_clip(scan_mimii(mimii_samples)["path"][0])
    v = clip_vectors(audio, pair_inputs(0, 4))
    assert v.shape == (2, 309, 640)
    assert n_vectors(160000) == 309


def test_stacking_is_frame_major():
    lm = np.arange(3 * 7, dtype=float).reshape(3, 7)  # n_mels=3, T=7
    v = stack_frames(lm, n_frames=5)
    assert v.shape == (3, 15)
    for t in range(3):
        for k in range(5):
            np.testing.assert_array_equal(v[t, 3 * k : 3 * (k + 1)], lm[:, t + k])


def test_difference_channel_is_the_waveform_difference(mimii_samples):
    audio = load_clip(scan_mimii(mimii_samples)["path"][0])
    ref, dif = input_waveforms(audio, pair_inputs(2, 6))
    np.testing.assert_array_equal(ref, audio[2])
    np.testing.assert_array_equal(dif, audio[2] - audio[6])
    np.testing.assert_allclose(clip_vectors(audio, [InputSpec(2, 6)])[0], stack_frames(log_mel(audio[2] - audio[6])), atol=1e-4)


def test_difference_of_identical_channels_is_the_log_floor():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(16000).astype(np.float32)
    audio = np.stack([x] * 8)
    dif = clip_vectors(audio, [InputSpec(0, 4)])[0]
    np.testing.assert_allclose(dif, 10 * np.log10(sys.float_info.epsilon), rtol=1e-6)


def test_any_pair_and_bad_mics():
    audio = np.random.default_rng(1).standard_normal((8, 4096)).astype(np.float32)
    for r in range(8):
        for o in range(8):
            if r != o:
                assert clip_vectors(audio, [InputSpec(r, o)]).shape == (1, 5, 640)
    with pytest.raises(ValueError, match="out of range"):
        InputSpec(8)
    with pytest.raises(ValueError, match="two different microphones"):
        InputSpec(3, 3)
    with pytest.raises(ValueError, match="has 4 channel"):
        input_waveforms(audio[:4], [InputSpec(0, 4)])
    with pytest.raises(ValueError, match="NaN"):
        log_mel(np.full(4096, np.nan))


def test_cache_reuses_and_invalidates(tmp_path):
    rng = np.random.default_rng(2)
    path = write_wav(tmp_path / "a.wav", 0.1 * rng.standard_normal((8, 8000)).astype(np.float32))
    cache = FeatureCache(tmp_path / "cache")
    cfg = Config()
    first = clip_logmels(path, [InputSpec(0), InputSpec(0, 4)], cfg, cache)
    entries = sorted(p.name for p in (tmp_path / "cache").rglob("*.npy"))
    assert len(entries) == 2
    again = clip_logmels(path, [InputSpec(0), InputSpec(0, 4)], cfg, cache)
    np.testing.assert_array_equal(first[0], again[0])
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*.npy")) == entries  # nothing new
    # a changed parameter never reuses stale features
    other = clip_logmels(path, [InputSpec(0)], cfg.replace(n_mels=64), cache)
    assert other[0].shape[1] == 64
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 3
    # changed contents under the same name: a new key
    write_wav(path, 0.2 * rng.standard_normal((8, 8000)).astype(np.float32))
    changed = clip_logmels(path, [InputSpec(0)], cfg, cache)
    assert not np.allclose(changed[0], first[0])
    # a damaged entry counts as missing
    victim = next((tmp_path / "cache").rglob("*.npy"))
    victim.write_bytes(b"garbage")
    clip_logmels(path, [InputSpec(0), InputSpec(0, 4)], cfg, cache)
    assert not list((tmp_path / "cache").rglob(".tmp-*"))


def test_extract_features_sets(tiny_mimii, tmp_path):
    m = scan_mimii(tiny_mimii, machines=["fan"]).head(5)
    specs = pair_inputs(0, 4)
    serial = extract_features(m["path"], specs, cache=FeatureCache(tmp_path / "c"), progress=False)
    parallel = extract_features(m["path"], specs, n_jobs=2, progress=False)
    assert serial.n_clips == 5 and serial["mic0"].shape == (5 * 28, 640)
    np.testing.assert_array_equal(serial.clip_index, np.repeat(np.arange(5), 28))
    np.testing.assert_allclose(serial["mic0-mic4"], parallel["mic0-mic4"])
    with pytest.raises(DataError, match="empty"):
        extract_features([], specs)
