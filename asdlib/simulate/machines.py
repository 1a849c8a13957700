"""The machine units (MIMII machine IDs), their normal sound models, and the factory background."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import fft as sfft

from ..config import MACHINES
from .signals import (
    _TWO_PI, _band, _db, _freqs, _harmonics, _noise, _noise_spectrum, _NoiseBatch, _peaks, _pink, _poisson_times,
    _revolutions, _ringing, _rms, _rotation, _slow, _smooth_gate, _unit_rms,
)

_NoiseFn = Callable[..., np.ndarray]  # noise(rng, n, sr, shape=None): a unit-RMS shaped noise, as signals._noise

__all__ = ["MACHINES", "MACHINE_IDS", "Unit", "UNITS", "BACKGROUND_SOURCES", "OUTPUT_GAIN", "MODELS"]

MACHINE_IDS = (0, 2, 4, 6)


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
def _fan(u: Unit, rng: np.random.Generator, t: np.ndarray, sr: int, noise: _NoiseFn | None = None) -> _Sound:
    """Blade-pass harmonics over flow noise modulated at the blade rate; motor hum behind the rotor."""
    p, n = u.params, t.size
    noise = _noise if noise is None else noise
    f = _freqs(n, sr)
    phase, f_inst = _rotation(rng, t, sr, p["f_rot"], jitter=0.01, drift=0.004)
    bpf = p["blades"] * phase
    fmax = p["blades"] * f_inst.max()
    tones = _unit_rms(_harmonics(rng, bpf, [1.0, 0.55, 0.35, 0.22, 0.14, 0.09, 0.06], fmax, sr))
    tones += 0.08 * _unit_rms(_harmonics(rng, phase, [1.0, 0.5], f_inst.max(), sr))  # residual unbalance
    shape = _pink(f, 100.0, 1.6) * _band(f, 60.0, 6500.0) * _peaks(f, p["res"])
    flow = noise(rng, n, sr, shape) * (1.0 + 0.2 * np.sin(bpf + rng.uniform(0, _TWO_PI)))
    rotor = _db(p["tone_db"] + rng.normal(0, 1.0)) * tones + flow
    hum_phase = _TWO_PI * 100.0 * (1 + 1e-4 * rng.standard_normal()) * t
    motor = _harmonics(rng, hum_phase, [1.0, 0.4, 0.25], 100.0, sr) + 0.3 * noise(rng, n, sr, _band(f, 2000, 5000))
    motor = 0.25 * _db(rng.normal(0, 1.0)) * _unit_rms(motor)
    return _Sound({"rotor": rotor, "motor": motor}, shape, _revolutions(t, phase), 1.0, {"phase": phase, "f_inst": f_inst})


def _pump(u: Unit, rng: np.random.Generator, t: np.ndarray, sr: int, noise: _NoiseFn | None = None) -> _Sound:
    """Motor: shaft, vane-pass and mains harmonics. Pipe: fluid noise with pipe resonances."""
    p, n = u.params, t.size
    noise = _noise if noise is None else noise
    f = _freqs(n, sr)
    phase, f_inst = _rotation(rng, t, sr, p["f_rot"], jitter=0.005, drift=0.002)
    fmax = f_inst.max()
    shaft = _harmonics(rng, phase, [0.3, 0.2, 0.1, 0.08, 0.05, 0.04, 0.03, 0.02], fmax, sr)
    vane = _harmonics(rng, p["vanes"] * phase, [1.0, 0.5, 0.25, 0.12], p["vanes"] * fmax, sr)
    mains = _harmonics(rng, _TWO_PI * 100.0 * t, [0.5, 0.2, 0.1], 100.0, sr)
    motor = _unit_rms(shaft + vane + mains) + 0.2 * noise(rng, n, sr, _band(f, 1500, 4000))
    shape = _pink(f, 30.0, 1.5) * _band(f, 30.0, 2500.0) * _peaks(f, p["pipe"])
    fluid = noise(rng, n, sr, shape) * (1.0 + 0.2 * np.tanh(_slow(rng, t, 0.25)))
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


def _slider(u: Unit, rng: np.random.Generator, t: np.ndarray, sr: int, noise: _NoiseFn | None = None) -> _Sound:
    """Carriage: motor whine and rolling noise while travelling. Ends: impacts at the end stops."""
    p, n = u.params, t.size
    noise = _noise if noise is None else noise
    f = _freqs(n, sr)
    speed, hit_a, hit_b, period, start = _slider_motion(rng, t, p["period"])
    f_motor = p["motor"] * (1.0 + 0.01 * rng.standard_normal()) * (0.3 + 0.7 * speed)
    whine = _harmonics(rng, _TWO_PI * np.cumsum(f_motor) / sr, [1.0, 0.45, 0.3, 0.12], f_motor.max(), sr)
    shape = _pink(f, 100.0, 1.5) * _band(f, 150.0, 4000.0) * _peaks(f, [(p["modes"][0][0] * 0.6, 2, 2)])
    rolling = noise(rng, n, sr, shape)
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


def _valve(u: Unit, rng: np.random.Generator, t: np.ndarray, sr: int, noise: _NoiseFn | None = None) -> _Sound:
    """Body: solenoid clicks at opening and closing. Outlet: air flow while open."""
    p, n = u.params, t.size
    noise = _noise if noise is None else noise
    f = _freqs(n, sr)
    opens, closes = _valve_cycles(rng, t, p["open"], p["closed"])
    is_open = np.zeros(n, dtype=bool)
    for a, b in zip(opens, closes):
        is_open[(t >= a) & (t < b)] = True
    thump = [(180.0, 0.015)]
    clicks = _ringing(rng, t, sr, opens, _db(rng.normal(0, 1.5, opens.size)), list(p["modes"]) + thump, click=1.5)
    clicks += _ringing(rng, t, sr, closes, 0.7 * _db(rng.normal(0, 1.5, closes.size)), [(fm * 0.93, d) for fm, d in p["modes"]], click=1.0)
    shape = _pink(f) * _band(f, *p["flow"], order=3)
    gate = _smooth_gate(is_open, sr, 0.02)
    flow = noise(rng, n, sr, shape) * gate
    body = 3.0 * _unit_rms(clicks)
    outlet = 0.8 * _db(rng.normal(0, 1.0)) * flow / max(np.sqrt(np.mean(is_open)), 0.05)
    rhythm = np.sort(np.r_[opens, closes])
    return _Sound({"body": body, "outlet": outlet}, shape, rhythm, gate, {"is_open": is_open})


#: The machine sound models: ``model(unit, rng, t, sr, noise=None)`` -> :class:`_Sound`; ``noise`` draws
#: a shaped noise as :func:`~asdlib.simulate.signals._noise` does (``simulate_clip`` passes a
#: :class:`~asdlib.simulate.signals._NoiseBatch`'s, which transforms it with the background's noises).
MODELS = {"fan": _fan, "pump": _pump, "slider": _slider, "valve": _valve}


_Finish = Callable[..., np.ndarray]


def _background_source(kind: str, rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[list[np.ndarray], _Finish]:
    """Draw one background source: the spectra of its noises, and how its signal follows from them.

    Returns ``(spectra, finish)``: ``finish(*signals)``, with ``signals`` the unit-RMS signals of
    ``spectra`` (:func:`~asdlib.simulate.signals._noises`), is the source's signal. Every random draw
    happens here, in the source's own order, so the noises of all sources of a clip can be transformed
    in one batch (:func:`_background_draws`). The machinery's low-passed harmonics are the one
    spectrum without a draw.
    """
    n = t.size
    f = _freqs(n, sr)
    if kind == "ventilation":
        spectrum = _noise_spectrum(rng, n, _pink(f, 20.0, 1.5) * _band(f, 40.0, 5000.0))
        envelope = 1.0 + 0.1 * _slow(rng, t, 1.0)
        return [spectrum], lambda noise: noise * envelope
    if kind == "rumble":
        return [_noise_spectrum(rng, n, _pink(f, 10.0, 2.0) * _band(f, 15.0, 500.0))], lambda noise: noise
    if kind == "hum":
        mains = 50.0 * (1.0 + 0.001 * rng.standard_normal())
        hum = _unit_rms(_harmonics(rng, _TWO_PI * mains * t, [1.0, 0.6, 0.5, 0.3, 0.2, 0.25, 0.1, 0.08], 50.0, sr))
        return [_noise_spectrum(rng, n, _pink(f) * _band(f, 40.0, 3000.0))], lambda noise: hum + 0.1 * noise
    if kind == "machinery":
        f0 = rng.uniform(30.0, 60.0)
        partials = _harmonics(rng, _TWO_PI * f0 * t * (1.0 + 0.003 * _slow(rng, t)), [1.0 / k for k in range(1, 41)], f0, sr)
        hum = sfft.rfft(partials.astype(np.float32)) * _band(f, None, 2000.0).astype(np.float32)  # low-passed
        return [_noise_spectrum(rng, n, _pink(f) * _band(f, 100.0, 2000.0)), hum], lambda noise, hum: hum + 0.7 * noise
    if kind == "clanks":
        times = _poisson_times(rng, 0.7, t[0] - 0.3, t[-1])
        modes = [(rng.uniform(300, 1200), rng.uniform(0.05, 0.15)), (rng.uniform(1200, 3000), rng.uniform(0.03, 0.08))]
        clanks = _unit_rms(_ringing(rng, t, sr, times, rng.lognormal(0.0, 0.5, times.size), modes, click=0.3)) * 3.0
        return [_noise_spectrum(rng, n, _pink(f, 10.0, 2.0) * _band(f, 30.0, 1500.0))], lambda noise: clanks + 0.3 * noise
    raise ValueError(f"unknown background source kind {kind!r}")  # pragma: no cover


def _background_draws(kinds: Sequence[str], rng: np.random.Generator, t: np.ndarray, sr: int,
                      batch: _NoiseBatch) -> list[Callable[[], np.ndarray]]:
    """Draw the background sources of ``kinds`` in turn from ``rng``, their spectra queued in ``batch``.

    Returns one function per source that gives its signal (transforming ``batch``'s queue if it is
    still waiting).
    """
    def signal(handles, finish):
        return lambda: finish(*[batch.signal(h) for h in handles])

    drawn = [_background_source(kind, rng, t, sr) for kind in kinds]
    return [signal([batch.add(x) for x in spectra], finish) for spectra, finish in drawn]
