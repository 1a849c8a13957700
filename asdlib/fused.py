"""Fused grid training: many autoencoders trained together as one stacked computation.

The paper's grid trains, per machine type, one baseline and eight dual autoencoders (mic pairs 0-4
and 2-6, four α each). The models are small (268 k / 536 k parameters), so training them one at a
time leaves a CPU or GPU underused: small matrix products, and per-operation overhead repeated
for every model. :func:`train_fused` trains them *together*, each model following its own seeded
plan, with the arithmetic of training it alone: one step from the same state gives the same loss,
gradients, BatchNorm statistics and Adam update as :func:`asdlib.train.train_model_autograd` (plain
autograd), to floating-point rounding. A whole run does not stay that close: training is chaotic
(in float64, a 1e-15 nudge of the initial weights moves the weights by about their own size
within 8 epochs), so rounding differences grow until a fused run and a one-by-one run differ as
much as two seeds -- weights, and clip rankings. Both are equally valid runs of the same training;
the spread between seeds is the uncertainty of a single run, which is what the paper reports.
:func:`asdlib.train.train_model` is this trainer with one model.

How the models are stacked
--------------------------
Every autoencoder of :mod:`asdlib.models` is a set of *networks*: one encoder and one decoder per
input (``BaselineAE``: 1 + 1, ``DualAE``: 2 + 2). All encoders have the same layers, and so have
all decoders except for the first layer's input width (``n_inputs * Z``). The ``N`` networks of
all the models are stacked along a leading dimension:

* a Linear layer is a weight ``(N, out, in)`` and a bias ``(N, 1, out)``, applied to activations
  ``(N, B, in)`` with one batched product (``torch.baddbmm``);
* BatchNorm normalises each network's batch on its own: batch mean and biased variance over
  ``B``; running mean and *unbiased* variance updated with ``Config.bn_momentum`` as
  ``nn.BatchNorm1d`` does;
* each model's encoder latents are concatenated (reference first) and given to each of its
  decoders, as in ``DualAE``. A model with fewer inputs than the widest one in the stack gets
  zero latent slots and zero first-layer decoder weights for them. Those weights get an exactly
  zero gradient, so Adam leaves them at exactly zero: the padding changes nothing, and a
  baseline shares one stack with the dual AEs;
* the stack minimises the sum of the models' losses ``Σ_m w_m MSE(x_m, x̂_m)``; the gradient of
  the sum with respect to model ``k``'s weights is the gradient of model ``k``'s own loss. Adam
  is elementwise (first and second moments per weight; the step count is shared because every
  model takes the same number of steps), so one ``torch.optim.Adam`` over the stacked tensors is
  exactly one Adam per model.

Each model keeps its own seeded plan (:func:`asdlib.train.batch_plan`): its hold-out, and its
batches in its own order, gathered at every step from the shared feature tensors into the
``(N, B, D)`` input of the stack. Validation runs the stack in eval mode on each model's hold-out.

The training step (:meth:`StackedAutoencoders.train_step`) is written out by hand, forward and
backward, into buffers allocated once: no autograd graph and no memory allocated per step. On a
CPU this matters: freshly allocated memory costs a page fault per 4 KiB on first touch, more time
than the arithmetic of the element-wise operations. The formulas are the textbook ones, written
next to the code; ``tests/test_fused.py`` checks whole short runs against autograd
(``train_model_autograd``) in float64, and ``tests/test_train.py`` every step of a full epoch of
real features, from identical states, in float64 and float32. On one torch thread (how the
runner trains grids) the BatchNorm/ReLU layers run as the compiled loops of :mod:`asdlib.train_kernels`
instead of PyTorch passes: the same formulas, three passes each way over one network's block at a
time while it stays in the cache; and the matrix products as ``numpy.matmul`` on the tensors' memory
(NumPy's BLAS, faster than torch's at these sizes here: :func:`resolve_numpy_matmul`). With ``compile=True`` the
BatchNorm/ReLU passes of full batches run as ``torch.compile`` d kernels of the same formulas
(:func:`_bn_relu_forward_math`, :func:`_bn_relu_backward_math`).

Shapes: ``K`` models, ``N`` networks (``Σ_k n_inputs_k``), ``B`` batch, ``D = 640`` input,
``H = 128`` hidden, ``Z = 8`` latent per encoder, ``L = n_max * Z`` decoder input.
"""
from __future__ import annotations

import contextlib
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import Config
from .features import blas_threads
from .modelspec import ModelSpec, grid_inputs
from .train import BatchPlan, History, TrainingDivergedError, _check_finite, batch_plan, init_model
from .train_kernels import bn_relu_backward, bn_relu_forward, residual_loss

__all__ = ["train_fused", "fit_models", "StackedAutoencoders", "TrainingDivergedError", "check_tensors", "resolve_compile",
           "resolve_cuda_graphs", "resolve_numpy_matmul"]


# ----------------------------------------------------------------------------------------------
# Stacking the networks of several models
# ----------------------------------------------------------------------------------------------


def _networks(model: nn.Module) -> tuple[list[nn.Sequential], list[nn.Sequential]]:
    """A model's encoders and decoders, input by input (reference first): the one model interface."""
    return list(model.encoders), list(model.decoders)


def _layers(seq: nn.Sequential) -> list[tuple[nn.Linear, nn.BatchNorm1d | None]]:
    """``[(linear, batchnorm or None), ...]`` of an Encoder/Decoder (a ReLU follows each BatchNorm)."""
    mods = list(seq)
    out = []
    for i, m in enumerate(mods):
        if isinstance(m, nn.Linear):
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            out.append((m, nxt if isinstance(nxt, nn.BatchNorm1d) else None))
    return out


@dataclass
class _Layer:
    """One stacked Linear (+ BatchNorm + ReLU) layer: the module's tensors under one name."""

    weight: torch.Tensor  # (N, out, in)
    bias: torch.Tensor  # (N, 1, out)
    gamma: torch.Tensor | None = None  # (N, 1, out), BatchNorm weight
    beta: torch.Tensor | None = None  # (N, 1, out), BatchNorm bias
    running_mean: torch.Tensor | None = None  # (N, 1, out)
    running_var: torch.Tensor | None = None  # (N, 1, out)

    @property
    def width(self) -> int:
        return self.weight.shape[1]


# ----------------------------------------------------------------------------------------------
# BatchNorm + ReLU as two fused kernels each way (torch.compile), where that pays
# ----------------------------------------------------------------------------------------------


def _bn_relu_forward_math(a, gamma, beta, bias, running_mean, running_var, eps: float, momentum: float):
    """``ReLU(γ (a - mean) / sqrt(var + eps) + β)`` with batch statistics over dim 1 (a: (N, b, C)).

    Returns ``(act, mean, invstd)``, the last two (N, 1, C), and updates ``running_mean`` and
    ``running_var`` in place (:func:`_update_running`; ``a`` is the Linear output less its
    ``bias``). The same formulas as :meth:`StackedAutoencoders._bn_relu_forward`, written
    functionally so that ``torch.compile`` turns them, the running statistics included, into one
    reduction and one element-wise pass over ``a``.
    """
    n_b = a.shape[1]
    mean = a.mean(dim=1, keepdim=True)
    centred = a - mean
    var = (centred * centred).mean(dim=1, keepdim=True)  # biased, for normalising
    invstd = torch.rsqrt(var + eps)
    act = torch.relu(centred * (gamma * invstd) + beta)
    _update_running(running_mean, running_var, mean, var, bias, n_b, momentum)
    return act, mean, invstd


def _update_running(running_mean, running_var, mean, var, bias, n_b: int, momentum: float) -> None:
    """Running statistics as ``nn.BatchNorm1d``: momentum ``momentum``, unbiased variance of a batch
    of ``n_b``; ``mean`` is that of ``a - bias``, so the bias is added back."""
    running_mean.mul_(1 - momentum).add_(mean + bias, alpha=momentum)
    running_var.mul_(1 - momentum).add_(var, alpha=momentum * n_b / (n_b - 1))


def _bn_relu_backward_math(grad_act, act, a, mean, invstd, gamma, gamma_grad, beta_grad, bias_grad):
    """Backward of :func:`_bn_relu_forward_math` from the gradient at ``act``: returns ``da``, the
    gradient at the Linear output, and writes ``dγ``, ``dβ`` and the Linear bias's gradient ``Σ_b da``
    into ``gamma_grad``, ``beta_grad`` and ``bias_grad``.

    ``g = grad_act · [act > 0]``, ``x̂ = (a - mean) invstd``, ``dβ = Σ_b g``, ``dγ = Σ_b g x̂``,
    ``da = γ invstd (g - dβ / b - x̂ dγ / b)``.
    """
    n_b = a.shape[1]
    g = torch.where(act > 0, grad_act, 0.0)
    xhat = (a - mean) * invstd
    dbeta = g.sum(dim=1, keepdim=True)
    dgamma = (g * xhat).sum(dim=1, keepdim=True)
    da = (gamma * invstd) * (g - dbeta / n_b - xhat * (dgamma / n_b))
    gamma_grad.copy_(dgamma)
    beta_grad.copy_(dbeta)
    bias_grad.copy_(da.sum(dim=1, keepdim=True))
    return da


_COMPILED: dict[str, object] = {}
#: on 2+ torch threads, the one-thread loops of :mod:`asdlib.train_kernels` still run the BatchNorm
#: layers of stacks of at most this many networks (one model: ``asdlib fit``, ``train_model``)
CPU_KERNELS_MAX_NETWORKS = 2


def _compiled(name: str):
    """The ``torch.compile`` d kernel ``name`` ("forward"/"backward"), built once per process (lazily:
    compilation itself happens at the first call of each shape)."""
    if name not in _COMPILED:
        fn = _bn_relu_forward_math if name == "forward" else _bn_relu_backward_math
        _COMPILED[name] = torch.compile(fn, dynamic=False)
    return _COMPILED[name]


def resolve_compile(compile: bool | None, device: torch.device | str = "cpu") -> bool:
    """Whether to compile the element-wise kernels for training on ``device``: ``compile`` if given,
    else the environment variable ``ASDLIB_COMPILE`` (``1``/``0``), else on for CUDA and off for a CPU.

    On a CPU it did not pay. On 2 cores, paired, with ``benchmarks/bench_training.py`` (the 9-model
    grid on 2 threads): 0.90-1.00x the hand-written passes in five runs on 2026-11-25/26
    (1.13-1.17x once before, on busy cores); for one model, whose BatchNorm layers otherwise run as
    :mod:`asdlib.train_kernels`' loops, 0.83-0.91x; on one thread, where the loops take every
    layer, 0.93-0.96x. On a GPU, where the step is replayed as a CUDA graph
    (:func:`resolve_cuda_graphs`) and its time is that of its few hundred small kernels, the
    compiled kernels (BatchNorm, ReLU, the running statistics and the γ, β and bias gradients as a
    few generated kernels per layer, instead of 24 launched one by one) pay: on an H100 on
    2026-11-27, one steady epoch of the paper's 9-model grid took 0.95 s compiled and 1.41 s not;
    the 50 epochs took 63.0 s with a cold compilation (about 8 s, once per process; 2-5 s with
    torch's warm on-disk cache), against about 78 s projected without it from 20-epoch runs.
    """
    if compile is not None:
        return bool(compile)
    env = _env_flag("ASDLIB_COMPILE")
    return env if env is not None else torch.device(device).type == "cuda"


def _env_flag(name: str) -> bool | None:
    """An on/off environment variable: True for ``1/true/yes/on``, False for ``0/false/no/off``
    (any case), None when unset or anything else."""
    value = os.environ.get(name, "").strip().lower()
    return True if value in ("1", "true", "yes", "on") else False if value in ("0", "false", "no", "off") else None


def _array(t: torch.Tensor):
    """The NumPy view of a CPU tensor (no copy), for the compiled loops and NumPy's products."""
    return t.detach().numpy()


def resolve_numpy_matmul(numpy_matmul: bool | None = None) -> bool:
    """Whether the one-thread CPU path computes its matrix products with NumPy's BLAS:
    ``numpy_matmul`` if given, else the environment variable ``ASDLIB_NUMPY_MATMUL`` (``1``/``0``),
    else whether NumPy runs on a BLAS library (``threadpoolctl`` finds one: OpenBLAS in NumPy's wheels).

    On this project's 2-core AMD EPYC (torch 2.13.0, whose CPU wheel multiplies with MKL; NumPy's
    OpenBLAS 0.3.31), one thread, the training step's batched products of 17 networks at batch
    256, medians of 25 in two runs: NumPy's ``g @ W`` (the input gradient) took 4-16 % less time
    than ``torch.bmm`` for the layers 128 wide on both sides or 640 wide out, 27-48 % less for the
    8- and 16-wide ones; the forward and weight-gradient products of the wide layers were within a
    few per cent either way (on the narrow ones the weight gradients and the 16-wide forward
    product a third to a half faster, the 8-wide forward product about a third slower); a 2048²
    product ran at 103.5 GFLOP/s against torch's 93-94. Whole runs, the 9-model grid on 24,000
    vectors (4 epochs, median epoch after the first), one process with NumPy's products and one
    with torch's at once, one per core, 6 times (2026-11-27): 0.998-1.059x as fast, median 1.04.
    On two threads OpenBLAS's threads were far slower on these small products, so the trainer uses
    them on one thread only (:meth:`StackedAutoencoders.uses_numpy_matmul`).
    """
    if numpy_matmul is not None:
        return bool(numpy_matmul)
    env = _env_flag("ASDLIB_NUMPY_MATMUL")
    return env if env is not None else bool(blas_threads().select(user_api="blas").lib_controllers)


def _bmm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, numpy: bool) -> torch.Tensor:
    """``out = a @ b`` for stacks of matrices, (N, n, k) @ (N, k, m): by ``torch.bmm``, or, with
    ``numpy``, by ``numpy.matmul`` on the same memory (CPU tensors; either may be a transposed view)."""
    if numpy:
        np.matmul(_array(a), _array(b), out=_array(out))
        return out
    return torch.bmm(a, b, out=out)


class _Workspace:
    """Every activation and activation gradient of one training step of batch width ``b``.

    ``pre[j]`` holds BatchNorm layer ``j``'s normalised input x̂, ``act[j]`` its ReLU output (then,
    in the backward pass, the gradient at its Linear output); ``grad[w]`` is the gradient arriving
    at the output of a layer of width ``w``; ``residual`` is the reconstruction minus the input,
    then its gradient.
    """

    def __init__(self, layers: list[_Layer], n: int, b: int, like: torch.Tensor):
        bn = [layer for layer in layers if layer.gamma is not None]
        self.pre = [like.new_empty(n, b, layer.width) for layer in bn]
        self.act = [like.new_empty(n, b, layer.width) for layer in bn]
        self.grad = {w: like.new_empty(n, b, w) for w in {layer.width for layer in bn}}
        self.residual = like.new_empty(n, b, layers[-1].width)


class StackedAutoencoders(nn.Module):
    """``K`` autoencoders (any mix of ``n_inputs``) as ``N`` stacked encoder/decoder networks.

    Parameters
    ----------
    models : list of torch.nn.Module
        Models from :func:`asdlib.models.build_model` with the same ``config``; their current
        weights and BatchNorm statistics become the stack's.
    weights : list of list of float
        Loss weights of each model's inputs (``ModelSpec.weights``).
    config : Config
    compile : bool
        Run each wide (``width >= 32``) BatchNorm + ReLU layer of a full-size training batch as
        ``torch.compile`` d kernels (:func:`_bn_relu_forward_math`, :func:`_bn_relu_backward_math`)
        instead of the hand-written in-place passes: the same formulas, fewer passes over memory.
        If compilation fails (no C++ compiler, unsupported platform), a warning says why and the
        hand-written passes are used.
    cpu_kernels : bool
        With CPU tensors, run the BatchNorm + ReLU layers that ``compile`` does not take as the
        compiled loops of :mod:`asdlib.train_kernels` (three passes each way over one network's
        block at a time, on one thread) instead of the hand-written PyTorch passes: the same
        formulas, to rounding. Used on one torch thread (how :mod:`asdlib.runner` trains grids: one
        per core), and on more threads for stacks of at most :data:`CPU_KERNELS_MAX_NETWORKS`
        networks. Measured on 2 cores, paired, epochs of 10,800 vectors: the 9-model grid 4 %
        faster on one thread; on two threads, one baseline model 1.15-1.22x faster, a 3-model
        stack (5 networks) 1.02-1.03x, the 9-model grid (17 networks) 0.83-0.96x (slower: there
        PyTorch's passes use both threads, the loops one).
    numpy_matmul : bool or None
        On one torch thread, where the loops of ``cpu_kernels`` run, also compute the step's batched
        matrix products with ``numpy.matmul`` on the tensors' memory (NumPy's BLAS, OpenBLAS in its
        wheels, on one thread) instead of ``torch.bmm`` (MKL in torch's CPU wheels): the same
        products, to rounding (:meth:`uses_numpy_matmul`). None: :func:`resolve_numpy_matmul` (on
        when NumPy has a BLAS). Not on two threads: there OpenBLAS's threads made an epoch of one
        baseline model about 9x slower (7.2-7.4 s against 0.69-0.90 s, 40,000 vectors).

    Attributes
    ----------
    compile_seconds : float
        Time spent in the compiled kernels' first calls (compilation, or loading it from
        torch's on-disk cache).
    cuda_graphs : bool
        Whether :func:`fit_models` replays this stack's training steps as a CUDA graph.
    model_of : torch.Tensor [shape=(N,)]
        Model index of each network (networks of one model are consecutive, reference first).
    loss_weight : torch.Tensor [shape=(N,)]
        The weight ``w_m`` of each network's reconstruction error.
    """

    def __init__(self, models: list[nn.Module], weights: list[list[float]], config: Config, compile: bool = False,
                 cpu_kernels: bool = True, numpy_matmul: bool | None = None):
        super().__init__()
        self.config = config
        self.compile = compile
        self.cpu_kernels = cpu_kernels
        self.numpy_matmul = resolve_numpy_matmul(numpy_matmul)
        self.compile_seconds = 0.0
        self.cuda_graphs = False  # set by fit_models
        self._compiled_shapes: set = set()
        self.n_models = len(models)
        n_inputs = [len(_networks(m)[0]) for m in models]
        self.n_networks = sum(n_inputs)
        n_max = max(n_inputs)
        first = [sum(n_inputs[:k]) for k in range(self.n_models)]
        model_of = [k for k, m in enumerate(n_inputs) for _ in range(m)]
        # latent slot j of network g's decoder comes from encoder network src[g][j] (N: zeros)
        src = [[first[k] + j if j < n_inputs[k] else self.n_networks for j in range(n_max)] for k in model_of]
        self.register_buffer("model_of", torch.tensor(model_of), persistent=False)
        self.register_buffer("latent_src", torch.tensor(src).flatten(), persistent=False)  # (N * n_max,)
        self.register_buffer("loss_weight", torch.tensor([float(w) for ws in weights for w in ws]), persistent=False)
        self.n_enc = self._stack("enc", [_layers(e) for m in models for e in _networks(m)[0]])
        self.n_dec = self._stack("dec", [_layers(d) for m in models for d in _networks(m)[1]], pad_first_to=n_max * config.latent_dim)
        self._workspaces: dict[int, _Workspace] = {}

    def _stack(self, prefix: str, nets: list[list[tuple[nn.Linear, nn.BatchNorm1d | None]]], pad_first_to: int = 0) -> int:
        for i in range(len(nets[0])):
            lins = [net[i][0] for net in nets]
            w_in = max(pad_first_to, lins[0].in_features) if i == 0 else lins[0].in_features
            weight = lins[0].weight.new_zeros(len(lins), lins[0].out_features, w_in)
            for g, lin in enumerate(lins):
                weight[g, :, : lin.in_features] = lin.weight.detach()
            self.register_parameter(f"{prefix}{i}_weight", nn.Parameter(weight))
            self.register_parameter(f"{prefix}{i}_bias", nn.Parameter(torch.stack([lin.bias.detach() for lin in lins]).unsqueeze(1)))
            bns = [net[i][1] for net in nets]
            if bns[0] is not None:
                for name, attr in (("gamma", "weight"), ("beta", "bias")):
                    value = torch.stack([getattr(bn, attr).detach() for bn in bns]).unsqueeze(1)
                    self.register_parameter(f"{prefix}{i}_{name}", nn.Parameter(value))
                for name in ("running_mean", "running_var"):
                    self.register_buffer(f"{prefix}{i}_{name}", torch.stack([getattr(bn, name) for bn in bns]).unsqueeze(1).clone())
        return len(nets[0])

    def _layer(self, prefix: str, i: int) -> _Layer:
        get = lambda name: getattr(self, f"{prefix}{i}_{name}", None)  # noqa: E731
        return _Layer(get("weight"), get("bias"), get("gamma"), get("beta"), get("running_mean"), get("running_var"))

    def layers(self) -> list[_Layer]:
        """The encoders' layers, then the decoders' (looked up each time: ``.to()`` replaces buffers)."""
        return [self._layer("enc", i) for i in range(self.n_enc)] + [self._layer("dec", i) for i in range(self.n_dec)]

    # -- the latent concatenation ---------------------------------------------------------------

    def _concat_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Encoder outputs (N, b, Z) -> decoder inputs (N, b, L): each model's latents, concatenated."""
        n, b, zd = z.shape
        padded = torch.cat([z, z.new_zeros(1, b, zd)])  # (N + 1, b, Z): the last one is the padding
        slots = padded.index_select(0, self.latent_src).view(n, -1, b, zd)  # (N, n_max, b, Z)
        return slots.transpose(1, 2).reshape(n, b, -1)

    def _split_latent_grad(self, grad: torch.Tensor, out: torch.Tensor) -> None:
        """Backward of :meth:`_concat_latents`: (N, b, L) -> sum into each encoder's (N, b, Z) ``out``."""
        n, b, zd = out.shape
        slots = grad.view(n, b, -1, zd).transpose(1, 2).reshape(-1, b, zd)  # (N * n_max, b, Z)
        total = grad.new_zeros(n + 1, b, zd).index_add_(0, self.latent_src, slots)
        out.copy_(total[:n])

    # -- inference --------------------------------------------------------------------------------

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct each network's input, (N, b, D) -> (N, b, D), as in eval mode.

        BatchNorm always uses the running statistics here (training is :meth:`train_step`).
        """
        eps = self.config.bn_eps
        h = x
        for i, layer in enumerate(self.layers()):
            if i == self.n_enc:
                h = self._concat_latents(h)
            h = torch.baddbmm(layer.bias, h, layer.weight.transpose(1, 2))
            if layer.gamma is not None:
                scale = layer.gamma * (layer.running_var + eps).rsqrt()
                h = torch.addcmul(layer.beta - layer.running_mean * scale, h, scale).relu_()
        return h

    @torch.no_grad()
    def eval_sse(self, x: torch.Tensor) -> torch.Tensor:
        """Per-network ``Σ (x̂ - x)²`` in eval mode, (N, b, D) -> (N,): :meth:`forward` in reused buffers."""
        eps = self.config.bn_eps
        ws = self._workspace(x)
        numpy = self.uses_numpy_matmul(x)  # the products by NumPy's BLAS, as in train_step
        h = x
        layers = self.layers()
        with self._blas_limit(numpy):
            for j, layer in enumerate(layers[:-1]):
                if j == self.n_enc:
                    h = self._concat_latents(h)
                scale = layer.gamma * (layer.running_var + eps).rsqrt()
                if numpy:  # a = h Wᵀ; the bias goes into the shift
                    a = _bmm(h, layer.weight.transpose(1, 2), ws.pre[j], numpy)
                    shift = layer.beta + (layer.bias - layer.running_mean) * scale
                else:
                    a = torch.baddbmm(layer.bias, h, layer.weight.transpose(1, 2), out=ws.pre[j])
                    shift = layer.beta - layer.running_mean * scale
                h = torch.addcmul(shift, a, scale, out=ws.act[j]).relu_()
            out = layers[-1]
            if numpy:
                _bmm(h, out.weight.transpose(1, 2), ws.residual, numpy)
                sse = x.new_empty(x.shape[0])
                residual_loss(_array(ws.residual), _array(out.bias), _array(x), np.ones(x.shape[0], _array(x).dtype), _array(sse))
                return sse
            residual = torch.sub(out.bias, x, out=ws.residual).baddbmm_(h, out.weight.transpose(1, 2))
            return torch.linalg.vector_norm(residual, dim=(1, 2)).square_()

    def _blas_limit(self, numpy: bool):
        """NumPy's BLAS held to one thread while ``numpy`` products run (a no-op otherwise)."""
        return blas_threads().limit(limits=1, user_api="blas") if numpy else contextlib.nullcontext()

    def _workspace(self, x: torch.Tensor) -> _Workspace:
        """The buffers for batches as wide as ``x`` (N, b, D), allocated on first use."""
        b = x.shape[1]
        if b not in self._workspaces:
            self._workspaces[b] = _Workspace(self.layers(), x.shape[0], b, x)
        return self._workspaces[b]

    def combine(self, sse: torch.Tensor, n_elements: int) -> torch.Tensor:
        """Per-network sums of squared errors (N,), over ``n_elements`` values each -> model losses (K,)."""
        mse = sse * (self.loss_weight.to(sse.dtype) / n_elements)
        return mse.new_zeros(self.n_models).index_add_(0, self.model_of, mse)

    # -- training ---------------------------------------------------------------------------------

    def uses_cpu_kernels(self, x: torch.Tensor) -> bool:
        """Whether :meth:`train_step` runs BatchNorm + ReLU as :mod:`asdlib.train_kernels`' loops for
        the batch ``x``: ``cpu_kernels``, CPU tensors, and one torch thread or a small stack."""
        small = torch.get_num_threads() == 1 or self.n_networks <= CPU_KERNELS_MAX_NETWORKS
        return self.cpu_kernels and x.device.type == "cpu" and small

    def uses_numpy_matmul(self, x: torch.Tensor) -> bool:
        """Whether :meth:`train_step` and :meth:`eval_sse` compute all their products with
        ``numpy.matmul`` for the batch ``x``: ``numpy_matmul``, the loops (:meth:`uses_cpu_kernels`),
        one torch thread, and float32 or float64."""
        precision = x.dtype in (torch.float32, torch.float64)
        return self.numpy_matmul and precision and self.uses_cpu_kernels(x) and torch.get_num_threads() == 1

    @torch.no_grad()
    def train_step(self, x: torch.Tensor) -> torch.Tensor:
        """Forward and backward pass of one batch in training mode.

        Writes the gradient of ``Σ_k loss_k`` into every parameter's ``.grad`` (allocated on the
        first call, then overwritten: no ``zero_grad`` needed) and updates the BatchNorm running
        statistics; the caller then steps the optimizer.

        Parameters
        ----------
        x : torch.Tensor [shape=(N, b, D)]
            Each network's input batch (not modified).

        Returns
        -------
        torch.Tensor [shape=(K,)]
            Each model's loss ``Σ_m w_m MSE(x_m, x̂_m)`` on the batch.
        """
        numpy = self.uses_numpy_matmul(x)  # the products by NumPy's BLAS, held to one thread
        with self._blas_limit(numpy):
            return self._forward_backward(x, self.uses_cpu_kernels(x), numpy)

    def _forward_backward(self, x: torch.Tensor, kernels: bool, numpy: bool) -> torch.Tensor:
        """:meth:`train_step`'s work, the BatchNorm layers by the loops with ``kernels`` and the
        products by NumPy with ``numpy``."""
        n, b, d = x.shape
        layers = self.layers()
        for p in self.parameters():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        ws = self._workspace(x)
        inputs, saved = [], []  # input of each BatchNorm layer; what its backward needs
        h = x
        for j, layer in enumerate(layers[:-1]):
            if j == self.n_enc:
                h = self._concat_latents(h)  # (N, b, L)
            inputs.append(h)
            compiled = self.compile and layer.width >= 32 and b == self.config.batch_size
            out = self._bn_relu_forward_compiled(layer, h, ws.pre[j]) if compiled else None
            if out is None and kernels:  # compiled loops in the workspace
                saved.append(self._bn_relu_forward_kernel(layer, h, ws.pre[j], ws.act[j], numpy))
                h = ws.act[j]
            elif out is None:  # hand-written passes in the workspace
                saved.append(self._bn_relu_forward(layer, h, ws.pre[j], ws.act[j]))
                h = ws.act[j]
            else:
                saved.append(out)
                h = out[0]
        out = layers[-1]
        # output layer and loss: r = h Wᵀ + bias - x, per-network Σ r²; backward: d(Σ_k loss_k)/dr = 2 w r / (b D)
        scale = 2 * self.loss_weight.to(x.dtype) / (b * d)  # (N,)
        if kernels:  # the product, then one pass (asdlib.train_kernels.residual_loss)
            grad = _bmm(h, out.weight.transpose(1, 2), ws.residual, numpy)  # (N, b, D)
            sse = x.new_empty(n)
            residual_loss(_array(grad), _array(out.bias), _array(x), _array(scale), _array(sse))
        else:
            residual = torch.sub(out.bias, x, out=ws.residual).baddbmm_(h, out.weight.transpose(1, 2))  # (N, b, D)
            sse = torch.linalg.vector_norm(residual, dim=(1, 2)).square_()  # (N,)
            grad = residual.mul_(scale.view(-1, 1, 1))
        self._linear_backward(out, grad, h, ws.grad[h.shape[2]], numpy=numpy)  # h: last act (workspace or compiled)
        for j in reversed(range(len(layers) - 1)):
            layer, grad_out = layers[j], ws.grad[layers[j].width]
            bias_done = False  # whether the BatchNorm backward also wrote the Linear bias's gradient
            if isinstance(saved[j], tuple):  # (act, mean, invstd) of the compiled forward
                grad, bias_done = self._bn_relu_backward_compiled(layer, grad_out, ws.pre[j], *saved[j]), True
            elif kernels:
                grad, bias_done = self._bn_relu_backward_kernel(layer, grad_out, ws.pre[j], ws.act[j], saved[j]), True
            else:
                grad = self._bn_relu_backward(layer, grad_out, ws.pre[j], ws.act[j], saved[j])  # at the Linear output
            if j == 0:
                self._linear_backward(layer, grad, inputs[j], None, bias_done, numpy)  # no gradient for the data
            elif j == self.n_enc:
                grad_in = self._linear_backward(layer, grad, inputs[j], grad.new_empty(inputs[j].shape), bias_done, numpy)
                self._split_latent_grad(grad_in, ws.grad[layers[j - 1].width])
            else:
                self._linear_backward(layer, grad, inputs[j], ws.grad[inputs[j].shape[2]], bias_done, numpy)
        return self.combine(sse, b * d)

    def _call_compiled(self, name: str, *args):
        """The compiled kernel ``name`` on ``args``; None (and compilation off) if it cannot compile."""
        key = (name, tuple(args[0].shape), args[0].dtype, args[0].device.type)
        first = key not in self._compiled_shapes
        start = time.perf_counter()
        try:
            out = _compiled(name)(*args)
        except Exception as err:  # noqa: BLE001 -- any compiler failure: fall back, say why
            warnings.warn(f"torch.compile of the BatchNorm/ReLU kernels failed ({type(err).__name__}: {str(err)[:200]}); "
                          "training with the hand-written kernels (same formulas, slower)", RuntimeWarning, stacklevel=3)
            self.compile = False
            return None
        if first:
            self._compiled_shapes.add(key)
            self.compile_seconds += time.perf_counter() - start
        return out

    def _bn_relu_forward_compiled(self, layer: _Layer, h_in: torch.Tensor, pre: torch.Tensor):
        """:meth:`_bn_relu_forward` by the compiled kernel (running statistics included): ``a``
        stays in ``pre``; returns ``(act, mean, invstd)`` for the backward pass, or None if
        compilation failed."""
        a = torch.bmm(h_in, layer.weight.transpose(1, 2), out=pre)  # (N, b, C), a - bias
        return self._call_compiled("forward", a, layer.gamma, layer.beta, layer.bias, layer.running_mean, layer.running_var,
                                   self.config.bn_eps, self.config.bn_momentum)

    def _bn_relu_backward_compiled(self, layer: _Layer, grad_act, a, act, mean, invstd) -> torch.Tensor:
        """:meth:`_bn_relu_backward` by the compiled kernel, which also writes the Linear bias's
        gradient (the eager formulas if it cannot compile)."""
        args = (grad_act, act, a, mean, invstd, layer.gamma, layer.gamma.grad, layer.beta.grad, layer.bias.grad)
        da = self._call_compiled("backward", *args)
        return da if da is not None else _bn_relu_backward_math(*args)

    def _bn_relu_forward(self, layer: _Layer, h_in: torch.Tensor, pre: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """``act = ReLU(γ x̂ + β)``, ``x̂ = (a - mean) / sqrt(var + eps)``, ``a = h_in Wᵀ + bias``.

        Batch statistics per network and channel (over dim 1). Returns ``1 / sqrt(var + eps)``
        (N, 1, C) for the backward pass; updates the running statistics.
        """
        cfg = self.config
        n_b = h_in.shape[1]
        a = torch.bmm(h_in, layer.weight.transpose(1, 2), out=pre)  # (N, b, C), a - bias
        mean = a.mean(dim=1, keepdim=True)  # (N, 1, C); torch.var_mean over dim 1 is ~20x slower on CPU
        centred = a.sub_(mean)  # the bias cancels here: it only shifts the batch mean
        var = torch.mul(centred, centred, out=act).sum(dim=1, keepdim=True).div_(n_b)  # biased, for normalising
        invstd = (var + cfg.bn_eps).rsqrt_()
        xhat = centred.mul_(invstd)
        torch.addcmul(layer.beta, xhat, layer.gamma, out=act).relu_()
        _update_running(layer.running_mean, layer.running_var, mean, var, layer.bias, n_b, cfg.bn_momentum)
        return invstd

    @staticmethod
    def _bn_relu_backward(layer: _Layer, grad_act: torch.Tensor, xhat: torch.Tensor, act: torch.Tensor, invstd: torch.Tensor) -> torch.Tensor:
        """Gradient at the Linear output ``a`` from the gradient at the ReLU output; fills γ, β grads.

        ``g = grad_act · [act > 0]``; ``dβ = Σ_b g``; ``dγ = Σ_b g x̂``;
        ``da = γ / std · (g - dβ / b - x̂ dγ / b)``. Written into ``act`` (its forward value is no
        longer needed), which is returned.
        """
        n_b = xhat.shape[1]
        g = torch.ops.aten.threshold_backward.grad_input(grad_act, act, 0, grad_input=act)
        torch.sum(g, dim=1, keepdim=True, out=layer.beta.grad)
        torch.sum(torch.mul(g, xhat, out=grad_act), dim=1, keepdim=True, out=layer.gamma.grad)
        g.sub_(layer.beta.grad, alpha=1 / n_b).addcmul_(xhat, layer.gamma.grad, value=-1 / n_b)
        return g.mul_(layer.gamma * invstd)

    def _bn_relu_forward_kernel(self, layer: _Layer, h_in: torch.Tensor, pre: torch.Tensor, act: torch.Tensor,
                                numpy: bool = False) -> torch.Tensor:
        """:meth:`_bn_relu_forward` by :func:`asdlib.train_kernels.bn_relu_forward` (CPU): the same
        outputs and running statistics in three passes over each network's block (the product by
        NumPy with ``numpy``)."""
        a = _bmm(h_in, layer.weight.transpose(1, 2), pre, numpy)  # (N, b, C), a - bias
        invstd = a.new_empty(a.shape[0], 1, a.shape[2])
        bn_relu_forward(_array(a), _array(layer.gamma), _array(layer.beta), self.config.bn_eps, self.config.bn_momentum,
                        _array(layer.bias), _array(layer.running_mean), _array(layer.running_var), _array(act), _array(invstd))
        return invstd

    @staticmethod
    def _bn_relu_backward_kernel(layer: _Layer, grad_act: torch.Tensor, xhat: torch.Tensor, act: torch.Tensor, invstd: torch.Tensor) -> torch.Tensor:
        """:meth:`_bn_relu_backward` by :func:`asdlib.train_kernels.bn_relu_backward` (CPU), which also
        writes the Linear bias's gradient; returns ``act``, overwritten with the gradient at the Linear output."""
        bn_relu_backward(_array(grad_act), _array(act), _array(xhat), _array(layer.gamma), _array(invstd),
                         _array(layer.gamma.grad), _array(layer.beta.grad), _array(layer.bias.grad))
        return act

    @staticmethod
    def _linear_backward(layer: _Layer, grad: torch.Tensor, h_in: torch.Tensor, grad_in: torch.Tensor | None,
                         bias_done: bool = False, numpy: bool = False) -> torch.Tensor | None:
        """``a = h_in Wᵀ + bias``: ``dW = gradᵀ h_in``, ``dbias = Σ_b grad`` (unless ``bias_done``),
        ``dh_in = grad W`` (into ``grad_in``); the products by NumPy with ``numpy``."""
        _bmm(grad.transpose(1, 2), h_in, layer.weight.grad, numpy)  # (N, out, in)
        if not bias_done:
            torch.sum(grad, dim=1, keepdim=True, out=layer.bias.grad)
        return None if grad_in is None else _bmm(grad, layer.weight, grad_in, numpy)

    @torch.no_grad()
    def copy_to(self, models: list[nn.Module], n_steps: int) -> None:
        """Write the stack's weights and BatchNorm statistics back into ``models`` (same order)."""
        g = 0
        for model in models:
            encoders, decoders = _networks(model)
            for enc, dec in zip(encoders, decoders):
                for prefix, net in (("enc", enc), ("dec", dec)):
                    for i, (lin, bn) in enumerate(_layers(net)):
                        layer = self._layer(prefix, i)
                        lin.weight.copy_(layer.weight[g, :, : lin.in_features])
                        lin.bias.copy_(layer.bias[g, 0])
                        if bn is not None:
                            bn.weight.copy_(layer.gamma[g, 0])
                            bn.bias.copy_(layer.beta[g, 0])
                            bn.running_mean.copy_(layer.running_mean[g, 0])
                            bn.running_var.copy_(layer.running_var[g, 0])
                            bn.num_batches_tracked.fill_(n_steps)
                g += 1


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------


def _check_inputs(specs, seeds, features, config) -> None:
    if not specs:
        raise ValueError("train_fused needs at least one ModelSpec")
    if len(seeds) != len(specs):
        raise ValueError(f"one seed per model: got {len(specs)} specs and {len(seeds)} seeds")
    needed = [s.name for s in grid_inputs(specs)]
    missing = [name for name in needed if name not in features]
    if missing:
        raise ValueError(f"features has no tensor for input(s) {missing} (it has {sorted(features)}); extract them first")
    check_tensors({name: features[name] for name in needed}, config)


def check_tensors(named: dict[str, torch.Tensor], config: Config) -> tuple[int, torch.device]:
    """Refuse training inputs of the wrong shape, dtype or device (the message names the input).

    Returns the number of vectors and the device.
    """
    shapes = {name: tuple(t.shape) for name, t in named.items()}
    n = next(iter(shapes.values()))[0]
    for name, shape in shapes.items():
        if len(shape) != 2 or shape[0] != n or shape[1] != config.input_dim:
            raise ValueError(f"features[{name!r}] has shape {shape}; every input needs ({n}, {config.input_dim}) (n_vectors, n_mels * n_frames)")
    dtypes = {t.dtype for t in named.values()}
    if len(dtypes) > 1 or not dtypes <= {torch.float32, torch.float64}:
        raise ValueError(f"the feature tensors are {sorted(map(str, dtypes))}; convert them all to float32 with .float()")
    devices = {t.device for t in named.values()}
    if len(devices) > 1:
        raise ValueError(f"the feature tensors are on several devices {sorted(map(str, devices))}; move them to one")
    return n, devices.pop()


class _Gatherer:
    """Fills the (N, b, D) input of the stack from the shared feature tensors, into reused buffers.

    Networks that read the same input tensor in the same order (models with the same seed) get
    one gather from the large feature tensor and copies of it.
    """

    def __init__(self, inputs: list[list[torch.Tensor]], seeds: list[int]):
        self.sources = []  # (feature tensor, model index, earlier network with the same rows or None)
        first: dict[tuple[int, int], int] = {}
        for k, (tensors, seed) in enumerate(zip(inputs, seeds)):
            for t in tensors:
                key = (id(t), seed)
                self.sources.append((t, k, first.get(key)))
                first.setdefault(key, len(self.sources) - 1)
        self.buffers: dict[int, torch.Tensor] = {}

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        """``idx`` (K, b): each model's vector indices -> (N, b, D)."""
        b = idx.shape[1]
        if b not in self.buffers:
            feat = self.sources[0][0]
            self.buffers[b] = feat.new_empty(len(self.sources), b, feat.shape[1])
        out = self.buffers[b]
        for g, (feat, k, same) in enumerate(self.sources):
            if same is None:
                torch.index_select(feat, 0, idx[k], out=out[g])
            else:
                out[g].copy_(out[same])
        return out


@torch.no_grad()
def _validate(stack: StackedAutoencoders, gather: _Gatherer, val_idx: torch.Tensor, n_dim: int, chunk: int) -> torch.Tensor:
    """Each model's mean weighted reconstruction loss on its hold-out ``val_idx`` (K, n_val), eval mode -> (K,)."""
    n_val = val_idx.shape[1]
    sse = torch.zeros(stack.n_networks, dtype=torch.float64, device=val_idx.device)
    for start in range(0, n_val, chunk):  # training-sized chunks reuse the training buffers
        sse += stack.eval_sse(gather(val_idx[:, start : start + chunk]))
    return stack.combine(sse, n_val * n_dim)


class _CudaGraphStep:
    """One full-batch training step -- gather, forward, backward, Adam -- as a replayed CUDA graph.

    The stack's step is a few hundred small kernels; launched one by one from Python, a GPU spends
    most of the step waiting for the next launch. Captured once into a ``torch.cuda.CUDAGraph``,
    the whole step is one launch, with the same kernels on the same buffers: the arithmetic is that
    of the eager step. The first ``warmup`` calls run eagerly on a side stream (real training steps:
    they allocate the gradients, workspaces and Adam's state, and let cuBLAS set itself up, as
    capture requires); the next call captures the step and replays it, and every later call copies
    its batch indices into the graph's index buffer and replays. The optimizer must be
    ``capturable`` (its step count lives on the GPU). With ``compile=True`` the stack's
    BatchNorm/ReLU passes are its ``torch.compile`` d kernels, compiled in the warm-up calls and
    captured like the rest. If capture fails, a warning says why and the step runs eagerly.
    """

    def __init__(self, stack: StackedAutoencoders, gather: _Gatherer, optimizer: torch.optim.Optimizer, warmup: int = 3):
        self.stack, self.gather, self.optimizer, self.warmup = stack, gather, optimizer, warmup
        self.graph: torch.cuda.CUDAGraph | None = None
        self.idx: torch.Tensor | None = None  # (K, b): the captured step reads its batch from here
        self.losses: torch.Tensor | None = None  # (K,): written by every replay
        self.n_calls = 0
        self.failed = False

    def _eager(self, idx: torch.Tensor) -> torch.Tensor:
        losses = self.stack.train_step(self.gather(idx))
        self.optimizer.step()
        return losses

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        """One training step on the batch of indices ``idx`` (K, b); returns the models' losses (K,)."""
        with torch.cuda.device(idx.device):  # capture and streams on the tensors' GPU (cuda:k of a Dask worker)
            return self._step(idx)

    def _step(self, idx: torch.Tensor) -> torch.Tensor:
        self.n_calls += 1
        if self.n_calls <= self.warmup:
            side = torch.cuda.Stream(device=idx.device)
            side.wait_stream(torch.cuda.current_stream(idx.device))
            with torch.cuda.stream(side):
                losses = self._eager(idx)
            torch.cuda.current_stream(idx.device).wait_stream(side)
            return losses
        if self.failed:
            return self._eager(idx)
        if self.graph is None:
            self.idx = idx.clone()
            self.graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(self.graph):  # records the kernels; runs nothing
                    self.losses = self._eager(self.idx)
            except Exception as err:  # noqa: BLE001 -- a step that cannot be captured still trains
                warnings.warn(f"capturing the training step as a CUDA graph failed ({type(err).__name__}: {str(err)[:200]}); "
                              "training with kernels launched one by one (same arithmetic, slower)", RuntimeWarning, stacklevel=2)
                self.failed, self.stack.cuda_graphs = True, False
                return self._eager(idx)
        self.idx.copy_(idx)
        self.graph.replay()
        return self.losses


def resolve_cuda_graphs(cuda_graphs: bool | None, device: torch.device) -> bool:
    """Whether to replay the training step as a CUDA graph: ``cuda_graphs`` if given (``True`` on a
    CPU is an error), else the environment variable ``ASDLIB_CUDA_GRAPHS`` (``1``/``0``), else on
    for CUDA devices."""
    if cuda_graphs is None:
        cuda_graphs = _env_flag("ASDLIB_CUDA_GRAPHS") is not False if device.type == "cuda" else False
    if cuda_graphs and device.type != "cuda":
        raise ValueError(f"cuda_graphs=True needs CUDA tensors; the features are on {device}")
    return bool(cuda_graphs)


#: on CUDA the hold-out is validated in chunks of this many vectors (at least the batch size): a few
#: wide launches instead of one per training-sized batch (on a CPU, batch-sized chunks keep the
#: activations in cache)
CUDA_VALIDATION_CHUNK = 2048


def _epoch_order(plans: dict[int, BatchPlan], seeds: list[int], device: torch.device) -> tuple[torch.Tensor, list[int]]:
    """The next epoch's batches of every model: ``(order, sizes)``, ``order`` (K, n_used) on ``device``
    (each model's plan's shuffle, one per distinct seed), ``sizes`` the batches' lengths."""
    batches = {seed: plan.epoch() for seed, plan in plans.items()}
    sizes = [len(b) for b in next(iter(batches.values()))]  # the same for all: same n_vectors and batch size
    shuffled = {seed: torch.cat(bs) for seed, bs in batches.items()}
    order = torch.stack([shuffled[seed] for seed in seeds])
    if device.type == "cuda":  # pinned: the copy does not wait for the steps already queued
        return order.pin_memory().to(device, non_blocking=True), sizes
    return order.to(device), sizes


def n_steps_per_epoch(n_vectors: int, config: Config) -> int:
    """Training steps in one epoch of ``n_vectors`` (after the hold-out; a final batch of 1 dropped)."""
    n_train = n_vectors - int(round(config.validation_split * n_vectors))
    full, rest = divmod(n_train, config.batch_size)
    return full + (rest >= 2)


def fit_models(
    models: list[nn.Module],
    inputs: list[list[torch.Tensor]],
    weights: list[list[float]],
    seeds: list[int],
    config: Config,
    *,
    names: list[str],
    progress: bool = True,
    desc: str = "grid",
    compile: bool | None = None,
    cuda_graphs: bool | None = None,
) -> tuple[list[History], StackedAutoencoders]:
    """Train ``models`` in place, together, as one stack (what :func:`train_fused` and
    :func:`asdlib.train.train_model` call).

    ``inputs[k]`` are model ``k``'s input tensors (n_vectors, D), all of one dtype and device;
    ``models[k]`` gets that dtype. Returns each model's history (its ``seconds`` is the wall time
    divided by the number of models) and the stack (``compile``, ``compile_seconds``,
    ``cuda_graphs``). ``cuda_graphs``: see :func:`train_fused`.
    """
    start = time.perf_counter()
    first = inputs[0][0]
    n_vectors, device, dtype = len(first), first.device, first.dtype
    plans = {seed: batch_plan(n_vectors, config, seed) for seed in dict.fromkeys(seeds)}  # models of one seed share its plan
    stack = StackedAutoencoders([m.to(device=device, dtype=dtype) for m in models], weights, config,
                                compile=resolve_compile(compile, device)).to(device, dtype)
    stack.cuda_graphs = resolve_cuda_graphs(cuda_graphs, device)
    fused_adam = device.type in ("cpu", "cuda")  # one kernel for all tensors; same arithmetic
    optimizer = torch.optim.Adam(stack.parameters(), lr=config.lr, **({"fused": True} if fused_adam else {}),
                                 **({"capturable": True} if stack.cuda_graphs else {}))
    gather = _Gatherer(inputs, seeds)
    graphed = _CudaGraphStep(stack, gather, optimizer) if stack.cuda_graphs else None
    val_idx = torch.stack([plans[seed].val_idx for seed in seeds]).to(device)  # (K, n_val)
    val_chunk = config.batch_size if device.type != "cuda" else max(config.batch_size, CUDA_VALIDATION_CHUNK)
    histories = [History() for _ in models]
    n_steps = 0
    order, sizes = _epoch_order(plans, seeds, device)
    bar = tqdm(range(config.epochs), desc=desc, unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        epoch_start = time.perf_counter()
        running = torch.zeros(len(models), dtype=torch.float64, device=device)
        offset = 0
        for size in sizes:
            idx = order[:, offset : offset + size]
            if graphed is not None and size == config.batch_size:
                losses = graphed(idx)  # (K,)
            else:
                losses = stack.train_step(gather(idx))
                optimizer.step()
            running += losses * size
            offset += size
        n_steps += len(sizes)
        if epoch + 1 < config.epochs:  # the next epoch's; on a GPU, while it still runs the steps queued above
            order, sizes = _epoch_order(plans, seeds, device)
        val_sum = _validate(stack, gather, val_idx, config.input_dim, val_chunk)
        train_loss = (running / offset).tolist()
        val_loss = val_sum.tolist()
        epoch_seconds = time.perf_counter() - epoch_start
        for name, hist, tl, vl in zip(names, histories, train_loss, val_loss):
            _check_finite(tl, name, epoch)
            hist.train_loss.append(tl)
            hist.val_loss.append(vl)
            hist.epoch_seconds.append(epoch_seconds)
        bar.set_postfix(loss=f"{sum(train_loss) / len(models):.3f}", val=f"{sum(val_loss) / len(models):.3f}")
    stack.copy_to(models, n_steps)
    seconds = (time.perf_counter() - start) / len(models)
    for model, hist in zip(models, histories):
        hist.seconds = seconds
        model.eval()
    return histories, stack


def train_fused(
    specs: list[ModelSpec],
    seeds: list[int],
    features: dict[str, torch.Tensor],
    config: Config,
    *,
    progress: bool = True,
    desc: str = "grid",
    compile: bool | None = None,
    cuda_graphs: bool | None = None,
) -> list[tuple[nn.Module, History]]:
    """Train the models of ``specs`` together as one stacked computation.

    Each model starts from the initial weights :func:`asdlib.train.init_model` gives for its seed
    and follows its own plan (:func:`asdlib.train.batch_plan`: hold-out and batches); every step
    is the arithmetic of training that model alone (the formulas of autograd's
    BatchNorm/ReLU/Linear/MSE backward and of Adam), so one step from the same state agrees with
    :func:`asdlib.train.train_model_autograd` to floating-point rounding. Over a whole run the two
    do *not* stay that close: training is chaotic, rounding differences grow, and after a few
    epochs the fused and the one-by-one weights (and clip rankings) differ as much as those of two
    seeds -- both are equally valid runs of the same training.

    Parameters
    ----------
    specs : list of ModelSpec
        The models; any mix of baselines, dual AEs and multi-channel AEs.
    seeds : list of int
        One seed per model (initial weights, hold-out and batch order).
    features : dict of str to torch.Tensor [shape=(n_vectors, D)]
        ``InputSpec.name -> vectors``: every input the specs need, all on the training device, of
        one dtype (float32; float64 also works and is what the tests compare in) and with the
        same ``n_vectors``.
    config : Config
        Model and training settings (``epochs``, ``batch_size``, ``lr``, ``validation_split``...).
    progress : bool
        A tqdm bar over epochs showing the models' mean training and validation loss.
    desc : str
        The bar's label, and the prefix of model names in error messages.
    compile : bool or None
        Fuse the BatchNorm/ReLU element-wise passes with ``torch.compile``
        (:class:`StackedAutoencoders`). None (default): the environment variable
        ``ASDLIB_COMPILE`` (``1``/``0``) if set, else on for CUDA tensors and off for CPU ones
        (:func:`resolve_compile` says why). Compiling costs 2-20 s once per process and shape; if
        it fails, a warning says why and the hand-written kernels are used.
    cuda_graphs : bool or None
        Replay each full-batch step (gather, forward, backward, Adam) as one captured CUDA graph
        instead of launching its few hundred kernels one by one: the same kernels, so the same
        arithmetic, without the launch overhead that bounds such small models on a GPU. None
        (default): the environment variable ``ASDLIB_CUDA_GRAPHS`` (``1``/``0``) if set, else on
        for CUDA tensors; ``True`` with CPU tensors is an error.

    Returns
    -------
    list of (torch.nn.Module, History)
        For each spec in order: a regular model (``build_model``'s class) holding the trained
        weights and BatchNorm statistics, in eval mode on the features' device, and its
        :class:`~asdlib.train.History` (per-epoch mean training loss, validation loss on its own
        hold-out; ``seconds`` is the fused run's wall time divided by the number of models).

    Raises
    ------
    TrainingDivergedError
        A model's training loss became NaN or Inf (the message names the model).
    ValueError
        Missing or misshapen feature tensors, of mixed dtypes or devices, or
        ``len(seeds) != len(specs)``.

    Notes
    -----
    On CUDA nothing is copied between host and device inside an epoch: each epoch's batch
    indices go to the device at once, and the losses come back once per epoch (the NaN check).

    Examples
    --------
    >>> specs = [ModelSpec.baseline(0)] + [ModelSpec.dual(0, 4, a) for a in (0.1, 0.5, 2, 10)]
    >>> trained = train_fused(specs, [0] * len(specs), features, Config())  # doctest: +SKIP
    """
    _check_inputs(specs, seeds, features, config)
    models = [init_model(spec, config, seed) for spec, seed in zip(specs, seeds)]
    inputs = [[features[s.name] for s in spec.inputs] for spec in specs]
    names = [f"{desc} {spec.name}" for spec in specs]
    histories, _ = fit_models(models, inputs, [spec.weights for spec in specs], seeds, config,
                              names=names, progress=progress, desc=desc, compile=compile, cuda_graphs=cuda_graphs)
    return list(zip(models, histories))
