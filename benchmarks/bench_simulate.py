"""Simulator throughput: clips per second of 10 s, 8-channel audio written as a MIMII-layout data set.

Run ``.venv/bin/python benchmarks/bench_simulate.py [--clips 96] [--jobs 2] [--duration 10]``.
Prints one JSON line (a script, not a test).

It times :func:`asdlib.simulate.simulate_dataset` writing ``--clips`` clips (all four machine
types, IDs 0, 2, 4, 6, one SNR, normal and abnormal clips in the default data set's proportion
1,100 : 100) into a fresh temporary folder, with ``--jobs`` processes (process start-up included)
and with one process. ``--baseline FILE`` also times another simulator module, loaded from a
stand-alone ``.py`` file (e.g. the one-file simulator before issue 13:
``git show <commit>:asdlib/simulate.py > /tmp/simulate_old.py``), on the same clips, interleaved
with ours ``--repeats`` times; the medians and the paired ratios are reported. ``cpu_ms_per_clip`` is
the CPU time (this process and its workers) per clip: on a machine loaded by other work it is a
steadier figure than the wall-clock rate, and ``n_jobs * 1000 / cpu_ms_per_clip`` estimates the
rate on idle cores.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import sys
import tempfile
import time

from asdlib import simulate
from asdlib.simulate import MACHINES


def _load(path: str):
    spec = importlib.util.spec_from_file_location("_bench_simulate_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling (worker processes) look it up
    spec.loader.exec_module(module)
    return module


def _counts(n_clips: int) -> tuple[int, int]:
    """(n_normal, n_abnormal) per machine type for about ``n_clips`` clips in all, 11 : 1."""
    per_machine = max(1, round(n_clips / len(MACHINES)))
    n_abnormal = max(1, round(per_machine / 12))
    return per_machine - n_abnormal, n_abnormal


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _time(module, n_normal: int, n_abnormal: int, duration_s: float, n_jobs: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) to write the data set."""
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as root:
        start, cpu = time.perf_counter(), _cpu()
        module.simulate_dataset(root, machines=MACHINES, snrs_db=(0.0,), n_normal=n_normal, n_abnormal=n_abnormal,
                                duration_s=duration_s, seed=0, n_jobs=n_jobs, progress=False)
        return time.perf_counter() - start, _cpu() - cpu


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=96, help="clips per timing (default 96)")
    p.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per clip (default 10)")
    p.add_argument("--repeats", type=int, default=1, help="timings per variant; medians reported (default 1)")
    p.add_argument("--baseline", help="a stand-alone simulator .py file to time on the same clips")
    p.add_argument("--no-single", action="store_true", help="skip the one-process timing")
    args = p.parse_args(argv)

    n_normal, n_abnormal = _counts(args.clips)
    n = (n_normal + n_abnormal) * len(MACHINES)
    variants = {"ours": simulate}
    if args.baseline:
        variants["baseline"] = _load(args.baseline)
    times: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for name, module in variants.items():
            for key, jobs in ((name, args.jobs), (f"{name}_1proc", 1)):
                if key.endswith("_1proc") and (args.no_single or args.jobs == 1):
                    continue  # not asked for, or the same as the first timing
                wall, cpu_s = _time(module, n_normal, n_abnormal, args.duration, jobs)
                times.setdefault(key, []).append(wall)
                cpu.setdefault(key, []).append(cpu_s)
    rate = {k: n / statistics.median(v) for k, v in times.items()}
    cpu_ms = {k: 1000 * statistics.median(v) / n for k, v in cpu.items()}
    out = {
        "benchmark": "simulate",
        "clips_per_s": round(rate["ours"], 2),
        "clips_per_s_single_process": round(rate["ours_1proc"], 2) if "ours_1proc" in rate else None,
        "cpu_ms_per_clip": round(cpu_ms["ours"], 1),
        "n_jobs": args.jobs,
        "duration_s": args.duration,
        "n_clips": n,
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "data_version": simulate.DATA_VERSION,
        "target_clips_per_s": 25,
    }
    if args.baseline:
        out["baseline_clips_per_s"] = round(rate["baseline"], 2)
        out["ratio_vs_baseline"] = round(rate["ours"] / rate["baseline"], 2)
        out["baseline_cpu_ms_per_clip"] = round(cpu_ms["baseline"], 1)
        out["cpu_ratio_vs_baseline"] = round(cpu_ms["baseline"] / cpu_ms["ours"], 2)
        if "baseline_1proc" in rate:
            out["baseline_clips_per_s_single_process"] = round(rate["baseline_1proc"], 2)
            out["ratio_vs_baseline_single_process"] = round(rate["ours_1proc"] / rate["baseline_1proc"], 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
