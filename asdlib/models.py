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


class BaselineAE(nn.Module):
    """The DCASE 2023 Task 2 autoencoder (paper's Figure 2): x̂ = Dec(Enc(x)), 267,928 parameters.

    Parameters
    ----------
    config : Config
    """

    n_inputs = 1

    def __init__(self, config: Config = Config()):
        super().__init__()
        self.encoder = Encoder(config)
        self.decoder = Decoder(config.latent_dim, config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, D)."""
        return self.decoder(self.encoder(x))

    def reconstruct(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Common interface with :class:`DualAE`: a list of inputs -> a list of reconstructions."""
        (x,) = inputs
        return [self(x)]


class DualAE(nn.Module):
    """The paper's two-microphone autoencoder (Figure 3).

    One encoder and one decoder per input -- the reference channel ``x`` and the difference
    channel ``x'``. The embeddings ``z`` and ``z'`` are concatenated and given to *both* decoders,
    so each decoder's first layer takes ``2 * Z = 16`` values. Training minimises
    ``L = MSE(x, x̂) + α MSE(x', x̂')`` (eqs. 4-6).

    Parameters
    ----------
    config : Config
    """

    n_inputs = 2

    def __init__(self, config: Config = Config()):
        super().__init__()
        self.encoder_ref = Encoder(config)
        self.encoder_dif = Encoder(config)
        self.decoder_ref = Decoder(2 * config.latent_dim, config)
        self.decoder_dif = Decoder(2 * config.latent_dim, config)

    def forward(self, x_ref: torch.Tensor, x_dif: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D), (B, D) -> (x̂ (B, D), x̂' (B, D))."""
        z = torch.cat([self.encoder_ref(x_ref), self.encoder_dif(x_dif)], dim=1)  # (B, 2Z)
        return self.decoder_ref(z), self.decoder_dif(z)

    def reconstruct(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """A list ``[x, x']`` -> ``[x̂, x̂']``."""
        return list(self(*inputs))


class MultiChannelAE(nn.Module):
    """One reference and any number of difference channels, all embeddings shared.

    The generalisation the paper's conclusion proposes: input ``k`` has its own encoder and
    decoder; the ``n_inputs`` embeddings are concatenated and every decoder sees all of them.
    With ``n_inputs=2`` it is :class:`DualAE` (same layers, same parameter count).

    Parameters
    ----------
    n_inputs : int
        1 reference + ``n_inputs - 1`` difference channels.
    config : Config
    """

    def __init__(self, n_inputs: int, config: Config = Config()):
        super().__init__()
        if n_inputs < 1:
            raise ValueError(f"n_inputs must be at least 1, got {n_inputs}")
        self.n_inputs = n_inputs
        self.encoders = nn.ModuleList(Encoder(config) for _ in range(n_inputs))
        self.decoders = nn.ModuleList(Decoder(n_inputs * config.latent_dim, config) for _ in range(n_inputs))

    def forward(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        """n_inputs x (B, D) -> n_inputs x (B, D)."""
        z = torch.cat([enc(x) for enc, x in zip(self.encoders, inputs)], dim=1)  # (B, n_inputs * Z)
        return [dec(z) for dec in self.decoders]

    def reconstruct(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        return self(*inputs)


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
