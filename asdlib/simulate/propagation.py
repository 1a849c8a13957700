"""Free-field propagation from point sources to the microphones of the array.

Spherical spreading (amplitude ``1 / r``) and the exact, fractional propagation delay ``r / c``,
applied as a phase ramp on the spectrum of the whole signal (exact for band-limited signals).
"""
from __future__ import annotations

import numpy as np
from scipy import fft as sfft

from ..geometry import MIC_POSITIONS, SPEED_OF_SOUND, SR
from .kernels import _mix_sources

__all__ = ["propagation_delays", "propagate_spectra", "propagate"]

_TWO_PI = 2.0 * np.pi


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


_BLOCK = 512  # bins per block of the coarse x fine phase-ramp factorisation


def _ramp_factors(delays_samples: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fine (M, _BLOCK) and coarse (M, n_blocks) factors of the phase ramps, in float64.

    ``exp(-2j pi k d / n)`` for rfft bin ``k = b * _BLOCK + j`` and delay ``d`` (samples) is
    ``coarse[:, b] * fine[:, j]``: two short ``exp`` calls instead of M * F, exact to float64 rounding.
    """
    n_blocks = -(-(n // 2 + 1) // _BLOCK)
    w = -_TWO_PI * delays_samples[:, None] / n  # (M, 1) radians per bin
    fine = np.exp(1j * w * np.arange(_BLOCK))
    coarse = np.exp(1j * w * (_BLOCK * np.arange(n_blocks)))
    return fine, coarse


def _delays_and_distances(positions: np.ndarray, mics: np.ndarray, sr: float, c: float) -> tuple[np.ndarray, np.ndarray]:
    dist = np.linalg.norm(positions[:, None, :] - mics[None, :, :], axis=-1)  # (S, M)
    if np.any(dist < 1e-3):
        raise ValueError("a source sits on a microphone (closer than 1 mm); move it")
    delays = (dist - np.linalg.norm(positions, axis=-1)[:, None]) / c * sr  # (S, M) samples
    return delays, dist


def _mix_at_mics(spectra: np.ndarray, delays: np.ndarray, dist: np.ndarray, n: int) -> np.ndarray:
    """Sum over sources of ``spectra[s] * exp(-2j pi k delays[s, m] / n) / dist[s, m]``: (M, n//2+1).

    Works in the precision of ``spectra`` (complex64 or complex128); the ramps are computed in
    float64 and rounded once. The Nyquist bin of an even ``n`` is zeroed (it cannot carry a
    fractional delay in a real signal). Each bin is ``(fine * spectrum) * coarse`` summed over the
    sources in order, in one compiled pass (:func:`~asdlib.simulate.kernels._mix_sources`, NumPy's
    arithmetic bit for bit; about 3 times as fast as NumPy's passes over cache-sized chunks).
    """
    n_src, n_bins = spectra.shape
    n_mics = dist.shape[1]
    dtype = spectra.dtype
    fine, coarse = _ramp_factors(delays.ravel(), n)  # every source to every microphone: (S * M, ...)
    coarse /= dist.reshape(-1, 1)  # spherical spreading folded into the coarse ramp
    fine = fine.astype(dtype).reshape(n_src, n_mics, -1)
    coarse = coarse.astype(dtype).reshape(n_src, n_mics, -1)
    out = np.empty((n_mics, n_bins), dtype=dtype)
    _mix_sources(np.ascontiguousarray(spectra), np.ascontiguousarray(fine.real), np.ascontiguousarray(fine.imag), coarse,
                 n % 2 == 0, out)
    return out


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
    as :func:`asdlib.simulate.simulate_clip` does. float32 signals are propagated in single
    precision (complex64 spectra), anything else in double precision.

    Parameters
    ----------
    signals : np.ndarray [shape=(S, n)]
        Source signals (the pressure they would give at 1 m).
    positions : np.ndarray [shape=(S, 3)]
        Source positions in metres.
    sr : int
        Sample rate in Hz.
    mics : np.ndarray [shape=(M, 3)], optional
        Microphone positions in metres (default :data:`~asdlib.geometry.MIC_POSITIONS`).
    c : float
        Speed of sound in m/s.

    Returns
    -------
    np.ndarray [shape=(M, n // 2 + 1)], complex
        rfft of the microphone signals; ``scipy.fft.irfft(..., n=n)`` gives them in time.
    """
    signals = np.atleast_2d(np.asarray(signals))
    if signals.dtype != np.float32:
        signals = signals.astype(float, copy=False)
    positions = np.atleast_2d(np.asarray(positions, dtype=float))
    if signals.shape[0] != positions.shape[0] or positions.shape[1] != 3:
        raise ValueError(f"signals {signals.shape} and positions {positions.shape} must be (S, n) and (S, 3)")
    return _propagate_rfft(_rfft_rows(signals), positions, signals.shape[1], sr=sr, mics=mics, c=c)


def _simd_rows(rows: np.ndarray) -> np.ndarray:
    """``rows`` with zero rows appended where pocketfft is then faster: a last group of 2 or 3 rows
    padded to 4.

    pocketfft transforms rows four at a time with SIMD and the rest one at a time, about 3.4x
    slower per row (162,000 float32 samples: 1.41 ms for 4 rows, 2.4 ms for 2, 3.6 ms for 3), and
    each row's transform is bit-identical either way (``test_simulate`` checks it, both ways).
    """
    n_rows = rows.shape[0]
    if n_rows % 4 < 2:
        return rows
    padded = np.zeros((n_rows + 4 - n_rows % 4, rows.shape[1]), dtype=rows.dtype)
    padded[:n_rows] = rows
    return padded


def _rfft_rows(signals: np.ndarray) -> np.ndarray:
    """``scipy.fft.rfft(signals, axis=-1)`` of (S, n) rows, padded by :func:`_simd_rows`."""
    return sfft.rfft(_simd_rows(signals), axis=-1)[: signals.shape[0]]


def _irfft_rows(spectra: np.ndarray, n: int) -> np.ndarray:
    """``scipy.fft.irfft(spectra, n=n, axis=-1)`` of (S, n // 2 + 1) rows (overwritten), padded by
    :func:`_simd_rows` (the inverse transform, too: 162,000 samples, 2.4 ms for 4 rows, 1.3 ms for 1,
    3.4 ms for 8 and 4.5 ms for 7)."""
    return sfft.irfft(_simd_rows(spectra), n=n, axis=-1, overwrite_x=True)[: spectra.shape[0]]


def _propagate_rfft(spectra: np.ndarray, positions: np.ndarray, n: int, *, sr: int = SR, mics: np.ndarray | None = None,
                    c: float = SPEED_OF_SOUND) -> np.ndarray:
    """:func:`propagate_spectra` from the sources' rfft ``spectra`` (S, n // 2 + 1) of signals of length ``n``."""
    mics = MIC_POSITIONS if mics is None else np.asarray(mics, dtype=float)
    delays, dist = _delays_and_distances(np.atleast_2d(np.asarray(positions, dtype=float)), mics, sr, c)
    return _mix_at_mics(spectra, delays, dist, n)


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

