"""GPU training: the paper's 9-model grid of one machine type on a CUDA GPU, eager and as CUDA graphs.

Run ``python benchmarks/bench_gpu.py [--quick]`` on a machine with a CUDA GPU (a script, not a
test; about 2 minutes on an H100, ``--quick`` well under one). Prints one JSON line per figure:

``machine``
    torch version, GPU name and memory.
``matmul_rate``
    float32 ``(4096, 4096) @ (4096, 4096)`` (TF32 off, torch's default), best of 10: the
    reference rate.
``cuda_graph_equivalence``
    The 9-model grid (baseline on mic 0; dual AEs on pairs 0-4 and 2-6, α in {0.1, 0.5, 2, 10})
    trained 3 epochs from the same seeds on 20,000 synthetic vectors, with the step's kernels
    launched one by one (``eager``) and each other way: ``cuda_graphs`` (the same kernels
    replayed as a CUDA graph: expect 0) and ``cuda_graphs_compiled`` (the BatchNorm/ReLU passes
    as ``torch.compile`` d kernels too, then captured: other kernels, the same formulas, so the
    differences of rounding that chaotic training amplifies). The largest relative difference of
    the per-epoch training and validation losses and the largest absolute difference of the
    trained weights, in float64 and float32.
``epoch``
    Seconds per epoch of the grid on paper-size inputs (309,000 vectors per input: 1,000 training
    clips x 309 vectors, batch 256, 1,087 steps), each way: a one-epoch run first (warm-up,
    capture, compilation), then a three-epoch run; half their difference is the steady epoch.
``paper_grid``
    The paper's training of one machine type: the 9 models, 50 epochs on the paper-size inputs,
    in the fastest way of ``epoch`` (``--both``: the two fastest); the wall time of
    ``train_fused`` (the graph's capture included; the compiled kernels are those the earlier
    figures compiled in this process, so compilation is not: ``gpu_paper_grid.py`` times the same
    training in a fresh process, against the target of 60 s on an H100), model-vectors/s, and
    the projection to the paper's 4 machine types x 5 seeds.

The vectors are synthetic (random log-mel-like values, ``bench_training.synthetic_features``):
the arithmetic, and so the time, does not depend on their values. ``asdlib run --profile paper
--machines fan --seeds 0 --device cuda`` times the same training on simulated clips, features and
scoring included (its run log, ``grid_finished``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import GRID, PAPER_VECTORS, emit, matmul_rate, n_train, synthetic_features, train_flops  # noqa: E402

from asdlib.config import Config  # noqa: E402
from asdlib.fused import n_steps_per_epoch, train_fused  # noqa: E402

PAPER_MACHINES, PAPER_SEEDS = 4, 5


def timed_grid(features, config: Config, *, cuda_graphs: bool, compile: bool = False):
    """``(seconds, trained)``: wall time of ``train_fused`` on the 9-model grid, GPU synchronised."""
    torch.cuda.synchronize()
    start = time.perf_counter()
    trained = train_fused(GRID, [0] * len(GRID), features, config, progress=False, compile=compile, cuda_graphs=cuda_graphs)
    torch.cuda.synchronize()
    return time.perf_counter() - start, trained


def largest_differences(a, b) -> dict[str, float]:
    """Largest relative loss difference and absolute weight difference between two trained grids."""
    def rel(x, y):
        return abs(x - y) / max(abs(x), abs(y), 1e-300)
    loss = max(rel(x, y) for (_, ha), (_, hb) in zip(a, b) for x, y in zip(ha.train_loss + ha.val_loss, hb.train_loss + hb.val_loss))
    weight = max(float((pa - pb).abs().max()) for (ma, _), (mb, _) in zip(a, b)
                 for pa, pb in zip(ma.state_dict().values(), mb.state_dict().values()) if pa.is_floating_point())
    return {"max_relative_loss_difference": loss, "max_weight_difference": weight}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1/10 of the paper-size vectors and 5 epochs for the paper grid")
    parser.add_argument("--both", action="store_true", help="the paper grid in the two fastest ways, not only the fastest")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu: error: no CUDA GPU here; run benchmarks/bench_training.py for the CPU", file=sys.stderr)
        raise SystemExit(2)
    device = torch.device("cuda")
    props = torch.cuda.get_device_properties(device)
    emit("machine", torch=torch.__version__, gpu=props.name, memory_gb=round(props.total_memory / 2**30, 1),
         multiprocessors=props.multi_processor_count)

    emit("matmul_rate", gflops=round(matmul_rate(device, n=4096)), tf32=torch.backends.cuda.matmul.allow_tf32)

    small = Config(epochs=3, batch_size=256)
    ways = {"eager": (False, False), "cuda_graphs": (True, False), "cuda_graphs_compiled": (True, True)}
    for dtype in (torch.float64, torch.float32):
        feats = {k: v.to(dtype) for k, v in synthetic_features(20_000, device, seed=1).items()}
        _, eager = timed_grid(feats, small, cuda_graphs=False)
        for way in ("cuda_graphs", "cuda_graphs_compiled"):
            _, other = timed_grid(feats, small, cuda_graphs=True, compile=ways[way][1])
            emit("cuda_graph_equivalence", way=way, dtype=str(dtype).removeprefix("torch."), epochs=small.epochs, vectors=20_000,
                 **largest_differences(eager, other))
        del feats

    n_vectors = PAPER_VECTORS // (10 if args.quick else 1)
    features = synthetic_features(n_vectors, device)
    steps = n_steps_per_epoch(n_vectors, small)
    per_epoch = {}
    for way, (graphs, compile) in ways.items():
        # one epoch first: warm-up, capture and compilation (torch keeps compiled kernels for the
        # process), then three: the difference is two epochs of steady state
        one, _ = timed_grid(features, Config(epochs=1, batch_size=256), cuda_graphs=graphs, compile=compile)
        three, _ = timed_grid(features, small, cuda_graphs=graphs, compile=compile)
        per_epoch[way] = (three - one) / 2
        emit("epoch", way=way, vectors=n_vectors, steps_per_epoch=steps, first_one_epoch_run_seconds=round(one, 2),
             three_epochs_seconds=round(three, 2), seconds_per_epoch=round(per_epoch[way], 3),
             steps_per_second=round(steps / per_epoch[way]))

    paper = Config(epochs=5 if args.quick else 50, batch_size=256)
    n_train_vectors = n_train(n_vectors, paper)
    model_vectors = n_train_vectors * paper.epochs * len(GRID)
    flops = sum(train_flops(len(s.inputs), paper) for s in GRID) * n_train_vectors * paper.epochs
    for way in sorted(per_epoch, key=per_epoch.get)[: 2 if args.both else 1]:
        seconds, trained = timed_grid(features, paper, cuda_graphs=ways[way][0], compile=ways[way][1])
        emit("paper_grid", way=way, models=len(GRID), epochs=paper.epochs, vectors=n_vectors, training_seconds=round(seconds, 1),
             model_vectors_per_second=round(model_vectors / seconds), tflops=round(flops / seconds / 1e12, 2),
             projected_paper_hours=round(seconds * PAPER_MACHINES * PAPER_SEEDS / 3600, 2),
             final_train_loss=round(sum(h.train_loss[-1] for _, h in trained) / len(trained), 3))


if __name__ == "__main__":
    main()
