"""Training one autoencoder on the normal vectors of one machine type.

Seeded and deterministic on CPU: a model's initial weights, its 10 % validation hold-out and the
order of its batches all come from its ``seed`` (:func:`init_model`, :func:`batch_plan`), so the
same seed gives the same weights and scores. :mod:`asdlib.fused` trains many models together
following exactly the same plan.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

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
    """Per-epoch mean training loss and validation loss, and the wall time."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"train_loss": self.train_loss, "val_loss": self.val_loss, "seconds": self.seconds}


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
) -> History:
    """Train ``model`` in place with Adam on the reconstruction loss ``Σ_k w_k MSE(x_k, x̂_k)``.

    Parameters
    ----------
    model : torch.nn.Module
        A model from :func:`init_model`, already on the inputs' device.
    inputs : list of torch.Tensor [shape=(n_vectors, D)]
        One tensor per model input, on the training device (kept resident: no copies in the loop).
    weights : list of float
        Loss weight per input (``[1, α]`` for the dual AE).
    config : Config
        ``epochs``, ``batch_size``, ``lr``, ``validation_split``.
    seed : int
        Seeds the hold-out and the batch order (the initial weights come from :func:`init_model`).

    Returns
    -------
    History

    Raises
    ------
    TrainingDivergedError
        The loss became NaN or Inf.
    """
    start = time.perf_counter()
    plan = batch_plan(len(inputs[0]), config, seed)
    device = inputs[0].device
    train_idx, val_idx = plan.train_idx, plan.val_idx.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history = History()
    bar = tqdm(range(config.epochs), desc=name, unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        running = torch.zeros((), device=device)
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
        bar.set_postfix(loss=f"{train_loss:.3f}", val=f"{history.val_loss[-1]:.3f}")
    history.seconds = time.perf_counter() - start
    model.eval()
    return history


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------


def atomic_torch_save(obj, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pt")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | Path, model: torch.nn.Module, spec: ModelSpec, config: Config, **extra) -> None:
    """Write weights, spec, config and ``extra`` (tensors, numbers, strings, lists, dicts) atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save({"state_dict": state, "spec": spec.to_dict(), "config": config.to_dict(), **extra}, path)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu"):
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no code runs).

    Returns
    -------
    model : torch.nn.Module
        In eval mode, on ``device``.
    spec : ModelSpec
    config : Config
    checkpoint : dict
        Everything stored, ``extra`` included.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several types for damaged files
        raise ValueError(f"{path}: not a readable asdlib checkpoint ({err}); delete it and train again") from None
    spec = ModelSpec.from_dict(ckpt["spec"])
    config = Config.from_dict(ckpt["config"])
    model = build_model(len(spec.inputs), config).to(device)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, spec, config, ckpt


def iterate_minibatches(n: int, batch_size: int) -> Iterator[slice]:
    """Slices covering ``range(n)`` in order."""
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))
