"""The microphone array and recording format of MIMII: the one home of these constants.

MIMII was recorded with a TAMAGO-03 array: 8 microphones on a circle of radius 36.5 mm, microphone
``m`` at azimuth ``m * 45°`` in the plane ``z = 0``, sampled at 16 kHz (Purohit et al., 2019).
:mod:`asdlib.config`, :mod:`asdlib.features`, :mod:`asdlib.data`, :mod:`asdlib.spatial`,
:mod:`asdlib.plots` and the simulator (:mod:`asdlib.simulate`) all take them from here.
"""
from __future__ import annotations

import numpy as np

__all__ = ["SR", "N_MICS", "MIC_RADIUS", "SPEED_OF_SOUND", "mic_positions", "MIC_POSITIONS"]

SR = 16_000  # Hz, MIMII's sample rate
N_MICS = 8  # microphones of the TAMAGO-03 array
MIC_RADIUS = 0.0365  # m, radius of the circle the microphones sit on
SPEED_OF_SOUND = 343.0  # m/s, air at about 20 °C


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

    Examples
    --------
    >>> mic_positions().shape
    (8, 3)
    """
    angles = np.deg2rad(45.0 * np.arange(N_MICS))
    return np.c_[radius * np.cos(angles), radius * np.sin(angles), np.zeros(N_MICS)]


MIC_POSITIONS = mic_positions()
MIC_POSITIONS.setflags(write=False)
