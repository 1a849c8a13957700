"""Feature throughput: the paper's input vectors from 8-channel WAV files, cold and cached.

Run ``.venv/bin/python benchmarks/bench_features.py [--clips N] [--jobs J]``. Prints one JSON line per
figure (a script, not a test). It simulates ``N`` 10 s clips (default 96) into a temporary folder,
then times :func:`asdlib.cache.extract_features` for the paper profile's four inputs per clip
(mic 0, mic 0 - mic 4, mic 2, mic 2 - mic 6: the baseline and both pairs of Table 1):

``features_cold``
    Empty cache: read the WAV, compute the log-mel spectrograms and vectors, write the cache; once
    for the first quarter of the clips and once for the rest, in separate calls (each call starts
    its worker processes, which import librosa: a fixed cost of seconds per call). The difference
    gives the per-clip rate without that fixed cost (``marginal_clips_per_s``) and the fixed cost
    per call (``call_overhead_s``).
``features_cached``
    All clips again: everything comes from the cache.
``paper_projection``
    Seconds for the paper profile's features (4 machine types x 1,200 clips, extracted in 8 calls:
    train and test per machine type) = 8 x overhead + 4,800 / marginal rate, against the target of
    5 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from asdlib.cache import FeatureCache, extract_features
from asdlib.config import Config
from asdlib.modelspec import ModelSpec, grid_inputs
from asdlib.simulate import simulate_dataset

PAPER_CLIPS = 4 * 1200
PAPER_CALLS = 8  # the runner extracts train and test features per machine type
TARGET_SECONDS = 300.0


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=96, help="10 s clips to time (default 96, at least 8)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    args = parser.parse_args()
    specs = [ModelSpec.baseline(0), ModelSpec.dual(0, 4, 1.0), ModelSpec.dual(2, 6, 1.0)]
    inputs = grid_inputs(specs)
    config = Config()
    with tempfile.TemporaryDirectory() as tmp:
        table = simulate_dataset(Path(tmp) / "data", machines=["fan"], machine_ids=[0], n_normal=args.clips, n_abnormal=0,
                                 duration_s=10.0, n_jobs=args.jobs, progress=False)
        paths = [str(Path(tmp) / "data" / p) for p in table["path"]]
        cache = FeatureCache(Path(tmp) / "cache")
        emit(figure="setup", clips=len(paths), seconds_per_clip=10.0, inputs=[s.name for s in inputs], jobs=args.jobs, cpus=os.cpu_count())
        small, rest = paths[: len(paths) // 4], paths[len(paths) // 4 :]
        timings = []
        for part in (small, rest):
            start = time.perf_counter()
            extract_features(part, inputs, config, cache=cache, n_jobs=args.jobs, progress=False)
            timings.append(time.perf_counter() - start)
        marginal = (len(rest) - len(small)) / max(timings[1] - timings[0], 1e-9)
        overhead = max(0.0, timings[0] - len(small) / marginal)
        emit(figure="features_cold", clips=len(paths), seconds=round(sum(timings), 3), clips_per_s=round(len(paths) / sum(timings), 2),
             calls=[{"clips": len(small), "seconds": round(timings[0], 3)}, {"clips": len(rest), "seconds": round(timings[1], 3)}],
             marginal_clips_per_s=round(marginal, 2), call_overhead_s=round(overhead, 2))
        start = time.perf_counter()
        fs = extract_features(paths, inputs, config, cache=cache, n_jobs=args.jobs, progress=False)
        seconds = time.perf_counter() - start
        n_vec = sum(v.shape[0] for v in fs.vectors.values())
        emit(figure="features_cached", clips=len(paths), seconds=round(seconds, 3), clips_per_s=round(len(paths) / seconds, 2), vectors=n_vec)
        projected = PAPER_CALLS * overhead + PAPER_CLIPS / marginal
        emit(figure="paper_projection", clips=PAPER_CLIPS, calls=PAPER_CALLS, inputs_per_clip=len(inputs), projected_seconds_cold=round(projected, 1),
             target_seconds=TARGET_SECONDS, target_met=projected <= TARGET_SECONDS)


if __name__ == "__main__":
    main()
