"""The paper's training of one machine type on a CUDA GPU, in a fresh process: compilation included.

Run ``python benchmarks/gpu_paper_grid.py [--compile {auto,on,off}] [--epochs 50]`` on a machine
with a CUDA GPU. It trains the 9-model grid of ``bench_training.GRID`` with ``train_fused`` (CUDA
graphs on) for 50 epochs on synthetic vectors of the paper's size (309,000 per input, batch 256,
1,087 steps per epoch) and prints one JSON line:

``training_seconds``
    Wall time of ``train_fused``, GPU synchronised: set-up, the first epoch (which compiles the
    kernels when compiling, and captures the CUDA graph), every later epoch. The target is 60 s
    on an H100. ``benchmarks/bench_gpu.py`` times the same training after other runs in its
    process, whose compiled kernels it reuses; this script starts from nothing (torch's on-disk
    compilation cache aside: point ``TORCHINDUCTOR_CACHE_DIR`` and ``TRITON_CACHE_DIR`` at empty
    folders for a cold start).
``first_epoch_seconds``, ``median_later_epoch_seconds``, ``setup_seconds``
    What the first epoch took, the steady epoch (validation included), and the wall time outside
    the epochs: initial weights, stacking, copying the trained weights back, and, in a fresh
    process, mostly torch importing ``torch._dynamo`` in the first ``torch.optim.Adam`` (seconds,
    once per process).
``final_train_loss``, ``final_val_loss``
    The models' mean losses after the last epoch: equal across code versions whose training
    arithmetic is the same.

The vectors are synthetic (``bench_training.synthetic_features``): the time does not depend on
their values.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import GRID, PAPER_VECTORS, emit, synthetic_features  # noqa: E402

from asdlib.config import Config  # noqa: E402
from asdlib.fused import resolve_compile, train_fused  # noqa: E402

TARGET_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                        help="compile the BatchNorm/ReLU kernels: auto = the library's default (on for CUDA)")
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_paper_grid: error: no CUDA GPU here; run benchmarks/bench_training.py for the CPU", file=sys.stderr)
        raise SystemExit(2)
    device = torch.device("cuda")
    compile = {"auto": None, "on": True, "off": False}[args.compile]
    features = synthetic_features(PAPER_VECTORS, device)
    torch.cuda.synchronize()
    start = time.perf_counter()
    trained = train_fused(GRID, [0] * len(GRID), features, Config(epochs=args.epochs, batch_size=256), progress=False,
                          compile=compile, cuda_graphs=True)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    epochs = trained[0][1].epoch_seconds
    emit("gpu_paper_grid", gpu=torch.cuda.get_device_name(device), torch=torch.__version__,
         compile=resolve_compile(compile, device), models=len(GRID), epochs=args.epochs, vectors=PAPER_VECTORS,
         training_seconds=round(seconds, 1), target_seconds=TARGET_SECONDS,
         target_met=bool(seconds <= TARGET_SECONDS) if args.epochs == 50 else None,
         first_epoch_seconds=round(epochs[0], 3),
         median_later_epoch_seconds=round(statistics.median(epochs[1:]), 4) if len(epochs) > 1 else None,
         setup_seconds=round(seconds - sum(epochs), 1),
         final_train_loss=round(sum(h.train_loss[-1] for _, h in trained) / len(trained), 3),
         final_val_loss=round(sum(h.val_loss[-1] for _, h in trained) / len(trained), 3))


if __name__ == "__main__":
    main()
