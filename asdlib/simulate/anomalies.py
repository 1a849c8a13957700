"""Anomalies: additive changes to a machine's sound, spectral (at the machine) or spatial (a new source).

Each anomaly function returns an unscaled signal at 1 m; :func:`asdlib.simulate.simulate_clip` scales
it to the wanted level relative to the machine's normal sound.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .machines import MACHINE_IDS, Unit, _unit
from .signals import (
    _TWO_PI, _band, _freqs, _harmonics, _noise, _peaks, _poisson_times, _revolutions, _ringing, _slow, _unit_rms,
)

__all__ = ["ANOMALY_KINDS", "DEFAULT_ANOMALY_STRENGTH", "ANOMALY_JITTER_DB", "ANOMALY_OFFSET_DB",
           "SPECTRAL_ANOMALIES", "SPATIAL_ANOMALIES", "anomaly_types"]

ANOMALY_KINDS = ("spectral", "spatial")
DEFAULT_ANOMALY_STRENGTH = -10.0  # dB; plus ANOMALY_OFFSET_DB of the type: the level re the machine (see simulate_clip)
ANOMALY_JITTER_DB = 3.0  # each clip's anomaly level is strength ± this (uniform)


def _fan_imbalance(u, s, rng, t, sr):
    """Imbalance: strong shaft harmonics and blade-pass sidebands at ± the shaft rate."""
    phase, f_inst = s.state["phase"], s.state["f_inst"]
    shaft = _harmonics(rng, phase, [1.0, 0.6, 0.25], f_inst.max(), sr)
    bpf = u.params["blades"] * phase
    sidebands = np.sin(bpf + phase + rng.uniform(0, _TWO_PI)) + np.sin(bpf - phase + rng.uniform(0, _TWO_PI))
    return _unit_rms(shaft) + 0.5 * _unit_rms(sidebands)


def _fan_rubbing(u, s, rng, t, sr):
    """Rubbing: a high-frequency scrape once per revolution."""
    f = _freqs(t.size, sr)
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
    f = _freqs(t.size, sr)
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
    f = _freqs(t.size, sr)
    f_w = rng.uniform(2500.0, 5500.0) * (1.0 + 0.005 * _slow(rng, t, 0.2))
    whistle = _harmonics(rng, _TWO_PI * np.cumsum(f_w) / sr, [1.0, 0.2], f_w.max(), sr)
    sputter = _noise(rng, t.size, sr, _band(f, 1500.0, 6000.0)) * np.abs(_noise(rng, t.size, sr, _band(f, None, 40.0)))
    return (_unit_rms(whistle) + 0.5 * sputter) * s.activity


def _spatial_leak(u, s, rng, t, sr):
    """A leak (or a loose cover) elsewhere on the machine: noise shaped like the machine's own,
    radiated while the machine works."""
    f = _freqs(t.size, sr)
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

