"""Shared fixtures: the real MIMII sample clips (through ASDLIB_MIMII_SAMPLES) and small generated data."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SAMPLES_ENV = "ASDLIB_MIMII_SAMPLES"


@pytest.fixture(scope="session")
def mimii_samples() -> Path:
    """The 32 real MIMII clips; skipped (saying why) when the variable is unset."""
    value = os.environ.get(SAMPLES_ENV)
    if not value:
        pytest.skip(f"{SAMPLES_ENV} is not set: point it at the real MIMII sample clips (e.g. ../shared/data/mimii-samples)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"{SAMPLES_ENV}={value} is not a folder")
    return path


def write_wav(path: Path, audio: np.ndarray, sr: int = 16000, subtype: str = "PCM_16") -> Path:
    """Write (n_channels, n_samples) audio as a WAV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(audio).T, sr, subtype=subtype)
    return path


def tone_clip(rng: np.random.Generator, n: int = 16000, anomalous: bool = False, channels: int = 8) -> np.ndarray:
    """A machine-like 8-channel clip: a few harmonics + noise; anomalous adds a strong extra tone."""
    t = np.arange(n) / 16000
    f0 = 120 * (1 + 0.02 * rng.standard_normal())
    base = sum(0.1 / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.28)) for k in range(1, 6))
    if anomalous:
        base = base + 0.2 * np.sin(2 * np.pi * 2300 * t)
    delays = np.arange(channels)
    return np.stack([np.roll(base, d) + 0.01 * rng.standard_normal(n) for d in delays]).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_mimii(tmp_path_factory) -> Path:
    """A small MIMII-layout folder: 2 machines x 2 IDs x 2 SNRs, 6 normal + 3 abnormal each, 1 s clips."""
    root = tmp_path_factory.mktemp("tiny_mimii")
    rng = np.random.default_rng(0)
    for snr in ("-6_dB", "6_dB"):
        for machine in ("fan", "valve"):
            for mid in ("id_00", "id_02"):
                for label, count in (("normal", 6), ("abnormal", 3)):
                    for i in range(count):
                        clip = tone_clip(rng, anomalous=label == "abnormal")
                        write_wav(root / f"{snr}_{machine}" / machine / mid / label / f"{i:08d}.wav", clip)
    return root
