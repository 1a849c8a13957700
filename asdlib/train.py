"""Training one autoencoder on the normal vectors of one machine type.

Seeded and deterministic on CPU: a model's initial weights, its 10 % validation hold-out and the
order of its batches all come from its ``seed`` (:func:`init_model`, :func:`batch_plan`), so the
same seed gives the same weights and scores. :func:`train_model` trains one model with the fused
trainer of :mod:`asdlib.fused` (which trains many together, each following its own plan);
:func:`train_model_autograd` is the same training written plainly with autograd, the reference.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from .config import Config
from .modelspec import ModelSpec
from .models import build_model, reconstruction_loss


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or Inf."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available; use device='cpu' or 'auto'")
    return dev


def init_model(spec: ModelSpec, config: Config, seed: int) -> torch.nn.Module:
    """Build the model for ``spec`` with initial weights drawn from ``seed`` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(len(spec.inputs), config)


@dataclass
class BatchPlan:
    """Which vectors a model trains on, validates on, and in which order."""

    train_idx: torch.Tensor  # (n_train,) int64
    val_idx: torch.Tensor  # (n_val,) int64
    generator: torch.Generator
    batch_size: int

    def epoch(self) -> list[torch.Tensor]:
        """The next epoch's batches (a fresh shuffle; a final batch of 1 is dropped: BatchNorm needs 2)."""
        order = self.train_idx[torch.randperm(len(self.train_idx), generator=self.generator)]
        batches = list(torch.split(order, self.batch_size))
        if len(batches[-1]) < 2:
            batches.pop()
        return batches


def batch_plan(n_vectors: int, config: Config, seed: int) -> BatchPlan:
    """Seeded hold-out of ``config.validation_split`` of the vectors and a shuffling generator."""
    gen = torch.Generator().manual_seed(seed + 1_000_003)
    perm = torch.randperm(n_vectors, generator=gen)
    n_val = int(round(config.validation_split * n_vectors))
    if n_vectors - n_val < 2:
        raise ValueError(f"{n_vectors} training vector(s) is too few to train (need at least 2 after the hold-out)")
    return BatchPlan(train_idx=perm[n_val:], val_idx=perm[:n_val], generator=gen, batch_size=config.batch_size)


@dataclass
class History:
    """Per-epoch mean training loss and validation loss, and the wall times.

    ``seconds`` is the run's wall time (for models trained together, divided by their number);
    ``epoch_seconds`` the wall time of each epoch, its validation pass included (for models trained
    together, the whole stack's epoch: one step trains them all). Set-up before the first epoch
    (initial weights, the stack, the plans) is in ``seconds`` only.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"train_loss": self.train_loss, "val_loss": self.val_loss, "seconds": self.seconds, "epoch_seconds": self.epoch_seconds}


def _check_finite(value: float, name: str, epoch: int) -> None:
    if not math.isfinite(value):
        raise TrainingDivergedError(
            f"{name}: the loss became {value} in epoch {epoch + 1}. Check the features for NaN/Inf, "
            "or lower the learning rate (Config(lr=...))."
        )


@torch.no_grad()
def evaluate_loss(model, inputs, weights, idx: torch.Tensor, batch_size: int = 8192) -> float:
    """Mean weighted reconstruction loss over the vectors ``idx`` in eval mode."""
    if len(idx) == 0:
        return float("nan")
    was_training = model.training
    model.eval()
    total = 0.0
    for chunk in torch.split(idx, batch_size):
        xs = [x[chunk] for x in inputs]
        total += float(reconstruction_loss(xs, model.reconstruct(xs), weights)) * len(chunk)
    model.train(was_training)
    return total / len(idx)


def train_model(
    model: torch.nn.Module,
    inputs: list[torch.Tensor],
    weights: list[float],
    config: Config,
    *,
    seed: int,
    progress: bool = True,
    name: str = "model",
    compile: bool | None = None,
) -> History:
    """Train ``model`` in place with Adam on the reconstruction loss ``Σ_k w_k MSE(x_k, x̂_k)``.

    The fused trainer with one model (:func:`asdlib.fused.fit_models`): hand-written forward and
    backward passes in reused buffers, one fused Adam. :func:`train_model_autograd` is the same
    training written with autograd, the reference the tests compare it with step by step.

    Parameters
    ----------
    model : torch.nn.Module
        A model from :func:`init_model` (``encoders``/``decoders``, one per input); it is moved
        to the inputs' device and dtype.
    inputs : list of torch.Tensor [shape=(n_vectors, D)]
        One tensor per model input, on the training device, of one float dtype.
    weights : list of float
        Loss weight per input (``[1, α]`` for the dual AE).
    config : Config
        ``epochs``, ``batch_size``, ``lr``, ``validation_split``.
    seed : int
        Seeds the hold-out and the batch order (the initial weights come from :func:`init_model`).
    progress : bool
        A tqdm bar over epochs.
    name : str
        The model's name in the bar and in error messages.
    compile : bool or None
        See :func:`asdlib.fused.train_fused`.

    Returns
    -------
    History

    Raises
    ------
    TrainingDivergedError
        The loss became NaN or Inf.
    ValueError
        The number of inputs or weights does not match the model, or the inputs differ in shape,
        dtype or device.
    """
    from .fused import check_tensors, fit_models  # fused builds on this module

    n_inputs = len(model.encoders)
    if len(inputs) != n_inputs or len(weights) != n_inputs:
        raise ValueError(f"{name}: the model takes {n_inputs} input(s); got {len(inputs)} input tensor(s) and {len(weights)} weight(s)")
    check_tensors({f"{name} input {k}": x for k, x in enumerate(inputs)}, config)
    (history,), _ = fit_models([model], [list(inputs)], [list(weights)], [seed], config,
                               names=[name], progress=progress, desc=name, compile=compile)
    return history


def train_model_autograd(
    model: torch.nn.Module,
    inputs: list[torch.Tensor],
    weights: list[float],
    config: Config,
    *,
    seed: int,
    progress: bool = True,
    name: str = "model",
) -> History:
    """:func:`train_model` written plainly with autograd: the readable reference loop.

    Same plan (:func:`batch_plan`), loss and optimizer (``Adam``, ``fused=True`` on CPU and CUDA);
    the tests check the fused trainer against it step by step, and the training benchmark times it.
    Parameters and returns as :func:`train_model`.
    """
    start = time.perf_counter()
    plan = batch_plan(len(inputs[0]), config, seed)
    device = inputs[0].device
    val_idx = plan.val_idx.to(device)
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, **fused)
    history = History()
    bar = tqdm(range(config.epochs), desc=name, unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        epoch_start = time.perf_counter()
        model.train()
        running = torch.zeros((), dtype=torch.float64, device=device)
        n_seen = 0
        for batch in plan.epoch():
            batch = batch.to(device, non_blocking=True)
            xs = [x[batch] for x in inputs]
            loss = reconstruction_loss(xs, model.reconstruct(xs), weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.detach() * len(batch)
            n_seen += len(batch)
        train_loss = float(running) / n_seen
        _check_finite(train_loss, name, epoch)
        history.train_loss.append(train_loss)
        history.val_loss.append(evaluate_loss(model, inputs, weights, val_idx))
        history.epoch_seconds.append(time.perf_counter() - epoch_start)
        bar.set_postfix(loss=f"{train_loss:.3f}", val=f"{history.val_loss[-1]:.3f}")
    history.seconds = time.perf_counter() - start
    model.eval()
    return history
