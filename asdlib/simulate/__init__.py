"""A physically grounded simulator of MIMII-like 8-microphone machine recordings.

The real MIMII dataset (Purohit et al., 2019) is about 100 GB; this module makes a small stand-in
with the same layout so that the whole method, spatial cues included, runs anywhere. Every number
computed from its output is **simulated**, not MIMII.

What is modelled
----------------
* **Array.** The TAMAGO-03 geometry: 8 microphones on a circle of radius 36.5 mm in the plane z = 0,
  microphone ``m`` at azimuth ``m * 45°`` (:data:`MIC_POSITIONS`); 16 kHz (:mod:`asdlib.geometry`).
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

Determinism: a clip depends only on its seeds. In a data set, :func:`clip_seed` derives them from
(global seed, machine, machine ID, label, clip index) and, for the background only, the SNR, with
SHA-256, never from how many other clips are made. So, as in MIMII, one recording appears in every
SNR folder with the same machine sound (and anomaly) and a different background. Randomness is
split into independent streams (machine, background, anomaly), so a clip simulated with
``anomaly="spatial"`` equals the one with ``anomaly=None`` plus the anomaly's own contribution.
:data:`DATA_VERSION` names the version of the clips (bumped whenever their samples change).

Modules: :mod:`~asdlib.simulate.propagation` (free-field propagation), :mod:`~asdlib.simulate.signals`
(building blocks), :mod:`~asdlib.simulate.machines` (units, sound models, background),
:mod:`~asdlib.simulate.anomalies`, :mod:`~asdlib.simulate.clip` (one clip),
:mod:`~asdlib.simulate.dataset` (data sets on disk) and :mod:`~asdlib.simulate.cli` (``asdlib simulate``).
"""
from __future__ import annotations

from ..config import MACHINES
from ..geometry import MIC_POSITIONS, MIC_RADIUS, N_MICS, SPEED_OF_SOUND, SR, mic_positions
from .anomalies import (
    ANOMALY_JITTER_DB, ANOMALY_KINDS, ANOMALY_OFFSET_DB, DEFAULT_ANOMALY_STRENGTH, SPATIAL_ANOMALIES,
    SPECTRAL_ANOMALIES, anomaly_types,
)
from .cli import add_arguments, build_parser, main, run
from .clip import SENSOR_NOISE_DB, clip_layout, simulate_clip
from .dataset import DATA_VERSION, LABELS, clip_seed, recording_seed, simulate_dataset
from .machines import BACKGROUND_SOURCES, MACHINE_IDS, MODELS, OUTPUT_GAIN, UNITS, Unit
from .propagation import propagate, propagate_spectra, propagation_delays

__all__ = [
    "SR", "N_MICS", "MIC_RADIUS", "SPEED_OF_SOUND", "MIC_POSITIONS", "mic_positions",
    "MACHINES", "MACHINE_IDS", "ANOMALY_KINDS", "LABELS", "DEFAULT_ANOMALY_STRENGTH", "ANOMALY_JITTER_DB",
    "SENSOR_NOISE_DB", "DATA_VERSION",
    "propagation_delays", "propagate", "propagate_spectra",
    "Unit", "UNITS", "MODELS", "BACKGROUND_SOURCES", "ANOMALY_OFFSET_DB", "OUTPUT_GAIN",
    "SPECTRAL_ANOMALIES", "SPATIAL_ANOMALIES", "anomaly_types",
    "clip_seed", "recording_seed", "clip_layout", "simulate_clip", "simulate_dataset",
    "add_arguments", "run", "build_parser", "main",
]
