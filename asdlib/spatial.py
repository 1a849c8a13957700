"""The difference of two microphones as a first-order differential (dipole) array.

Subtracting microphone ``o`` from microphone ``r`` (the paper's difference channel) filters a sound
arriving at angle ``θ`` to the pair's axis with

    H(f, θ) = G_r(f) - G_o(f),

where ``G_m`` is the free-field transfer function from the source to microphone ``m``. In the far field,
relative to one microphone, ``|H| = 2 |sin(π f d cos θ / c)|`` with ``d`` the spacing (73 mm for opposite
microphones of the MIMII array): a figure-of-eight (dipole) pattern with nulls broadside to the pair,
rising 6 dB per octave at low frequencies, up to its first on-axis maximum at ``f = c / (2 d)`` ≈ 2.35 kHz.
In the near field (valves at 10 cm) the 1/r level difference between the microphones adds a term that
does not vanish at low frequencies.
"""
from __future__ import annotations

import numpy as np

from .geometry import MIC_RADIUS, SPEED_OF_SOUND, mic_positions  # one definition of the array geometry

__all__ = ["MIC_RADIUS", "SPEED_OF_SOUND", "mic_positions", "difference_response", "far_field_dipole", "band_gain_db"]


def difference_response(
    freqs: np.ndarray,
    azimuths_deg: np.ndarray,
    pair: tuple[int, int],
    distance: float | None = None,
    radius: float = MIC_RADIUS,
    c: float = SPEED_OF_SOUND,
) -> np.ndarray:
    """Magnitude response of the difference channel ``x_r - x_o`` to a point source.

    Parameters
    ----------
    freqs : np.ndarray [shape=(F,)]
        Frequencies in Hz.
    azimuths_deg : np.ndarray [shape=(A,)]
        Source azimuths in degrees (0° = direction of microphone 0), in the array's plane.
    pair : (int, int)
        The microphones ``(r, o)``.
    distance : float or None
        Source distance from the array centre in metres; None = far field (plane wave).
    radius, c : float
        Array radius (m) and speed of sound (m/s).

    Returns
    -------
    np.ndarray [shape=(F, A)]
        ``|G_r - G_o| / |G_centre|``: the difference channel's gain relative to one microphone at the
        array centre (1 = 0 dB).
    """
    freqs = np.asarray(freqs, dtype=float)[:, None]
    az = np.deg2rad(np.asarray(azimuths_deg, dtype=float))[None, :]
    mics = mic_positions(radius)
    k = 2 * np.pi * freqs / c
    direction = np.stack([np.cos(az), np.sin(az)], axis=-1)  # (1, A, 2)
    if distance is None:
        phase = lambda m: np.exp(1j * k * (direction @ mics[m, :2]))  # noqa: E731  plane wave, relative to the centre
        h = phase(pair[0]) - phase(pair[1])
    else:
        src = distance * direction  # (1, A, 2)
        def green(m):
            r = np.linalg.norm(src - mics[m, :2], axis=-1)
            return np.exp(-1j * k * r) / r
        h = (green(pair[0]) - green(pair[1])) * distance * np.exp(1j * k * distance)
    return np.abs(h)


def far_field_dipole(freqs: np.ndarray, theta_deg: np.ndarray, spacing: float = 2 * MIC_RADIUS, c: float = SPEED_OF_SOUND) -> np.ndarray:
    """Closed form ``2 |sin(π f d cos θ / c)|`` with θ the angle to the pair's axis, shape (F, A)."""
    f = np.asarray(freqs, dtype=float)[:, None]
    th = np.deg2rad(np.asarray(theta_deg, dtype=float))[None, :]
    return 2 * np.abs(np.sin(np.pi * f * spacing * np.cos(th) / c))


def band_gain_db(pair: tuple[int, int], azimuth_deg: float, distance: float | None = None,
                 band_hz: tuple[float, float] = (100.0, 8000.0), n_freqs: int = 200, floor_db: float = -60.0) -> float:
    """Mean power gain (dB) of the difference channel of ``pair`` towards a point source, over a band.

    Parameters
    ----------
    pair : (int, int)
        The microphones ``(r, o)``.
    azimuth_deg : float
        The source's azimuth (0° = direction of microphone 0).
    distance : float or None
        Its distance from the array centre in metres; None = far field.
    band_hz : (float, float)
        The band, averaged over ``n_freqs`` evenly spaced frequencies.
    floor_db : float
        The value given to an exact null (a source equidistant from the two microphones).

    Returns
    -------
    float
        ``10 log10`` of the mean of ``|H|²`` (:func:`difference_response`) over the band, at least ``floor_db``.
    """
    band = np.linspace(band_hz[0], band_hz[1], n_freqs)
    gain = difference_response(band, np.array([azimuth_deg]), tuple(pair), distance=distance)[:, 0]
    return float(max(10 * np.log10(max(np.mean(gain**2), 1e-30)), floor_db))
