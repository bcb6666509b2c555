"""How a model's accuracy holds up when its test images change (noise, rotation, shift, stroke
thickness), and what the "not sure" threshold trades: the fraction of images it still answers
(coverage) against the accuracy of those answers.

Images are NHWC float arrays in [0, 1] with the ink high, before the model's scaler (as data
sets load them); every function returns plain NumPy arrays.
"""
import csv
import io
import os

import numpy as np

from ..data.augment import bilinear
from ..errors import GlyphnetError
from ..fileio import atomic_open, write_atomic

# The levels measured by default: noise std, degrees anticlockwise, pixels right and down,
# stroke steps (negative: thinner by a 3x3 grey erosion per step, positive: thicker by a 3x3
# grey dilation per step).
LEVELS = {
    "noise": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6),
    "rotation": (-60, -45, -30, -15, 0, 15, 30, 45, 60),
    "shift": (0, 1, 2, 3, 4, 5, 6),
    "thickness": (-2, -1, 0, 1, 2, 3),
}
UNITS = {"noise": "noise std", "rotation": "degrees", "shift": "pixels (right and down)",
         "thickness": "stroke steps (3x3 erosion < 0 < dilation)"}
THRESHOLDS = np.round(np.linspace(0, 1, 21), 2)


def _grid(h, w):
    return np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32),
                       indexing="ij")


def rotate(images, degrees):
    """Every image turned anticlockwise by ``degrees`` about its centre (bilinear)."""
    n, h, w, _ = images.shape
    theta = np.deg2rad(degrees)
    cos, sin = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    ys, xs = _grid(h, w)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    y, x = ys - cy, xs - cx
    # Each output pixel reads the input point rotated back (y points down on screen).
    src_y, src_x = cy + cos * y + sin * x, cx - sin * y + cos * x
    return bilinear(images, np.broadcast_to(src_y, (n, h, w)), np.broadcast_to(src_x, (n, h, w)))


def shift(images, pixels):
    """Every image moved ``pixels`` right and ``pixels`` down; the edge fills the gap."""
    n, h, w, _ = images.shape
    ys, xs = _grid(h, w)
    return bilinear(images, np.broadcast_to(ys - pixels, (n, h, w)),
                    np.broadcast_to(xs - pixels, (n, h, w)))


def _filter3x3(images, reduce):
    """The max (dilation) or min (erosion) of each pixel's 3x3 neighbourhood, edges repeated."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = images.shape[1:3]
    out = images.copy()
    for dy in range(3):
        for dx in range(3):
            reduce(out, padded[:, dy:dy + h, dx:dx + w], out=out)
    return out


def thickness(images, steps):
    """Strokes made thicker (``steps`` > 0 dilations) or thinner (< 0 erosions)."""
    out = images
    for _ in range(abs(int(steps))):
        out = _filter3x3(out, np.maximum if steps > 0 else np.minimum)
    return out


def noise(images, std, seed=0):
    """Gaussian noise of standard deviation ``std`` added, clipped back to [0, 1]."""
    rng = np.random.default_rng(seed)
    noisy = images + np.float32(std) * rng.standard_normal(images.shape, dtype=np.float32)
    return np.clip(noisy, 0, 1, out=noisy)


def perturb(images, kind, level, seed=0):
    """``images`` changed by one of LEVELS' kinds at ``level``."""
    images = np.asarray(images, np.float32)
    if kind == "noise":
        return noise(images, level, seed)
    if kind == "rotation":
        return rotate(images, level)
    if kind == "shift":
        return shift(images, level)
    if kind == "thickness":
        return thickness(images, level)
    raise ValueError(f"unknown perturbation {kind!r}; expected one of {', '.join(LEVELS)}")


def _probabilities(model, images):
    x = model.scaler.transform(images) if model.scaler is not None else images
    return model.probabilities(x)


def coverage_curve(probabilities, labels, thresholds=THRESHOLDS):
    """For each threshold t: the fraction of images whose top probability is >= t (answered,
    not "not sure") and the accuracy of those answers (NaN when none is answered)."""
    p = np.asarray(probabilities)
    top, right = p.max(axis=1), p.argmax(axis=1) == np.asarray(labels)
    thresholds = np.asarray(thresholds, np.float64)
    kept = top[None, :] >= thresholds[:, None]
    answered = kept.sum(axis=1)
    accuracy = np.where(answered > 0, (kept & right).sum(axis=1) / np.maximum(answered, 1),
                        np.nan)
    return {"threshold": thresholds, "coverage": answered / len(top), "accuracy": accuracy}


def robustness(model, images, labels, levels=None, seed=0):
    """Accuracy of ``model`` on ``images`` under every perturbation of ``levels`` (default
    LEVELS), and the coverage curve of the unchanged images. Returns {kind: {"level": array,
    "accuracy": array}, ..., "coverage": coverage_curve(...)}."""
    labels = np.asarray(labels)
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images (and at least one); got "
                         f"{len(images)} images and {len(labels)} labels")
    result = {}
    for kind, values in (levels or LEVELS).items():
        acc = [float(np.mean(_probabilities(model, perturb(images, kind, v, seed))
                             .argmax(axis=1) == labels)) for v in values]
        result[kind] = {"level": np.asarray(values, np.float64), "accuracy": np.asarray(acc)}
    result["coverage"] = coverage_curve(_probabilities(model, np.asarray(images, np.float32)),
                                        labels)
    return result


def csv_text(result):
    """The result as CSV rows: test, level, accuracy, coverage (coverage only for the
    threshold rows, whose level is the threshold)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["test", "level", "accuracy", "coverage"])
    for kind, curve in result.items():
        if kind == "coverage":
            for t, c, a in zip(curve["threshold"], curve["coverage"], curve["accuracy"]):
                w.writerow(["threshold", f"{t:g}", "" if np.isnan(a) else f"{a:.6g}", f"{c:.6g}"])
        else:
            for v, a in zip(curve["level"], curve["accuracy"]):
                w.writerow([kind, f"{v:g}", f"{a:.6g}", ""])
    return buf.getvalue()


def figure(result, path=None, title=None):
    """One panel per perturbation plus accuracy against coverage; written to ``path`` (PNG)
    when given. Returns the matplotlib Figure."""
    from matplotlib.figure import Figure
    kinds = [k for k in result if k != "coverage"]
    fig = Figure(figsize=(3.0 * (len(kinds) + 1), 3.0), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(kinds) + 1, squeeze=False)[0]
    for ax, kind in zip(axes, kinds):
        ax.plot(result[kind]["level"], 100 * result[kind]["accuracy"], "o-", color="#2f6fdf")
        ax.set_title(kind)
        ax.set_xlabel(UNITS.get(kind, "level"), fontsize=8)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    cov, ax = result["coverage"], axes[-1]
    ax.plot(100 * cov["coverage"], 100 * cov["accuracy"], "o-", color="#b4541a")
    for t, c, a in zip(cov["threshold"], cov["coverage"], cov["accuracy"]):
        if t in (0.5, 0.9) and not np.isnan(a):
            ax.annotate(f"t={t:g}", (100 * c, 100 * a), fontsize=7, textcoords="offset points",
                        xytext=(4, -10))
    ax.set_title("not-sure threshold")
    ax.set_xlabel("coverage: images answered (%)", fontsize=8)
    ax.set_ylabel("accuracy of the answers (%)")
    ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    if path is not None:
        with atomic_open(path) as f:
            fig.savefig(f, format="png")
    return fig


def write(result, out_dir, title=None):
    """robustness.png and robustness.csv in ``out_dir`` (created). Returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    png, table = os.path.join(out_dir, "robustness.png"), os.path.join(out_dir, "robustness.csv")
    figure(result, png, title)
    write_atomic(table, csv_text(result))
    return png, table


def evaluation_set(model, model_path=None, dataset=None, data_dir=None):
    """(images, labels) to test ``model`` on: the named ``dataset``'s test split, else the one
    of the run config next to ``model_path`` (RUN_DIR/config.toml), else the bundled MNIST
    test set for a 28x28 model with 10 classes."""
    from .. import data
    from ..config import load_config
    run_config = model_path and os.path.join(os.path.dirname(os.path.abspath(model_path)),
                                             "config.toml")
    if dataset is not None:
        ds = data.load_from_config(load_config(None, {"data.dataset": dataset})["data"],
                                   data_dir)
        x, y = ds.x_test, ds.y_test
    elif run_config and os.path.exists(run_config):
        ds = data.load_from_config(load_config(run_config)["data"], data_dir)
        x, y = ds.x_test, ds.y_test
    elif tuple(model.input_shape) == (28, 28, 1) and model.output_shape == (10,):
        d = data.bundled_mnist_dir()
        x, y = data.load_idx_pair(os.path.join(d, "t10k-images-idx3-ubyte.gz"),
                                  os.path.join(d, "t10k-labels-idx1-ubyte.gz"), 10)
    else:
        raise GlyphnetError("no test set is known for this model: name one (e.g. --data "
                            "usps) or keep the model in its run directory with config.toml")
    if tuple(x.shape[1:]) != tuple(model.input_shape):
        raise GlyphnetError(f"the model expects inputs of shape {tuple(model.input_shape)} but "
                            f"the test images have shape {tuple(x.shape[1:])}")
    return x, y
