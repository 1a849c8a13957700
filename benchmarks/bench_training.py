"""Training throughput: the single-model loop against fused grid training, on this machine.

Run ``.venv/bin/python benchmarks/bench_training.py [--quick] [--device cpu|cuda|auto] [--threads N]
[--epochs E]``. Prints one JSON line per figure (a script, not a test; the default run takes about
6 minutes on 2 quiet CPU cores, ``--quick`` about 2). Timings are the best of interleaved repeats,
the matmul reference rate included, so that machine noise (large on shared virtual machines) hits
all sides alike. The process tunes glibc's allocator as the runner's grid processes do
(:func:`asdlib.memory.tune_malloc`).

Every training figure is a **training rate**: each run trains ``E`` epochs (default 3) and the
figure is its fastest epoch after the first (``History.epoch_seconds``: wall time of the epoch, its
validation pass included), best over the repeats. The paper trains 50 epochs, so what one run pays
once (initial weights, stacking the networks, first-touch memory) is not the grid's rate; the
fused grid prints it as ``first_epoch_seconds_with_setup``.

``machine``
    torch version, threads, processor, and NumPy's BLAS with the kernels it runs (``numpy_blas``:
    OpenBLAS chooses them by processor when it loads, unless ``OPENBLAS_CORETYPE`` forces a set;
    ``benchmarks/README.md``, *Earlier runs*, shows what that costs on a processor with AVX-512).
``matmul_rate``
    float32 ``(2048, 2048) @ (2048, 2048)`` on all threads, best of several: the reference rate.
    On a CPU also ``numpy_blas_gflops``: the same product by NumPy's BLAS (OpenBLAS in NumPy's
    wheels) on as many threads, interleaved the same way, and ``onednn_gflops``: by oneDNN, the
    third matrix-product library in this environment (in PyTorch's wheels; training does not use
    it). And ``per_core_gflops``, ``per_core_numpy_gflops`` and ``per_core_onednn_gflops``: one
    such product per core at once, each process on one thread, by each library (see
    ``fused_grid_per_core``). On one thread the grids multiply with NumPy's BLAS
    (:func:`asdlib.fused.resolve_numpy_matmul`), which on the AMD EPYC of the earlier runs in
    ``benchmarks/README.md`` is about 10 % faster than PyTorch's MKL at this size, and oneDNN about
    5 % faster still; the per-core figure is judged against the highest of the six rates.
``single_loop``
    :func:`asdlib.train.train_model_autograd` (the readable one-model-at-a-time autograd loop,
    ``Adam(fused=True)``), batch 256, for the baseline and the dual AE, epochs of 36,000
    training vectors (``--quick``: 10,800), in model-vectors/s; the per-epoch validation pass is
    in the time, as in real training.
``dcase_reference``
    The DCASE 2023 Task 2 baseline's per-step work as published (``../shared/reference/
    dcase-baseline.md``; written from that description, no code of the baseline's): the vectors
    kept as a float64 NumPy array, a ``torch.utils.data.DataLoader`` over single vectors (one
    ``torch.as_tensor`` per vector, batch 256, shuffled, no worker processes), each batch
    converted to float32, plain ``torch.optim.Adam``, MSE, a validation loss on the 10 % held out
    every epoch; ``as_shipped`` with ``torch.autograd.set_detect_anomaly(True)`` on, ``stripped``
    without. The shipped baseline also writes a loss plot, fits a gamma distribution and saves a
    checkpoint after every epoch (about 1.3x more time); those are *not* reproduced, so the
    "as shipped" ratios are lower bounds. Printed with the paired ratios of ``train_model`` (the
    fused trainer with one model) and of the fused 9-model grid to it.
``compiled``
    The fused grid with ``compile=True`` (BatchNorm/ReLU as ``torch.compile`` d kernels) against
    ``fused_grid`` (``compile=False``, the hand-written kernels), paired, and the compile time
    (first calls; torch caches compiled kernels on disk, so a second run is faster). Training
    compiles only when asked (``compile=True`` or ``ASDLIB_COMPILE=1``; ``asdlib.fused.resolve_compile``).
``fused_grid``
    :func:`asdlib.fused.train_fused` on the paper's 9-model grid of one machine type (baseline on
    mic 0; dual AEs on pairs 0-4 and 2-6, α in {0.1, 0.5, 2, 10}), same data and batch, with the
    ratio to the single-model loop training the same 9 models one after another (time
    ``t_baseline + 8 t_dual`` from the ``single_loop`` figures), the fraction of the matmul rate
    reached, and whether the targets (1.8x, 75 %) are met.
``fused_grid_per_core``
    How :mod:`asdlib.runner` trains grids on a CPU: one grid per core, each on one torch thread
    (where the BatchNorm layers run as :mod:`asdlib.train_kernels`' loops and the matrix products
    by NumPy's BLAS). One fresh process per core
    trains the 9-model grid at the same time as the others (``E + 1`` epochs each; the median of
    its epochs after the first); the figure is their summed FLOP rate as a fraction of the matmul
    rate on all threads, best of the repeats (one per-core run in each repeat, interleaved with the
    other runs; ``fraction_of_matmul_each_repeat`` lists them all). Each repeat also measures the
    cores as these grids use them, one 2048² product per core at once on one thread each, by
    each library (``matmul_rate``'s ``per_core_*gflops``, best of the repeats);
    ``fraction_of_per_core_matmul``, ``fraction_of_per_core_numpy_matmul`` and
    ``fraction_of_per_core_onednn_matmul`` are the figure against those (the two-thread product
    sometimes runs well below them), and ``fraction_of_best_matmul`` against the highest of the
    six references (named by ``best_matmul_reference``), which is what ``fraction_met`` compares
    with the target.
``products_alone``
    The ceiling of ``fused_grid_per_core``: every matrix product of one training step of the 9-model
    grid (forward, weight and input gradients of each stacked layer, 17 networks at batch 256, in
    the step's own shapes and memory layouts: :func:`step_products`) and nothing else, timed one
    process per core at once on one thread, by each library: NumPy's BLAS (``numpy_gflops``, what
    the one-thread grids use), PyTorch's ``bmm`` (``torch_gflops``) and oneDNN (``onednn_gflops``,
    one call per network with its operands made contiguous beforehand: an upper bound for it).
    GFLOP/s by the same documented count as the grid figures, summed over the processes, best of
    the repeats. ``ceiling_fraction`` is the fastest library's rate against the same highest
    reference as ``fraction_of_best_matmul``: the figure the grids would reach if BatchNorm, the
    loss, Adam, the gather and the validation pass took no time. ``target_reachable`` says whether
    that ceiling reaches the target; ``grid_fraction_of_products`` is the grids' rate against the
    products alone on NumPy's BLAS (what the rest of the step costs).
``peak_memory``
    Peak resident memory of a fresh subprocess that holds one machine type's paper-profile inputs
    (309,000 vectors x 4 input tensors x 640 float32: mic0, mic0-mic4, mic2, mic2-mic6) and trains
    the 9 models one epoch on them (``--quick``: on their first 20,000 vectors). ``max_rss_gb`` is
    ``getrusage``'s, ``vm_hwm_gb`` the kernel's ``VmHWM``.
``paper_size_epoch``
    That epoch's throughput, and (not with ``--quick``) one epoch of the single-model loop for a
    baseline and a dual AE on the same full-size tensors: random rows of 790 MB tensors, the real
    memory-access pattern.
``paper_projection``
    Projected training time of the paper profile (4 machine types x 9 models x 50 epochs x 278,100
    training vectors) from the ``paper_size_epoch`` rates.

Units
-----
model-vectors/s
    Training vectors per second summed over the models (a dual AE counts 1 per vector).
baseline-equivalent vectors/s
    The same, each model weighted by its FLOPs per vector relative to the baseline (a dual AE has
    two encoders and two wider-input decoders: 2.008 baselines).
FLOPs per vector
    ``6 * Σ in*out`` over the model's Linear layers: forward ``2 * Σ in*out`` (one multiply-add per
    weight), backward twice that (input gradients and weight gradients). This slightly overcounts:
    the input gradient of an encoder's first layer (``2 * 640 * 128``) is never computed; the
    ``exact_fraction_of_matmul`` field uses the exact count. For the 9-model grid (17 networks)
    the documented count is 27,045,888 FLOPs per training vector and the exact one 24,260,608. BatchNorm, ReLU, loss and Adam
    (memory-bound, O(params + activations)) are not counted as FLOPs but are in the time, and so
    is the validation pass (the forward pass over the 10 % held out, about 4 % more arithmetic).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asdlib.config import Config  # noqa: E402
from asdlib.fused import StackedAutoencoders, train_fused  # noqa: E402
from asdlib.memory import tune_malloc  # noqa: E402
from asdlib.models import build_model  # noqa: E402
from asdlib.modelspec import ModelSpec, grid_inputs  # noqa: E402
from asdlib.train import init_model, resolve_device, train_model, train_model_autograd  # noqa: E402

GRID = [ModelSpec.baseline(0)] + [ModelSpec.dual(r, o, a) for r, o in ((0, 4), (2, 6)) for a in (0.1, 0.5, 2.0, 10.0)]
INPUTS = [s.name for s in grid_inputs(GRID)]  # mic0, mic0-mic4, mic2, mic2-mic6
PAPER_VECTORS = 309_000  # 1,000 normal training clips x 309 vectors (10 s, 313 frames, 5-frame context)
PAPER_MACHINES = 4
TARGET_SPEEDUP = 1.8
TARGET_FRACTION = 0.75
PER_CORE_MATMUL_REPEATS = 20  # about 4 s of 2048² products on one thread here


def steady(epoch_seconds: list[float], how=min) -> float:
    """A run's training rate in seconds per epoch: ``how`` (min, or a median) of its epochs after the first."""
    rest = epoch_seconds[1:] or epoch_seconds
    return how(rest)


def emit(figure: str, **values) -> None:
    """Print one figure as a JSON line (a NaN, a rate not measured, as null)."""
    values = {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in values.items()}
    print(json.dumps({"figure": figure, **values}), flush=True)


def processor() -> str:
    """The processor's model name and family (``/proc/cpuinfo``), else ``platform``'s word for it."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    if "model name" in fields:
        return f"{fields['model name']} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"
    return platform.processor() or platform.machine()


def numpy_blas() -> dict:
    """NumPy's BLAS as ``threadpoolctl`` sees it: library, version and the kernel set it chose
    (OpenBLAS picks one per processor when it loads, unless ``OPENBLAS_CORETYPE`` names one:
    then ``coretype_forced`` says so; that can leave a processor's AVX-512 unused)."""
    blas = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]  # SciPy may load an OpenBLAS of its own
    info = next((lib for lib in blas if "numpy" in Path(lib["filepath"]).parent.name), blas[0] if blas else {})
    return {"library": info.get("internal_api"), "version": info.get("version"), "kernels": info.get("architecture"),
            "coretype_forced": os.environ.get("OPENBLAS_CORETYPE")}


def linear_macs(n_inputs: int, config: Config) -> tuple[int, int]:
    """(Σ in*out over all Linear layers, Σ in*out of the encoders' first layers) of one model."""
    model = build_model(n_inputs, config)
    lins = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    first = [m for m in lins if m.in_features == config.input_dim]
    return sum(m.in_features * m.out_features for m in lins), sum(m.in_features * m.out_features for m in first)


def train_flops(n_inputs: int, config: Config, exact: bool = False) -> int:
    """FLOPs of one training vector of one model (see the module docstring)."""
    macs, first = linear_macs(n_inputs, config)
    return 6 * macs - (2 * first if exact else 0)


def synthetic_features(n: int, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """Inputs shaped like log-mel vectors: (n, 640) float32 each, a random block tiled in place."""
    gen = torch.Generator().manual_seed(seed)
    block = torch.randn(min(n, 8192), 640, generator=gen) * 5 - 40
    out = {}
    for i, name in enumerate(INPUTS):
        x = torch.empty(n, 640, device=device)
        for start in range(0, n, len(block)):
            x[start : start + len(block)] = block[: n - start] + i
        out[name] = x
    return out


def peak_rss_gb() -> dict[str, float]:
    """Peak resident memory of this process: ``getrusage`` max RSS and, on Linux, ``VmHWM``.

    ``ru_maxrss`` keeps the parent's peak across fork + exec; ``VmHWM`` (``/proc/self/status``)
    is this program's own.
    """
    out = {"max_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}  # Linux: KiB
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                key = "vm_hwm_gb" if line.startswith("VmHWM") else "vm_rss_gb"
                out[key] = int(line.split()[1]) / 2**20
    return out


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """float32 GFLOP/s of an (n, n) @ (n, n) product, best of ``repeats``."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeats + 2):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def matmul_probe(args) -> None:
    """Run in a subprocess, one per core at the same time: :func:`library_matmul_rates` on this
    process's threads, started at ``--start-at`` (a shared clock time, so that every process
    multiplies while the others do); print them."""
    time.sleep(max(0.0, args.start_at - time.time()))
    print(json.dumps(library_matmul_rates(repeats=PER_CORE_MATMUL_REPEATS)))


def per_core_rates(probe: str) -> dict[str, float]:
    """Summed rates of ``--{probe}-probe`` (:func:`matmul_probe` or :func:`products_probe`), one
    process per core on one thread each, all started together at a shared clock time: the cores
    used as :func:`per_core_grids` uses them (NaN: a library that is missing)."""
    cmd = [sys.executable, __file__, f"--{probe}-probe", "--threads", "1", "--start-at", str(time.time() + 5)]
    outs = run_per_core(cmd, probe)
    return {key: sum(out[key] for out in outs) for key in outs[0]}


def library_matmul_rates(repeats: int = 10) -> dict[str, float]:
    """float32 GFLOP/s of the (2048, 2048) product on torch's thread count by each BLAS this
    environment has: PyTorch's (``gflops``, MKL in the x86 wheels), NumPy's (``numpy_gflops``,
    OpenBLAS) and oneDNN (``onednn_gflops``), each the best of ``repeats``."""
    cpu = torch.device("cpu")
    return {"gflops": matmul_rate(cpu, repeats=repeats), "numpy_gflops": numpy_matmul_rate(repeats=repeats),
            "onednn_gflops": onednn_matmul_rate(repeats=repeats)}


def numpy_matmul_rate(n: int = 2048, repeats: int = 10) -> float:
    """float32 GFLOP/s of the same product by NumPy's BLAS (OpenBLAS in NumPy's wheels) on torch's
    thread count: the other library's rate on this machine (the one-thread grids multiply with it)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    best = float("inf")
    with threadpool_limits(torch.get_num_threads(), user_api="blas"):
        for _ in range(repeats + 2):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def onednn_matmul_rate(n: int = 2048, repeats: int = 10) -> float:
    """float32 GFLOP/s of the same product by oneDNN, the third matrix-product library of this
    environment (in PyTorch's CPU wheels; reached through ``torch.ops.mkldnn._linear_pointwise``,
    the operator ``torch.compile`` emits for linear layers, ``a @ bᵀ``) on torch's threads; NaN
    where that operator is missing. Training does not use it (its small products are no faster
    overall, see ``benchmarks/README.md``); it is a reference, the fastest of the three on some machines."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    try:
        linear = torch.ops.mkldnn._linear_pointwise
        linear(a[:8, :8], b[:8, :8], None, "none", [], "")  # an internal operator: its signature may change
    except (AttributeError, RuntimeError):
        return float("nan")
    best = float("inf")
    for _ in range(repeats + 2):
        start = time.perf_counter()
        linear(a, b, None, "none", [], "")
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def highest(*rates: float) -> float:
    """The highest of ``rates`` that were measured (NaN: a library that is missing)."""
    return max((r for r in rates if not np.isnan(r)), default=float("nan"))


def time_single(spec: ModelSpec, features, config: Config, trainer=train_model_autograd) -> float:
    """Seconds per epoch of ``trainer`` (default: the autograd loop) for one model (:func:`steady`)."""
    device = features[INPUTS[0]].device
    model = init_model(spec, config, 0).to(device)
    history = trainer(model, [features[s.name] for s in spec.inputs], spec.weights, config, seed=0, progress=False)
    return steady(history.epoch_seconds)


def time_fused(features, config: Config, compile: bool = False, how=min) -> tuple[float, float]:
    """``train_fused`` on the 9-model grid: (seconds per epoch (:func:`steady`), wall time of the
    set-up and the first epoch)."""
    device = features[INPUTS[0]].device
    synchronize(device)
    start = time.perf_counter()
    (_, history), *_ = train_fused(GRID, [0] * len(GRID), features, config, progress=False, compile=compile)
    synchronize(device)
    total = time.perf_counter() - start
    return steady(history.epoch_seconds, how), total - sum(history.epoch_seconds[1:])


class _SingleVectors(torch.utils.data.Dataset):
    """One float64 640-d vector per item, as a tensor (the baseline's dataset of single vectors)."""

    def __init__(self, array):
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, i):
        return torch.as_tensor(self.array[i])


def time_dcase_reference(array64, config: Config, detect_anomaly: bool, seed: int = 0) -> float:
    """Seconds per epoch (:func:`steady`) of the DCASE baseline's per-step work (module docstring) on ``array64``."""
    from torch.utils.data import DataLoader, Subset

    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(array64), generator=gen).tolist()
    n_val = int(round(config.validation_split * len(array64)))
    data = _SingleVectors(array64)
    train_loader = DataLoader(Subset(data, perm[n_val:]), batch_size=config.batch_size, shuffle=True, generator=gen)
    val_loader = DataLoader(Subset(data, perm[:n_val]), batch_size=config.batch_size, shuffle=False)
    model = init_model(GRID[0], config, seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    epoch_seconds = []
    with torch.autograd.set_detect_anomaly(detect_anomaly):
        for _ in range(config.epochs):
            start = time.perf_counter()
            model.train()
            for batch in train_loader:
                x = batch.float()
                loss = torch.nn.functional.mse_loss(model(x), x)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                val = sum(float(torch.nn.functional.mse_loss(model(b.float()), b.float())) for b in val_loader)
            epoch_seconds.append(time.perf_counter() - start)
    assert val == val  # noqa: PLR0124 -- the loss is used, and not NaN
    return steady(epoch_seconds)


def n_train(n: int, config: Config) -> int:
    return n - int(round(config.validation_split * n))


def memory_probe(args) -> None:
    """Run in a subprocess: allocate one machine type's paper-size inputs, train the grid, report.

    Prints one JSON object: peak RSS after fused training of one epoch, its throughput, and (not
    with ``--quick``) one epoch of the single-model loop for a baseline and a dual AE on the same
    full-size tensors (random rows of 790 MB tensors: the real memory-access pattern).
    """
    device = resolve_device(args.device)
    config = Config(epochs=1)
    before = peak_rss_gb()
    features = synthetic_features(PAPER_VECTORS, device)
    after_features = peak_rss_gb()
    used = features if not args.quick else {k: v[: args.quick_vectors] for k, v in features.items()}  # views
    n = len(used[INPUTS[0]])
    fused_s, _ = time_fused(used, config)
    out = {
        **peak_rss_gb(),
        "rss_before_features_gb": before.get("vm_rss_gb", before["max_rss_gb"]),
        "rss_after_features_gb": after_features.get("vm_rss_gb", after_features["max_rss_gb"]),
        "features_gb": sum(v.numel() * v.element_size() for v in features.values()) / 2**30,
        "trained_vectors": n_train(n, config),
        "fused_seconds": fused_s,
    }
    if device.type == "cuda":
        out["cuda_max_allocated_gb"] = torch.cuda.max_memory_allocated() / 2**30
    if not args.quick:
        out["baseline_seconds"] = time_single(GRID[0], used, config)
        out["dual_seconds"] = time_single(GRID[1], used, config)
    print(json.dumps(out))


def grid_probe(args) -> None:
    """Run in a subprocess, one per core at the same time: train the 9-model grid on this process's
    threads and print its seconds per epoch (the median of the epochs after the first) and which
    ``asdlib`` ran it (this checkout's, which comes first on ``sys.path``: a paired run of two
    versions needs two checkouts, not ``PYTHONPATH``)."""
    tune_malloc()
    config = Config(epochs=args.epochs + 1)
    features = synthetic_features(args.probe_vectors, torch.device("cpu"))
    train_fused(GRID[:2], [0, 0], {k: v[:2000] for k, v in features.items()}, Config(epochs=1), progress=False)  # warm-up
    seconds, _ = time_fused(features, config, how=statistics.median)
    print(json.dumps({"seconds": seconds, "trained_vectors": n_train(args.probe_vectors, config), "threads": torch.get_num_threads(),
                      "asdlib": str(Path(sys.modules["asdlib"].__file__).parent)}))


def step_products(config: Config) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(a, b, out)`` for every matrix product of one training step of the 9-model grid at
    ``config.batch_size``, ``out = a @ b`` for stacks of matrices: in each stacked layer of
    :class:`asdlib.fused.StackedAutoencoders` the forward product ``h Wᵀ``, the weight gradient
    ``gᵀ h`` and (except the encoders' first layer, where the step needs none) the input gradient
    ``g W``, in the layouts the step passes them (transposed views included). Random operands."""
    models = [build_model(len(s.inputs), config) for s in GRID]
    stack = StackedAutoencoders(models, [s.weights for s in GRID], config)
    gen = torch.Generator().manual_seed(0)
    b, products = config.batch_size, []
    for j, layer in enumerate(stack.layers()):
        n, width_out, width_in = layer.weight.shape
        h, g = torch.randn(n, b, width_in, generator=gen), torch.randn(n, b, width_out, generator=gen)
        weight = layer.weight.detach()
        products.append((h, weight.transpose(1, 2), torch.empty(n, b, width_out)))
        products.append((g.transpose(1, 2), h, torch.empty(n, width_out, width_in)))
        if j > 0:
            products.append((g, weight, torch.empty(n, b, width_in)))
    return products


def products_rates(config: Config, repeats: int = 30) -> dict[str, float]:
    """GFLOP/s (the documented count of the grid, as the grid figures) of :func:`step_products`
    alone, on torch's thread count, by NumPy's BLAS, ``torch.bmm`` and oneDNN (NaN where its
    operator is missing); the median of ``repeats`` passes over all the step's products each."""
    products = step_products(config)
    flops = config.batch_size * sum(train_flops(len(s.inputs), config) for s in GRID)
    arrays = [(a.numpy(), b.numpy(), out.numpy()) for a, b, out in products]
    contiguous = [(a.contiguous(), b.transpose(1, 2).contiguous()) for a, b, _ in products]  # a @ b = linear(a, bᵀ)
    linear = getattr(torch.ops.mkldnn, "_linear_pointwise", None)

    def by_numpy():
        for a, b, out in arrays:
            np.matmul(a, b, out=out)

    def by_torch():
        for a, b, out in products:
            torch.bmm(a, b, out=out)

    def by_onednn():
        for a, b_t in contiguous:
            for k in range(len(a)):
                linear(a[k], b_t[k], None, "none", [], "")

    def rate(run) -> float:
        for _ in range(3):
            run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return flops / statistics.median(times) / 1e9

    with threadpool_limits(torch.get_num_threads(), user_api="blas"):
        out = {"numpy_gflops": rate(by_numpy), "torch_gflops": rate(by_torch), "onednn_gflops": float("nan")}
        try:
            out["onednn_gflops"] = rate(by_onednn)
        except (TypeError, RuntimeError):  # an internal operator: missing, or its signature changed
            pass
    return out


def products_probe(args) -> None:
    """Run in a subprocess, one per core at the same time (from ``--start-at``): :func:`products_rates`
    on this process's threads; print them."""
    time.sleep(max(0.0, args.start_at - time.time()))
    print(json.dumps(products_rates(Config())))


def run_per_core(cmd: list[str], what: str) -> list[dict]:
    """Start ``cmd`` once per core, all at once; each process's last output line, parsed as JSON."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(cores)]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a per-core {what} process failed (exit codes {[p.returncode for p in procs]})")
    return [json.loads(out.strip().splitlines()[-1]) for out in outs]


def per_core_grids(args, n_vectors: int) -> list[dict]:
    """Start :func:`grid_probe` in one single-threaded process per core, all at once; their outputs."""
    cmd = [sys.executable, __file__, "--grid-probe", "--threads", "1", "--epochs", str(args.epochs), "--probe-vectors", str(n_vectors)]
    return run_per_core(cmd, "grid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, 2 repeats, no paper-size single-model epochs (about a minute)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, all cores)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per training run; figures are the fastest epoch after the first (default 3)")
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--grid-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--matmul-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--products-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--probe-vectors", type=int, default=12_000, help=argparse.SUPPRESS)
    parser.add_argument("--quick-vectors", type=int, default=20_000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is not a training rate")
    if args.memory_probe:
        return memory_probe(args)
    if args.grid_probe:
        return grid_probe(args)
    if args.matmul_probe:
        return matmul_probe(args)
    if args.products_probe:
        return products_probe(args)
    tune_malloc()  # as the runner's grid processes do

    device = resolve_device(args.device)
    n_vectors, repeats = (12_000, 2) if args.quick else (40_000, 3)
    config = Config(epochs=args.epochs)
    emit(
        "machine",
        torch=torch.__version__,
        device=str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        threads=torch.get_num_threads(),
        processor=processor(),
        numpy_blas=numpy_blas(),
        quick=args.quick,
    )
    peak = matmul_rate(device)
    cpu = device.type == "cpu"
    numpy_peak = numpy_matmul_rate() if cpu else float("nan")
    onednn_peak = onednn_matmul_rate() if cpu else float("nan")

    # first, while this process is small: a fresh process inherits the parent's ru_maxrss
    cmd = [sys.executable, __file__, "--memory-probe", "--device", args.device]
    cmd += ["--quick", "--quick-vectors", str(args.quick_vectors)] if args.quick else []
    cmd += ["--threads", str(args.threads)] if args.threads else []
    probe = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])

    features = synthetic_features(n_vectors, device)
    warm = {k: v[:2000] for k, v in features.items()}
    train_fused(GRID[:2], [0, 0], warm, config, progress=False)  # warm-up: allocator, kernels, threads
    base_flops = train_flops(1, config)
    trained = n_train(n_vectors, config)

    # repeats interleaved, best of each: machine noise hits both sides alike
    array64 = features[INPUTS[0]].cpu().double().numpy()  # the baseline keeps float64 vectors
    compile_s = time_fused({k: v[:2000] for k, v in features.items()}, config, compile=True)[1]  # compile here
    keys = ("baseline", "dual", "fused", "fused_first", "fused_compiled", "one_model", "dcase_as_shipped", "dcase_stripped")
    seconds = dict.fromkeys(keys, float("inf"))

    def best(key: str, value: float) -> None:
        seconds[key] = min(seconds[key], value)

    per_core: list[list[dict]] = []  # each repeat's per-core grids (CPU)
    per_core_peaks = dict.fromkeys(("gflops", "numpy_gflops", "onednn_gflops"), float("nan"))  # measured beside them
    products_alone = dict.fromkeys(("numpy_gflops", "torch_gflops", "onednn_gflops"), float("nan"))  # the grids' ceiling
    for _ in range(repeats):
        peak = max(peak, matmul_rate(device, repeats=3))  # the reference rate, paired with the rest
        if cpu:
            numpy_peak = highest(numpy_peak, numpy_matmul_rate(repeats=3))
            onednn_peak = highest(onednn_peak, onednn_matmul_rate(repeats=3))
        for spec in (GRID[0], GRID[1]):
            best(spec.kind, time_single(spec, features, config))
        fused_epoch, fused_first = time_fused(features, config)
        best("fused", fused_epoch)
        best("fused_first", fused_first)
        best("fused_compiled", time_fused(features, config, compile=True)[0])
        best("one_model", time_single(GRID[0], features, config, trainer=train_model))
        if device.type == "cpu":
            best("dcase_as_shipped", time_dcase_reference(array64, config, detect_anomaly=True))
            best("dcase_stripped", time_dcase_reference(array64, config, detect_anomaly=False))
            per_core.append(per_core_grids(args, n_vectors))
            for key, rate in per_core_rates("matmul").items():
                per_core_peaks[key] = highest(per_core_peaks[key], rate)
            for key, rate in per_core_rates("products").items():
                products_alone[key] = highest(products_alone[key], rate)
    per_core_peak, per_core_numpy_peak, per_core_onednn_peak = per_core_peaks.values()
    emit("matmul_rate", n=2048, dtype="float32", gflops=round(peak, 1), note="best of all repeats, interleaved with the training runs",
         **({} if device.type != "cpu" else {
             "per_core_gflops": round(per_core_peak, 1),
             "per_core_numpy_gflops": round(per_core_numpy_peak, 1),
             "per_core_onednn_gflops": round(per_core_onednn_peak, 1),
             "per_core_note": "one 2048² product per core at once, each process on one thread (as the per-core grids use the cores)",
             "numpy_blas_gflops": round(numpy_peak, 1),
             "numpy_note": "the same products by NumPy's BLAS, same threads and repeats (the one-thread grids multiply with it)",
             "onednn_gflops": round(onednn_peak, 1),
             "onednn_note": "the same products by oneDNN (in PyTorch's wheels; not used by training): a reference"}))
    for spec in (GRID[0], GRID[1]):
        rate = trained / seconds[spec.kind]
        gflops = rate * train_flops(len(spec.inputs), config) / 1e9
        emit(
            "single_loop",
            model=spec.kind,
            batch_size=config.batch_size,
            vectors=trained,
            repeats=repeats,
            epochs=config.epochs,
            seconds_per_epoch=round(seconds[spec.kind], 3),
            model_vectors_per_s=round(rate),
            baseline_equivalent_vectors_per_s=round(rate * train_flops(len(spec.inputs), config) / base_flops),
            gflops=round(gflops, 1),
            fraction_of_matmul=round(gflops / peak, 3),
        )

    fused_s = seconds["fused"]
    grid_flops = sum(train_flops(len(s.inputs), config) for s in GRID)
    grid_exact = sum(train_flops(len(s.inputs), config, exact=True) for s in GRID)
    sequential_s = seconds["baseline"] + 8 * seconds["dual"]
    rate = len(GRID) * trained / fused_s
    gflops = trained * grid_flops / fused_s / 1e9
    speedup = sequential_s / fused_s
    fraction = gflops / peak
    emit(
        "fused_grid",
        models=len(GRID),
        networks=sum(len(s.inputs) for s in GRID),
        batch_size=config.batch_size,
        vectors=trained,
        epochs=config.epochs,
        seconds_per_epoch=round(fused_s, 3),
        first_epoch_seconds_with_setup=round(seconds["fused_first"], 3),
        fraction_of_matmul_first_epoch_with_setup=round(trained * grid_flops / seconds["fused_first"] / 1e9 / peak, 3),
        model_vectors_per_s=round(rate),
        baseline_equivalent_vectors_per_s=round(trained * grid_flops / base_flops / fused_s),
        single_loop_same_models_model_vectors_per_s=round(len(GRID) * trained / sequential_s),
        speedup_vs_single_loop=round(speedup, 2),
        speedup_vs_single_baseline_in_baseline_equivalents=round(trained * grid_flops / base_flops / fused_s / (trained / seconds["baseline"]), 2),
        gflops=round(gflops, 1),
        fraction_of_matmul=round(fraction, 3),
        exact_fraction_of_matmul=round(trained * grid_exact / fused_s / 1e9 / peak, 3),
        target_speedup=TARGET_SPEEDUP,
        speedup_met=speedup >= TARGET_SPEEDUP,
        target_fraction=TARGET_FRACTION,
        fraction_met=fraction >= TARGET_FRACTION,
    )
    if device.type == "cpu":
        def summed_gflops(grids: list[dict], flops: int = grid_flops) -> float:
            return sum(g["trained_vectors"] * flops / g["seconds"] / 1e9 for g in grids)

        grids = max(per_core, key=summed_gflops)  # best of the repeats, as every other figure
        references = {"matmul": peak, "per_core_matmul": per_core_peak, "numpy_matmul": numpy_peak,
                      "per_core_numpy_matmul": per_core_numpy_peak, "onednn_matmul": onednn_peak,
                      "per_core_onednn_matmul": per_core_onednn_peak}
        best_peak = highest(*references.values())
        total_gflops, exact_gflops = summed_gflops(grids), summed_gflops(grids, grid_exact)
        emit(
            "fused_grid_per_core",
            processes=len(grids),
            threads_each=1,
            models_each=len(GRID),
            vectors=grids[0]["trained_vectors"],
            repeats=len(per_core),
            seconds_per_epoch=[round(g["seconds"], 3) for g in grids],
            fraction_of_matmul_each_repeat=[round(summed_gflops(r) / peak, 3) for r in per_core],
            model_vectors_per_s=round(sum(len(GRID) * g["trained_vectors"] / g["seconds"] for g in grids)),
            gflops=round(total_gflops, 1),
            fraction_of_matmul=round(total_gflops / peak, 3),
            exact_fraction_of_matmul=round(exact_gflops / peak, 3),
            fraction_of_per_core_matmul=round(total_gflops / per_core_peak, 3),
            fraction_of_numpy_matmul=round(total_gflops / numpy_peak, 3),
            fraction_of_per_core_numpy_matmul=round(total_gflops / per_core_numpy_peak, 3),
            fraction_of_onednn_matmul=round(total_gflops / onednn_peak, 3),
            fraction_of_per_core_onednn_matmul=round(total_gflops / per_core_onednn_peak, 3),
            fraction_of_best_matmul=round(total_gflops / best_peak, 3),
            best_matmul_reference=next(k for k, v in references.items() if v == best_peak),
            target_fraction=TARGET_FRACTION,
            fraction_met=total_gflops / best_peak >= TARGET_FRACTION,
            note="one grid per core at once, each on one torch thread (as asdlib.runner trains grids); "
                 "median epoch after the first; best of the interleaved repeats; fraction_of_matmul is against "
                 "PyTorch's matmul rate on all threads, fraction_of_per_core_matmul against one product per core at "
                 "once, the numpy ones against NumPy's BLAS (the grids' products on one thread), the onednn ones against "
                 "oneDNN; fraction_met: against the highest of the six (best_matmul_reference)",
        )
        ceiling = highest(*products_alone.values())
        emit(
            "products_alone",
            processes=len(grids),
            threads_each=1,
            networks=sum(len(s.inputs) for s in GRID),
            batch_size=config.batch_size,
            products_per_step=len(step_products(Config())),
            **{k: round(v, 1) for k, v in products_alone.items()},
            best_library=next(k for k, v in products_alone.items() if v == ceiling).removesuffix("_gflops"),
            ceiling_fraction=round(ceiling / best_peak, 3),
            best_matmul_reference=next(k for k, v in references.items() if v == best_peak),
            grid_fraction_of_products=round(total_gflops / products_alone["numpy_gflops"], 3),
            target_fraction=TARGET_FRACTION,
            target_reachable=ceiling / best_peak >= TARGET_FRACTION,
            note="every matrix product of one grid training step and nothing else, one process per core at once; "
                 "ceiling_fraction: the fastest library against the highest 2048² reference, the most "
                 "fraction_of_best_matmul could reach with the rest of the step free; grid_fraction_of_products: "
                 "the per-core grids against these products on NumPy's BLAS, as the grids multiply",
        )
    emit(
        "compiled",
        seconds_per_epoch=round(seconds["fused_compiled"], 3),
        speedup_vs_hand_written=round(fused_s / seconds["fused_compiled"], 3),
        fraction_of_matmul=round(trained * grid_flops / seconds["fused_compiled"] / 1e9 / peak, 3),
        exact_fraction_of_matmul=round(trained * grid_exact / seconds["fused_compiled"] / 1e9 / peak, 3),
        first_run_seconds_with_compilation=round(compile_s, 2),
        note="fused grid with compile=True vs compile=False (hand-written kernels), paired best-of",
    )
    if device.type == "cpu":
        one = trained / seconds["one_model"]
        for variant in ("as_shipped", "stripped"):
            ref = trained / seconds[f"dcase_{variant}"]
            emit(
                "dcase_reference",
                variant=variant,
                detect_anomaly=variant == "as_shipped",
                vectors=trained,
                vectors_per_s=round(ref),
                train_model_vectors_per_s=round(one),
                train_model_speedup=round(one / ref, 2),
                single_loop_speedup=round(trained / seconds["baseline"] / ref, 2),
                fused_grid_speedup_model_vectors=round(rate / ref, 2),
                fused_grid_speedup_baseline_equivalents=round(trained * grid_flops / base_flops / fused_s / ref, 2),
                note="baseline's per-step work as published; per-epoch plot, gamma fit and checkpoint not included",
            )
    emit("fused_vs_single", speedup_vs_single_loop=round(speedup, 2), train_model_vs_single_loop_baseline=round(seconds["baseline"] / seconds["one_model"], 2))
    del features, warm

    emit(
        "peak_memory",
        vectors=PAPER_VECTORS,
        input_tensors=len(INPUTS),
        models=len(GRID),
        trained_vectors=probe["trained_vectors"],
        **{k: round(v, 3) for k, v in probe.items() if k.endswith("_gb")},
        note="peak RSS of a fresh process that holds the inputs and trains the grid one epoch",
    )

    # paper-size throughput: fused always; the single loop only without --quick
    trained_p = probe["trained_vectors"]
    fused_rate = len(GRID) * trained_p / probe["fused_seconds"]
    figure = {"vectors": trained_p, "fused_seconds": round(probe["fused_seconds"], 2), "fused_model_vectors_per_s": round(fused_rate)}
    if "baseline_seconds" in probe:
        seq_s = probe["baseline_seconds"] + 8 * probe["dual_seconds"]
        figure.update(
            baseline_model_vectors_per_s=round(trained_p / probe["baseline_seconds"]),
            dual_model_vectors_per_s=round(trained_p / probe["dual_seconds"]),
            single_loop_same_models_model_vectors_per_s=round(len(GRID) * trained_p / seq_s),
            speedup_vs_single_loop=round(seq_s / probe["fused_seconds"], 2),
            fraction_of_matmul=round(trained_p * grid_flops / probe["fused_seconds"] / 1e9 / peak, 3),
        )
    emit("paper_size_epoch", **figure)

    paper_train = n_train(PAPER_VECTORS, Config())
    epochs = Config().epochs
    if "baseline_seconds" in probe:  # full-size epochs of both
        fused_s_per_vector = 1 / fused_rate
        single_s_per_vector = (probe["baseline_seconds"] + 8 * probe["dual_seconds"]) / trained_p / len(GRID)
        source = "the paper_size_epoch rates"
    else:  # --quick: the warm small-data figures of both (the quick paper-size epoch is mostly start-up)
        fused_s_per_vector = fused_s / trained / len(GRID)
        single_s_per_vector = sequential_s / trained / len(GRID)
        source = "the small-data fused_grid and single_loop rates (--quick)"
    total = PAPER_MACHINES * len(GRID) * epochs * paper_train  # model-vectors
    emit(
        "paper_projection",
        machines=PAPER_MACHINES,
        models=len(GRID),
        epochs=epochs,
        training_vectors=paper_train,
        fused_hours=round(total * fused_s_per_vector / 3600, 2),
        single_loop_hours=round(total * single_s_per_vector / 3600, 2),
        note=f"training only (no feature extraction or scoring), from {source}",
    )


if __name__ == "__main__":
    main()
