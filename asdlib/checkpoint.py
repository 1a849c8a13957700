"""Checkpoint files: weights, model spec and config in one ``torch.save`` file, read safely.

A checkpoint is a plain ``dict`` of tensors, numbers, strings, lists and dicts -- nothing that needs
code to rebuild -- so it is read with ``torch.load(weights_only=True)``. Reading also refuses a file
whose config does not match its own tensors *before* building the model: a file that passes
``weights_only`` could otherwise ask for ``hidden_dim = 10**15`` and make the model's constructor
allocate petabytes. Every refusal is a :class:`CheckpointError` (a ``ValueError``) naming the file.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from .config import Config
from .fileio import atomic_path
from .models import build_model, upgrade_state_dict
from .modelspec import ModelSpec


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, unsafe, or inconsistent; the message names the file."""


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_checkpoint(path: str | Path, model: torch.nn.Module, spec: ModelSpec, config: Config, **extra: Any) -> None:
    """Write weights, spec, config and ``extra`` (tensors, numbers, strings, lists, dicts) atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save({"state_dict": state, "spec": spec.to_dict(), "config": config.to_dict(), **extra}, path)


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """The stored ``dict`` of a checkpoint (``weights_only=True``: no code runs), not yet checked.

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointError
        Not a torch file, damaged, or holding Python objects other than plain data.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        if "GLOBAL" in str(err) or "Unsupported global" in str(err):  # a class or function to import: code
            raise CheckpointError(
                f"{path}: refused: the file holds Python objects that are not plain data, and loading them "
                "could run code. asdlib checkpoints never do; use a file written by `asdlib fit` or `asdlib run`"
            ) from None
        raise CheckpointError(f"{path}: not a readable asdlib checkpoint (damaged or not a torch file); delete it and train again") from None
    except Exception:  # torch raises several types for damaged files
        raise CheckpointError(f"{path}: not a readable asdlib checkpoint (damaged or not a torch file); delete it and train again") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not an asdlib checkpoint (holds a {type(ckpt).__name__}, not a dict)")
    return ckpt


def _check_shapes(path: Path, state: dict, spec: ModelSpec, config: Config) -> None:
    """Refuse a config that does not describe ``state``'s tensors, without allocating the model."""
    if not isinstance(state, dict) or not state or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path}: 'state_dict' must map parameter names to tensors")
    largest = max((max(v.shape, default=1) for v in state.values()), default=0)
    # cheap bounds first: each size the config asks for must occur in a stored tensor, and each
    # layer needs at least one stored tensor, so the shape-only build below stays small
    for name in ("hidden_dim", "latent_dim", "n_mels"):
        if getattr(config, name) > largest:
            raise CheckpointError(f"{path}: config {name}={getattr(config, name)} does not match the stored weights (largest size {largest})")
    if config.input_dim > largest or config.n_hidden_layers > len(state):
        raise CheckpointError(f"{path}: config (input_dim {config.input_dim}, n_hidden_layers {config.n_hidden_layers}) "
                              "does not match the stored weights")
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in build_model(len(spec.inputs), config).state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in state.items()}
    if expected != stored:
        missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
        wrong = sorted(k for k in set(expected) & set(stored) if expected[k] != stored[k])
        detail = "; ".join(f"{label}: {keys[:3]}{' ...' if len(keys) > 3 else ''}"
                           for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys)
        raise CheckpointError(f"{path}: the stored weights do not match its model spec and config ({detail}); "
                              "not a checkpoint of this asdlib version: train again")


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu"):
    """Load a checkpoint written by :func:`save_checkpoint`, checking it before building the model.

    Parameters
    ----------
    path : str or Path
    device : str or torch.device
        Where the model goes.

    Returns
    -------
    model : torch.nn.Module
        In eval mode, on ``device``.
    spec : ModelSpec
    config : Config
    checkpoint : dict
        Everything stored, ``extra`` included.

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointError
        Unreadable, unsafe, or a config/spec that does not match the stored tensors.
    """
    path = Path(path)
    ckpt = read_checkpoint(path, device)
    for key in ("state_dict", "spec", "config"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: not an asdlib checkpoint (no {key!r}); train again")
    try:
        spec = ModelSpec.from_dict(ckpt["spec"])
        config = Config.from_dict(ckpt["config"])
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise CheckpointError(f"{path}: invalid model spec or config ({err})") from None
    if isinstance(ckpt["state_dict"], dict):
        ckpt["state_dict"] = upgrade_state_dict(ckpt["state_dict"])  # checkpoints written before one model interface
    _check_shapes(path, ckpt["state_dict"], spec, config)
    model = build_model(len(spec.inputs), config).to(device)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, spec, config, ckpt
