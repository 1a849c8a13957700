"""One clip: where its sources are (:func:`clip_layout`) and its 8-channel audio (:func:`simulate_clip`)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import fft as sfft

from ..geometry import N_MICS, SR
from .anomalies import (
    ANOMALY_KINDS, DEFAULT_ANOMALY_STRENGTH, SPATIAL_ANOMALIES, SPECTRAL_ANOMALIES, _anomaly_layout,
)
from .kernels import add_scaled, mix_scaled, standard_normal
from .machines import BACKGROUND_SOURCES, MODELS, OUTPUT_GAIN, _background_draws, _unit
from .propagation import _propagate_rfft, _rfft_rows
from .signals import _db, _NoiseBatch, _unit_rms

__all__ = ["SENSOR_NOISE_DB", "clip_layout", "simulate_clip"]

SENSOR_NOISE_DB = -40.0  # microphone self-noise relative to the background point sources
_PAD = 256  # samples simulated before and after the clip (delays, ringing, fades)
_FADE = 64  # raised-cosine fade at both ends of each padded source signal
_STREAM_MACHINE, _STREAM_BACKGROUND, _STREAM_ANOMALY = 0, 1, 2


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



def clip_layout(
    machine: str,
    machine_id: int,
    *,
    seed: int,
    anomaly: str | None = None,
    anomaly_type: str | None = None,
    anomaly_strength: float = DEFAULT_ANOMALY_STRENGTH,
    background_seed: int | None = None,
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
        "background": _background_layout(_stream(seed if background_seed is None else background_seed, _STREAM_BACKGROUND)),
        "anomaly": _anomaly_layout(_stream(seed, _STREAM_ANOMALY), u, anomaly, anomaly_type, _check_strength(anomaly_strength)),
    }



def _fade(n: int) -> np.ndarray:
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(_FADE) / _FADE)
    w = np.ones(n)
    w[:_FADE] = ramp
    w[-_FADE:] = ramp[::-1]
    return w


def _render(groups: list[tuple[list[np.ndarray], list[np.ndarray]]], n_total: int, n_out: int, sr: int) -> list[np.ndarray]:
    """(8, n_out) float32 microphone signals of each group ``(signals, positions)`` of sources,
    given on the padded axis, cropped to the clip.

    The sources of all groups go through one batched rfft (:func:`~asdlib.simulate.propagation._rfft_rows`:
    each row's spectrum is what transforming it alone gives), then each group through the
    propagation and one irfft, in single precision: the error is about 1e-7 of the signal's RMS
    (``test_simulate`` checks it against a double-precision path), far below the 16-bit output's
    quantisation.
    """
    signals = [x for group, _ in groups for x in group]
    if signals:
        stacked = np.empty((len(signals), n_total), dtype=np.float32)
        for row, signal in zip(stacked, signals):
            row[:] = signal
        fade = _fade(2 * _FADE).astype(np.float32)
        stacked[:, :_FADE] *= fade[:_FADE]
        stacked[:, -_FADE:] *= fade[_FADE:]
        spectra = _rfft_rows(stacked)
    out, start = [], 0
    for group, positions in groups:
        if not group:
            out.append(np.zeros((N_MICS, n_out), dtype=np.float32))
            continue
        mics = _propagate_rfft(spectra[start : start + len(group)], np.stack(positions), n_total, sr=sr)
        out.append(sfft.irfft(mics, n=n_total, axis=-1, overwrite_x=True)[:, _PAD : _PAD + n_out])
        start += len(group)
    return out


def _power(x: np.ndarray) -> float:
    """Mean square of all samples, accumulated in float64."""
    return float(np.mean(np.square(x), dtype=np.float64))


def _check_strength(anomaly_strength) -> float:
    try:
        value = float(anomaly_strength)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value):
        raise ValueError(f"anomaly_strength must be a finite number of dB (e.g. -10), got {anomaly_strength!r}")
    return value


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
    background_seed: int | None = None,
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
        The clip's seed (see :func:`~asdlib.simulate.clip_seed`): it draws the machine's sound and the
        anomaly. The same seed with and without an anomaly gives the same normal sound and background;
        they differ by the anomaly's contribution only.
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
    background_seed : int, optional
        Seed of the background (its sources, positions and levels); default ``seed``. A data set gives
        the SNR folders of one recording the same ``seed`` and each its own ``background_seed``, so
        they share the machine sound and anomaly, as MIMII's do.
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
        the output scale), ``snr_db``, ``seed``, ``background_seed``, ``peak``.
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
    anomaly_strength = _check_strength(anomaly_strength)
    background_seed = seed if background_seed is None else background_seed
    n_out = int(round(duration_s * sr))
    n_total = sfft.next_fast_len(n_out + 2 * _PAD, real=True)
    t = (np.arange(n_total) - _PAD) / sr

    # machine (normal sound) and background point sources (their own streams), rendered together; the
    # background's noises are drawn first and transformed in one batched irfft with the machine's first
    rng_bg = _stream(background_seed, _STREAM_BACKGROUND)
    layout = _background_layout(rng_bg)
    batch = _NoiseBatch(n_total)
    bg_draws = _background_draws([s["kind"] for s in layout], rng_bg, t, sr, batch)
    sound = MODELS[machine](u, _stream(seed, _STREAM_MACHINE), t, sr, noise=batch.noise)
    part_pos = u.component_positions()
    bg_signals = [_db(s["level_db"]) * _unit_rms(signal()) for s, signal in zip(layout, bg_draws)]
    del batch, bg_draws
    machine8, background8 = _render([(list(sound.parts.values()), [part_pos[k] for k in sound.parts]),
                                     (bg_signals, [s["position"] for s in layout])], n_total, n_out, sr)
    p_machine = _power(machine8)

    # microphone self-noise
    sensor_rms = np.sqrt(_power(background8) * 10 ** (SENSOR_NOISE_DB / 10))
    sensor = np.empty(n_out)  # one channel at a time (the same draws as one (8, n_out) call), in cache
    for row in background8:
        standard_normal(rng_bg, sensor)  # rng_bg.standard_normal(out=sensor), faster
        add_scaled(row, sensor, sensor_rms)  # row += sensor * sensor_rms, in one pass
    del sensor
    p_background = _power(background8)
    # the background gain comes from the *normal* machine sound only: an anomaly never changes it
    noise_gain = 0.0 if np.isposinf(snr_db) else float(np.sqrt(p_machine / (p_background * 10 ** (snr_db / 10))))

    # anomaly: its own stream, scaled to level_db relative to the normal machine sound
    rng_an = _stream(seed, _STREAM_ANOMALY)
    an = _anomaly_layout(rng_an, u, anomaly, anomaly_type, anomaly_strength, anomaly_position)
    g = OUTPUT_GAIN[machine]
    an_scale, p_an, anomaly8 = 0.0, 0.0, None
    if anomaly is not None:
        make = SPECTRAL_ANOMALIES[machine][an["type"]] if anomaly == "spectral" else SPATIAL_ANOMALIES[an["type"]]
        (anomaly8,) = _render([([make(u, sound, rng_an, t, sr)], [an["position"]])], n_total, n_out, sr)
        p_an = _power(anomaly8)
        an_scale = float(np.sqrt(p_machine * 10 ** (an["level_db"] / 10) / max(p_an, 1e-30)))
    # (machine * g + anomaly * g_a) + background * g_b, each part's gain in float32, in one pass
    gains = [np.float32(g), np.float32(g * noise_gain), np.float32(g * an_scale)]
    if return_sources:  # the parts as mixed, then mixed with unit gains (x * 1 is x)
        for part, gain in zip((machine8, background8, anomaly8), gains):
            if part is not None:
                part *= gain
        gains = [np.float32(1.0)] * 3
    audio = np.empty_like(machine8)
    peak = mix_scaled(machine8, gains[0], background8, gains[1], machine8 if anomaly8 is None else anomaly8, gains[2],
                      anomaly8 is not None, audio)
    info = {
        "machine": machine,
        "machine_id": int(machine_id),
        "seed": int(seed),
        "background_seed": int(background_seed),
        "sr": int(sr),
        "duration_s": n_out / sr,
        "snr_db": float(snr_db),
        "machine_position": u.position,
        "parts": part_pos,
        "background": layout,
        "anomaly": an,
        "noise_gain": noise_gain,
        "output_gain": g,
        "machine_power": g**2 * p_machine,  # as mixed (up to float32 rounding)
        "background_power": (g * noise_gain) ** 2 * p_background,
        "anomaly_power": (g * an_scale) ** 2 * p_an,
        "peak": peak,
    }
    if return_sources:
        anomaly8 = np.zeros_like(machine8) if anomaly8 is None else anomaly8
        return audio, info, {"machine": machine8, "anomaly": anomaly8, "background": background8}
    return audio, info
