"""Which model a grid cell trains: its inputs (microphones) and loss / score weights (α)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .features import InputSpec


@dataclass(frozen=True)
class ModelSpec:
    """The inputs and weights of one autoencoder.

    Parameters
    ----------
    ref : int
        Reference microphone (the baseline's single channel; the paper's ``x``).
    others : tuple of int
        Microphones whose difference from ``ref`` is an extra input (the paper's ``x' = x_ref - x_other``).
        Empty: the DCASE baseline. One: the paper's dual AE. More: :class:`~asdlib.models.MultiChannelAE`.
    alphas : tuple of float
        Weight of each difference input, in the loss (eq. 4) and the score (eq. 7).

    Examples
    --------
    >>> ModelSpec.dual(0, 4, 0.5).name
    'dual-0-4-a0.5'
    """

    ref: int = 0
    others: tuple[int, ...] = ()
    alphas: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "others", tuple(int(o) for o in self.others))
        object.__setattr__(self, "alphas", tuple(float(a) for a in self.alphas))
        if len(self.others) != len(self.alphas):
            raise ValueError(f"one alpha per difference channel: others={self.others}, alphas={self.alphas}")
        if len(set(self.others)) != len(self.others) or self.ref in self.others:
            raise ValueError(f"microphones must be distinct: ref={self.ref}, others={self.others}")
        for a in self.alphas:
            if not a >= 0:
                raise ValueError(f"alpha must be >= 0, got {a}")
        self.inputs  # validates microphone indices

    @classmethod
    def baseline(cls, mic: int = 0) -> "ModelSpec":
        """The DCASE single-channel autoencoder on microphone ``mic``."""
        return cls(mic)

    @classmethod
    def dual(cls, ref: int, other: int, alpha: float) -> "ModelSpec":
        """The paper's dual AE on the pair ``(ref, other)`` with weight ``alpha``."""
        return cls(ref, (other,), (alpha,))

    @property
    def kind(self) -> str:
        """``"baseline"``, ``"dual"`` or ``"multi"``."""
        return {0: "baseline", 1: "dual"}.get(len(self.others), "multi")

    @property
    def inputs(self) -> list[InputSpec]:
        """``[x_ref, x_ref - x_other, ...]``."""
        return [InputSpec(self.ref)] + [InputSpec(self.ref, o) for o in self.others]

    @property
    def weights(self) -> list[float]:
        """``[1, α_1, ...]``: weights of the inputs' losses and scores."""
        return [1.0, *self.alphas]

    @property
    def mic_pair(self) -> str:
        """``"0-4"`` for a dual AE (as in the paper's table), ``""`` for the baseline."""
        return "" if not self.others else "-".join(str(m) for m in (self.ref, *self.others))

    @property
    def alpha(self) -> float | None:
        """The single α of a dual AE, else None."""
        return self.alphas[0] if len(self.alphas) == 1 else None

    @property
    def name(self) -> str:
        """A file-name-safe name: ``baseline-mic0``, ``dual-0-4-a0.5``, ``multi-0-1-2-a0.5-0.5``."""
        if self.kind == "baseline":
            return f"baseline-mic{self.ref}"
        return f"{self.kind}-{self.mic_pair}-a" + "-".join(f"{a:g}" for a in self.alphas)

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "others": list(self.others), "alphas": list(self.alphas)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSpec":
        return cls(int(d["ref"]), tuple(d.get("others", ())), tuple(d.get("alphas", ())))


def grid_inputs(specs) -> list[InputSpec]:
    """The distinct inputs that a group of models needs, ordered by name (e.g. mic0, mic0-mic4, mic2).

    Parameters
    ----------
    specs : iterable of ModelSpec

    Returns
    -------
    list of InputSpec
    """
    return sorted({s for spec in specs for s in spec.inputs}, key=lambda s: s.name)
