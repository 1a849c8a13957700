"""The two autoencoders of the paper, readable beside its Figures 2 and 3.

References
----------
* N. Harada et al., "First-shot anomaly sound detection for machine condition monitoring: a domain
  generalization baseline", EUSIPCO 2023 -- the DCASE 2023 Task 2 autoencoder (Figure 2).
* C. Luzón-Álvarez et al., "Exploiting spatial information for anomaly detection in industrial
  machines using autoencoders", Forum Acusticum Euronoise 2025 -- the dual AE (Figure 3).

Shapes: ``B`` batch, ``D = n_mels * n_frames = 640``, ``H = 128`` hidden, ``Z = 8`` latent.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import Config


def _block(n_in: int, n_out: int, config: Config) -> list[nn.Module]:
    """Linear -> BatchNorm1d (baseline's momentum and eps) -> ReLU."""
    return [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out, momentum=config.bn_momentum, eps=config.bn_eps), nn.ReLU()]


class Encoder(nn.Sequential):
    """D -> H -> H -> H -> H -> Z, each Linear followed by BatchNorm and ReLU (bottleneck included)."""

    def __init__(self, config: Config = Config()):
        h = config.hidden_dim
        layers = _block(config.input_dim, h, config)
        for _ in range(config.n_hidden_layers):
            layers += _block(h, h, config)
        layers += _block(h, config.latent_dim, config)
        super().__init__(*layers)


class Decoder(nn.Sequential):
    """latent_in -> H -> H -> H -> H -> D; the output layer is linear."""

    def __init__(self, latent_in: int, config: Config = Config()):
        h = config.hidden_dim
        layers = _block(latent_in, h, config)
        for _ in range(config.n_hidden_layers):
            layers += _block(h, h, config)
        layers.append(nn.Linear(h, config.input_dim))
        super().__init__(*layers)


# Names of the earlier per-class layouts (before one interface), mapped to ``encoders``/``decoders``.
_LEGACY_PREFIXES = {
    "encoder.": "encoders.0.",
    "decoder.": "decoders.0.",
    "encoder_ref.": "encoders.0.",
    "encoder_dif.": "encoders.1.",
    "decoder_ref.": "decoders.0.",
    "decoder_dif.": "decoders.1.",
}


def upgrade_state_dict(state: dict, prefix: str = "") -> dict:
    """Rename the keys of a state dict saved before the one interface (``encoder.0.weight``,
    ``encoder_ref.0.weight``, ...) to the ``encoders.<k>``/``decoders.<k>`` layout; other keys unchanged.

    Loading an old checkpoint into a current model does this by itself
    (``load_state_dict`` calls it); a checker that compares key sets calls it first.
    """
    out = {}
    for key, value in state.items():
        rest = key[len(prefix):] if key.startswith(prefix) else None
        for old, new in _LEGACY_PREFIXES.items():
            if rest is not None and rest.startswith(old):
                key = prefix + new + rest[len(old):]
                break
        out[key] = value
    return out


def _upgrade_hook(module, state_dict, prefix, *args) -> None:
    upgraded = upgrade_state_dict(state_dict, prefix)
    if list(upgraded) != list(state_dict):
        state_dict.clear()
        state_dict.update(upgraded)


class MultiChannelAE(nn.Module):
    """One reference and any number of difference channels, all embeddings shared.

    The one interface of every autoencoder here: input ``k`` has its own encoder
    ``encoders[k]`` and decoder ``decoders[k]``; the ``n_inputs`` embeddings are concatenated
    (reference first) and every decoder sees all of them, so a decoder's first layer takes
    ``n_inputs * Z`` values. With ``n_inputs=1`` this is the DCASE baseline (:class:`BaselineAE`),
    with ``n_inputs=2`` the paper's dual AE (:class:`DualAE`); ``n_inputs > 2`` is the
    generalisation the paper's conclusion proposes. Training minimises
    ``Σ_k w_k MSE(x_k, x̂_k)`` (:func:`reconstruction_loss`).

    Parameters
    ----------
    n_inputs : int
        1 reference + ``n_inputs - 1`` difference channels.
    config : Config

    Attributes
    ----------
    encoders, decoders : torch.nn.ModuleList of Encoder, Decoder
        One per input, reference first.
    """

    def __init__(self, n_inputs: int, config: Config = Config()):
        super().__init__()
        if n_inputs < 1:
            raise ValueError(f"n_inputs must be at least 1, got {n_inputs}")
        self.n_inputs = n_inputs
        self.encoders = nn.ModuleList(Encoder(config) for _ in range(n_inputs))
        self.decoders = nn.ModuleList(Decoder(n_inputs * config.latent_dim, config) for _ in range(n_inputs))
        self.register_load_state_dict_pre_hook(_upgrade_hook)

    def reconstruct(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """A list of ``n_inputs`` tensors (B, D) -> the list of their reconstructions (B, D)."""
        if len(inputs) != self.n_inputs:
            raise ValueError(f"{type(self).__name__} takes {self.n_inputs} input(s), got {len(inputs)}")
        z = torch.cat([enc(x) for enc, x in zip(self.encoders, inputs)], dim=1)  # (B, n_inputs * Z)
        return [dec(z) for dec in self.decoders]

    def forward(self, *inputs):
        """``model([x, x', ...])`` -> ``[x̂, x̂', ...]`` (:meth:`reconstruct`).

        Tensors given one by one, ``model(x, x')``, give the reconstructions the same way: a
        tuple, or one tensor for a one-input model.
        """
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            return self.reconstruct(list(inputs[0]))
        out = self.reconstruct(list(inputs))
        return out[0] if len(out) == 1 else tuple(out)


class BaselineAE(MultiChannelAE):
    """The DCASE 2023 Task 2 autoencoder (paper's Figure 2): x̂ = Dec(Enc(x)), 267,928 parameters.

    ``MultiChannelAE(1)``; ``encoder``/``decoder`` name its only encoder and decoder.

    Parameters
    ----------
    config : Config
    """

    def __init__(self, config: Config = Config()):
        super().__init__(1, config)

    @property
    def encoder(self) -> Encoder:
        return self.encoders[0]

    @property
    def decoder(self) -> Decoder:
        return self.decoders[0]


class DualAE(MultiChannelAE):
    """The paper's two-microphone autoencoder (Figure 3): ``MultiChannelAE(2)``.

    One encoder and one decoder per input -- the reference channel ``x`` and the difference
    channel ``x'``. The embeddings ``z`` and ``z'`` are concatenated and given to *both* decoders,
    so each decoder's first layer takes ``2 * Z = 16`` values. Training minimises
    ``L = MSE(x, x̂) + α MSE(x', x̂')`` (eqs. 4-6). ``encoder_ref``, ``encoder_dif``,
    ``decoder_ref``, ``decoder_dif`` name ``encoders[0]``, ``encoders[1]``, ``decoders[0]``,
    ``decoders[1]``.

    Parameters
    ----------
    config : Config
    """

    def __init__(self, config: Config = Config()):
        super().__init__(2, config)

    encoder_ref = property(lambda self: self.encoders[0])
    encoder_dif = property(lambda self: self.encoders[1])
    decoder_ref = property(lambda self: self.decoders[0])
    decoder_dif = property(lambda self: self.decoders[1])


def build_model(n_inputs: int, config: Config = Config()) -> nn.Module:
    """:class:`BaselineAE` for one input, :class:`DualAE` for two, :class:`MultiChannelAE` beyond."""
    if n_inputs == 1:
        return BaselineAE(config)
    if n_inputs == 2:
        return DualAE(config)
    return MultiChannelAE(n_inputs, config)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def reconstruction_loss(inputs: list[torch.Tensor], outputs: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """Weighted sum of per-input MSEs: ``Σ_k w_k MSE(x_k, x̂_k)`` (eq. 1 for one input, eq. 4 for two)."""
    return sum(w * torch.mean((x - y) ** 2) for w, x, y in zip(weights, inputs, outputs))
