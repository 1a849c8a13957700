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
path (:func:`input_waveforms`). The DCASE baseline itself, given an 8-channel file, reads it with
``librosa.load(mono=True)``: the average of the channels (:meth:`InputSpec.channel_mean`).

The spectrogram is computed here with NumPy (centred frames, Hann window in float64, NumPy's
``rfft``, cast to complex64, ``|S|**power``, the Slaney mel matrix in float32): the same arithmetic
as ``librosa.feature.melspectrogram``, bit for bit (a test checks it), without librosa's per-call
overheads (the mel matrix is built once per parameter set).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache

import librosa
import numpy as np
from threadpoolctl import ThreadpoolController
import scipy.signal

from .config import Config
from .geometry import N_MICS

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
    mean : bool
        The average of all the clip's channels instead (what ``librosa.load(mono=True)`` gives
        the DCASE baseline); ``ref`` must then be 0 and ``other`` None. Use :meth:`channel_mean`.

    Examples
    --------
    >>> InputSpec(0).name, InputSpec(2, 6).name, InputSpec.channel_mean().name
    ('mic0', 'mic2-mic6', 'mean')
    """

    ref: int
    other: int | None = None
    mean: bool = False

    @classmethod
    def channel_mean(cls) -> "InputSpec":
        """The average of all channels (the DCASE baseline's ``librosa.load(mono=True)``)."""
        return cls(0, None, True)

    def __post_init__(self) -> None:
        if self.mean and (self.ref != 0 or self.other is not None):
            raise ValueError("the channel-mean input uses every channel: build it with InputSpec.channel_mean()")
        for mic in (self.ref, self.other):
            if mic is not None and not (isinstance(mic, (int, np.integer)) and 0 <= mic < N_MICS):
                raise ValueError(f"microphone index {mic!r} is out of range: MIMII has mics 0-{N_MICS - 1}")
        if self.other is not None and self.other == self.ref:
            raise ValueError(f"a difference channel needs two different microphones, got {self.ref} twice")

    @property
    def name(self) -> str:
        """Short name used in file names and tables: ``mic0``, ``mic0-mic4`` or ``mean``."""
        if self.mean:
            return "mean"
        return f"mic{self.ref}" if self.other is None else f"mic{self.ref}-mic{self.other}"

    @property
    def mics(self) -> tuple[int, ...]:
        """Microphones this input reads (the channel mean reads all of them: ``0 .. N_MICS - 1``)."""
        if self.mean:
            return tuple(range(N_MICS))
        return (self.ref,) if self.other is None else (self.ref, self.other)

    @classmethod
    def parse(cls, name: str) -> "InputSpec":
        """Inverse of :attr:`name`."""
        if name == "mean":
            return cls.channel_mean()
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
        Which channels / differences / channel mean to build.

    Returns
    -------
    np.ndarray [shape=(len(specs), n_samples)]
        ``audio[ref]``, ``audio[ref] - audio[other]`` or ``audio.mean(axis=0)`` (the mean of all
        rows, as ``librosa.to_mono``) for each spec, same dtype as ``audio``.
    """
    audio = np.asarray(audio)
    if audio.ndim != 2:
        raise ValueError(f"audio must be (n_channels, n_samples), got shape {audio.shape}")
    need = max(max(s.mics) for s in specs)
    if need >= audio.shape[0]:
        raise ValueError(f"input {specs} needs microphone {need}, but the clip has {audio.shape[0]} channel(s)")
    rows = [_one_input(audio, s) for s in specs]
    return np.stack(rows)


def _one_input(audio: np.ndarray, spec: InputSpec) -> np.ndarray:
    if spec.mean:
        return np.mean(audio, axis=0, dtype=audio.dtype)
    return audio[spec.ref] if spec.other is None else audio[spec.ref] - audio[spec.other]


def log_mel(y: np.ndarray, config: Config = Config(), *, source: str | None = None) -> np.ndarray:
    """Log-mel energies as the DCASE baseline computes them.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)]
        Waveform(s); leading dimensions are processed independently.
    config : Config
        Uses ``sr, n_fft, hop_length, n_mels, power, fmin, fmax``.

    source : str, optional
        What the waveform is (a file name); errors name it.

    Returns
    -------
    np.ndarray [shape=(..., n_mels, n_frames)]
        ``10 / power * 2 * log10(max(mel, eps))`` (``10 * log10`` for power 2), float32.
        ``n_frames = 1 + n_samples // hop_length`` (centred frames).

    Raises
    ------
    ValueError
        NaN/Inf samples, fewer samples than one frame, or non-finite features (finite samples so
        large that the power spectrum overflows float32, e.g. a float WAV scaled by 1e30).
    """
    return np.swapaxes(log_mel_frames(y, config, source=source), -1, -2)


def log_mel_frames(y: np.ndarray, config: Config = Config(), *, source: str | None = None) -> np.ndarray:
    """:func:`log_mel`, time-major: ``(..., n_frames, n_mels)``, C-contiguous (what the cache stores).

    ``log_mel_frames(y)`` equals ``np.swapaxes(log_mel(y), -1, -2)`` exactly.
    """
    what = source if source is not None else "waveform"
    y = np.asarray(y, dtype=np.float32)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{what}: contains NaN or Inf samples")
    if y.shape[-1] < config.n_fft:
        raise ValueError(f"{what}: {y.shape[-1]} samples, fewer than one frame (n_fft={config.n_fft})")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, naming the file
        out = 20.0 / config.power * np.log10(np.maximum(_mel_power_frames(y, config), LOG_FLOOR, order="C"))
    if not np.all(np.isfinite(out)):
        peak = float(np.max(np.abs(y)))
        raise ValueError(
            f"{what}: log-mel features are not finite (largest |sample| {peak:.3g}; samples should lie in [-1, 1], "
            "and values this large overflow the float32 power spectrum). The file is corrupt or wrongly scaled: "
            "re-export it as 16-bit PCM or rescale it to [-1, 1]."
        )
    return out.astype(np.float32, copy=False)


@lru_cache(maxsize=16)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)  # float32, Slaney
    basis = np.ascontiguousarray(basis)  # (n_mels, 1 + n_fft // 2), as librosa multiplies with it
    basis.setflags(write=False)
    return basis


@lru_cache(maxsize=16)
def _hann(n_fft: int) -> np.ndarray:
    window = scipy.signal.get_window("hann", n_fft, fftbins=True)  # float64, as librosa.stft
    window.setflags(write=False)
    return window


def mel_filters(config: Config = Config()) -> np.ndarray:
    """The mel filter bank ``librosa.filters.mel`` gives for ``config``: ``(n_mels, 1 + n_fft // 2)``.

    Built once per parameter set and process (read-only).
    """
    return _mel_basis(config.sr, config.n_fft, config.n_mels, config.fmin, config.fmax)


def _mel_power_frames(y: np.ndarray, config: Config) -> np.ndarray:
    """Mel power spectrogram, time-major ``(..., T, n_mels)``: ``librosa.feature.melspectrogram``'s arithmetic.

    Centred frames with zero padding, the float64 Hann window times the float32 samples, NumPy's
    ``rfft`` in float64 cast to complex64, ``|S| ** power`` in float32, then the float32 mel matrix.
    The product is librosa's own: ``mel (n_mels, F) @ S (F, T)`` with ``S`` in Fortran order, which
    is ``power``'s transposed view. Its transpose, ``power @ mel.T``, is the same sum, but a BLAS may
    round it differently: NumPy's OpenBLAS with its AVX2 ("Haswell") kernels did on an AMD Zen 5, by up
    to 1 ulp in 0.5-8 % of the values. The result is a view, ``(..., T, n_mels)``, of the
    ``(..., n_mels, T)`` product.
    """
    n_fft, hop = config.n_fft, config.hop_length
    pad = [(0, 0)] * (y.ndim - 1) + [(n_fft // 2, n_fft // 2)]
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(y, pad), n_fft, axis=-1)[..., ::hop, :]
    spectrum = np.fft.rfft(_hann(n_fft) * frames, axis=-1).astype(np.complex64)  # (..., T, 1 + n_fft // 2)
    power = np.abs(spectrum) ** config.power
    # one BLAS thread: a multi-threaded float32 GEMM splits its sums by thread count, and the features
    # (so every metric) would then depend on OMP_NUM_THREADS and on the machine's core count
    with blas_threads().limit(limits=1, user_api="blas"):
        return np.matmul(mel_filters(config), np.swapaxes(power, -1, -2)).swapaxes(-1, -2)


@lru_cache(maxsize=1)
def blas_threads() -> ThreadpoolController:
    """The process's BLAS thread pools (NumPy's), inspected once: limiting them is then cheap
    (``blas_threads().limit(limits=1, user_api="blas")``)."""
    return ThreadpoolController()


def stack_frames(logmel: np.ndarray, n_frames: int = 5, *, out: np.ndarray | None = None) -> np.ndarray:
    """Concatenate ``n_frames`` consecutive frames, frame-major, one vector per frame.

    The one path from log-mel frames to input vectors (:mod:`asdlib.cache` uses it too).

    Parameters
    ----------
    logmel : np.ndarray [shape=(..., n_mels, T)]
        Log-mel spectrogram(s); a time-major array passed as ``np.swapaxes(frames, -1, -2)`` is
        read without a transposing copy.
    n_frames : int
        Frames per vector (the paper's 5).
    out : np.ndarray [shape=(..., T - n_frames + 1, n_frames * n_mels)], optional
        Where to write the vectors (e.g. rows of a larger array); by default a new array of
        ``logmel``'s dtype.

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
    n_vec = t - n_frames + 1
    shape = (*frames.shape[:-2], n_vec, n_frames * n_mels)
    if out is None:
        out = np.empty(shape, dtype=logmel.dtype)
    elif out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, expected {shape}")
    for k in range(n_frames):  # block k of every vector is frame t + k: n_frames slab copies
        out[..., k * n_mels : (k + 1) * n_mels] = frames[..., k : k + n_vec, :]
    return out


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
