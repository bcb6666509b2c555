"""Curves over training: learning curves, batch losses, run comparisons and the training
dynamics (dynamics.npz); and reading the run files they come from."""
import csv
import os

import numpy as np
from matplotlib.ticker import MaxNLocator

from ...errors import GlyphnetError
from .common import figure, finish, plot_on_log


def read_history(run_dir):
    """history.csv of a run as a list of dicts of floats (missing values left out)."""
    path = os.path.join(run_dir, "history.csv")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [{k: float(v) for k, v in row.items() if v not in ("", None)}
                    for row in csv.DictReader(f)]
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, TypeError) as exc:
        raise GlyphnetError(f"{path}: cannot read the training history ({exc}); the file is "
                            f"damaged") from None


def read_batch_losses(run_dir):
    path = os.path.join(run_dir, "batch_losses.csv")
    try:
        return np.loadtxt(path, ndmin=1)
    except (OSError, ValueError) as exc:
        raise GlyphnetError(f"{path}: cannot read the batch losses ({exc})") from None


def _rows(history):
    return history.epochs if hasattr(history, "epochs") else list(history)


def learning_curves(history, path=None, title=None):
    """Train and test loss (left) and accuracy (right) per epoch. ``history`` is a History or
    a list of per-epoch dicts (as :func:`read_history` returns)."""
    rows = _rows(history)
    fig = figure(9, 3.4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for split, colour in (("train", "tab:blue"), ("test", "tab:orange")):
            pts = [(r["epoch"], r[f"{split}_{metric}"]) for r in rows
                   if r.get(f"{split}_{metric}") is not None]
            if pts:
                ax.plot(*zip(*pts), "o-", color=colour, label=split, markersize=4)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_loss.set_title("loss per epoch")
    ax_acc.set_title("accuracy per epoch")
    if title:
        fig.suptitle(title)
    return finish(fig, path)


def _moving_average(values, window):
    if len(values) < window or window < 2:
        return np.arange(1, len(values) + 1), np.asarray(values, float)
    smooth = np.convolve(values, np.ones(window) / window, mode="valid")
    return np.arange(window, len(values) + 1), smooth


def batch_losses(losses, path=None, window=None):
    """The training loss of every batch (light) and its moving average (dark)."""
    losses = np.asarray(losses, float)
    window = window or max(1, min(50, len(losses) // 10))
    fig = figure(7, 3.4)
    ax = fig.subplots()
    ax.plot(np.arange(1, len(losses) + 1), losses, color="tab:blue", alpha=0.3, lw=0.8,
            label="batch loss")
    if window > 1:
        steps, smooth = _moving_average(losses, window)
        ax.plot(steps, smooth, color="tab:blue", lw=1.8, label=f"mean of {window} batches")
    if len(losses) and losses.min() > 0 and losses.max() / losses.min() > 20:
        ax.set_yscale("log")
    ax.set_xlabel("step (batch)")
    ax.set_ylabel("training loss")
    ax.set_title("training loss per batch")
    ax.grid(alpha=0.3)
    ax.legend()
    return finish(fig, path)


def compare_runs(runs, path=None, metrics=("test_loss", "test_accuracy")):
    """Overlaid per-epoch curves of several runs: ``runs`` maps a label to a History, a list
    of per-epoch dicts or a run directory."""
    fig = figure(4.5 * len(metrics), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for label, history in runs.items():
        rows = read_history(history) if isinstance(history, (str, os.PathLike)) else \
            _rows(history)
        for ax, metric in zip(axes, metrics):
            pts = [(r["epoch"], r[metric]) for r in rows if r.get(metric) is not None]
            if pts:
                ax.plot(*zip(*pts), "o-", label=label, markersize=3)
    for ax, metric in zip(axes, metrics):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return finish(fig, path)


def training_dynamics(dynamics, path=None):
    """From dynamics.npz: the std of each layer's weight gradients over the steps, the mean
    magnitude of the deltas at the first conv layer (if any), and a few individual weights."""
    has_conv = len(dynamics.get("conv_deltas", ())) > 0
    panels = 3 if has_conv else 2
    fig = figure(4.3 * panels, 3.4)
    axes = fig.subplots(1, panels)
    steps = dynamics["steps"]
    ax = axes[0]
    for name, column in zip(dynamics["names"], dynamics["grad_std"].T):
        ax.plot(steps, column, label=str(name), lw=1.2)
    ax.set_yscale("log")
    ax.set_title("std of the weight gradients", fontsize=10)
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if has_conv:
        ax = axes[1]
        ax.plot(dynamics["delta_steps"], dynamics["conv_deltas"], color="tab:purple", lw=1.2)
        ax.set_title("mean |delta| at the first conv layer", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("mean per-image norm of dL/d(output)", fontsize=8)
        ax.grid(alpha=0.3)
    ax = axes[-1]
    for name, column in zip(dynamics["tracked_names"], dynamics["tracked_values"].T):
        ax.plot(steps, column, label=str(name), lw=1.2)
    ax.set_title("individual weights over time", fontsize=10)
    ax.set_xlabel("step")
    ax.legend(fontsize=6, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    ax.grid(alpha=0.3)
    return finish(fig, path)


def weight_trajectories(runs, path=None):
    """The tracked individual weights of several runs (e.g. SGD vs Adam) on one plot, one
    colour per run: ``runs`` maps a label to dynamics (as monitor.load_dynamics returns)."""
    fig = figure(7, 3.6)
    ax = fig.subplots()
    for k, (label, dyn) in enumerate(runs.items()):
        colour = f"C{k}"
        for j, column in enumerate(dyn["tracked_values"].T):
            ax.plot(dyn["steps"], column, color=colour, lw=1, label=label if j == 0 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("weight value")
    ax.set_title("the same individual weights over time")
    ax.legend()
    ax.grid(alpha=0.3)
    return finish(fig, path)


def gradient_angle(dynamics, path=None):
    """Angle between finite-difference and analytic gradients (float64 check on a few training
    images) against the cost of those images, one line per parameter array."""
    cost, angle = dynamics["check_cost"], dynamics["check_angle"]
    if len(cost) == 0:
        raise GlyphnetError("the dynamics hold no gradient checks")
    fig = figure(6.5, 3.8)
    ax = fig.subplots()
    for name, column in zip(dynamics["check_names"], angle.T):
        # An angle of exactly 0 cannot sit on the log axis: marked on its edge, line kept.
        plot_on_log(ax, cost, column, True, True, marker="o", label=str(name), markersize=4,
                    lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("cost of the check images (falls during training →)")
    ax.set_ylabel("angle (degrees)")
    ax.set_title("gradient check: finite-difference vs analytic gradient")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return finish(fig, path)
