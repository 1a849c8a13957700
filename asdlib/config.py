"""One configuration object whose defaults are the paper's values.

Luzón-Álvarez et al. (2025), sections 2 and 3.3, and the DCASE 2023 Task 2 autoencoder baseline
(Harada et al., 2023) that the paper extends. Where the paper is silent, the default is the
baseline's and the comment says so.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .geometry import N_MICS, SR  # noqa: F401  (re-exported: the array's constants live in geometry)

MACHINES = ("fan", "pump", "slider", "valve")


@dataclass(frozen=True)
class Config:
    """Hyper-parameters of features, models, training and scoring.

    Every field has the paper's value (or the DCASE baseline's where the paper is silent).
    ``Config(epochs=5)`` changes one value; :meth:`replace` returns a modified copy.
    """

    # --- features (paper 3.3; DCASE baseline) ---
    sr: int = SR  # MIMII is 16 kHz; no resampling, files at another rate are refused
    n_fft: int = 1024  # "frame size of 1,024 samples" (64 ms)
    hop_length: int = 512  # "50 % overlap"
    n_mels: int = 128  # "128 filters"
    n_frames: int = 5  # "five consecutive frames ... 640-dimensional"
    power: float = 2.0  # mel power spectrogram, as the baseline
    fmin: float = 0.0  # baseline: librosa default
    fmax: float | None = None  # None: sr / 2 (baseline: librosa default)

    # --- model (DCASE baseline, Figure 2; the dual AE of Figure 3 uses one of these per input) ---
    hidden_dim: int = 128  # width of every hidden layer
    n_hidden_layers: int = 3  # 128 -> 128 blocks between the first and the bottleneck layer
    latent_dim: int = 8  # bottleneck per encoder; the dual AE concatenates two: 16
    bn_momentum: float = 0.01  # BatchNorm1d momentum of the baseline
    bn_eps: float = 1e-3  # BatchNorm1d eps of the baseline

    # --- training (paper 3.3) ---
    epochs: int = 50  # paper: 50 (the baseline's YAML says 100)
    batch_size: int = 256
    lr: float = 1e-3  # Adam
    validation_split: float = 0.1  # baseline: 10 % of the *vectors* held out, only monitored

    # --- scoring and threshold ---
    max_condition: float = 1e6  # covariance regularised to this condition number (see scoring)
    gamma_percentile: float = 0.9  # decision threshold: 90th percentile of a gamma fit (paper 2)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field outside its allowed range (or of the wrong type)."""
        def number(name: str, ok, allowed: str, integer: bool = False) -> None:
            value = getattr(self, name)
            kind = numbers.Integral if integer else numbers.Real
            if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or not ok(value):
                raise ValueError(f"{name} must be {'an integer' if integer else 'a number'} {allowed}, got {value!r}")

        for name in ("sr", "n_fft", "hop_length", "n_mels", "n_frames", "hidden_dim", "n_hidden_layers",
                     "latent_dim", "epochs", "batch_size"):
            number(name, lambda v: v >= 1, ">= 1", integer=True)
        number("power", lambda v: v > 0, "> 0")
        number("fmin", lambda v: v >= 0, ">= 0")
        if self.fmax is not None:
            number("fmax", lambda v: self.fmin < v <= self.sr / 2, f"in (fmin, sr/2] = ({self.fmin}, {self.sr / 2}] or null")
        number("bn_momentum", lambda v: 0 <= v <= 1, "in [0, 1]")
        number("bn_eps", lambda v: v > 0, "> 0")
        number("lr", lambda v: v > 0, "> 0")
        number("validation_split", lambda v: 0 <= v < 1, "in [0, 1)")
        number("max_condition", lambda v: v > 1, "> 1")
        number("gamma_percentile", lambda v: 0 < v < 1, "in (0, 1)")

    @property
    def input_dim(self) -> int:
        """Length of one input vector: ``n_mels * n_frames`` (640)."""
        return self.n_mels * self.n_frames

    def replace(self, **changes: Any) -> "Config":
        """Return a copy with ``changes`` applied (unknown names raise ``TypeError``)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-``dict`` form (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Config":
        """Build from a ``dict``; unknown keys raise ``ValueError`` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown Config field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**values)

    def feature_params(self) -> dict[str, Any]:
        """The fields that change the log-mel features (used as the feature-cache key)."""
        return {k: getattr(self, k) for k in ("sr", "n_fft", "hop_length", "n_mels", "power", "fmin", "fmax")}


#: ``n_jobs`` (``--jobs``) may be at most this many times the machine's CPU count: more processes
#: than that only stall the machine (each one simulates or extracts a clip at full speed).
JOBS_PER_CPU = 4


def max_jobs() -> int:
    """The largest ``n_jobs`` accepted: :data:`JOBS_PER_CPU` x ``os.cpu_count()``.

    Returns
    -------
    int
        At least :data:`JOBS_PER_CPU` (when the CPU count is unknown, one CPU is assumed).
    """
    import os

    return JOBS_PER_CPU * (os.cpu_count() or 1)


def check_jobs(n_jobs: Any, name: str = "n_jobs") -> int:
    """Return ``n_jobs`` as an int when it is a whole number in ``[1, max_jobs()]``; else raise.

    Parameters
    ----------
    n_jobs : int
        Number of processes.
    name : str
        How the message names it (``"n_jobs"``, ``"--jobs"``).

    Raises
    ------
    ValueError
        Not a whole number, below 1, or above :func:`max_jobs` (the message gives the CPU count).
    """
    if not isinstance(n_jobs, numbers.Integral) or isinstance(n_jobs, bool) or n_jobs < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {n_jobs!r}")
    if n_jobs > max_jobs():
        import os

        raise ValueError(f"{name} {n_jobs} is more than {JOBS_PER_CPU} x the {os.cpu_count() or 1} CPU(s) of this machine; "
                         f"give at most {max_jobs()} (more processes only stall the machine)")
    return int(n_jobs)
