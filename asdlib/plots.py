"""Figures of the book: the array, Figure 1's input vectors, loss curves, thresholds, Figure 5.

Each function draws on a new or given matplotlib Axes and returns the Figure; none sets a backend.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .geometry import MIC_RADIUS, SR, mic_positions


def mic_xy(radius: float = MIC_RADIUS) -> np.ndarray:
    """(8, 2) positions of the TAMAGO-03 microphones in metres: mic m at angle m * 45°."""
    return mic_positions(radius)[:, :2]


def _draw_array(ax, pairs, scale: float, label_radius: bool = True):
    """Microphones, their numbers, the 36.5 mm ring and the opposite pairs, in units of ``1 / scale`` m."""
    xy = mic_xy() * scale
    r = MIC_RADIUS * scale
    ax.add_patch(plt.Circle((0, 0), r, fill=False, ls=":", color="gray"))
    for (a, b), color in zip(pairs, plt.cm.tab10.colors):
        ax.plot(*xy[[a, b]].T, color=color, lw=2, label=f"pair {a}-{b}")
    ax.scatter(*xy.T, s=60, color="black", zorder=3)
    for m, (x, y) in enumerate(xy):
        ax.annotate(str(m), (x, y), xytext=(1.3 * x, 1.3 * y), ha="center", va="center", fontsize=9)
    if label_radius:
        ax.annotate("", xy=(r * np.cos(np.pi / 8), r * np.sin(np.pi / 8)), xytext=(0, 0),
                    arrowprops=dict(arrowstyle="->", color="gray", lw=1))
        ax.text(0.55 * r * np.cos(np.pi / 8), 0.55 * r * np.sin(np.pi / 8) + 0.12 * r, f"{1000 * MIC_RADIUS:.1f} mm",
                color="dimgray", fontsize=8, ha="center", rotation=22.5)


def plot_array(pairs=((0, 4), (2, 6)), sources: dict[str, tuple[float, float]] | None = None, ax=None):
    """The TAMAGO-03 array: microphone numbers, the 36.5 mm ring, opposite pairs, optional sources.

    Without ``sources`` the array fills the axes (in mm). With ``sources`` ({label: (x, y)} in metres)
    the axes show the sources to scale (in cm) and an inset zooms on the array, whose ring would
    otherwise be a dot.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _fig_ax(ax, (6, 6) if sources else (5, 5))
    ax.set_aspect("equal")
    if not sources:
        _draw_array(ax, pairs, 1000.0)
        lim = 1.6 * MIC_RADIUS * 1000
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_xlabel("x (mm)")
        ax.set_ylabel("y (mm)")
        ax.legend(loc="lower left", fontsize=8)
        return fig
    ax.scatter([0], [0], marker="o", s=30, color="black", zorder=3, label="array (zoom in inset)")
    for k, (name, (x, y)) in enumerate(sources.items()):
        if k == 0:
            ax.scatter([100 * x], [100 * y], marker="*", s=220, zorder=4, label=name)
        else:  # hollow, so a second source at the same place stays visible
            ax.scatter([100 * x], [100 * y], marker="o", s=420 + 200 * k, facecolors="none", lw=1.5,
                       edgecolors=plt.cm.tab10.colors[(k + 2) % 10], zorder=5, label=name)
    lim = max(10.0, 115 * max(max(abs(x), abs(y)) for x, y in sources.values()))
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_xlabel("x (cm)")
    ax.set_ylabel("y (cm)")
    ax.grid(alpha=0.3)
    inset = ax.inset_axes([0.02, 0.55, 0.38, 0.38])  # below the top, so that its title stays inside the axes
    _draw_array(inset, pairs, 100.0, label_radius=False)  # cm, same units as the main axes; the title gives the radius
    zoom = 1.6 * MIC_RADIUS * 100
    inset.set_xlim(-zoom, zoom)
    inset.set_ylim(-zoom, zoom)
    inset.set_aspect("equal")
    inset.set_xticks([])
    inset.set_yticks([])
    inset.set_title(f"array, radius {1000 * MIC_RADIUS:.1f} mm", fontsize=8)
    ax.indicate_inset_zoom(inset, edgecolor="gray")
    handles, labels = ax.get_legend_handles_labels()
    ih, il = inset.get_legend_handles_labels()
    ax.legend(handles + ih, labels + il, loc="lower left", fontsize=8, markerscale=0.5)  # the hollow rings fit the box
    return fig


def _mel_axis(ax, config=None, n_ticks: int = 5, label: str = "mel band (centre, Hz)"):
    """Label a mel-band axis (0..n_mels-1) with band numbers and centre frequencies."""
    import librosa

    from .config import Config

    config = config or Config()
    centres = librosa.mel_frequencies(config.n_mels + 2, fmin=config.fmin, fmax=config.fmax or config.sr / 2)[1:-1]
    ticks = np.linspace(0, config.n_mels - 1, n_ticks).round().astype(int)
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{t}: {centres[t]:.0f}" if centres[t] < 1000 else f"{t}: {centres[t] / 1000:.1f}k" for t in ticks], fontsize=8)
    ax.set_ylabel(label)


def plot_multichannel(audio: np.ndarray, sr: int = SR, config=None, mics=None, title: str | None = None):
    """Waveform and log-mel spectrogram of each microphone of one clip, one row per microphone.

    The spectrograms share one colour scale (a colorbar in dB) and a mel axis labelled with band
    numbers and centre frequencies.

    Parameters
    ----------
    audio : np.ndarray [shape=(n_mics, n_samples)]
    sr : int
    config : asdlib.config.Config, optional
    mics : sequence of int, optional
        Which rows of ``audio`` to draw (all by default).
    """
    from .features import log_mel

    mics = list(range(len(audio))) if mics is None else list(mics)
    t = np.arange(audio.shape[1]) / sr
    lms = [log_mel(audio[m], config) if config is not None else log_mel(audio[m]) for m in mics]
    vmin, vmax = np.percentile(np.concatenate([lm.ravel() for lm in lms]), [1, 99.5])
    ylim = 1.05 * np.abs(audio[mics]).max()
    fig, axes = plt.subplots(len(mics), 2, figsize=(10, 1.4 * len(mics) + 0.8), sharex="col", squeeze=False,
                             layout="constrained", gridspec_kw={"width_ratios": [1, 1.25]})
    for row, (m, lm) in enumerate(zip(mics, lms)):
        axes[row, 0].plot(t, audio[m], lw=0.3, color="tab:blue")
        axes[row, 0].set_ylim(-ylim, ylim)
        axes[row, 0].set_ylabel(f"mic {m}")
        im = axes[row, 1].imshow(lm, aspect="auto", origin="lower", cmap="magma", vmin=vmin, vmax=vmax,
                                 extent=[0, t[-1], -0.5, lm.shape[0] - 0.5], interpolation="nearest")
        _mel_axis(axes[row, 1], config, n_ticks=3, label="mel band")
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 1].set_xlabel("time (s)")
    axes[0, 0].set_title("waveform (amplitude, common scale)")
    axes[0, 1].set_title("log-mel spectrogram: band number and centre frequency (Hz)")
    fig.colorbar(im, ax=axes[:, 1], label="log-mel energy (dB)", shrink=0.6)
    if title:
        fig.suptitle(title)
    return fig


def plot_input_vectors(vectors: np.ndarray, title: str, ax=None, vmin=None, vmax=None, first: int = 0, colorbar: bool = True):
    """Input vectors as columns (the paper's Figure 1): shape (n_vectors, 640).

    Each column is one 640-d vector: five frames of 128 mel bands, frame after frame (dashed lines).
    ``first`` is the index of the first vector in its clip (x tick labels).
    """
    fig, ax = _fig_ax(ax, (4, 5))
    vectors = np.asarray(vectors)
    im = ax.imshow(vectors.T, aspect="auto", origin="lower", cmap="magma", vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xlabel("input vector (index in the clip)")
    ax.set_xticks(range(len(vectors)))
    ax.set_xticklabels([str(first + k) for k in range(len(vectors))], fontsize=8)
    n_mels = vectors.shape[1] // 5
    ax.set_yticks([n_mels * k + n_mels // 2 for k in range(5)])
    ax.set_yticklabels([f"frame {k + 1}" for k in range(5)])
    ax.set_ylabel(f"dimension: 5 frames x {n_mels} mel bands (low to high)")
    for k in range(1, 5):
        ax.axhline(n_mels * k - 0.5, color="white", lw=0.6, ls="--")
    ax.set_title(title, fontsize=10)
    if colorbar:
        fig.colorbar(im, ax=ax, label="log-mel energy (dB)")
    return fig


def plot_figure1(vectors: np.ndarray, mic_pair, first: int = 0):
    """The paper's Figure 1: (a) reference and (b) difference input vectors side by side, one colour scale.

    ``vectors`` has shape (2, n_vectors, 640): the reference channel's vectors, then the difference
    channel's; ``first`` is the index of the first vector in its clip.
    """
    vectors = np.asarray(vectors)
    vmin, vmax = np.percentile(vectors, [1, 99])
    fig, axes = plt.subplots(1, 2, figsize=(11, 6), layout="constrained", sharey=True)
    ref, other = mic_pair
    titles = [f"(a) reference channel x (mic {ref})", f"(b) difference channel x' (mic {ref} − mic {other})"]
    for ax, v, title in zip(axes, vectors, titles):
        plot_input_vectors(v, title, ax=ax, vmin=vmin, vmax=vmax, first=first, colorbar=False)
    axes[1].set_ylabel("")
    fig.colorbar(axes[0].images[0], ax=list(axes), label="log-mel energy (dB)", shrink=0.8)
    return fig


def plot_spectrogram_pair(logmels: np.ndarray, names, highlight: tuple[int, int] | None = None, config=None):
    """Log-mel spectrograms of the two inputs (reference, difference), one colour scale and colorbar.

    ``highlight = (first_frame, n_frames)`` shades the frames that make one input vector.
    """
    logmels = np.asarray(logmels)
    vmin, vmax = np.percentile(logmels, [1, 99.5])
    fig, axes = plt.subplots(len(logmels), 1, figsize=(10, 2.6 * len(logmels) + 0.6), sharex=True, layout="constrained")
    axes = np.atleast_1d(axes)
    for ax, lm, name in zip(axes, logmels, names):
        im = ax.imshow(lm, aspect="auto", origin="lower", cmap="magma", vmin=vmin, vmax=vmax, interpolation="nearest")
        if highlight is not None:
            ax.axvspan(highlight[0] - 0.5, highlight[0] + highlight[1] - 0.5, color="cyan", alpha=0.35,
                       label="the 5 frames of one input vector")
        _mel_axis(ax, config)
        ax.set_title(name, fontsize=10)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("frame (hop 512 samples = 32 ms)")
    fig.colorbar(im, ax=list(axes), label="log-mel energy (dB)", shrink=0.8)
    return fig


def plot_histories(histories, ax=None, log: bool = True):
    """Training (solid) and validation (dashed) loss per epoch.

    ``histories`` is either ``{model name: {"train_loss": [...], "val_loss": [...]}}`` (one line per
    model on ``ax``) or a long DataFrame from :func:`asdlib.book_data.loss_curves` (columns model,
    family, alpha, seed, epoch, split, loss): then one panel per model family (baseline, dual per mic
    pair; each on its own y scale, the losses differ), one colour per α, the line the mean over seeds and
    the band the range over seeds (seaborn).
    """
    if isinstance(histories, pd.DataFrame):
        return _plot_history_frame(histories, log)
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


def _two_a_row(n: int, panel_size: tuple[float, float], extra_width: float = 0.0, **subplots):
    """A figure of ``n`` panels two a row (a page shows a figure about 7 inches wide).

    Returns the figure, its (rows, columns) grid of axes, the ``n`` panels in order, and the spare
    axes after them (one when ``n`` is odd) for the caller to remove or use.
    """
    ncols = min(n, 2)
    nrows = -(-n // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(panel_size[0] * ncols + extra_width, panel_size[1] * nrows),
                             squeeze=False, **subplots)
    flat = list(grid.flat)
    return fig, grid, flat[:n], flat[n:]


def _plot_history_frame(frame: pd.DataFrame, log: bool):
    import seaborn as sns

    families = list(dict.fromkeys(frame["family"]))
    n_seeds = frame["seed"].nunique()
    fig, _, axes, spare = _two_a_row(len(families), (4.2, 3.3), extra_width=1.8, sharey=False, layout="constrained")
    for ax in spare:
        ax.remove()
    for ax, family in zip(axes, families):
        sub = frame[frame["family"] == family].copy()
        sub["α"] = sub["alpha"].map(lambda a: "-" if pd.isna(a) else f"{a:g}")
        sns.lineplot(data=sub, x="epoch", y="loss", hue="α", style="split", ax=ax,
                     errorbar=("pi", 100) if n_seeds > 1 else None, palette="viridis" if sub["α"].nunique() > 1 else ["black"],
                     style_order=["training", "validation"], legend=ax is axes[-1])
        ax.set_title(family)
        ax.set_ylabel(r"loss ($\mathcal{L}_{ref} + \alpha\,\mathcal{L}_{dif}$)" if family.startswith("dual") else "loss (MSE)")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    legend_ax = axes[-1]  # the last panel's legend (a dual AE's: every α), beside it
    if legend_ax.get_legend() is not None:
        sns.move_legend(legend_ax, "upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False)
    return fig


def plot_threshold(train_scores, test_scores: pd.DataFrame, threshold: dict, score: str, ax=None, title: str | None = None):
    """Histogram of training and test scores, the fitted gamma density and its 90th-percentile threshold."""
    from scipy import stats

    fig, ax = _fig_ax(ax, (7, 4))
    s_train = np.asarray(train_scores)
    normal = test_scores.loc[test_scores["y"] == 0, score]
    abnormal = test_scores.loc[test_scores["y"] == 1, score]
    bins = np.histogram_bin_edges(np.r_[s_train, normal, abnormal], bins=30)
    ax.hist(s_train, bins=bins, density=True, alpha=0.4, color="gray", label=f"training clips, normal ({len(s_train)})")
    ax.hist(normal, bins=bins, density=True, histtype="step", lw=2, color="tab:blue", label=f"test normal ({len(normal)})")
    ax.hist(abnormal, bins=bins, density=True, histtype="step", lw=2, color="tab:red", label=f"test abnormal ({len(abnormal)})")
    grid = np.linspace(bins[0], bins[-1], 300)
    ax.plot(grid, stats.gamma.pdf(grid, threshold["shape"], threshold["loc"], threshold["scale"]), color="black",
            label="gamma fit to the training scores")
    pct = 100 * threshold["percentile"]
    ax.axvline(threshold["threshold"], color="black", ls="--", label=f"threshold: its {pct:.0f}th percentile")
    name = {"mse": "MSE over the clip's vectors", "mahalanobis": "Mahalanobis, of the clip's mean residual"}.get(score, score)
    ax.set_xlabel(f"anomaly score of a clip ({name})")
    ax.set_ylabel("density (share of clips per score unit)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_figure5(summary: pd.DataFrame, reported: pd.DataFrame | None = None, score: str = "mse", metric: str = "AUC"):
    """The paper's Figure 5: a metric against α, one panel per machine type (2 x 2, shared 0-100 axis).

    One line per mic pair (mean over seeds) with its interval as a band, the baseline as a black line
    with its band; the paper's reported values, when ``reported`` is given, as hollow squares on dotted
    lines. The legend sits under the panels.

    Parameters
    ----------
    summary : pandas.DataFrame
        From :func:`asdlib.tables.interval_summary` or :func:`asdlib.tables.summarize` (columns
        machine, metric, score, model, mic_pair, alpha, mean, ci_low, ci_high).
    reported : pandas.DataFrame, optional
        :func:`asdlib.tables.reported_table`.
    score, metric : str
        Which panel set to draw.

    Returns
    -------
    matplotlib.figure.Figure
    """
    s = summary[(summary["score"] == score) & (summary["metric"] == metric)]
    machines = [m for m in ["fan", "slider", "pump", "valve"] if m in set(s["machine"])]
    ncols = 2 if len(machines) > 1 else 1
    nrows = int(np.ceil(len(machines) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.3 * nrows + 0.8), squeeze=False, sharex=True, sharey=True,
                             layout="constrained")
    colors = dict(zip(sorted(s.loc[s["model"] == "dual", "mic_pair"].unique()), plt.cm.tab10.colors))
    for ax, machine in zip(axes.flat, machines):
        sm = s[s["machine"] == machine]
        for pair, group in sm[sm["model"] == "dual"].groupby("mic_pair"):
            group = group.sort_values("alpha")
            ax.plot(group["alpha"], group["mean"], "o-", color=colors[pair], label=f"mics {pair}")
            if group["ci_low"].notna().any():
                ax.fill_between(group["alpha"], group["ci_low"], group["ci_high"], color=colors[pair], alpha=0.18, lw=0)
            if reported is not None:
                rep = reported[(reported.machine == machine) & (reported.score == score) & (reported.metric == metric) & (reported.mic_pair == pair)]
                rep = rep.sort_values("alpha")
                ax.plot(rep["alpha"], rep["value_percent"], "s:", mfc="none", color=colors[pair], alpha=0.8, label=f"mics {pair} (reported)")
        from .tables import MEAN_INPUT, is_channel_baseline

        base = sm[is_channel_baseline(sm)]
        mean_base = sm[(sm["model"] == "baseline") & (sm["mic_pair"].astype(str) == MEAN_INPUT)]
        if len(mean_base):
            ax.axhline(mean_base["mean"].iloc[0], color="dimgray", lw=1.2, ls="-.", label="baseline, mean of channels")
        if len(base):
            b = base.iloc[0]
            ax.axhline(b["mean"], color="black", lw=1.5, label="baseline (mic 0)")
            if pd.notna(b["ci_low"]):
                ax.axhspan(b["ci_low"], b["ci_high"], color="black", alpha=0.08, lw=0)
        if reported is not None:
            rb = reported[(reported.machine == machine) & (reported.score == score) & (reported.metric == metric) & (reported.model == "baseline")]
            if len(rb):
                ax.axhline(rb["value_percent"].iloc[0], color="black", ls=":", label="baseline (mic 0, reported)")
        ax.axhline(50, color="gray", lw=0.8, ls="--", label="chance")
        ax.set_xscale("log")
        ax.set_ylim(0, 100)
        ax.set_title(machine)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(machines):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("α (weight of the difference channel)")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{metric} (%)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    # under the panels, not beside them: the figure keeps the page's width and its text stays legible
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4 if ncols > 1 else 2), frameon=False)
    return fig


def _fig_ax(ax, size):
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
        return fig, ax
    return ax.figure, ax


def plot_dipole_pattern(azimuths_deg, freqs_hz, pair=(0, 4), floor_db: float = -40.0):
    """Polar far-field gain (dB re one microphone) of a pair's difference channel at a few frequencies."""
    from .spatial import difference_response

    fig, ax = plt.subplots(subplot_kw={"projection": "polar"}, figsize=(5.5, 5.5))
    az = np.asarray(azimuths_deg, dtype=float)
    for f in freqs_hz:
        gain = difference_response(np.array([float(f)]), az, pair)[0]
        with np.errstate(divide="ignore"):
            ax.plot(np.deg2rad(az), np.maximum(20 * np.log10(gain), floor_db), label=f"{f} Hz")
    ax.set_rlim(floor_db, 8)
    ax.set_title(f"pair {pair[0]}-{pair[1]}, far field: gain (dB) re one microphone")
    ax.legend(loc="center left", bbox_to_anchor=(1.08, 0.5), fontsize=8, frameon=False)
    return fig


def plot_dipole_frequency(freqs_hz, azimuths_deg, distances, pair=(0, 4), floor_db: float = -40.0):
    """Gain of a pair's difference channel against frequency: one panel per source distance, one line per direction.

    ``distances`` is a list of (label, metres or None for the far field).
    """
    from .spatial import difference_response

    f = np.asarray(freqs_hz, dtype=float)
    fig, grid, panels, spare = _two_a_row(len(distances), (3.6, 2.9), sharey=True)
    for ax, (label, distance) in zip(panels, distances):
        for az in azimuths_deg:
            gain = difference_response(f, np.array([float(az)]), pair, distance=distance)[:, 0]
            with np.errstate(divide="ignore"):
                ax.plot(f, np.maximum(20 * np.log10(gain), floor_db), label=f"{az}°", lw=1.6)
        ax.set_xscale("log")
        ax.set_ylim(floor_db - 3, 10)  # room below the floor, so that a curve lying on it shows
        ax.set_xlabel("frequency (Hz)")
        ax.set_title(f"pair {pair[0]}-{pair[1]}, source {label}")
        ax.grid(alpha=0.3)
    for ax in grid[:, 0]:
        ax.set_ylabel("gain re one mic (dB)")
    handles, labels = panels[0].get_legend_handles_labels()
    if spare:  # the empty panel holds the legend
        spare[0].axis("off")
        spare[0].legend(handles, labels, title="azimuth", frameon=False, loc="center", fontsize=9)
    else:
        panels[-1].legend(handles, labels, title="azimuth", frameon=False, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


def plot_direction_sweep(sweep: pd.DataFrame, machine_azimuth: float, scores=("mse", "mahalanobis")):
    """AUC against the anomaly's direction, one line per pair, the baseline dashed, the machine's direction shaded."""
    scores = [s for s in scores if s in set(sweep["score"])]
    fig, axes = plt.subplots(len(scores), 1, figsize=(6.4, 2.9 * len(scores)), squeeze=False, sharex=True)  # one score a row
    for ax, kind in zip(axes[:, 0], scores):
        for name, group in sweep[sweep["score"] == kind].groupby("model", sort=False):
            style = dict(color="black", ls="--") if name == "baseline" else dict(marker="o")
            ax.plot(group["azimuth"], group["AUC"], label=name, **style)
        ax.axvline(machine_azimuth % 360, color="gray", lw=6, alpha=0.3, label="machine")
        ax.axhline(50, color="gray", lw=0.8, ls=":", label="chance")
        ax.set_xticks(range(0, 360, 45))
        ax.set_ylim(0, 100)
        ax.set_ylabel("AUC (%)")
        ax.set_title(kind)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("anomaly azimuth (°; mic m at m × 45°)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def plot_channels(metrics: pd.DataFrame, scores=("mse", "mahalanobis"), metric: str = "AUC"):
    """A metric against the number of channels: mean over seeds with a band, every seed as a dot (seaborn)."""
    import seaborn as sns

    from .book import score_name

    m = metrics[metrics["metric"] == metric].copy()
    m["channels"] = m["mic_pair"].map(lambda p: 1 if p == "" else len(str(p).split("-")))
    scores = [s for s in scores if s in set(m["score"])]
    fig, axes = plt.subplots(1, len(scores), figsize=(5.4 * len(scores), 3.6), squeeze=False, sharey=True)
    for ax, score in zip(axes[0], scores):
        data = m[m["score"] == score]
        last = ax is axes[0][-1]  # one legend, in the last panel
        sns.lineplot(data=data, x="channels", y="value_percent", hue="machine", marker="o", errorbar=("pi", 100), ax=ax,
                     legend=last)
        sns.stripplot(data=data, x="channels", y="value_percent", hue="machine", native_scale=True, dodge=False, alpha=0.5,
                      legend=False, ax=ax, jitter=0.05)
        ax.axhline(50, color="gray", lw=0.8, ls=":")
        ax.set_xticks(sorted(data["channels"].unique()))
        ax.set_ylim(0, 100)
        ax.set_xlabel("channels (1 = baseline, 2 = the paper's dual AE)")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(f"{score_name(score)} score")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_kind_gains(auc: pd.DataFrame, scores=("mse", "mahalanobis")):
    """Baseline vs best dual AUC per anomaly kind and machine (seaborn bars with the seeds' range).

    ``auc`` is :func:`asdlib.book.auc_by_anomaly_kind`'s long form. The best dual configuration per
    (score, anomaly, machine) is the one with the highest mean over seeds.
    """
    import seaborn as sns

    mean = auc.groupby(["score", "anomaly", "machine", "model"])["AUC"].transform("mean")
    data = auc.assign(mean=mean)
    duals = data[data["kind"] == "dual"]
    top = duals.groupby(["score", "anomaly", "machine"])["mean"].transform("max")
    best = duals[duals["mean"] == top].assign(detector="best dual")
    base = data[data["kind"] == "baseline"].assign(detector="baseline")
    frame = pd.concat([base, best])
    scores = [s for s in scores if s in set(frame["score"])]
    fig, axes = plt.subplots(len(scores), 2, figsize=(10, 3.3 * len(scores)), squeeze=False, sharey=True)
    for row, score in zip(axes, scores):
        for ax, anomaly in zip(row, ("spectral", "spatial")):
            sns.barplot(data=frame[(frame["score"] == score) & (frame["anomaly"] == anomaly)], x="machine", y="AUC", hue="detector",
                        errorbar=("pi", 100), ax=ax, hue_order=["baseline", "best dual"])
            ax.axhline(50, color="gray", lw=0.8, ls=":")
            ax.set_ylim(0, 100)
            ax.set_title(f"{anomaly} anomalies, {score}")
            ax.set_ylabel("AUC (%)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes.flat:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend(handles, labels, title="detector", loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9, frameon=False)
    fig.tight_layout()  # the legend beside the panels, where it hides no bar
    return fig


def plot_seed_spread(ranges):
    """Histogram of how far each cell's value moves between training seeds (points); a note when there is one seed."""
    import seaborn as sns

    values = pd.Series(ranges, dtype=float).dropna()
    fig, ax = plt.subplots(figsize=(7, 3))
    if len(values):
        sns.histplot(values, bins=20, ax=ax)
    else:
        ax.text(0.5, 0.5, "one seed: no spread to show", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("range of a cell's value over seeds (points)")
    ax.set_ylabel("cells")
    fig.tight_layout()
    return fig


def plot_best_gains(best: pd.DataFrame):
    """The best dual configuration's AUC gain over the baseline per (machine, score), with its interval (points)."""
    fig, ax = plt.subplots(figsize=(9, 3.5))
    labels = [f"{m}\n{s}" for m, s in zip(best["machine"], best["score"])]
    ax.errorbar(range(len(best)), best["ΔAUC"], yerr=[best["ΔAUC"] - best["Δ low"], best["Δ high"] - best["ΔAUC"]], fmt="o", capsize=4)
    ax.axhline(0, color="black", lw=1)
    ax.set_xticks(range(len(best)), labels)
    ax.set_ylabel("best dual − baseline, AUC (points)")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def placeholder(text: str):
    """A small figure that says why a figure is not drawn (e.g. real data where the page needs the simulator)."""
    fig, ax = plt.subplots(figsize=(6, 1.2))
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11)
    ax.set_axis_off()
    return fig
