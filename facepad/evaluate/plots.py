"""Evaluation figures (matplotlib, Agg): ROC, DET, score histograms, depth grid, Table I bars.

Every function takes plain arrays and a path, writes one PNG and returns the path; matplotlib is
imported inside so that importing this module (and `facepad --help`) stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import NormalDist

import numpy as np

from facepad import metrics

Curves = Mapping[str, tuple[np.ndarray, np.ndarray]]  # name -> (scores, is_live)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_roc(curves: Curves, path: str | Path, title: str = "ROC") -> Path:
    """ROC, live positive: x = APCER (attacks accepted), y = 1 - BPCER (live accepted)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (scores, is_live) in curves.items():
        fpr, tpr, _ = metrics.roc_curve(scores, is_live)
        auc = metrics.roc_auc(scores, is_live)
        ax.plot(fpr, tpr, label=f"{name} (AUC {100 * auc:.2f} %)")
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    ax.set(xlabel="APCER (attacks accepted)", ylabel="1 - BPCER (live accepted)", title=title)
    ax.set(xlim=(0, 1), ylim=(0, 1.01))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


_DET_TICKS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9)


def _probit(p: np.ndarray) -> np.ndarray:
    inv = NormalDist().inv_cdf
    return np.array([inv(float(x)) for x in np.clip(p, 5e-4, 1 - 5e-4)])


def plot_det(curves: Curves, path: str | Path, title: str = "DET") -> Path:
    """DET: BPCER against APCER on normal-deviate axes (rates of 0 are drawn at 0.05 %)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (scores, is_live) in curves.items():
        _, apcer, bpcer = metrics.rate_curve(scores, is_live)
        e, _ = metrics.eer(scores, is_live)
        ax.plot(_probit(apcer), _probit(bpcer), label=f"{name} (EER {100 * e:.2f} %)")
    ticks = _probit(np.array(_DET_TICKS))
    labels = [f"{100 * t:g}" for t in _DET_TICKS]
    ax.plot(ticks, ticks, color="0.7", lw=0.8, ls="--")  # the EER line
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    lim = (_probit(np.array([5e-4]))[0], _probit(np.array([0.95]))[0])
    ax.set(xlim=lim, ylim=lim, xlabel="APCER (%)", ylabel="BPCER (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def plot_histograms(
    scores: np.ndarray,
    is_live: np.ndarray,
    threshold: float,
    path: str | Path,
    attack_types: Sequence[str] | None = None,
    title: str = "Liveness scores",
) -> Path:
    """Score histograms: live, and each attack type (or all attacks), with the threshold line."""
    plt = _pyplot()
    scores, is_live = np.asarray(scores, float), np.asarray(is_live, bool)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0.0, 1.0, 41)
    ax.hist(scores[is_live], bins=bins, alpha=0.6, label=f"live (n={int(is_live.sum())})")
    types = np.asarray(attack_types, dtype=object) if attack_types is not None else None
    names = sorted(set(types[~is_live])) if types is not None else ["attack"]
    if len(names) > 6:  # too many to tell apart: pool them
        names, types = ["attack"], None
    for name in names:
        mask = ~is_live if types is None else (~is_live) & (types == name)
        ax.hist(scores[mask], bins=bins, alpha=0.5, label=f"{name} (n={int(mask.sum())})")
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:.3f}")
    ax.set(xlabel="liveness score (higher = more live)", ylabel="samples", title=title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def pick_depth_examples(
    scores: np.ndarray, is_live: np.ndarray, threshold: float, n: int = 8, seed: int = 0
) -> list[int]:
    """Indices for a Figure 3 grid: live and attacks, right and wrong, failures always included.

    Takes up to n // 4 from each of live-accepted, live-rejected, attack-rejected,
    attack-accepted (the last two of each kind being errors), then fills up to n with correct ones.
    """
    scores, is_live = np.asarray(scores, float), np.asarray(is_live, bool)
    accepted = scores >= threshold
    rng = np.random.default_rng(seed)
    groups = [
        np.nonzero(is_live & accepted)[0],
        np.nonzero(is_live & ~accepted)[0],
        np.nonzero(~is_live & ~accepted)[0],
        np.nonzero(~is_live & accepted)[0],
    ]
    groups = [rng.permutation(g) for g in groups]
    chosen = [int(i) for g in groups for i in g[: max(1, n // 4)]]
    rest = [int(i) for g in groups for i in g[max(1, n // 4) :]]
    chosen += rest[: max(0, n - len(chosen))]
    return chosen[:n]


def plot_depth_grid(
    images: Sequence[np.ndarray],
    depths: Sequence[np.ndarray | None],
    scores: Sequence[float],
    is_live: Sequence[bool],
    threshold: float,
    path: str | Path,
    title: str = "",
) -> Path:
    """Figure 3 of the paper: input crops (top) above their predicted depth maps (bottom).

    Each column is titled with its truth, decision and score, green when right and red when wrong.
    `images` are (H, W, 3) uint8 or float in [0, 1]; `depths` (d, d) in [0, 1], or None for a model
    without a depth head (with no map at all, only the inputs are drawn).
    """
    plt = _pyplot()
    n = len(images)
    if n == 0:
        raise ValueError("no examples to draw in the depth grid")
    has_depth = any(d is not None for d in depths)
    n_rows = 2 if has_depth else 1
    fig, axes = plt.subplots(n_rows, n, figsize=(1.7 * n, 2.0 * n_rows - 0.1), squeeze=False)
    for j in range(n):
        decision = "live" if scores[j] >= threshold else "spoof"
        truth = "live" if is_live[j] else "spoof"
        ok = decision == truth
        top = axes[0, j]
        top.imshow(images[j])
        top.set_title(
            f"{truth} -> {decision}\n{'right' if ok else 'WRONG'}  s={scores[j]:.2f}",
            fontsize=8,
            color="green" if ok else "red",
        )
        if depths[j] is not None:
            axes[1, j].imshow(np.asarray(depths[j]).squeeze(), cmap="gray", vmin=0, vmax=1)
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor("green" if ok else "red")
                spine.set_linewidth(2)
    axes[0, 0].set_ylabel("input")
    if has_depth:
        axes[1, 0].set_ylabel("predicted depth")
    else:
        title = f"{title} (no depth head)".strip()
    if title:
        fig.suptitle(title, fontsize=10, y=1.0 if has_depth else 1.12)
    return _save(fig, path)


def plot_table_bars(
    table: Mapping[str, Mapping[str, float]],
    path: str | Path,
    columns: Sequence[str] = ("apcer", "bpcer", "acer"),
    title: str = "Test error rates (threshold from validation)",
) -> Path:
    """Figure 2 of the paper: grouped bars, one group per metric, one bar per model, in percent."""
    plt = _pyplot()
    models = list(table)
    if not models:
        raise ValueError("no models to plot")
    x = np.arange(len(columns))
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(columns), 3.8))
    for i, name in enumerate(models):
        values = [100 * float(table[name].get(c, np.nan)) for c in columns]
        bars = ax.bar(x + (i - (len(models) - 1) / 2) * width, values, width, label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    names = {"apcer": "APCER (pooled)", "apcer_worst": "APCER (worst type)"}
    ax.set_xticks(x, [names.get(c, c.upper()) for c in columns])
    ax.set(ylabel="percent", title=title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_heatmaps(
    panels: Mapping[str, tuple[Sequence[str], Sequence[str], np.ndarray]],
    path: str | Path,
    title: str = "HTER (%) at the validation threshold: rows trained on, columns tested on",
) -> Path:
    """One annotated matrix per model (rows x columns of a percent figure), on one colour scale
    so the panels compare; NaN cells (not run) are grey and marked n/a."""
    plt = _pyplot()
    if not panels:
        raise ValueError("no panels to draw")
    rows, cols, _ = next(iter(panels.values()))
    top = max([1.0] + [float(np.nanmax(m)) for _, _, m in panels.values() if np.isfinite(m).any()])
    cmap = plt.get_cmap("Reds").with_extremes(bad="0.9")
    n = len(panels)
    fig, axes = plt.subplots(
        1, n, figsize=(1.5 + n * (0.5 + 1.0 * len(cols)), 1.6 + 0.55 * len(rows)),
        squeeze=False, sharey=True, layout="constrained",
    )  # fmt: skip
    for ax, (name, (row_labels, col_labels, matrix)) in zip(axes[0], panels.items(), strict=True):
        shown = np.ma.masked_invalid(matrix)
        image = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=top, aspect="auto")
        for (i, j), value in np.ndenumerate(matrix):
            text = f"{value:.1f}" if np.isfinite(value) else "n/a"
            dark = np.isfinite(value) and value > 0.6 * top
            ax.text(j, i, text, ha="center", va="center", fontsize=9,
                    color="white" if dark else "black")  # fmt: skip
        ax.set_xticks(range(len(col_labels)), col_labels, rotation=30, ha="right")
        ax.set_yticks(range(len(row_labels)), row_labels)
        ax.set(xlabel="tested on", title=name)
    axes[0, 0].set_ylabel("trained on")
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
