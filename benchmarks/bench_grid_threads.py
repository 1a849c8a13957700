"""Torch threads per grid task: one fused grid epoch with 1 and with 2 threads (prints JSON).

``asdlib.runner.TORCH_THREADS`` fixes the thread count of every grid task (local or on Dask), so
that a distributed run gives exactly a local run's metrics. This script shows what that choice
costs or saves on this machine and whether the thread count changes the trained weights here
(it does since one thread runs the BatchNorm layers as :mod:`asdlib.train_kernels`' loops):
the ``book`` profile's grid of one machine type (random vectors of its size: 100 clips x 309
vectors), one epoch, repeated twice with 1 and 2 threads interleaved; the best time of each.

Run ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_grid_threads.py`` (about 2-6 minutes on
2 cores).
"""
from __future__ import annotations

import dataclasses
import json
import time

import torch

from asdlib.experiments import profile
from asdlib.fused import train_fused
from asdlib.modelspec import grid_inputs


def main() -> None:
    spec = profile("book")
    config = dataclasses.replace(spec.model_config(), epochs=1)
    specs = spec.model_specs()
    gen = torch.Generator().manual_seed(0)
    n = 100 * 309
    features = {s.name: torch.randn(n, 640, generator=gen) for s in grid_inputs(specs)}
    times: dict[int, list[float]] = {1: [], 2: []}
    weights = {}
    for _ in range(2):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            start = time.perf_counter()
            trained = train_fused(specs, [0] * len(specs), features, config, progress=False)
            times[threads].append(time.perf_counter() - start)
            weights[threads] = [p.detach().clone() for model, _ in trained for p in model.parameters()]
    same = all(torch.equal(a, b) for a, b in zip(weights[1], weights[2]))
    print(json.dumps({"figure": "grid_epoch_threads", "models": len(specs), "vectors": n,
                      "seconds_1_thread": round(min(times[1]), 2), "seconds_2_threads": round(min(times[2]), 2),
                      "ratio_2_over_1": round(min(times[2]) / min(times[1]), 3), "identical_weights": same}))


if __name__ == "__main__":
    main()
