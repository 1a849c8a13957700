"""Figures of the book: the array, Figure 1's input vectors, loss curves, thresholds, Figure 5.

Each function draws on a new or given matplotlib Axes and returns the Figure; none sets a backend.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .simulate import MIC_RADIUS, mic_positions


def mic_xy(radius: float = MIC_RADIUS) -> np.ndarray:
    """(8, 2) positions of the TAMAGO-03 microphones in metres: mic m at angle m * 45°."""
    return mic_positions(radius)[:, :2]


def plot_array(pairs=((0, 4), (2, 6)), sources: dict[str, tuple[float, float]] | None = None, ax=None):
    """The circular array with microphone numbers, opposite pairs as lines, and optional sources (m)."""
    fig, ax = _fig_ax(ax, (5, 5))
    xy = mic_xy() * 100  # cm
    ax.add_patch(plt.Circle((0, 0), MIC_RADIUS * 100, fill=False, ls=":", color="gray"))
    ax.scatter(*xy.T, s=120, color="black", zorder=3)
    for m, (x, y) in enumerate(xy):
        ax.annotate(str(m), (x, y), xytext=(1.35 * x, 1.35 * y), ha="center", va="center", fontsize=11)
    for (a, b), color in zip(pairs, plt.cm.tab10.colors):
        ax.plot(*xy[[a, b]].T, color=color, lw=2, label=f"pair {a}-{b}")
    ax.set_aspect("equal")
    ax.set_xlabel("x (cm)")
    ax.set_ylabel("y (cm)")
    if sources:
        for name, (x, y) in sources.items():
            ax.scatter([100 * x], [100 * y], marker="*", s=250, zorder=4, label=name)
        lim = max(6.0, 110 * max(max(abs(x), abs(y)) for x, y in sources.values()))
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("TAMAGO-03 array (radius 36.5 mm)")
    return fig


def plot_input_vectors(vectors: np.ndarray, title: str, ax=None, vmin=None, vmax=None):
    """Input vectors as columns (the paper's Figure 1): shape (n_vectors, 640)."""
    fig, ax = _fig_ax(ax, (4, 5))
    im = ax.imshow(np.asarray(vectors).T, aspect="auto", origin="lower", cmap="magma", vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xlabel("input vector")
    ax.set_ylabel("dimension (5 frames x 128 mel bands)")
    for k in range(1, 5):
        ax.axhline(128 * k - 0.5, color="white", lw=0.5, ls="--")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="dB")
    return fig


def plot_histories(histories: dict[str, dict], ax=None, log: bool = True):
    """Training (solid) and validation (dashed) loss per epoch for several models."""
    fig, ax = _fig_ax(ax, (7, 4))
    for (name, h), color in zip(histories.items(), plt.cm.tab10.colors * 3):
        epochs = np.arange(1, len(h["train_loss"]) + 1)
        ax.plot(epochs, h["train_loss"], color=color, label=name)
        ax.plot(epochs, h["val_loss"], color=color, ls="--")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (MSE, weighted)")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("training (solid) and validation (dashed) loss")
    return fig


def plot_threshold(train_scores, test_scores: pd.DataFrame, threshold: dict, score: str, ax=None):
    """Histogram of training and test scores, the fitted gamma density and its 90th-percentile threshold."""
    from scipy import stats

    fig, ax = _fig_ax(ax, (7, 4))
    s_train = np.asarray(train_scores)
    normal = test_scores.loc[test_scores["y"] == 0, score]
    abnormal = test_scores.loc[test_scores["y"] == 1, score]
    bins = np.histogram_bin_edges(np.r_[s_train, normal, abnormal], bins=30)
    ax.hist(s_train, bins=bins, density=True, alpha=0.4, label="train (normal)")
    ax.hist(normal, bins=bins, density=True, histtype="step", lw=2, label="test normal")
    ax.hist(abnormal, bins=bins, density=True, histtype="step", lw=2, label="test abnormal")
    grid = np.linspace(bins[0], bins[-1], 300)
    ax.plot(grid, stats.gamma.pdf(grid, threshold["shape"], threshold["loc"], threshold["scale"]), color="black", label="gamma fit")
    ax.axvline(threshold["threshold"], color="red", ls="--", label=f"threshold ({100 * threshold['percentile']:.0f}th pct.)")
    ax.set_xlabel(f"anomaly score ({score})")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return fig


def plot_figure5(summary: pd.DataFrame, reported: pd.DataFrame | None = None, score: str = "mse", metric: str = "AUC"):
    """AUC against α per machine: one line per mic pair with a seed interval band, the baseline as a line.

    ``summary`` comes from :func:`asdlib.tables.summarize` (columns mean, ci_low, ci_high).
    ``reported`` (the paper's table, optional) is drawn as hollow markers and a dotted baseline.
    """
    s = summary[(summary["score"] == score) & (summary["metric"] == metric)]
    machines = [m for m in ["fan", "slider", "pump", "valve"] if m in set(s["machine"])]
    fig, axes = plt.subplots(1, len(machines), figsize=(3.6 * len(machines), 3.4), squeeze=False, sharey=False)
    for ax, machine in zip(axes[0], machines):
        sm = s[s["machine"] == machine]
        base = sm[sm["model"] == "baseline"]
        for (pair, group), color in zip(sm[sm["model"] == "dual"].groupby("mic_pair"), plt.cm.tab10.colors):
            group = group.sort_values("alpha")
            ax.plot(group["alpha"], group["mean"], "o-", color=color, label=f"mics {pair}")
            if group["ci_low"].notna().any():
                ax.fill_between(group["alpha"], group["ci_low"], group["ci_high"], color=color, alpha=0.2)
            if reported is not None:
                rep = reported[(reported.machine == machine) & (reported.score == score) & (reported.metric == metric) & (reported.mic_pair == pair)]
                rep = rep.sort_values("alpha")
                ax.plot(rep["alpha"], rep["value_percent"], "s:", mfc="none", color=color, alpha=0.7, label=f"mics {pair} (reported)")
        if len(base):
            b = base.iloc[0]
            ax.axhline(b["mean"], color="black", label="baseline")
            if pd.notna(b["ci_low"]):
                ax.axhspan(b["ci_low"], b["ci_high"], color="black", alpha=0.1)
        if reported is not None:
            rb = reported[(reported.machine == machine) & (reported.score == score) & (reported.metric == metric) & (reported.model == "baseline")]
            if len(rb):
                ax.axhline(rb["value_percent"].iloc[0], color="black", ls=":", label="baseline (reported)")
        ax.set_xscale("log")
        ax.set_xlabel("α")
        ax.set_title(machine)
    axes[0][0].set_ylabel(f"{metric} (%)")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _fig_ax(ax, size):
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
        return fig, ax
    return ax.figure, ax
