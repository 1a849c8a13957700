"""The direction sweep: move a simulated spatial anomaly around the array and score it with trained detectors.

For one machine unit, the same anomalous sounds are placed in turn at each direction around the
array (at a fixed distance), so that only the anomaly's direction changes between the points of a
curve; normal clips are shared by every direction. The clips are written once into the run's folder
(``<run>/sweep/<key>/``, atomically, reused by later calls) and scored with the detectors of a
finished grid (:meth:`asdlib.results.ResultsStore.detector`): no retraining.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .fileio import atomic_path, sha256_text
from .metrics import roc_auc
from .spatial import band_gain_db

__all__ = ["sweep_clips", "direction_sweep", "best_pair_by_direction", "pair_facing", "sweep_reading"]


def _write_clip(path: Path, audio: np.ndarray, sr: int) -> str:
    import soundfile as sf

    if not path.exists():
        with atomic_path(path, suffix=".wav") as tmp:
            sf.write(tmp, audio.T, sr, subtype="PCM_16", format="WAV")
    return str(path)


def sweep_clips(folder: str | Path, machine: str, machine_id: int, azimuths_deg: Sequence[float], *, distance_m: float | None = None,
                n_normal: int = 24, n_per_azimuth: int = 6, snr_db: float = 6.0, duration_s: float = 10.0,
                seed: int = 50_000) -> pd.DataFrame:
    """Simulate (or reuse) the sweep's clips.

    Parameters
    ----------
    folder : path
        Where the clips go (a sub-folder named by a hash of the settings is used).
    machine, machine_id : str, int
        The simulated unit.
    azimuths_deg : sequence of float
        Anomaly directions, 0° = microphone 0, counter-clockwise.
    distance_m : float, optional
        Anomaly distance from the array centre; None: the machine's own distance.
    n_normal, n_per_azimuth : int
        Normal clips, and anomalous clips per direction (the same sounds at every direction).
    snr_db, duration_s : float
        As :func:`asdlib.simulate.simulate_clip`.
    seed : int
        Normal clips use seeds ``seed + k``, anomalous ones ``seed + 10_000 + k``.

    Returns
    -------
    pandas.DataFrame
        ``path``, ``y`` (1 anomalous), ``azimuth`` (NaN for normal clips); plus attributes
        ``machine_azimuth``, ``machine_distance`` (m) and ``distance`` (the anomaly's, m) in ``.attrs``.
    """
    from . import simulate

    machine_pos = simulate.clip_layout(machine, machine_id, seed=0)["machine_position"]
    machine_az = float(np.rad2deg(np.arctan2(machine_pos[1], machine_pos[0]))) % 360
    distance = float(distance_m or np.hypot(machine_pos[0], machine_pos[1]))
    key = sha256_text(repr((machine, machine_id, list(map(float, azimuths_deg)), distance, n_normal, n_per_azimuth, snr_db,
                            duration_s, seed, getattr(simulate, "DATA_VERSION", ""))), 10)
    out = Path(folder) / key
    sr = simulate.SR
    clips = []
    for k in range(n_normal):
        path = out / f"normal_{k:03d}.wav"
        if not path.exists():
            audio, _ = simulate.simulate_clip(machine, machine_id, snr_db=snr_db, seed=seed + k, duration_s=duration_s)
            _write_clip(path, audio, sr)
        clips.append({"path": str(path), "y": 0, "azimuth": np.nan})
    for az in azimuths_deg:
        position = (distance * np.cos(np.deg2rad(az)), distance * np.sin(np.deg2rad(az)), float(machine_pos[2]))
        for k in range(n_per_azimuth):
            path = out / f"spatial_{float(az):05.1f}_{k:03d}.wav"
            if not path.exists():
                audio, _ = simulate.simulate_clip(machine, machine_id, snr_db=snr_db, anomaly="spatial", seed=seed + 10_000 + k,
                                                  duration_s=duration_s, anomaly_position=position)
                _write_clip(path, audio, sr)
            clips.append({"path": str(path), "y": 1, "azimuth": float(az)})
    frame = pd.DataFrame(clips)
    frame.attrs.update(machine_azimuth=machine_az, machine_distance=float(np.hypot(machine_pos[0], machine_pos[1])), distance=distance)
    return frame


def direction_sweep(store, clips: pd.DataFrame, machine: str, seed: int, labels: dict[str, str], device: str = "auto") -> pd.DataFrame:
    """AUC (%) of each detector against the anomalies of each direction (the normal clips shared).

    Parameters
    ----------
    store : asdlib.results.ResultsStore
        A finished grid trained on ``machine``.
    clips : pandas.DataFrame
        From :func:`sweep_clips`.
    machine, seed : str, int
        Whose detectors.
    labels : dict
        Model name -> label in the result (e.g. ``{"dual-0-4-a2": "0-4", "baseline-mic0": "baseline"}``).
    device : str

    Returns
    -------
    pandas.DataFrame
        model (label), azimuth, score, AUC.
    """
    rows = []
    normal = (clips["y"] == 0).to_numpy()
    for name, label in labels.items():
        scores = store.detector(machine, seed, name, device=device).score_all(clips["path"])
        for az in sorted(clips["azimuth"].dropna().unique()):
            sel = normal | (clips["azimuth"] == az).to_numpy()
            for kind, s in scores.items():
                s = np.asarray(s)
                rows.append({"model": label, "azimuth": az, "score": kind, "AUC": 100 * roc_auc(clips.loc[sel, "y"], s[sel])})
    return pd.DataFrame(rows)


def best_pair_by_direction(sweep: pd.DataFrame, score: str) -> pd.DataFrame:
    """Per direction: the best pair (pairs tied for the best joined by ``" = "``), its AUC, the
    baseline's, and the gain (points)."""
    by_pair = sweep[sweep["score"] == score].pivot(index="azimuth", columns="model", values="AUC")
    pairs = by_pair.drop(columns="baseline")
    best = pairs.max(axis=1)
    tied = pairs.apply(lambda row: " = ".join(p for p in row.index if np.isclose(row[p], best[row.name], rtol=0, atol=1e-9)), axis=1)
    return pd.DataFrame({"best pair": tied, "best AUC": best, "baseline": by_pair["baseline"], "gain": best - by_pair["baseline"]})


def pair_facing(azimuth_deg: float, pairs: Sequence[str]) -> str:
    """The opposite pair (``"a-b"``) whose axis points closest to ``azimuth_deg`` (mic m at m × 45°)."""
    def off_axis(pair: str) -> float:
        a = int(pair.split("-")[0])
        d = abs((azimuth_deg - 45.0 * a) % 180.0)
        return min(d, 180.0 - d)

    return min(pairs, key=off_axis)


#: A pair whose mean gain towards the machine (100 Hz–8 kHz) is at most this (dB re one microphone)
#: counts as cancelling the machine's sound in :func:`sweep_reading`.
CANCELS_DB = -6.0


def sweep_reading(best: pd.DataFrame, machine_azimuth: float, n_anomalous: int | None = None, n_normal: int | None = None,
                  n_seeds: int = 1, score: str | None = None, machine_distance: float | None = None) -> str:
    """Sentences read off :func:`best_pair_by_direction`'s table.

    They say how often the best pair is the one whose axis points at the anomaly, and how often it is
    the one that hears the machine least (the lowest :func:`asdlib.spatial.band_gain_db` towards the
    machine at ``machine_azimuth`` and ``machine_distance``, None = far field); when even that pair
    does not cancel the machine (a gain above :data:`CANCELS_DB`), they say that the sweep does not
    test the expectation that cancelling the machine makes an anomaly stand out. With ``n_anomalous`` and
    ``n_normal`` (the clips behind each direction's AUC, a mean over ``n_seeds`` training seeds), a last
    sentence says how coarse each AUC is: one anomalous clip carries ``100 / n_anomalous`` points.
    ``score`` names the score the table is of, at the start of the text.
    """
    counts = best["best pair"].value_counts()
    n = len(best)
    candidates = sorted({p for tied in best["best pair"] for p in tied.split(" = ")} | {"0-4", "1-5", "2-6", "3-7"})
    facing = [pair_facing(az, candidates) for az in best.index]
    winners = [p.split(" = ") for p in best["best pair"]]
    n_facing = int(sum(f in w for f, w in zip(facing, winners)))  # a tie counts if it includes the facing pair
    share = {p: sum(p in w for w in winners) / n for p in candidates}  # how often each pair is among the best
    chance = sum(share[f] for f in facing)  # the facing count expected if the same winners fell on the directions at random
    gains = {p: band_gain_db(tuple(int(m) for m in p.split("-")), machine_azimuth, machine_distance) for p in candidates}
    quietest = min(candidates, key=gains.__getitem__)
    n_quietest = int(sum(quietest in w for w in winners))
    if len(counts) == 1:
        text = (f"pair {counts.index[0]} is the best at all {n} directions: on this simulated unit (machine at {machine_azimuth:.0f}°) "
                f"the best pair does not follow the anomaly's direction, against what the dipole patterns alone would suggest.")
    else:
        text = ("the best pair changes with the anomaly's direction (" + ", ".join(f"{p}: {k} of {n} directions" for p, k in counts.items())
                + f"); it is the pair whose axis points at the anomaly in {n_facing} of {n} directions, against {chance:.1f} "
                "if the same winners fell on the directions at random.")
    text += (f" The pair that hears the machine least ({quietest}, {gains[quietest]:+.1f} dB towards it over 100 Hz–8 kHz) "
             f"is the best at {n_quietest} of {n} directions")
    if gains[quietest] > CANCELS_DB:
        text += (f"; but no pair cancels this machine's sound (every pair's gain towards it is between {min(gains.values()):+.1f} and "
                 f"{max(gains.values()):+.1f} dB), so the sweep does not test whether cancelling the machine makes an anomaly stand out.")
    else:
        text += ": cancelling the machine does not make the anomaly stand out here." if n_quietest == 0 else "."
    text += (f" Averaged over directions, the best pair at each direction beats the baseline by {best['gain'].mean():+.1f} AUC points "
             f"(picked per direction on the same clips, hence optimistic); the gain is positive at {int((best['gain'] > 0).sum())} of {n} directions.")
    if n_anomalous and n_normal:
        source = "one training seed" if n_seeds == 1 else f"the mean over {n_seeds} training seeds, each"
        text += (f" Each AUC here is {source} on {n_anomalous} anomalous against {n_normal} normal clips: "
                 f"one anomalous clip moving from the top to the bottom of the ranking changes it by up to {100 / n_anomalous:.1f} points, "
                 "so a difference of a few points between pairs at one direction is not evidence on its own.")
    if score is not None:
        from .book import score_name

        return f"With the {score_name(score)} score, {text}"
    return text[0].upper() + text[1:]


def run_direction_sweep(store, spec, machine: str = "fan", machine_id: int = 0, azimuths_deg: Sequence[float] = tuple(range(0, 360, 30)),
                        distance_m: float | None = None, n_normal: int = 24, n_per_azimuth: int = 6, snr_db: float | None = None,
                        device: str = "auto") -> dict:
    """The dipole page's sweep in one call: clips (written into the run's folder), AUCs of every seed's
    detectors, the best pair per direction and sentences read off it, per score.

    ``snr_db`` None: the median of the SNRs the detectors were trained at (the book profile's 0 dB), so
    that only the anomaly's direction differs from the training data.

    Returns
    -------
    dict
        ``clips``; ``by_seed`` (:func:`direction_sweep` with a ``seed`` column); ``result``, its mean
        over seeds; ``best`` (:func:`best_pair_by_direction` of each score, side by side, the score as
        the columns' first level); ``reading`` (:func:`sweep_reading` of each score) and ``setup`` (one
        line describing the clips and the detectors).
    """
    settings = spec.simulator_settings()
    trained_snrs = settings["snrs_db"]
    snr_db = float(np.median(trained_snrs)) if snr_db is None else float(snr_db)
    clips = sweep_clips(store.path / "sweep", machine, machine_id, azimuths_deg, distance_m=distance_m, n_normal=n_normal,
                        n_per_azimuth=n_per_azimuth, snr_db=snr_db, duration_s=settings["duration_s"])
    labels = {ms.name: ("baseline" if ms.kind == "baseline" else ms.mic_pair) for ms in spec.model_specs()}
    by_seed = pd.concat([direction_sweep(store, clips, machine, seed, labels, device=device).assign(seed=seed) for seed in spec.seeds],
                        ignore_index=True)
    result = by_seed.groupby(["model", "azimuth", "score"], sort=False)["AUC"].mean().reset_index()
    scores = [s for s in spec.scores if s in set(result["score"])]
    best = pd.concat({s: best_pair_by_direction(result, s) for s in scores}, axis=1)
    reading = " ".join(sweep_reading(best[s], clips.attrs["machine_azimuth"], n_per_azimuth, n_normal, len(spec.seeds), score=s,
                                     machine_distance=clips.attrs["machine_distance"]) for s in scores)
    trained = ", ".join(f"{v:g}" for v in trained_snrs)
    at = "the SNR the detectors were trained at" if set(trained_snrs) == {snr_db} else f"while the detectors were trained at {trained} dB"
    seeds = (f"the grid's detectors of seed {spec.seeds[0]}" if len(spec.seeds) == 1
             else f"the grid's detectors of seeds {', '.join(map(str, spec.seeds))} (AUC: their mean)")
    setup = (f"{machine} unit {machine_id}: {n_normal} normal clips and {n_per_azimuth} anomalous clips per direction at "
             f"{snr_db:g} dB SNR, {at}; scored by {seeds}")
    return {"clips": clips, "by_seed": by_seed, "result": result, "best": best, "reading": reading, "setup": setup}
