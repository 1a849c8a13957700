"""Log-mel, frame stacking, the difference channel, and the feature cache."""
from __future__ import annotations

import sys

import librosa
import numpy as np
import pytest

from asdlib.cache import CacheWarning, FeatureCache, clip_logmels, extract_features, read_inputs, waveform_digest
from asdlib.config import Config
from asdlib.data import DataError, load_clip, scan_mimii
from asdlib.features import InputSpec, clip_vectors, input_waveforms, log_mel, log_mel_frames, n_vectors, pair_inputs, stack_frames

from .conftest import write_wav



@pytest.fixture(autouse=True)
def one_blas_thread():
    """Features are computed on one BLAS thread (so they do not depend on the core count); compute
    librosa's reference the same way, so "bit for bit" compares the same arithmetic."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield

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
    # a damaged entry is recomputed with a warning naming it
    victim = cache.path(cache.key(waveform_digest(read_inputs(path, [InputSpec(0)])[0]), InputSpec(0), cfg))
    victim.write_bytes(b"garbage")
    with pytest.warns(CacheWarning, match=victim.name):
        again = clip_logmels(path, [InputSpec(0), InputSpec(0, 4)], cfg, cache)
    np.testing.assert_array_equal(again[0], changed[0])
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


def _dcase_log_mel(y: np.ndarray, sr: int = 16000) -> np.ndarray:
    """The DCASE baseline's formula, through librosa itself."""
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=512, n_mels=128, power=2.0)
    return (20.0 / 2.0 * np.log10(np.maximum(mel, sys.float_info.epsilon))).astype(np.float32)


def test_logmel_is_librosa_bit_for_bit(mimii_samples):
    """Our NumPy spectrogram is librosa's arithmetic: equal to the last bit on real clips, for all inputs."""
    for path in scan_mimii(mimii_samples)["path"][::8]:
        audio = load_clip(path)
        mono, _ = librosa.load(path, sr=None, mono=True)
        for y in (audio[0], audio[2] - audio[6], mono):
            np.testing.assert_array_equal(log_mel(y), _dcase_log_mel(y))
        batch = log_mel(audio[:3])
        for i in range(3):
            np.testing.assert_array_equal(batch[i], _dcase_log_mel(audio[i]))


def test_logmel_is_librosa_bit_for_bit_on_noise_and_other_parameters():
    rng = np.random.default_rng(5)
    y = (0.3 * rng.standard_normal(20000)).astype(np.float32)
    np.testing.assert_array_equal(log_mel(y), _dcase_log_mel(y))
    cfg = Config(n_mels=64, power=1.0, fmin=50.0, fmax=6000.0, hop_length=256)
    mel = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=1024, hop_length=256, n_mels=64, power=1.0, fmin=50.0, fmax=6000.0)
    np.testing.assert_array_equal(log_mel(y, cfg), (20.0 * np.log10(np.maximum(mel, sys.float_info.epsilon))).astype(np.float32))
    np.testing.assert_array_equal(log_mel_frames(y), np.swapaxes(log_mel(y), -1, -2))


def test_stack_frames_into_rows_of_a_larger_array():
    lm = np.random.default_rng(3).standard_normal((2, 4, 9)).astype(np.float32)  # (batch, n_mels, T)
    big = np.full((2, 7, 20), np.nan, dtype=np.float32)
    got = stack_frames(lm, 5, out=big[:, 1:6])
    assert got.base is not None and np.isnan(big[:, 0]).all() and np.isnan(big[:, 6]).all()
    for t in range(5):
        np.testing.assert_array_equal(big[:, 1 + t], np.concatenate([lm[:, :, t + k] for k in range(5)], axis=-1))
    with pytest.raises(ValueError, match="out has shape"):
        stack_frames(lm, 5, out=big)


def test_huge_float_wav_is_refused_naming_the_file_and_never_cached(tmp_path):
    """Finite samples x 1e30 overflow the power spectrum: a clear error, not NaN features (issue 14, item 5)."""
    rng = np.random.default_rng(4)
    path = write_wav(tmp_path / "huge.wav", 1e30 * 0.1 * rng.standard_normal((8, 8000)).astype(np.float32), subtype="FLOAT")
    assert np.isfinite(load_clip(path)).all()  # the input check alone lets it through
    cache = FeatureCache(tmp_path / "cache")
    with pytest.raises(ValueError, match=r"huge\.wav: log-mel features are not finite"):
        clip_logmels(path, [InputSpec(0), InputSpec(0, 4)], Config(), cache)
    assert not list((tmp_path / "cache").rglob("*.npy"))
    with pytest.raises(ValueError, match="not finite"):
        log_mel(np.full(4096, 1e30, dtype=np.float32))


def test_channel_mean_input():
    spec = InputSpec.channel_mean()
    assert spec.name == "mean" and InputSpec.parse("mean") == spec and spec.mics == tuple(range(8))
    audio = np.random.default_rng(6).standard_normal((8, 4096)).astype(np.float32)
    np.testing.assert_array_equal(input_waveforms(audio, [spec])[0], audio.mean(axis=0))
    with pytest.raises(ValueError, match="every channel"):
        InputSpec(3, mean=True)
    with pytest.raises(ValueError, match="needs microphone 7"):
        input_waveforms(audio[:4], [spec])


def test_mean_input_is_what_librosa_load_mono_gives_the_baseline(tmp_path, mimii_samples):
    """The DCASE baseline reads 8-channel MIMII with librosa.load(mono=True): the same waveform and log-mel, exactly."""
    rng = np.random.default_rng(7)
    synthetic = write_wav(tmp_path / "s.wav", 0.2 * rng.standard_normal((8, 12000)))
    for path in (synthetic, scan_mimii(mimii_samples)["path"][3]):
        mono, _ = librosa.load(path, sr=None, mono=True)
        wave = read_inputs(path, [InputSpec.channel_mean()])[0]
        np.testing.assert_array_equal(wave, mono)
        mel = clip_logmels(path, [InputSpec.channel_mean()], Config(), FeatureCache(tmp_path / "cache"))[0]
        np.testing.assert_array_equal(mel, _dcase_log_mel(mono).T)
        assert np.abs(mel - clip_logmels(path, [InputSpec(0)], Config(), None)[0]).mean() > 0.5  # not channel 0


def test_fast_reader_equals_the_checked_reader(tmp_path):
    """16-bit files are read as integers, other files through load_clip: the same waveforms either way."""
    rng = np.random.default_rng(8)
    audio = 0.3 * rng.standard_normal((8, 6000))
    specs = [InputSpec(0), InputSpec(2, 6), InputSpec.channel_mean(), InputSpec(7)]
    for subtype in ("PCM_16", "FLOAT", "PCM_24"):
        path = write_wav(tmp_path / f"{subtype}.wav", audio, subtype=subtype)
        np.testing.assert_array_equal(read_inputs(path, specs), input_waveforms(load_clip(path), specs))
    with pytest.raises(DataError, match="sample rate 8000"):
        read_inputs(write_wav(tmp_path / "sr.wav", audio, sr=8000), specs)
    with pytest.raises(DataError, match="has 4 channel"):
        read_inputs(write_wav(tmp_path / "four.wav", audio[:4]), specs)
