"""Sanity experiment for the simulator: do the detectors see what it puts in?

Run ``.venv/bin/python benchmarks/sanity_simulator.py [--machines fan pump ...] [--n-train 100]``.
Prints one JSON line per machine type and score kind (a script, not a test: it trains real models for
a few minutes). For each machine type it simulates 10 s clips at 0 dB SNR, trains the DCASE baseline
(mic 0) and the dual AE (pair 0-4, α = 1) on ``n_train`` normal clips, and scores a test set of normal
clips, spectral anomalies and spatial anomalies:

``baseline_auc``
    AUC (%) of the baseline, separately against spectral and against spatial anomalies. The check:
    clearly better than chance (> 50) on spectral anomalies.
``dual_ref_part_auc`` / ``dual_dif_part_auc``
    AUC (%) of the dual AE's two score parts alone (A_ref, the reference channel's, and A_dif, the
    difference channel's; eq. 7 before the α-combination). The check: on spatial anomalies the
    difference channel's part carries signal (AUC clearly above 50) that the reference channel's
    part lacks or has less of.
``dual_auc``
    AUC (%) of the combined score A_ref + α A_dif.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from asdlib.config import Config
from asdlib.data import scan_mimii, split_machine
from asdlib.detector import AutoencoderDetector
from asdlib.metrics import roc_auc
from asdlib.simulate import MACHINES, simulate_dataset


def auc_by_kind(y: np.ndarray, kinds: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    out = {}
    for kind in ("spectral", "spatial"):
        sel = (y == 0) | (kinds == kind)
        out[kind] = round(100 * roc_auc(y[sel], scores[sel]), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", nargs="+", default=list(MACHINES))
    parser.add_argument("--n-train", type=int, default=100, help="normal training clips per machine type (default 100)")
    parser.add_argument("--n-test", type=int, default=80, help="test clips, half anomalous, half of those spatial (default 80)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    config = Config(epochs=args.epochs)
    n_ab = args.n_test // 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sim"
        start = time.perf_counter()
        meta = simulate_dataset(root, machines=args.machines, n_normal=args.n_train + args.n_test - n_ab, n_abnormal=n_ab,
                                duration_s=10.0, seed=args.seed, n_jobs=args.jobs, progress=False)
        kind_of = dict(zip(meta["path"], meta["anomaly_kind"]))
        print(json.dumps({"figure": "setup", "clips": len(meta), "simulate_seconds": round(time.perf_counter() - start, 1),
                          "n_train": args.n_train, "n_test": args.n_test, "epochs": args.epochs, "snr_db": 0}), flush=True)
        manifest = scan_mimii(root)
        for machine in args.machines:
            split = split_machine(manifest, machine, n_train=args.n_train, n_test=args.n_test, seed=args.seed)
            y = (split.test["label"] != "normal").to_numpy().astype(int)
            kinds = np.array([kind_of[p] for p in split.test["relpath"]])
            t0 = time.perf_counter()
            base = AutoencoderDetector("baseline", mics=(0,), config=config, random_state=args.seed, cache=Path(tmp) / "cache", progress=False).fit(split.train)
            dual = AutoencoderDetector("dual", mics=(0, 4), alpha=1.0, config=config, random_state=args.seed, cache=Path(tmp) / "cache", progress=False).fit(split.train)
            base_scores = base.score_all(split.test)
            parts = dual.score_parts(split.test)
            dual_scores = dual.score_all(split.test)
            for kind in base_scores:
                print(json.dumps({
                    "figure": "sanity", "machine": machine, "score": kind,
                    "baseline_auc": auc_by_kind(y, kinds, base_scores[kind]),
                    "dual_ref_part_auc": auc_by_kind(y, kinds, np.asarray(parts[kind][0])),
                    "dual_dif_part_auc": auc_by_kind(y, kinds, np.asarray(parts[kind][1])),
                    "dual_auc": auc_by_kind(y, kinds, dual_scores[kind]),
                    "train_seconds": round(time.perf_counter() - t0, 1),
                }), flush=True)


if __name__ == "__main__":
    main()
