"""A physically grounded simulator of MIMII-like 8-microphone machine recordings.

The real MIMII dataset (Purohit et al., 2019) is about 100 GB; this module makes a small stand-in
with the same layout so that the whole method, spatial cues included, runs anywhere. Every number
computed from its output is **simulated**, not MIMII.

What is modelled
----------------
* **Array.** The TAMAGO-03 geometry: 8 microphones on a circle of radius 36.5 mm in the plane z = 0,
  microphone ``m`` at azimuth ``m * 45°`` (:data:`MIC_POSITIONS`); 16 kHz.
* **Propagation.** Point sources in free field: spherical spreading (amplitude ``1 / r``) and the exact
  propagation delay ``r / c`` (c = 343 m/s) to each microphone, applied as a phase ramp on the
  spectrum of the whole (padded) signal, so fractional delays are exact for band-limited signals.
  Delays are counted from the array centre (the common delay of a source to the array is dropped; it
  changes nothing a recording can show). Near field: machines at 0.5 m, valves at 0.1 m.
* **Machines.** The four MIMII types, each with a sound model of its own (:func:`simulate_clip`):
  fan (blade-pass harmonics over amplitude-modulated flow noise, slight speed jitter, motor hum),
  pump (motor and vane-pass harmonics at the motor, fluid noise at the pipe), slider (periodic travel
  with a motor whine and rolling noise, impacts at two end stops 24 cm apart) and valve (solenoid
  clicks with air flow while open). Four units per type (IDs 0, 2, 4, 6) differ in speed, resonances
  and position. Each clip draws its own speed jitter, phases, event times and noise.
* **Anomalies.** Additive, of two kinds. *Spectral*: a changed sound at the machine's own position
  (fan imbalance or rubbing, pump cavitation or bearing wear, slider rattle or grinding, valve
  chatter or contamination). *Spatial*: a new source 15-30 cm from the machine at a different
  azimuth (a leak or loose cover radiating noise shaped like the machine's own while it works, or a
  loose part rattling in time with the machine). The anomaly's power relative to the machine's
  normal sound is ``anomaly_strength`` + a per-type offset (:data:`ANOMALY_OFFSET_DB`) ± 3 dB.
* **Background.** Five point sources 2-5 m away in different directions (ventilation, floor rumble,
  mains hum, distant machinery, sporadic clanks) plus independent microphone self-noise 40 dB below
  them, mixed at the requested SNR.

SNR, as MIMII defines it: the mean power of the machine-only 8-channel signal (normal sound, all
channels and samples) over the mean power of the 8-channel background. An abnormal clip uses the
background gain of its normal counterpart (the same clip without the anomaly), so an anomaly never
changes the background level.

What is not modelled: reverberation and reflections (the floor, the machine's own body), real
machine spectra (the models are plausible, not fitted to MIMII), moving sources (the slider's
carriage sound stays at the rail's centre), directivity of sources, microphone mismatch in gain,
phase or position, air absorption, and the recording chain (preamplifiers, converters) beyond
16-bit PCM. The book's page "The simulator" (``book/simulator.md``) says more.

Determinism: a clip depends only on its seed, and :func:`clip_seed` derives that seed from
(global seed, machine, machine ID, SNR, label, clip index) with SHA-256, never from how many other
clips are made. Randomness is split into independent streams (machine, background, anomaly), so a
clip simulated with ``anomaly="spatial"`` equals the one with ``anomaly=None`` plus the anomaly's
own contribution.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import soundfile as sf
from scipy import fft as sfft
from scipy.signal import fftconvolve

__all__ = [
    "MIC_POSITIONS", "mic_positions", "propagation_delays", "propagate", "propagate_spectra",
    "UNITS", "BACKGROUND_SOURCES", "ANOMALY_OFFSET_DB", "OUTPUT_GAIN", "anomaly_types",
    "clip_seed", "clip_layout", "simulate_clip", "simulate_dataset", "build_parser", "main",
]

SR = 16_000
SPEED_OF_SOUND = 343.0  # m/s
MIC_RADIUS = 0.0365  # m, TAMAGO-03
N_MICS = 8
MACHINES = ("fan", "pump", "slider", "valve")
MACHINE_IDS = (0, 2, 4, 6)
ANOMALY_KINDS = ("spectral", "spatial")
LABELS = ("normal", "abnormal")
DEFAULT_ANOMALY_STRENGTH = -10.0  # dB; plus ANOMALY_OFFSET_DB of the type: the level re the machine (see simulate_clip)
ANOMALY_JITTER_DB = 3.0  # each clip's anomaly level is strength ± this (uniform)
SENSOR_NOISE_DB = -40.0  # microphone self-noise relative to the background point sources

_KEY_VERSION = "asdlib.simulate/1"  # part of every clip's seed key: bump to change every clip
_PAD = 256  # samples simulated before and after the clip (delays, ringing, fades)
_FADE = 64  # raised-cosine fade at both ends of each padded source signal
_STREAM_MACHINE, _STREAM_BACKGROUND, _STREAM_ANOMALY = 0, 1, 2
_TWO_PI = 2.0 * np.pi


def mic_positions(radius: float = MIC_RADIUS) -> np.ndarray:
    """Microphone positions of the TAMAGO-03 array.

    Parameters
    ----------
    radius : float
        Radius of the circle in metres (36.5 mm for TAMAGO-03).

    Returns
    -------
    np.ndarray [shape=(8, 3)]
        ``(x, y, z)`` of microphone ``m`` at azimuth ``m * 45°`` in the plane ``z = 0``, in metres.
    """
    angles = np.deg2rad(45.0 * np.arange(N_MICS))
    return np.c_[radius * np.cos(angles), radius * np.sin(angles), np.zeros(N_MICS)]


MIC_POSITIONS = mic_positions()


# ----------------------------------------------------------------------------------------------
# Propagation
# ----------------------------------------------------------------------------------------------
def propagation_delays(positions: np.ndarray, mics: np.ndarray | None = None, c: float = SPEED_OF_SOUND) -> np.ndarray:
    """Delays from point sources to microphones, relative to the array centre.

    Parameters
    ----------
    positions : np.ndarray [shape=(S, 3)]
        Source positions in metres.
    mics : np.ndarray [shape=(M, 3)], optional
        Microphone positions in metres (default :data:`MIC_POSITIONS`).
    c : float
        Speed of sound in m/s.

    Returns
    -------
    np.ndarray [shape=(S, M)]
        ``(|p_s - m| - |p_s|) / c`` in seconds: positive where a microphone is farther than the centre.
    """
    positions = np.atleast_2d(np.asarray(positions, dtype=float))
    mics = MIC_POSITIONS if mics is None else np.asarray(mics, dtype=float)
    dist = np.linalg.norm(positions[:, None, :] - mics[None, :, :], axis=-1)  # (S, M)
    return (dist - np.linalg.norm(positions, axis=-1)[:, None]) / c


def _phase_ramps(delays_samples: np.ndarray, n: int) -> np.ndarray:
    """``exp(-2j pi k d / n)`` for rfft bins ``k`` and delays ``d`` (samples), shape (M, n//2+1).

    Computed as an outer product of a coarse and a fine ramp (two short ``exp`` calls instead of
    M * F), which is exact to float64 rounding.
    """
    n_bins = n // 2 + 1
    block = 512
    n_blocks = -(-n_bins // block)
    w = -_TWO_PI * np.asarray(delays_samples, dtype=float)[:, None] / n  # (M, 1) radians per bin
    fine = np.exp(1j * w * np.arange(block))  # (M, block)
    coarse = np.exp(1j * w * (block * np.arange(n_blocks)))  # (M, n_blocks)
    return (coarse[:, :, None] * fine[:, None, :]).reshape(len(w), -1)[:, :n_bins]


def propagate_spectra(
    signals: np.ndarray,
    positions: np.ndarray,
    *,
    sr: int = SR,
    mics: np.ndarray | None = None,
    c: float = SPEED_OF_SOUND,
) -> np.ndarray:
    """Spectra at the microphones of point sources in free field (sum over sources).

    Each source ``s`` reaches microphone ``m`` as ``x_s(t - τ_sm) / r_sm``: spherical spreading and the
    exact (fractional) delay, applied as a phase ramp on the rfft of the whole signal. The signals are
    treated as periodic, so a caller who wants a linear (non-circular) result pads and fades them,
    as :func:`simulate_clip` does.

    Parameters
    ----------
    signals : np.ndarray [shape=(S, n)]
        Source signals (the pressure they would give at 1 m).
    positions : np.ndarray [shape=(S, 3)]
        Source positions in metres.
    sr : int
        Sample rate in Hz.
    mics : np.ndarray [shape=(M, 3)], optional
        Microphone positions in metres (default :data:`MIC_POSITIONS`).
    c : float
        Speed of sound in m/s.

    Returns
    -------
    np.ndarray [shape=(M, n // 2 + 1)], complex
        rfft of the microphone signals; ``scipy.fft.irfft(..., n=n)`` gives them in time.
    """
    signals = np.atleast_2d(np.asarray(signals, dtype=float))
    positions = np.atleast_2d(np.asarray(positions, dtype=float))
    mics = MIC_POSITIONS if mics is None else np.asarray(mics, dtype=float)
    if signals.shape[0] != positions.shape[0] or positions.shape[1] != 3:
        raise ValueError(f"signals {signals.shape} and positions {positions.shape} must be (S, n) and (S, 3)")
    n = signals.shape[1]
    dist = np.linalg.norm(positions[:, None, :] - mics[None, :, :], axis=-1)  # (S, M)
    if np.any(dist < 1e-3):
        raise ValueError("a source sits on a microphone (closer than 1 mm); move it")
    delays = propagation_delays(positions, mics, c) * sr  # (S, M) samples
    out = np.zeros((len(mics), n // 2 + 1), dtype=complex)
    for s in range(len(signals)):
        spectrum = sfft.rfft(signals[s])
        if n % 2 == 0:
            spectrum[-1] = 0.0  # the Nyquist bin cannot carry a fractional delay in a real signal
        ramps = _phase_ramps(delays[s], n)  # (M, F)
        ramps *= spectrum
        ramps *= (1.0 / dist[s])[:, None]
        out += ramps
    return out


def propagate(
    signals: np.ndarray,
    positions: np.ndarray,
    *,
    sr: int = SR,
    mics: np.ndarray | None = None,
    c: float = SPEED_OF_SOUND,
) -> np.ndarray:
    """Microphone signals of point sources in free field (circular; see :func:`propagate_spectra`).

    Parameters
    ----------
    signals : np.ndarray [shape=(S, n)] or [shape=(n,)]
        Source signals.
    positions : np.ndarray [shape=(S, 3)] or [shape=(3,)]
        Source positions in metres.
    sr : int
        Sample rate in Hz.
    mics : np.ndarray [shape=(M, 3)], optional
        Microphone positions in metres (default :data:`MIC_POSITIONS`).
    c : float
        Speed of sound in m/s.

    Returns
    -------
    np.ndarray [shape=(M, n)]
        The sum over sources of ``x_s(t - τ_sm) / r_sm`` at each microphone.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal(16000)
    >>> y = propagate(x, [0.5, 0.0, 0.0])  # a source on the 0-4 axis, 50 cm away
    >>> y.shape
    (8, 16000)
    """
    signals = np.atleast_2d(np.asarray(signals, dtype=float))
    spectra = propagate_spectra(signals, positions, sr=sr, mics=mics, c=c)
    return sfft.irfft(spectra, n=signals.shape[1], axis=-1)


# ----------------------------------------------------------------------------------------------
# Machine units (the MIMII machine IDs) and the background
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    """One machine unit (a MIMII machine ID): where it stands and how it sounds.

    ``components`` are the parts that radiate, as ``name -> (radial, tangential, up)`` offsets in
    metres from the unit's centre, in a frame whose radial axis points from the array to the unit.
    """

    machine: str
    machine_id: int
    azimuth_deg: float
    elevation_deg: float
    distance_m: float
    params: dict
    components: dict

    @property
    def position(self) -> np.ndarray:
        """(3,) centre of the unit in metres."""
        az, el = np.deg2rad(self.azimuth_deg), np.deg2rad(self.elevation_deg)
        return self.distance_m * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])

    def to_world(self, offset: Sequence[float]) -> np.ndarray:
        """(3,) world position of an offset ``(radial, tangential, up)`` from the unit's centre."""
        az = np.deg2rad(self.azimuth_deg)
        radial = np.array([np.cos(az), np.sin(az), 0.0])
        tangential = np.array([-np.sin(az), np.cos(az), 0.0])
        up = np.array([0.0, 0.0, 1.0])
        r, t, u = offset
        return self.position + r * radial + t * tangential + u * up

    def component_positions(self) -> dict[str, np.ndarray]:
        """Name -> (3,) world position of each radiating part."""
        return {name: self.to_world(off) for name, off in self.components.items()}


def _units() -> dict[tuple[str, int], Unit]:
    """The 16 machine units. Speeds, resonances and positions differ between IDs."""
    fan = {  # f_rot: shaft Hz; blades; res: (centre Hz, Q, boost) of the flow noise
        0: (15.0, -5.0, dict(f_rot=19.5, blades=7, res=[(900, 3, 4), (2400, 5, 2)], tone_db=-4.0)),
        2: (70.0, 0.0, dict(f_rot=24.0, blades=5, res=[(1150, 3, 4), (3100, 6, 2)], tone_db=-2.0)),
        4: (125.0, 5.0, dict(f_rot=16.5, blades=9, res=[(700, 2.5, 5), (2700, 5, 2)], tone_db=-6.0)),
        6: (200.0, -3.0, dict(f_rot=27.5, blades=6, res=[(1300, 3, 3), (3600, 6, 2.5)], tone_db=-3.0)),
    }
    pump = {  # vanes: impeller vanes; pipe: (centre Hz, Q, boost) of the fluid noise; bpfo: bearing defect order
        0: (40.0, -5.0, dict(f_rot=24.5, vanes=6, pipe=[(420, 4, 6), (1500, 4, 2)], bpfo=3.58)),
        2: (100.0, 0.0, dict(f_rot=29.0, vanes=5, pipe=[(600, 3, 5), (1900, 5, 2)], bpfo=3.12)),
        4: (160.0, 5.0, dict(f_rot=25.8, vanes=7, pipe=[(330, 5, 7), (1200, 3, 2)], bpfo=3.35)),
        6: (300.0, 0.0, dict(f_rot=28.2, vanes=6, pipe=[(520, 3, 4), (2300, 6, 3)], bpfo=3.47)),
    }
    slider = {  # period: s per back-and-forth cycle; motor: whine Hz at full speed; modes: end-stop ringing
        0: (350.0, -8.0, dict(period=1.2, motor=420.0, modes=[(1800, 0.020), (3400, 0.012), (5200, 0.008)])),
        2: (55.0, 0.0, dict(period=1.6, motor=560.0, modes=[(1300, 0.030), (2900, 0.015), (4700, 0.010)])),
        4: (135.0, 5.0, dict(period=0.9, motor=350.0, modes=[(2200, 0.018), (3900, 0.010), (6100, 0.006)])),
        6: (240.0, 0.0, dict(period=2.0, motor=700.0, modes=[(1500, 0.025), (3100, 0.014), (5600, 0.009)])),
    }
    valve = {  # open/closed: mean durations s; modes: solenoid ringing; flow: band of the air flow Hz
        0: (30.0, -10.0, dict(open=0.25, closed=0.55, modes=[(2600, 0.006), (4300, 0.004), (6500, 0.003)], flow=(900, 5500))),
        2: (80.0, 0.0, dict(open=0.15, closed=0.35, modes=[(3100, 0.005), (5100, 0.004), (7000, 0.002)], flow=(1200, 6500))),
        4: (200.0, 10.0, dict(open=0.40, closed=0.90, modes=[(2200, 0.008), (3800, 0.005), (6000, 0.003)], flow=(700, 4500))),
        6: (275.0, 0.0, dict(open=0.20, closed=0.60, modes=[(2900, 0.006), (4700, 0.004), (6800, 0.003)], flow=(1000, 6000))),
    }
    parts = {
        "fan": {"rotor": (0.0, 0.0, 0.0), "motor": (0.10, 0.0, -0.04)},
        "pump": {"motor": (0.0, 0.0, 0.0), "pipe": (0.0, 0.12, -0.05)},
        "slider": {"carriage": (0.0, 0.0, 0.0), "end_a": (0.0, -0.12, 0.0), "end_b": (0.0, 0.12, 0.0)},
        "valve": {"body": (0.0, 0.0, 0.0), "outlet": (0.0, 0.03, -0.01)},
    }
    distance = {"fan": 0.5, "pump": 0.5, "slider": 0.5, "valve": 0.1}
    units = {}
    for machine, table in (("fan", fan), ("pump", pump), ("slider", slider), ("valve", valve)):
        for mid, (az, el, params) in table.items():
            units[machine, mid] = Unit(machine, mid, az, el, distance[machine], params, parts[machine])
    return units


UNITS = _units()

# kind, azimuth (deg), elevation (deg), level (dB): the factory around the machine
BACKGROUND_SOURCES = (
    ("ventilation", 50.0, 35.0, 0.0),
    ("rumble", 190.0, -10.0, 0.0),
    ("hum", 120.0, 10.0, -6.0),
    ("machinery", 290.0, 0.0, -2.0),
    ("clanks", 240.0, 5.0, -4.0),
)

# Fixed output gain per machine type (the same for every clip, so a normal clip and its abnormal
# counterpart share it): the normal machine sound sits near -40 dBFS (valves -44 dBFS), the 0 dB
# mixture near -37 dBFS (MIMII's 0 dB clips: about -43 dBFS), and a -6 dB mixture with an anomaly
# 6 dB above the default strength peaks below -6 dBFS.
OUTPUT_GAIN = {"fan": 0.0041, "pump": 0.0041, "slider": 0.0035, "valve": 0.00019}


def _unit(machine: str, machine_id: int) -> Unit:
    if machine not in MACHINES:
        raise ValueError(f"unknown machine {machine!r}; choose one of {', '.join(MACHINES)}")
    try:
        return UNITS[machine, int(machine_id)]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"unknown machine id {machine_id!r} for {machine}; choose one of {MACHINE_IDS}") from None


# ----------------------------------------------------------------------------------------------
# Signal building blocks (all on the padded time axis t, seconds, t = 0 at the clip's start)
# ----------------------------------------------------------------------------------------------
def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def _unit_rms(x: np.ndarray) -> np.ndarray:
    return x / max(_rms(x), 1e-12)


def _db(level_db: float) -> float:
    return 10.0 ** (level_db / 20.0)


def _pink(f: np.ndarray, floor: float = 20.0, exponent: float = 1.0) -> np.ndarray:
    """Amplitude of noise whose power falls as ``1 / f**exponent`` above ``floor`` Hz (1: pink)."""
    return np.maximum(f, floor) ** (-exponent / 2.0)


def _band(f: np.ndarray, lo: float | None = None, hi: float | None = None, order: int = 2) -> np.ndarray:
    """Butterworth-like band-pass magnitude."""
    g = np.ones_like(f)
    with np.errstate(divide="ignore"):
        if lo:
            g = g / np.sqrt(1.0 + (lo / np.maximum(f, 1e-3)) ** (2 * order))
        if hi:
            g = g / np.sqrt(1.0 + (f / hi) ** (2 * order))
    return g


def _peaks(f: np.ndarray, resonances: Sequence[tuple[float, float, float]]) -> np.ndarray:
    """``1 +`` a sum of resonant boosts ``(centre Hz, Q, boost)``."""
    g = np.ones_like(f)
    for fc, q, boost in resonances:
        g = g + boost / (1.0 + ((f - fc) / (fc / q)) ** 2)
    return g


def _noise(rng: np.random.Generator, n: int, sr: int, shape: np.ndarray | None = None) -> np.ndarray:
    """Gaussian noise of length n with rfft amplitude ``shape`` (None: white), unit RMS."""
    n_bins = n // 2 + 1
    spectrum = rng.standard_normal(n_bins) + 1j * rng.standard_normal(n_bins)
    if shape is not None:
        spectrum *= shape
    spectrum[0] = 0.0
    return _unit_rms(sfft.irfft(spectrum, n=n))


def _slow(rng: np.random.Generator, t: np.ndarray, knot_s: float = 0.5) -> np.ndarray:
    """A slow random fluctuation (zero mean, unit-variance knots every ``knot_s`` s, interpolated)."""
    knots = np.arange(t[0], t[-1] + knot_s, knot_s)
    return np.interp(t, knots, rng.standard_normal(knots.size))


def _rotation(rng: np.random.Generator, t: np.ndarray, sr: int, f0: float, jitter: float, drift: float) -> tuple[np.ndarray, np.ndarray]:
    """Shaft phase (rad) and instantaneous frequency (Hz): ``f0`` with a per-clip offset and a slow drift."""
    f = f0 * (1.0 + jitter * rng.standard_normal()) * (1.0 + drift * _slow(rng, t))
    phase = rng.uniform(0.0, _TWO_PI) + _TWO_PI * np.cumsum(f) / sr
    return phase, f


def _harmonics(rng: np.random.Generator, phase: np.ndarray, amps: Sequence[float], f_max: float, sr: int) -> np.ndarray:
    """``sum_k a_k sin(k phase + φ_k)`` with random φ_k; harmonics above 0.45 sr are left out."""
    z = np.exp(1j * phase)
    zk = z.copy()
    out = np.zeros(phase.shape)
    for k, a in enumerate(amps, start=1):
        if k * f_max >= 0.45 * sr:
            break
        if a:
            out += a * (zk * np.exp(1j * rng.uniform(0.0, _TWO_PI))).imag
        zk *= z
    return out


def _ringing(
    rng: np.random.Generator,
    t: np.ndarray,
    sr: int,
    times: np.ndarray,
    amps: np.ndarray,
    modes: Sequence[tuple[float, float]],
    click: float = 0.0,
) -> np.ndarray:
    """Impacts at ``times`` (s), each exciting decaying modes ``(freq Hz, decay s)``.

    ``click`` adds a short broadband tick (0.5 ms decay) at each impact, relative to the modes.
    """
    longest = max(d for _, d in modes)
    n_k = int(min(0.5, 6.0 * longest) * sr)
    tk = np.arange(n_k) / sr
    kernel = np.zeros(n_k)
    for i, (f, decay) in enumerate(modes):
        f = f * (1.0 + 0.01 * rng.standard_normal())
        kernel += np.exp(-tk / decay) * np.sin(_TWO_PI * f * tk + rng.uniform(0, _TWO_PI)) / (1.0 + 0.5 * i)
    if click:
        n_c = min(n_k, int(0.004 * sr))
        kernel[:n_c] += click * rng.standard_normal(n_c) * np.exp(-tk[:n_c] / 0.0005)
    n = t.size
    train = np.zeros(n + n_k)  # room for impacts just before t[0] that ring into the clip
    idx = np.round((np.asarray(times) - t[0]) * sr).astype(int) + n_k
    keep = (idx >= 0) & (idx < n + n_k)
    np.add.at(train, idx[keep], np.asarray(amps, dtype=float)[keep])
    return fftconvolve(train, kernel)[n_k : n_k + n]


def _poisson_times(rng: np.random.Generator, rate: float, t0: float, t1: float) -> np.ndarray:
    """Event times of a Poisson process of ``rate`` per second on [t0, t1)."""
    count = rng.poisson(rate * (t1 - t0))
    return np.sort(rng.uniform(t0, t1, count))


def _revolutions(t: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Times (s) at which the shaft phase passes a multiple of 2π."""
    turns = np.floor(phase / _TWO_PI)
    return t[1:][np.diff(turns) > 0]


def _smooth_gate(gate: np.ndarray, sr: int, ramp_s: float) -> np.ndarray:
    """A 0/1 gate with raised-cosine edges of ``ramp_s`` seconds."""
    n_w = max(3, int(ramp_s * sr))
    window = np.hanning(n_w)
    return np.clip(fftconvolve(gate.astype(float), window / window.sum(), mode="same"), 0.0, 1.0)


@dataclass
class _Sound:
    """What a machine model returns: signals of its parts and the state anomalies follow."""

    parts: dict  # part name -> (n,) signal at 1 m
    noise_shape: np.ndarray  # rfft amplitude of the machine's broadband noise (the leak copies it)
    rhythm: np.ndarray  # times (s) of the machine's periodic events (revolutions, travels, clicks)
    activity: np.ndarray | float  # (n,) 0-1 envelope of when the machine works (1: always)
    state: dict  # anything else an anomaly needs


# ----------------------------------------------------------------------------------------------
# Normal machine sounds
# ----------------------------------------------------------------------------------------------
def _fan(u: Unit, rng: np.random.Generator, t: np.ndarray, sr: int) -> _Sound:
    """Blade-pass harmonics over flow noise modulated at the blade rate; motor hum behind the rotor."""
    p, n = u.params, t.size
    f = sfft.rfftfreq(n, 1 / sr)
    phase, f_inst = _rotation(rng, t, sr, p["f_rot"], jitter=0.01, drift=0.004)
    bpf = p["blades"] * phase
    fmax = p["blades"] * f_inst.max()
    tones = _unit_rms(_harmonics(rng, bpf, [1.0, 0.55, 0.35, 0.22, 0.14, 0.09, 0.06], fmax, sr))
    tones += 0.08 * _unit_rms(_harmonics(rng, phase, [1.0, 0.5], f_inst.max(), sr))  # residual unbalance
    shape = _pink(f, 100.0, 1.6) * _band(f, 60.0, 6500.0) * _peaks(f, p["res"])
    flow = _noise(rng, n, sr, shape) * (1.0 + 0.2 * np.sin(bpf + rng.uniform(0, _TWO_PI)))
    rotor = _db(p["tone_db"] + rng.normal(0, 1.0)) * tones + flow
    hum_phase = _TWO_PI * 100.0 * (1 + 1e-4 * rng.standard_normal()) * t
    motor = _harmonics(rng, hum_phase, [1.0, 0.4, 0.25], 100.0, sr) + 0.3 * _noise(rng, n, sr, _band(f, 2000, 5000))
    motor = 0.25 * _db(rng.normal(0, 1.0)) * _unit_rms(motor)
    return _Sound({"rotor": rotor, "motor": motor}, shape, _revolutions(t, phase), 1.0, {"phase": phase, "f_inst": f_inst})


def _pump(u: Unit, rng: np.random.Generator, t: np.ndarray, sr: int) -> _Sound:
    """Motor: shaft, vane-pass and mains harmonics. Pipe: fluid noise with pipe resonances."""
    p, n = u.params, t.size
    f = sfft.rfftfreq(n, 1 / sr)
    phase, f_inst = _rotation(rng, t, sr, p["f_rot"], jitter=0.005, drift=0.002)
    fmax = f_inst.max()
    shaft = _harmonics(rng, phase, [0.3, 0.2, 0.1, 0.08, 0.05, 0.04, 0.03, 0.02], fmax, sr)
    vane = _harmonics(rng, p["vanes"] * phase, [1.0, 0.5, 0.25, 0.12], p["vanes"] * fmax, sr)
    mains = _harmonics(rng, _TWO_PI * 100.0 * t, [0.5, 0.2, 0.1], 100.0, sr)
    motor = _unit_rms(shaft + vane + mains) + 0.2 * _noise(rng, n, sr, _band(f, 1500, 4000))
    shape = _pink(f, 30.0, 1.5) * _band(f, 30.0, 2500.0) * _peaks(f, p["pipe"])
    fluid = _noise(rng, n, sr, shape) * (1.0 + 0.2 * np.tanh(_slow(rng, t, 0.25)))
    motor = 0.8 * _db(rng.normal(0, 1.0)) * _unit_rms(motor)
    return _Sound({"motor": motor, "pipe": fluid}, shape, _revolutions(t, phase), 1.0, {"phase": phase, "f_inst": f_inst})


def _slider_motion(rng: np.random.Generator, t: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Speed envelope (0-1) of the carriage and impact times at the two ends.

    A cycle of length ``period``: travel out during 40 %, hit end B, rest 10 %, travel back 40 %,
    hit end A, rest 10 %.
    """
    period = period * (1.0 + 0.02 * rng.standard_normal())
    start = rng.uniform(0.0, period)
    tau = np.mod(t - start, period) / period
    out = (tau < 0.4)
    back = (tau >= 0.5) & (tau < 0.9)
    frac = np.where(out, tau / 0.4, (tau - 0.5) / 0.4)
    speed = np.where(out | back, np.sin(np.pi * np.clip(0.15 + 0.85 * frac, 0, 1)) ** 0.7, 0.0)
    k = np.arange(np.floor((t[0] - start) / period) - 1, np.ceil((t[-1] - start) / period) + 1)
    hit_b = start + (k + 0.4) * period + 0.003 * rng.standard_normal(k.size)
    hit_a = start + (k + 0.9) * period + 0.003 * rng.standard_normal(k.size)
    return speed, hit_a, hit_b, period, start


def _slider(u: Unit, rng: np.random.Generator, t: np.ndarray, sr: int) -> _Sound:
    """Carriage: motor whine and rolling noise while travelling. Ends: impacts at the end stops."""
    p, n = u.params, t.size
    f = sfft.rfftfreq(n, 1 / sr)
    speed, hit_a, hit_b, period, start = _slider_motion(rng, t, p["period"])
    f_motor = p["motor"] * (1.0 + 0.01 * rng.standard_normal()) * (0.3 + 0.7 * speed)
    whine = _harmonics(rng, _TWO_PI * np.cumsum(f_motor) / sr, [1.0, 0.45, 0.3, 0.12], f_motor.max(), sr)
    shape = _pink(f, 100.0, 1.5) * _band(f, 150.0, 4000.0) * _peaks(f, [(p["modes"][0][0] * 0.6, 2, 2)])
    rolling = _noise(rng, n, sr, shape)
    carriage = (0.1 + 0.9 * speed) * (0.5 * _unit_rms(whine) + rolling)
    amp = lambda k: _db(rng.normal(0, 2.0, k))  # noqa: E731
    end_a = _ringing(rng, t, sr, hit_a, amp(hit_a.size), p["modes"], click=0.5)
    end_b = _ringing(rng, t, sr, hit_b, 0.8 * amp(hit_b.size), [(fm * 1.07, d) for fm, d in p["modes"]], click=0.5)
    scale = 1.2 / max(_rms(end_a + end_b), 1e-12)  # impacts a little above the travel noise in power
    parts = {"carriage": carriage, "end_a": scale * end_a, "end_b": scale * end_b}
    travel_times = start + period * np.arange(np.floor((t[0] - start) / period), np.ceil((t[-1] - start) / period) + 1)
    rhythm = np.sort(np.r_[travel_times + 0.2 * period, travel_times + 0.7 * period])
    return _Sound(parts, shape, rhythm, speed, {"speed": speed})


def _valve_cycles(rng: np.random.Generator, t: np.ndarray, open_s: float, closed_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Opening and closing times: closed for ``closed_s`` ± 40 %, open for ``open_s`` ± 20 %."""
    opens, closes = [], []
    time = t[0] - rng.uniform(0.0, open_s + closed_s)
    while time < t[-1]:
        time += closed_s * rng.uniform(0.6, 1.4)
        opens.append(time)
        time += open_s * rng.uniform(0.8, 1.2)
        closes.append(time)
    return np.array(opens), np.array(closes)


def _valve(u: Unit, rng: np.random.Generator, t: np.ndarray, sr: int) -> _Sound:
    """Body: solenoid clicks at opening and closing. Outlet: air flow while open."""
    p, n = u.params, t.size
    f = sfft.rfftfreq(n, 1 / sr)
    opens, closes = _valve_cycles(rng, t, p["open"], p["closed"])
    is_open = np.zeros(n, dtype=bool)
    for a, b in zip(opens, closes):
        is_open[(t >= a) & (t < b)] = True
    thump = [(180.0, 0.015)]
    clicks = _ringing(rng, t, sr, opens, _db(rng.normal(0, 1.5, opens.size)), list(p["modes"]) + thump, click=1.5)
    clicks += _ringing(rng, t, sr, closes, 0.7 * _db(rng.normal(0, 1.5, closes.size)), [(fm * 0.93, d) for fm, d in p["modes"]], click=1.0)
    shape = _pink(f) * _band(f, *p["flow"], order=3)
    gate = _smooth_gate(is_open, sr, 0.02)
    flow = _noise(rng, n, sr, shape) * gate
    body = 3.0 * _unit_rms(clicks)
    outlet = 0.8 * _db(rng.normal(0, 1.0)) * flow / max(np.sqrt(np.mean(is_open)), 0.05)
    rhythm = np.sort(np.r_[opens, closes])
    return _Sound({"body": body, "outlet": outlet}, shape, rhythm, gate, {"is_open": is_open})


MODELS = {"fan": _fan, "pump": _pump, "slider": _slider, "valve": _valve}


# ----------------------------------------------------------------------------------------------
# Anomalies (additive; each returns an unscaled signal at 1 m, scaled later to the wanted level)
# ----------------------------------------------------------------------------------------------
def _fan_imbalance(u, s, rng, t, sr):
    """Imbalance: strong shaft harmonics and blade-pass sidebands at ± the shaft rate."""
    phase, f_inst = s.state["phase"], s.state["f_inst"]
    shaft = _harmonics(rng, phase, [1.0, 0.6, 0.25], f_inst.max(), sr)
    bpf = u.params["blades"] * phase
    sidebands = np.sin(bpf + phase + rng.uniform(0, _TWO_PI)) + np.sin(bpf - phase + rng.uniform(0, _TWO_PI))
    return _unit_rms(shaft) + 0.5 * _unit_rms(sidebands)


def _fan_rubbing(u, s, rng, t, sr):
    """Rubbing: a high-frequency scrape once per revolution."""
    f = sfft.rfftfreq(t.size, 1 / sr)
    scrape = _noise(rng, t.size, sr, _band(f, 2500.0, 6500.0))
    pulse = np.exp(-0.5 * ((np.mod(s.state["phase"], _TWO_PI) - np.pi) / 0.35) ** 2)
    return scrape * pulse * (1.0 + 0.3 * _slow(rng, t, 0.2))


def _pump_cavitation(u, s, rng, t, sr):
    """Cavitation: crackle of collapsing bubbles, denser at each vane pass."""
    times = _poisson_times(rng, 500.0, t[0] - 0.01, t[-1])
    vane = np.interp(times, t, np.cos(u.params["vanes"] * s.state["phase"]))
    times = times[rng.uniform(size=times.size) < 0.5 * (1.0 + vane)]
    amps = rng.lognormal(0.0, 0.6, times.size)
    return _ringing(rng, t, sr, times, amps, [(4200.0, 0.0008), (6100.0, 0.0005)], click=2.0)


def _pump_wear(u, s, rng, t, sr):
    """Bearing wear: impacts at the outer-race defect rate ringing a 3.3 kHz housing mode, plus 1x."""
    phase = s.state["phase"]
    defect_phase = u.params["bpfo"] * phase
    times = _revolutions(t, defect_phase)
    amps = (1.0 + 0.5 * np.cos(np.interp(times, t, phase))) * rng.lognormal(0.0, 0.3, times.size)
    ring = _ringing(rng, t, sr, times, amps, [(3300.0, 0.004), (5200.0, 0.002)])
    return _unit_rms(ring) + 0.4 * _unit_rms(np.sin(phase + rng.uniform(0, _TWO_PI)))


def _slider_rattle(u, s, rng, t, sr):
    """A loose part on the carriage: irregular impacts while it travels."""
    speed = s.state["speed"]
    times = _poisson_times(rng, 25.0, t[0] - 0.05, t[-1])
    times = times[rng.uniform(size=times.size) < np.interp(times, t, speed)]
    modes = [(rng.uniform(900, 1500), 0.015), (rng.uniform(2500, 3500), 0.008), (rng.uniform(4500, 6000), 0.004)]
    return _ringing(rng, t, sr, times, rng.lognormal(0.0, 0.5, times.size), modes, click=0.8)


def _slider_grinding(u, s, rng, t, sr):
    """A damaged rail: rough, crackling high-frequency noise while the carriage moves."""
    f = sfft.rfftfreq(t.size, 1 / sr)
    grit = _noise(rng, t.size, sr, _band(f, 1500.0, 6000.0) * _peaks(f, [(3000, 3, 3)]))
    crackle = np.abs(_noise(rng, t.size, sr, _band(f, None, 60.0))) ** 2
    return grit * crackle * s.state["speed"]


def _valve_chatter(u, s, rng, t, sr):
    """Chatter: the armature bounces 2-3 times after each click, at a shifted resonance."""
    clicks = s.rhythm
    bounces, amps = [], []
    for k in range(1, 4):
        bounces.append(clicks + k * rng.uniform(0.006, 0.02, clicks.size))
        amps.append(rng.uniform(0.3, 0.8, clicks.size) / k)
    modes = [(fm * rng.uniform(1.08, 1.2), d) for fm, d in u.params["modes"]]
    return _ringing(rng, t, sr, np.concatenate(bounces), np.concatenate(amps), modes, click=1.0)


def _valve_contamination(u, s, rng, t, sr):
    """Contamination: deposits in the orifice make the flow whistle and sputter while the valve is open."""
    f = sfft.rfftfreq(t.size, 1 / sr)
    f_w = rng.uniform(2500.0, 5500.0) * (1.0 + 0.005 * _slow(rng, t, 0.2))
    whistle = _harmonics(rng, _TWO_PI * np.cumsum(f_w) / sr, [1.0, 0.2], f_w.max(), sr)
    sputter = _noise(rng, t.size, sr, _band(f, 1500.0, 6000.0)) * np.abs(_noise(rng, t.size, sr, _band(f, None, 40.0)))
    return (_unit_rms(whistle) + 0.5 * sputter) * s.activity


def _spatial_leak(u, s, rng, t, sr):
    """A leak (or a loose cover) elsewhere on the machine: noise shaped like the machine's own,
    radiated while the machine works."""
    f = sfft.rfftfreq(t.size, 1 / sr)
    hiss = _noise(rng, t.size, sr, s.noise_shape * _band(f, 400.0, None, order=1))
    return hiss * (1.0 + 0.15 * _slow(rng, t, 0.3)) * s.activity


def _spatial_rattle(u, s, rng, t, sr):
    """A loose part elsewhere on the machine, rattling in time with the machine's rhythm."""
    times = s.rhythm[rng.uniform(size=s.rhythm.size) < 0.7] + rng.uniform(0.0, 0.01, 1)
    modes = [(rng.uniform(700, 1200), 0.03), (rng.uniform(1800, 2600), 0.015), (rng.uniform(3500, 4500), 0.006)]
    return _ringing(rng, t, sr, times, rng.lognormal(0.0, 0.4, times.size), modes, click=0.6)


SPECTRAL_ANOMALIES = {
    "fan": {"imbalance": _fan_imbalance, "rubbing": _fan_rubbing},
    "pump": {"cavitation": _pump_cavitation, "wear": _pump_wear},
    "slider": {"rattle": _slider_rattle, "grinding": _slider_grinding},
    "valve": {"chatter": _valve_chatter, "contamination": _valve_contamination},
}
SPATIAL_ANOMALIES = {"leak": _spatial_leak, "rattle": _spatial_rattle}

# Level of each anomaly type relative to ``anomaly_strength`` (dB). The types differ a lot in how
# audible they are at the same power: a crackle at 5 kHz where a pump is silent stands out 20 dB
# below the machine, a leak that sounds like the machine's own flow noise only near its level.
# The offsets even this out so that one strength gives a similar difficulty for every type. They were
# set with the DCASE baseline autoencoder (channel 0, 100 training clips, 12 epochs, 0 dB SNR):
# at the default strength its Mahalanobis score reaches an AUC of about 0.8-0.9 on each type.
ANOMALY_OFFSET_DB = {
    ("fan", "spectral", "imbalance"): 9.0,
    ("fan", "spectral", "rubbing"): -14.0,
    ("fan", "spatial", "leak"): 3.0,
    ("fan", "spatial", "rattle"): -6.0,
    ("pump", "spectral", "cavitation"): -18.0,
    ("pump", "spectral", "wear"): -18.0,
    ("pump", "spatial", "leak"): 2.0,
    ("pump", "spatial", "rattle"): -9.0,
    ("slider", "spectral", "rattle"): -10.0,
    ("slider", "spectral", "grinding"): -7.0,
    ("slider", "spatial", "leak"): 6.0,
    ("slider", "spatial", "rattle"): 8.0,
    ("valve", "spectral", "chatter"): 4.0,
    ("valve", "spectral", "contamination"): -10.0,
    ("valve", "spatial", "leak"): 4.0,
    ("valve", "spatial", "rattle"): 6.0,
}


def anomaly_types(machine: str, kind: str) -> tuple[str, ...]:
    """Names of the anomaly types of one kind (``"spectral"`` or ``"spatial"``) for a machine type."""
    _unit(machine, MACHINE_IDS[0])
    if kind == "spectral":
        return tuple(SPECTRAL_ANOMALIES[machine])
    if kind == "spatial":
        return tuple(SPATIAL_ANOMALIES)
    raise ValueError(f"unknown anomaly kind {kind!r}; choose one of {ANOMALY_KINDS}")


# ----------------------------------------------------------------------------------------------
# Layout: positions and levels drawn first from each stream (cheap: metadata needs no audio)
# ----------------------------------------------------------------------------------------------
def _stream(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(stream,)))


def _background_layout(rng: np.random.Generator) -> list[dict]:
    """Kind, position and level of each background source for one clip (jittered around the table)."""
    layout = []
    for kind, az, el, level in BACKGROUND_SOURCES:
        a = np.deg2rad(az + rng.uniform(-20.0, 20.0))
        e = np.deg2rad(el + rng.uniform(-5.0, 5.0))
        d = rng.uniform(2.0, 5.0)
        position = d * np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
        layout.append({"kind": kind, "position": position, "level_db": level + rng.uniform(-3.0, 3.0)})
    return layout


def _spatial_position(rng: np.random.Generator, u: Unit) -> np.ndarray:
    """A point 15-30 cm from the unit, at another azimuth, at least 10 cm from each of its parts."""
    parts = list(u.component_positions().values())
    centre_az = np.arctan2(u.position[1], u.position[0])
    for _ in range(1000):
        dist = rng.uniform(0.15, 0.30)
        offset = np.array([rng.uniform(-0.4, 0.4), rng.choice([-1.0, 1.0]), rng.uniform(-0.4, 0.4)])
        pos = u.to_world(dist * offset / np.linalg.norm(offset))
        az_change = np.rad2deg(abs(np.angle(np.exp(1j * (np.arctan2(pos[1], pos[0]) - centre_az)))))
        if np.linalg.norm(pos) > 0.08 and az_change > 10.0 and min(np.linalg.norm(pos - q) for q in parts) >= 0.10:
            return pos
    raise RuntimeError(f"no spatial anomaly position found for {u.machine} id {u.machine_id}")  # pragma: no cover


def _anomaly_layout(
    rng: np.random.Generator, u: Unit, kind: str | None, anomaly_type: str | None, strength: float, position: Sequence[float] | None = None
) -> dict:
    """Type, position and level (dB re the machine) of a clip's anomaly."""
    if kind is None:
        return {"kind": None, "type": None, "position": None, "level_db": None}
    choices = anomaly_types(u.machine, kind)
    if anomaly_type is not None and anomaly_type not in choices:
        raise ValueError(f"anomaly_type {anomaly_type!r} is not a {kind} anomaly of {u.machine}; choose one of {choices}")
    drawn = choices[rng.integers(len(choices))]
    jitter = rng.uniform(-ANOMALY_JITTER_DB, ANOMALY_JITTER_DB)
    drawn_position = _spatial_position(rng, u) if kind == "spatial" else u.position  # drawn always: same stream either way
    if position is not None:
        if kind != "spatial":
            raise ValueError("anomaly_position applies to spatial anomalies only (a spectral anomaly sounds at the machine)")
        position = np.asarray(position, dtype=float)
        if position.shape != (3,) or not np.all(np.isfinite(position)):
            raise ValueError(f"anomaly_position must be three finite coordinates (x, y, z) in metres, got {position!r}")
        if np.linalg.norm(position) < 0.05:
            raise ValueError(f"anomaly_position {position.tolist()} is within 5 cm of the array centre; place it farther away")
    else:
        position = drawn_position
    chosen = anomaly_type or drawn
    level = strength + ANOMALY_OFFSET_DB[u.machine, kind, chosen] + jitter
    return {"kind": kind, "type": chosen, "position": position, "level_db": level}


def clip_layout(
    machine: str,
    machine_id: int,
    *,
    seed: int,
    anomaly: str | None = None,
    anomaly_type: str | None = None,
    anomaly_strength: float = DEFAULT_ANOMALY_STRENGTH,
) -> dict:
    """Where the sources of a clip are, without simulating its audio (fast).

    Parameters are those of :func:`simulate_clip`.

    Returns
    -------
    dict
        ``machine_position`` (3,), ``parts`` (name -> (3,)), ``background`` (list of dicts with
        ``kind``, ``position`` (3,), ``level_db``) and ``anomaly`` (``kind``, ``type``,
        ``position`` (3,) or None, ``level_db``).
    """
    u = _unit(machine, machine_id)
    if anomaly not in (None, *ANOMALY_KINDS):
        raise ValueError(f"anomaly must be None, 'spectral' or 'spatial', got {anomaly!r}")
    return {
        "machine_position": u.position,
        "parts": u.component_positions(),
        "background": _background_layout(_stream(seed, _STREAM_BACKGROUND)),
        "anomaly": _anomaly_layout(_stream(seed, _STREAM_ANOMALY), u, anomaly, anomaly_type, anomaly_strength),
    }


# ----------------------------------------------------------------------------------------------
# Background sounds
# ----------------------------------------------------------------------------------------------
def _background_signal(kind: str, rng: np.random.Generator, t: np.ndarray, sr: int) -> np.ndarray:
    n = t.size
    f = sfft.rfftfreq(n, 1 / sr)
    if kind == "ventilation":
        return _noise(rng, n, sr, _pink(f, 20.0, 1.5) * _band(f, 40.0, 5000.0)) * (1.0 + 0.1 * _slow(rng, t, 1.0))
    if kind == "rumble":
        return _noise(rng, n, sr, _pink(f, 10.0, 2.0) * _band(f, 15.0, 500.0))
    if kind == "hum":
        mains = 50.0 * (1.0 + 0.001 * rng.standard_normal())
        hum = _harmonics(rng, _TWO_PI * mains * t, [1.0, 0.6, 0.5, 0.3, 0.2, 0.25, 0.1, 0.08], 50.0, sr)
        return _unit_rms(hum) + 0.1 * _noise(rng, n, sr, _pink(f) * _band(f, 40.0, 3000.0))
    if kind == "machinery":
        f0 = rng.uniform(30.0, 60.0)
        partials = _harmonics(rng, _TWO_PI * f0 * t * (1.0 + 0.003 * _slow(rng, t)), [1.0 / k for k in range(1, 41)], f0, sr)
        hum = sfft.irfft(sfft.rfft(partials) * _band(f, None, 2000.0), n=n)
        return _unit_rms(hum) + 0.7 * _noise(rng, n, sr, _pink(f) * _band(f, 100.0, 2000.0))
    if kind == "clanks":
        times = _poisson_times(rng, 0.7, t[0] - 0.3, t[-1])
        modes = [(rng.uniform(300, 1200), rng.uniform(0.05, 0.15)), (rng.uniform(1200, 3000), rng.uniform(0.03, 0.08))]
        clanks = _ringing(rng, t, sr, times, rng.lognormal(0.0, 0.5, times.size), modes, click=0.3)
        return _unit_rms(clanks) * 3.0 + 0.3 * _noise(rng, n, sr, _pink(f, 10.0, 2.0) * _band(f, 30.0, 1500.0))
    raise ValueError(f"unknown background source kind {kind!r}")  # pragma: no cover


# ----------------------------------------------------------------------------------------------
# One clip
# ----------------------------------------------------------------------------------------------
def _fade(n: int) -> np.ndarray:
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(_FADE) / _FADE)
    w = np.ones(n)
    w[:_FADE] = ramp
    w[-_FADE:] = ramp[::-1]
    return w


def _render(signals: list[np.ndarray], positions: list[np.ndarray], n_total: int, n_out: int, sr: int) -> np.ndarray:
    """(8, n_out) microphone signals of sources given on the padded axis, cropped to the clip."""
    if not signals:
        return np.zeros((N_MICS, n_out))
    w = _fade(n_total)
    spectra = propagate_spectra(np.stack(signals) * w, np.stack(positions), sr=sr)
    return sfft.irfft(spectra, n=n_total, axis=-1)[:, _PAD : _PAD + n_out]


def simulate_clip(
    machine: str,
    machine_id: int,
    *,
    snr_db: float = 0.0,
    anomaly: str | None = None,
    seed: int,
    duration_s: float = 10.0,
    sr: int = SR,
    anomaly_strength: float = DEFAULT_ANOMALY_STRENGTH,
    anomaly_type: str | None = None,
    anomaly_position: Sequence[float] | None = None,
    return_sources: bool = False,
):
    """Simulate one 8-microphone clip of a machine at a given SNR, normal or with an anomaly.

    Parameters
    ----------
    machine : {"fan", "pump", "slider", "valve"}
        Machine type.
    machine_id : {0, 2, 4, 6}
        Machine unit (the MIMII ID): its speed, resonances and position.
    snr_db : float
        Machine-to-background power ratio in dB (MIMII: -6, 0, 6). The powers are mean squares
        over all 8 channels and samples of the machine's *normal* sound and of the background;
        ``np.inf`` gives no background at all.
    anomaly : {None, "spectral", "spatial"}
        None: a normal clip. ``"spectral"``: a changed sound at the machine's position.
        ``"spatial"``: a new source 15-30 cm from the machine, at another azimuth.
    seed : int
        The clip's seed (see :func:`clip_seed`). The same seed with and without an anomaly gives the
        same normal sound and background; they differ by the anomaly's contribution only.
    duration_s : float
        Length in seconds.
    sr : int
        Sample rate in Hz.
    anomaly_strength : float
        Sets the anomaly's power relative to the machine's normal sound (8-channel mean squares):
        ``anomaly_strength + ANOMALY_OFFSET_DB[machine, kind, type]`` dB, plus a per-clip draw
        uniform within ± 3 dB. The offsets even out how audible the types are; at the default
        (-10) a DCASE-baseline autoencoder detects them clearly but not perfectly.
    anomaly_type : str, optional
        Force one type (see :func:`anomaly_types`, e.g. ``"leak"``); None draws one with the seed.
    anomaly_position : sequence of 3 floats, optional
        For a spatial anomaly: put it at ``(x, y, z)`` metres (array centre at the origin) instead of
        the drawn position; everything else about the clip stays as the seed makes it.
    return_sources : bool
        Also return the three parts of the mixture.

    Returns
    -------
    audio : np.ndarray [shape=(8, n_samples)], float32
        The mixture at the output scale (a fixed gain per machine type, see :data:`OUTPUT_GAIN`).
    info : dict
        ``machine_position``, ``parts``, ``background`` (kinds, positions, levels),
        ``anomaly`` (kind, type, position, level_db), ``noise_gain`` (the background's scale),
        ``output_gain``, ``machine_power``, ``background_power``, ``anomaly_power`` (mean squares at
        the output scale), ``snr_db``, ``seed``, ``peak``.
    sources : dict, only when ``return_sources``
        ``"machine"``, ``"anomaly"`` and ``"background"``: (8, n_samples) float32 arrays as mixed
        (their sum is ``audio`` up to float32 rounding).

    Examples
    --------
    >>> audio, info = simulate_clip("fan", 0, snr_db=6.0, seed=1, duration_s=1.0)
    >>> audio.shape, audio.dtype
    ((8, 16000), dtype('float32'))
    """
    u = _unit(machine, machine_id)
    if anomaly not in (None, *ANOMALY_KINDS):
        raise ValueError(f"anomaly must be None, 'spectral' or 'spatial', got {anomaly!r}")
    if not duration_s > 0 or not np.isfinite(duration_s):
        raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    if np.isnan(snr_db):
        raise ValueError("snr_db is NaN; give a number of dB (or np.inf for no background)")
    n_out = int(round(duration_s * sr))
    n_total = sfft.next_fast_len(n_out + 2 * _PAD, real=True)
    t = (np.arange(n_total) - _PAD) / sr

    # machine (normal sound)
    sound = MODELS[machine](u, _stream(seed, _STREAM_MACHINE), t, sr)
    part_pos = u.component_positions()
    machine8 = _render(list(sound.parts.values()), [part_pos[k] for k in sound.parts], n_total, n_out, sr)
    p_machine = float(np.mean(machine8**2))

    # background: point sources and microphone self-noise
    rng_bg = _stream(seed, _STREAM_BACKGROUND)
    layout = _background_layout(rng_bg)
    bg_signals = [_db(s["level_db"]) * _unit_rms(_background_signal(s["kind"], rng_bg, t, sr)) for s in layout]
    background8 = _render(bg_signals, [s["position"] for s in layout], n_total, n_out, sr)
    sensor = rng_bg.standard_normal((N_MICS, n_out)) * np.sqrt(np.mean(background8**2) * 10 ** (SENSOR_NOISE_DB / 10))
    background8 += sensor
    p_background = float(np.mean(background8**2))
    noise_gain = 0.0 if np.isposinf(snr_db) else float(np.sqrt(p_machine / (p_background * 10 ** (snr_db / 10))))

    # anomaly: its own stream, scaled to level_db relative to the normal machine sound
    rng_an = _stream(seed, _STREAM_ANOMALY)
    an = _anomaly_layout(rng_an, u, anomaly, anomaly_type, anomaly_strength, anomaly_position)
    anomaly8 = np.zeros_like(machine8)
    if anomaly is not None:
        make = SPECTRAL_ANOMALIES[machine][an["type"]] if anomaly == "spectral" else SPATIAL_ANOMALIES[an["type"]]
        anomaly8 = _render([make(u, sound, rng_an, t, sr)], [an["position"]], n_total, n_out, sr)
        p_an = float(np.mean(anomaly8**2))
        anomaly8 *= np.sqrt(p_machine * 10 ** (an["level_db"] / 10) / max(p_an, 1e-30))

    g = OUTPUT_GAIN[machine]
    parts = {"machine": g * machine8, "anomaly": g * anomaly8, "background": g * noise_gain * background8}
    audio = (parts["machine"] + parts["anomaly"] + parts["background"]).astype(np.float32)
    info = {
        "machine": machine,
        "machine_id": int(machine_id),
        "seed": int(seed),
        "sr": int(sr),
        "duration_s": n_out / sr,
        "snr_db": float(snr_db),
        "machine_position": u.position,
        "parts": part_pos,
        "background": layout,
        "anomaly": an,
        "noise_gain": noise_gain,
        "output_gain": g,
        "machine_power": float(np.mean(parts["machine"] ** 2)),
        "background_power": float(np.mean(parts["background"] ** 2)),
        "anomaly_power": float(np.mean(parts["anomaly"] ** 2)),
        "peak": float(np.max(np.abs(audio))),
    }
    if return_sources:
        return audio, info, {k: v.astype(np.float32) for k, v in parts.items()}
    return audio, info


# ----------------------------------------------------------------------------------------------
# Data sets
# ----------------------------------------------------------------------------------------------
def _snr_text(snr_db: float) -> str:
    return f"{float(snr_db) + 0.0:g}"  # + 0.0 turns -0.0 into 0.0


def clip_seed(seed: int, machine: str, machine_id: int, snr_db: float, label: str, index: int) -> int:
    """The seed of one clip of a data set: a stable 63-bit hash of what identifies the clip.

    It depends only on these fields (SHA-256 of a canonical text, not Python's randomised
    ``hash``), so a clip is the same whatever else the data set holds.

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
        In ``[0, 2**63)``.
    """
    key = f"{_KEY_VERSION}|{int(seed)}|{machine}|{int(machine_id)}|{_snr_text(snr_db)}|{label}|{int(index)}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1


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


def _check_dataset_args(machines, machine_ids, snrs_db, n_normal, n_abnormal, duration_s, anomaly_kinds, n_jobs) -> None:
    for m in machines:
        if m not in MACHINES:
            raise ValueError(f"unknown machine {m!r}; choose from {', '.join(MACHINES)}")
    for i in machine_ids:
        if i not in MACHINE_IDS:
            raise ValueError(f"unknown machine id {i!r}; choose from {', '.join(map(str, MACHINE_IDS))}")
    for name, value in (("n_normal", n_normal), ("n_abnormal", n_abnormal)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    for snr in snrs_db:
        if not np.isfinite(snr):
            raise ValueError(f"SNR {snr!r} dB is not a finite number; MIMII uses -6, 0 and 6")
    if not (duration_s > 0 and np.isfinite(duration_s)):
        raise ValueError(f"duration must be a positive number of seconds, got {duration_s!r}")
    for k in anomaly_kinds:
        if k not in ANOMALY_KINDS:
            raise ValueError(f"unknown anomaly kind {k!r}; choose from {', '.join(ANOMALY_KINDS)}")
    if n_abnormal and not anomaly_kinds:
        raise ValueError("anomaly_kinds is empty but n_abnormal > 0; give 'spectral' and/or 'spatial'")
    if not machines or not machine_ids or not snrs_db:
        raise ValueError("machines, machine_ids and snrs_db must each name at least one value")
    if not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a whole number >= 1, got {n_jobs!r}")


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
                            "seed": clip_seed(seed, machine, mid, snr, label, index),
                        })
    return jobs


def _metadata_row(job: dict, duration_s: float, strength: float) -> dict:
    lay = clip_layout(job["machine"], job["machine_id"], seed=job["seed"], anomaly=job["anomaly"], anomaly_strength=strength)
    an = lay["anomaly"]
    row = {
        "path": job["path"], "machine": job["machine"], "machine_id": f"id_{job['machine_id']:02d}",
        "snr_db": job["snr_db"], "label": job["label"], "anomaly_kind": an["kind"] or "none",
        "anomaly_type": an["type"] or "none", "anomaly_level_db": an["level_db"], "seed": job["seed"],
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


def _write_wav_atomic(path: Path, audio: np.ndarray, sr: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            sf.write(fh, audio.T, sr, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _make_file(task: tuple) -> tuple[str, float]:
    """Simulate and write one clip (a process-pool task). Returns (relative path, peak before clipping)."""
    root, job, duration_s, strength = task
    audio, info = simulate_clip(
        job["machine"], job["machine_id"], snr_db=job["snr_db"], anomaly=job["anomaly"], seed=job["seed"],
        duration_s=duration_s, anomaly_strength=strength,
    )
    _write_wav_atomic(Path(root) / job["path"], np.clip(audio, -1.0, 1.0), SR)
    return job["path"], info["peak"]


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
    written to a temporary file and renamed.

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
        Global seed; each clip's seed is :func:`clip_seed` of it and the clip's identity.
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
        The metadata, one row per clip (also written to ``metadata.csv``): ``path`` (relative to
        ``root``), ``machine``, ``machine_id`` (``"id_00"``), ``snr_db``, ``label``,
        ``anomaly_kind`` (``"none"`` for normal clips), ``anomaly_type``, ``anomaly_level_db``,
        ``seed``, ``duration_s``, source positions ``machine_x/y/z``, ``anomaly_x/y/z`` (NaN when
        normal), ``bg<i>_x/y/z`` and ``bg<i>_kind``.
    """
    from tqdm import tqdm

    machines, machine_ids = list(machines), [int(i) if isinstance(i, (int, np.integer)) else i for i in machine_ids]
    snrs_db, anomaly_kinds = [float(s) for s in snrs_db], list(anomaly_kinds)
    _check_dataset_args(machines, machine_ids, snrs_db, n_normal, n_abnormal, duration_s, anomaly_kinds, n_jobs)
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    jobs = _plan(machines, machine_ids, snrs_db, n_normal, n_abnormal, seed, anomaly_kinds)
    size = _wav_size(int(round(duration_s * SR)))
    todo = [j for j in jobs if not ((root / j["path"]).is_file() and (root / j["path"]).stat().st_size == size)]
    tasks = [(str(root), j, duration_s, anomaly_strength) for j in todo]
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="simulate", unit="clip", disable=not progress)
    clipped = []
    try:
        if n_jobs > 1 and len(tasks) > 1:
            with ProcessPoolExecutor(max_workers=n_jobs) as pool:
                for path, peak in pool.map(_make_file, tasks, chunksize=max(1, min(16, len(tasks) // (4 * n_jobs)))):
                    clipped += [(path, peak)] if peak > 1.0 else []
                    bar.update()
        else:
            for task in tasks:
                path, peak = _make_file(task)
                clipped += [(path, peak)] if peak > 1.0 else []
                bar.update()
    finally:
        bar.close()
    if clipped:
        worst = max(clipped, key=lambda c: c[1])
        warnings.warn(
            f"{len(clipped)} simulated clip(s) exceeded full scale and were clipped (worst: {worst[0]}, "
            f"peak {worst[1]:.2f}); lower anomaly_strength or raise the SNR",
            stacklevel=2,
        )
    meta = pd.DataFrame([_metadata_row(j, duration_s, anomaly_strength) for j in jobs])
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".metadata.", suffix=".tmp")
    with os.fdopen(fd, "w", newline="") as fh:
        meta.to_csv(fh, index=False)
    os.replace(tmp, root / "metadata.csv")
    return meta


# ----------------------------------------------------------------------------------------------
# Command line: `asdlib simulate`
# ----------------------------------------------------------------------------------------------
def _split_words(values: list[str] | None) -> list[str] | None:
    """``["fan,pump", "valve"]`` -> ``["fan", "pump", "valve"]``."""
    if values is None:
        return None
    return [w for v in values for w in str(v).split(",") if w]


def _parse_id(text: str) -> int:
    t = text.lower().removeprefix("id_")
    if not t.isdigit():
        raise ValueError(f"machine id {text!r} is not a number; use 0, 2, 4, 6 (or id_00 ...)")
    return int(t)


def _parse_float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    """The ``asdlib simulate`` argument parser."""
    p = argparse.ArgumentParser(
        prog="asdlib simulate",
        description=(
            "Generate a MIMII-like simulated data set (8 microphones, 16 kHz, 16-bit WAV) and "
            "metadata.csv. Resumable: existing clips are kept. Numbers computed from it are simulated, not MIMII."
        ),
        epilog="example: asdlib simulate --out data/sim --machines fan valve --snr -6 0 6 --n-normal 100 --n-abnormal 20",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--machines", nargs="+", action="extend", help=f"machine types (default: all of {', '.join(MACHINES)})")
    p.add_argument("--ids", nargs="+", action="extend", help="machine IDs (default: 0 2 4 6)")
    p.add_argument("--snr", nargs="+", action="extend", help="SNR levels in dB, e.g. --snr -6 0 6 (default: 0)")
    p.add_argument("--n-normal", type=int, default=1100, help="normal clips per machine type and SNR (default 1100)")
    p.add_argument("--n-abnormal", type=int, default=100, help="abnormal clips per machine type and SNR (default 100)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per clip (default 10)")
    p.add_argument("--seed", type=int, default=0, help="global seed (default 0)")
    p.add_argument("--anomaly-kinds", nargs="+", action="extend", help="spectral and/or spatial (default: both)")
    p.add_argument(
        "--anomaly-strength", type=float, default=DEFAULT_ANOMALY_STRENGTH,
        help=(f"anomaly level in dB (its power relative to the machine is this + a per-type offset, "
              f"±{ANOMALY_JITTER_DB:g} dB per clip; default {DEFAULT_ANOMALY_STRENGTH:g})"),
    )
    p.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``asdlib simulate``; returns 0, or 2 (one line on stderr) for a mistake in the arguments."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its message (or the help)
        return int(exit_.code or 0)
    try:
        snrs = [_parse_float(s, "SNR") for s in _split_words(args.snr) or ["0"]]
        ids = [_parse_id(i) for i in _split_words(args.ids) or [str(i) for i in MACHINE_IDS]]
        kwargs = dict(
            machines=_split_words(args.machines) or list(MACHINES), machine_ids=ids, snrs_db=snrs,
            n_normal=args.n_normal, n_abnormal=args.n_abnormal, duration_s=args.duration, seed=args.seed,
            anomaly_kinds=_split_words(args.anomaly_kinds) or list(ANOMALY_KINDS),
            anomaly_strength=args.anomaly_strength, n_jobs=args.jobs,
        )
        _check_dataset_args(*(kwargs[k] for k in ("machines", "machine_ids", "snrs_db", "n_normal", "n_abnormal", "duration_s", "anomaly_kinds", "n_jobs")))
    except ValueError as err:
        print(f"asdlib simulate: error: {err}", file=sys.stderr)
        return 2
    meta = simulate_dataset(args.out, progress=not args.quiet, **kwargs)
    counts = meta["label"].value_counts()
    print(
        f"{len(meta)} clips ({counts.get('normal', 0)} normal, {counts.get('abnormal', 0)} abnormal) in {args.out}; "
        f"metadata: {args.out / 'metadata.csv'} (simulated data, not MIMII)"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
