"""Which model a grid cell trains: its inputs (microphones) and loss / score weights (α)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .features import InputSpec

#: The baseline's possible input signals (:attr:`ModelSpec.source`).
SOURCES = ("mic", "mean")


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
    source : {"mic", "mean"}
        The baseline's input signal: ``"mic"`` (default) is microphone ``ref``, as the earlier MIMII
        baseline; ``"mean"`` is the average of the 8 channels, which is what the DCASE baseline's
        ``librosa.load(mono=True)`` gives it for an 8-channel MIMII file (``ref`` stays 0,
        ``others`` empty). Name ``baseline-mean``.

    Examples
    --------
    >>> ModelSpec.dual(0, 4, 0.5).name
    'dual-0-4-a0.5'
    >>> ModelSpec.baseline("mean").name, ModelSpec.from_dict({"source": "mean"}).name
    ('baseline-mean', 'baseline-mean')
    """

    ref: int = 0
    others: tuple[int, ...] = ()
    alphas: tuple[float, ...] = ()
    source: str = "mic"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.source == "mean" and (self.ref != 0 or self.others):
            raise ValueError(
                f"source 'mean' (the 8-channel average) is a baseline input: leave ref at 0 and others empty, "
                f"got ref={self.ref}, others={tuple(self.others)}"
            )
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
    def baseline(cls, mic: int | str = 0) -> "ModelSpec":
        """The DCASE single-channel autoencoder on microphone ``mic``, or on the channel mean (``"mean"``).

        ``mic`` may also be an input name: ``"mic3"`` or ``"mean"``.
        """
        if isinstance(mic, str):
            if mic == "mean":
                return cls(source="mean")
            spec = InputSpec.parse(mic)
            if spec.other is not None:
                raise ValueError(f"the baseline reads one channel or the channel mean, got {mic!r}")
            mic = spec.ref
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
        """``[x_ref, x_ref - x_other, ...]`` (``[mean]`` for the channel-mean baseline)."""
        if self.source == "mean":
            return [InputSpec.channel_mean()]
        return [InputSpec(self.ref)] + [InputSpec(self.ref, o) for o in self.others]

    @property
    def weights(self) -> list[float]:
        """``[1, α_1, ...]``: weights of the inputs' losses and scores."""
        return [1.0, *self.alphas]

    @property
    def mic_pair(self) -> str:
        """``"0-4"`` for a dual AE (as in the paper's table), ``""`` for the baseline, ``"mean"`` for the channel-mean baseline.

        (Metrics rows are keyed on kind, mic_pair and alpha, so the two baselines stay apart.)
        """
        if self.source == "mean":
            return "mean"
        return "" if not self.others else "-".join(str(m) for m in (self.ref, *self.others))

    @property
    def alpha(self) -> float | None:
        """The single α of a dual AE, else None."""
        return self.alphas[0] if len(self.alphas) == 1 else None

    @property
    def name(self) -> str:
        """A file-name-safe name: ``baseline-mic0``, ``baseline-mean``, ``dual-0-4-a0.5``, ``multi-0-1-2-a0.5-0.5``."""
        if self.kind == "baseline":
            return f"baseline-{self.inputs[0].name}"
        return f"{self.kind}-{self.mic_pair}-a" + "-".join(f"{a:g}" for a in self.alphas)

    def to_dict(self) -> dict[str, Any]:
        """Plain form; ``source`` appears only when it is not the default (so older digests stay valid)."""
        d: dict[str, Any] = {"ref": self.ref, "others": list(self.others), "alphas": list(self.alphas)}
        if self.source != "mic":
            d["source"] = self.source
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSpec":
        """Inverse of :meth:`to_dict`; ``ref`` defaults to 0, so ``{"source": "mean"}`` is the mean baseline."""
        unknown = sorted(set(d) - {"ref", "others", "alphas", "source"})
        if unknown:
            raise ValueError(f"unknown model field(s) {unknown}; known: ref, others, alphas, source")
        return cls(int(d.get("ref", 0)), tuple(d.get("others", ())), tuple(d.get("alphas", ())), str(d.get("source", "mic")))


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
