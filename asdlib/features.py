"""Input features: waveform -> log-mel -> 5-frame, 640-dimensional vectors.

Pure functions over arrays (I/O lives in :mod:`asdlib.data`, caching in :mod:`asdlib.cache`).
Faithful to the DCASE 2023 Task 2 autoencoder baseline:

* mel power spectrogram (``n_fft=1024``, ``hop_length=512``, ``n_mels=128``, ``power=2``, Hann
  window, ``center=True`` with zero padding, Slaney mel filters: librosa's defaults);
* ``10 * log10(max(mel, eps))`` with ``eps = 2.22e-16`` (float64 machine epsilon) as the floor;
* five consecutive frames concatenated **frame-major** (dims 0-127 are frame t, 128-255 frame t+1,
  ...), one vector per frame: a 10 s clip at 16 kHz has 313 frames and gives 309 vectors.

The paper's two inputs for a microphone pair ``(r, o)`` are the reference channel ``x_r`` and the
difference channel ``x_r - x_o``, computed on the waveforms, then sent through the same log-mel
path (:func:`input_waveforms`).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import librosa
import numpy as np

from .config import N_MICS, Config

#: Floor of the log: the baseline's ``sys.float_info.epsilon``.
LOG_FLOOR = sys.float_info.epsilon


@dataclass(frozen=True, order=True)
class InputSpec:
    """One input waveform built from the microphones: a channel, or a difference of two.

    Parameters
    ----------
    ref : int
        Reference microphone, 0-7.
    other : int or None
        The microphone subtracted from ``ref`` (difference channel ``x_ref - x_other``),
        or None for the plain channel ``x_ref``.

    Examples
    --------
    >>> InputSpec(0).name, InputSpec(2, 6).name
    ('mic0', 'mic2-mic6')
    """

    ref: int
    other: int | None = None

    def __post_init__(self) -> None:
        for mic in (self.ref, self.other):
            if mic is not None and not (isinstance(mic, (int, np.integer)) and 0 <= mic < N_MICS):
                raise ValueError(f"microphone index {mic!r} is out of range: MIMII has mics 0-{N_MICS - 1}")
        if self.other is not None and self.other == self.ref:
            raise ValueError(f"a difference channel needs two different microphones, got {self.ref} twice")

    @property
    def name(self) -> str:
        """Short name used in file names and tables: ``mic0`` or ``mic0-mic4``."""
        return f"mic{self.ref}" if self.other is None else f"mic{self.ref}-mic{self.other}"

    @property
    def mics(self) -> tuple[int, ...]:
        """Microphones this input reads."""
        return (self.ref,) if self.other is None else (self.ref, self.other)

    @classmethod
    def parse(cls, name: str) -> "InputSpec":
        """Inverse of :attr:`name`."""
        parts = name.split("-")
        try:
            mics = [int(p.removeprefix("mic")) for p in parts]
        except ValueError:
            raise ValueError(f"cannot parse input name {name!r}; expected 'mic0' or 'mic0-mic4'") from None
        if len(mics) == 1:
            return cls(mics[0])
        if len(mics) == 2:
            return cls(mics[0], mics[1])
        raise ValueError(f"cannot parse input name {name!r}; expected 'mic0' or 'mic0-mic4'")


def pair_inputs(ref: int, other: int) -> tuple[InputSpec, InputSpec]:
    """The paper's two inputs for the microphone pair ``(ref, other)``.

    Returns
    -------
    (InputSpec, InputSpec)
        The reference channel ``x_ref`` and the difference channel ``x_ref - x_other``.
    """
    return InputSpec(ref), InputSpec(ref, other)


def input_waveforms(audio: np.ndarray, specs: list[InputSpec] | tuple[InputSpec, ...]) -> np.ndarray:
    """Build input waveforms from a multichannel clip.

    Parameters
    ----------
    audio : np.ndarray [shape=(n_channels, n_samples)]
        The clip's channels (microphone ``m`` is row ``m``).
    specs : sequence of InputSpec
        Which channels / differences to build.

    Returns
    -------
    np.ndarray [shape=(len(specs), n_samples)]
        ``audio[ref]`` or ``audio[ref] - audio[other]`` for each spec, same dtype as ``audio``.
    """
    audio = np.asarray(audio)
    if audio.ndim != 2:
        raise ValueError(f"audio must be (n_channels, n_samples), got shape {audio.shape}")
    need = max(max(s.mics) for s in specs)
    if need >= audio.shape[0]:
        raise ValueError(f"input {specs} needs microphone {need}, but the clip has {audio.shape[0]} channel(s)")
    rows = [audio[s.ref] if s.other is None else audio[s.ref] - audio[s.other] for s in specs]
    return np.stack(rows)


def log_mel(y: np.ndarray, config: Config = Config()) -> np.ndarray:
    """Log-mel energies as the DCASE baseline computes them.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)]
        Waveform(s); leading dimensions are processed independently.
    config : Config
        Uses ``sr, n_fft, hop_length, n_mels, power, fmin, fmax``.

    Returns
    -------
    np.ndarray [shape=(..., n_mels, n_frames)]
        ``10 / power * 2 * log10(max(mel, eps))`` (``10 * log10`` for power 2), float32.
        ``n_frames = 1 + n_samples // hop_length`` (centred frames).
    """
    y = np.asarray(y, dtype=np.float32)
    if not np.all(np.isfinite(y)):
        raise ValueError("waveform contains NaN or Inf samples")
    if y.shape[-1] < config.n_fft:
        raise ValueError(f"waveform has {y.shape[-1]} samples, fewer than one frame (n_fft={config.n_fft})")
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=config.sr,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        n_mels=config.n_mels,
        power=config.power,
        fmin=config.fmin,
        fmax=config.fmax,
    )
    return (20.0 / config.power * np.log10(np.maximum(mel, LOG_FLOOR))).astype(np.float32)


def stack_frames(logmel: np.ndarray, n_frames: int = 5) -> np.ndarray:
    """Concatenate ``n_frames`` consecutive frames, frame-major, one vector per frame.

    Parameters
    ----------
    logmel : np.ndarray [shape=(..., n_mels, T)]
        Log-mel spectrogram(s).
    n_frames : int
        Frames per vector (the paper's 5).

    Returns
    -------
    np.ndarray [shape=(..., T - n_frames + 1, n_frames * n_mels)]
        ``out[..., t, k * n_mels + m] == logmel[..., m, t + k]``.
    """
    logmel = np.asarray(logmel)
    n_mels, t = logmel.shape[-2:]
    if t < n_frames:
        raise ValueError(f"{t} frame(s) is fewer than the {n_frames} one vector needs")
    frames = np.swapaxes(logmel, -1, -2)  # (..., T, n_mels)
    windows = np.lib.stride_tricks.sliding_window_view(frames, n_frames, axis=-2)  # (..., T-n+1, n_mels, n)
    windows = np.swapaxes(windows, -1, -2)  # (..., T-n+1, n, n_mels): frame-major
    return windows.reshape(*windows.shape[:-2], n_frames * n_mels)


def clip_vectors(audio: np.ndarray, specs, config: Config = Config()) -> np.ndarray:
    """Multichannel clip -> input vectors for each spec.

    Parameters
    ----------
    audio : np.ndarray [shape=(n_channels, n_samples)]
    specs : sequence of InputSpec
    config : Config

    Returns
    -------
    np.ndarray [shape=(len(specs), n_vectors, n_frames * n_mels)]
        309 x 640 per input for a 10 s clip at 16 kHz.
    """
    return stack_frames(log_mel(input_waveforms(audio, specs), config), config.n_frames)


def n_vectors(n_samples: int, config: Config = Config()) -> int:
    """Number of input vectors a clip of ``n_samples`` gives (309 for 160,000 samples)."""
    return 1 + n_samples // config.hop_length - config.n_frames + 1
