"""Signal building blocks of the sound models: shaped noise, harmonics, impacts, slow fluctuations.

All work on the padded time axis ``t`` (seconds, ``t = 0`` at the clip's start).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import fft as sfft
from scipy.signal import fftconvolve

from .kernels import harmonic_sum, interp, standard_normal, wrap_phase
from .propagation import _irfft_rows

_TWO_PI = 2.0 * np.pi


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def _unit_rms(x: np.ndarray) -> np.ndarray:
    return x / max(_rms(x), 1e-12)


def _db(level_db: float) -> float:
    return 10.0 ** (level_db / 20.0)


_SHAPES: dict = {}  # memo of the frequency-domain shapes below, per process (a few dozen arrays)


def _memo(key: tuple, make):
    """``make()`` computed once per key and returned read-only (the shapes repeat for every clip)."""
    value = _SHAPES.get(key)
    if value is None:
        if len(_SHAPES) > 512:
            _SHAPES.clear()
        value = make()
        value.setflags(write=False)
        _SHAPES[key] = value
    return value


def _fkey(f: np.ndarray) -> tuple:
    return (f.size, float(f[-1]) if f.size else 0.0, float(f[1]) if f.size > 1 else 0.0)


def _freqs(n: int, sr: int) -> np.ndarray:
    """``scipy.fft.rfftfreq(n, 1 / sr)``, read-only and computed once per (n, sr)."""
    return _memo(("freqs", n, sr), lambda: sfft.rfftfreq(n, 1 / sr))


def _pink(f: np.ndarray, floor: float = 20.0, exponent: float = 1.0) -> np.ndarray:
    """Amplitude of noise whose power falls as ``1 / f**exponent`` above ``floor`` Hz (1: pink)."""
    return _memo(("pink", _fkey(f), floor, exponent), lambda: np.maximum(f, floor) ** (-exponent / 2.0))


def _band(f: np.ndarray, lo: float | None = None, hi: float | None = None, order: int = 2) -> np.ndarray:
    """Butterworth-like band-pass magnitude."""

    def make():
        g = np.ones_like(f)
        with np.errstate(divide="ignore"):
            if lo:
                g = g / np.sqrt(1.0 + (lo / np.maximum(f, 1e-3)) ** (2 * order))
            if hi:
                g = g / np.sqrt(1.0 + (f / hi) ** (2 * order))
        return g

    return _memo(("band", _fkey(f), lo, hi, order), make)


def _peaks(f: np.ndarray, resonances: Sequence[tuple[float, float, float]]) -> np.ndarray:
    """``1 +`` a sum of resonant boosts ``(centre Hz, Q, boost)``."""

    def make():
        g = np.ones_like(f)
        for fc, q, boost in resonances:
            g = g + boost / (1.0 + ((f - fc) / (fc / q)) ** 2)
        return g

    return _memo(("peaks", _fkey(f), tuple(map(tuple, resonances))), make)


def _noise_spectrum(rng: np.random.Generator, n: int, shape: np.ndarray | None = None) -> np.ndarray:
    """The rfft (complex64, ``n // 2 + 1`` bins) of a :func:`_noise` signal before its normalisation.

    All of the noise's random draws happen here; :func:`_noises` turns spectra into signals.
    """
    n_bins = n // 2 + 1
    draws = np.empty(2 * n_bins)  # the real parts, then the imaginary parts
    standard_normal(rng, draws)  # rng.standard_normal(out=draws), faster
    spectrum = np.empty(n_bins, dtype=np.complex64)  # single precision: ~1e-7 of the RMS
    parts = spectrum.view(np.float32).reshape(n_bins, 2)
    parts[:, 0] = draws[:n_bins]
    parts[:, 1] = draws[n_bins:]
    if shape is not None:
        spectrum *= shape.astype(np.float32)
    spectrum[0] = 0.0
    return spectrum


def _noises(spectra: np.ndarray, n: int) -> list[np.ndarray]:
    """Unit-RMS float64 signals of length ``n`` from (k, n // 2 + 1) :func:`_noise_spectrum` rows.

    One batched irfft (:func:`~asdlib.simulate.propagation._irfft_rows`: pocketfft transforms rows
    four at a time with SIMD, about twice as fast per row as one at a time); each row is the signal
    a single :func:`_noise` call gives.
    """
    return [_unit_rms(row.astype(float)) for row in _irfft_rows(spectra, n)]


def _noise(rng: np.random.Generator, n: int, sr: int, shape: np.ndarray | None = None) -> np.ndarray:
    """Gaussian noise of length n with rfft amplitude ``shape`` (None: white), unit RMS."""
    return _noises(_noise_spectrum(rng, n, shape)[None, :], n)[0]


class _NoiseBatch:
    """Spectra queued now, transformed in one batched irfft with the next noise drawn through :meth:`noise`.

    A clip's background draws its sources' spectra first (:meth:`add`), then the machine model draws
    its noises through :meth:`noise`: the first one is transformed together with the queued spectra
    (7 rows in one call instead of three calls of 5, 1 and 1). Each signal is bit for bit what
    :func:`_noises` gives for its row alone, and the draws happen where they always did.

    Parameters
    ----------
    n : int
        Length of the signals.
    """

    def __init__(self, n: int):
        self.n = n
        self._spectra: list = []
        self._signals: list = []

    def add(self, spectrum: np.ndarray) -> int:
        """Queue an rfft of ``n // 2 + 1`` bins; returns its handle for :meth:`signal`."""
        self._spectra.append(spectrum)
        self._signals.append(None)
        return len(self._signals) - 1

    def signal(self, handle: int) -> np.ndarray:
        """The unit-RMS float64 signal of a queued spectrum (transforming what is still queued)."""
        todo = [i for i, x in enumerate(self._signals) if x is None]
        if todo:
            for i, x in zip(todo, _noises(np.stack([self._spectra[i] for i in todo]), self.n)):
                self._spectra[i], self._signals[i] = None, x
        return self._signals[handle]

    def noise(self, rng: np.random.Generator, n: int, sr: int, shape: np.ndarray | None = None) -> np.ndarray:
        """:func:`_noise`, its irfft batched with every spectrum still queued."""
        if n != self.n:
            return _noise(rng, n, sr, shape)
        return self.signal(self.add(_noise_spectrum(rng, n, shape)))


def _slow(rng: np.random.Generator, t: np.ndarray, knot_s: float = 0.5) -> np.ndarray:
    """A slow random fluctuation (zero mean, unit-variance knots every ``knot_s`` s, interpolated)."""
    knots = np.arange(t[0], t[-1] + knot_s, knot_s)
    out = np.empty(t.shape)
    interp(t, knots, rng.standard_normal(knots.size), out)  # np.interp's numbers, faster (t ascends)
    return out


def _rotation(rng: np.random.Generator, t: np.ndarray, sr: int, f0: float, jitter: float, drift: float) -> tuple[np.ndarray, np.ndarray]:
    """Shaft phase (rad) and instantaneous frequency (Hz): ``f0`` with a per-clip offset and a slow drift."""
    f = f0 * (1.0 + jitter * rng.standard_normal()) * (1.0 + drift * _slow(rng, t))
    phase = rng.uniform(0.0, _TWO_PI) + _TWO_PI * np.cumsum(f) / sr
    return phase, f


def _harmonics(rng: np.random.Generator, phase: np.ndarray, amps: Sequence[float], f_max: float, sr: int) -> np.ndarray:
    """``sum_k a_k sin(k phase + φ_k)`` with random φ_k; harmonics above 0.45 sr are left out.

    The φ_k are drawn for k = 1, 2, ... (non-zero ``a_k`` only); the sum is the imaginary part of
    the polynomial ``sum_k a_k e^{iφ_k} z^k`` in ``z = e^{i phase}``, evaluated by Horner's rule in
    single precision (:func:`~asdlib.simulate.kernels.harmonic_sum`).
    """
    coefs: list[complex] = []
    for k, a in enumerate(amps, start=1):
        if k * f_max >= 0.45 * sr:
            break
        coefs.append(a * np.exp(1j * rng.uniform(0.0, _TWO_PI)) if a else 0.0)
    if not coefs:
        return np.zeros(phase.shape)
    reduced = np.empty(phase.shape, dtype=np.float32)  # e^{i phase}: phase reduced to [-π, π] in float64,
    wrap_phase(np.ascontiguousarray(phase, dtype=float), reduced)  # then single precision (error ~4e-7 rad)
    c = np.array(coefs, dtype=np.complex64)
    out = np.empty(phase.shape)
    harmonic_sum(np.cos(reduced), np.sin(reduced), np.ascontiguousarray(c.real), np.ascontiguousarray(c.imag), out)
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
    idx = np.round((np.asarray(times) - t[0]) * sr).astype(int) + n_k  # room for impacts just before t[0]
    keep = (idx >= 0) & (idx < n + n_k)
    idx, amps = idx[keep], np.asarray(amps, dtype=float)[keep]
    return _impulse_train_convolve(idx - n_k, amps, kernel, n)


_DIRECT_MAX = 4_000_000  # impacts x kernel length up to which the direct sum beats an FFT convolution


def _impulse_train_convolve(starts: np.ndarray, amps: np.ndarray, kernel: np.ndarray, n: int) -> np.ndarray:
    """``sum_i amps[i] * kernel[j - starts[i]]`` for ``j`` in ``[0, n)`` (kernel zero outside its support).

    Sparse trains (a few impacts per second) are summed directly (``np.bincount``); dense or long
    ones are convolved by FFT. Both give the same signal to float64 rounding.
    """
    n_k = kernel.size
    if starts.size * n_k > _DIRECT_MAX:
        train = np.zeros(n + n_k)
        np.add.at(train, starts + n_k, amps)
        return fftconvolve(train, kernel)[n_k : n_k + n]
    pos = starts[:, None] + np.arange(n_k)[None, :]
    inside = (pos >= 0) & (pos < n)
    weights = amps[:, None] * kernel[None, :]
    return np.bincount(pos[inside], weights=weights[inside], minlength=n)[:n].astype(float, copy=False)


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

