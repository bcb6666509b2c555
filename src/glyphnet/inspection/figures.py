"""Pictures of a training run (matplotlib, headless: figures are drawn with the Agg renderer and
never touch pyplot's global state).

Every function returns a ``matplotlib.figure.Figure`` and, given ``path``, also writes it there
as a PNG. Images are NHWC arrays with values in [0, 1], ink high; they are drawn dark on light.
Weights are drawn on a diverging scale: blue negative, white 0, red positive.
"""
import csv
import os

import matplotlib
import matplotlib.cm
import matplotlib.colors
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .metrics import confusion_matrix  # noqa: F401  (part of this module's API)
from ..errors import GlyphnetError
from .explain import ACTIVATIONS
from .monitor import CONV_KINDS, POOL_KINDS, first_conv, weight_arrays

DIVERGING = "RdBu_r"
INK = "gray_r"
DPI = 100


# ------------------------------------------------------------------------------ helpers
def _figure(width, height):
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


class _Grid:
    """rows x cols image cells painted into one RGB picture, with titles and labels as figure
    text: no Axes per cell, so grids of hundreds of small images draw in a fraction of a
    second. Sizes are given in inches."""

    def __init__(self, rows, cols, cell=1.0, title=0.0, left=0.1, right=0.1, top=0.1,
                 bottom=0.1, gap=0.1):
        def px(inches):
            return int(round(inches * DPI))
        self.cell, self.title, self.gap, self.left, self.top = \
            px(cell), px(title), px(gap), px(left), px(top)
        self.right = px(right)
        self.width = self.left + cols * self.cell + (cols - 1) * self.gap + self.right
        self.height = self.top + rows * (self.cell + self.title) + (rows - 1) * self.gap + \
            px(bottom)
        self.canvas = np.ones((self.height, self.width, 3))
        self.fig = Figure(figsize=(self.width / DPI, self.height / DPI), dpi=DPI)

    def _corner(self, r, c):
        """Pixel row and column of the top-left corner of cell (r, c)'s image area."""
        return (self.top + r * (self.cell + self.title + self.gap) + self.title,
                self.left + c * (self.cell + self.gap))

    def show(self, r, c, image, cmap, vmin=None, vmax=None, frame=False):
        """Paint ``image`` into cell (r, c), enlarged by an integer factor (nearest pixel);
        vmin/vmax None: the image's own range."""
        image = np.asarray(_plain(image), float)
        step = int(np.ceil(max(image.shape) / self.cell))
        image = image[::step, ::step]
        k = max(1, self.cell // max(image.shape))
        big = np.repeat(np.repeat(image, k, 0), k, 1)
        lo = big.min() if vmin is None else vmin
        hi = big.max() if vmax is None else vmax
        scaled = (big - lo) / (hi - lo) if hi > lo else np.zeros_like(big)
        rgb = matplotlib.colormaps[cmap](np.clip(scaled, 0, 1))[..., :3]
        y, x = self._corner(r, c)
        y += (self.cell - big.shape[0]) // 2
        x += (self.cell - big.shape[1]) // 2
        self.canvas[y:y + big.shape[0], x:x + big.shape[1]] = rgb
        if frame:
            grey = 0.6
            self.canvas[y - 1:y + big.shape[0] + 1, [x - 1, x + big.shape[1]]] = grey
            self.canvas[[y - 1, y + big.shape[0]], x - 1:x + big.shape[1] + 1] = grey

    def _frac(self, y, x):
        return x / self.width, 1 - y / self.height

    def text(self, r, c, text, fontsize=8):
        """A title centred above cell (r, c)."""
        y, x = self._corner(r, c)
        self.fig.text(*self._frac(y - 2, x + self.cell / 2), text, fontsize=fontsize,
                      ha="center", va="bottom")

    def label(self, r, text, fontsize=8):
        """A vertical label left of row r."""
        y, x = self._corner(r, 0)
        self.fig.text(*self._frac(y + self.cell / 2, x - 4), text, fontsize=fontsize,
                      rotation=90, ha="right", va="center")

    def heading(self, r, text, fontsize=8):
        """A left-aligned heading above row r."""
        y, x = self._corner(r, 0)
        self.fig.text(*self._frac(y - 2, x), text, fontsize=fontsize, va="bottom")

    def suptitle(self, text, fontsize=10):
        self.fig.text(0.5, 1 - 4 / self.height, text, fontsize=fontsize, ha="center",
                      va="top")

    def colorbar(self, cmap, vmin, vmax, label):
        """A colour bar in the right margin."""
        w = self.width
        cax = self.fig.add_axes(((w - self.right + 15) / w, 0.15, 12 / w, 0.7))
        mappable = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(vmin, vmax), cmap)
        self.fig.colorbar(mappable, cax=cax, label=label)

    def render(self):
        self.fig.figimage(self.canvas, 0, 0, origin="upper", zorder=-1)
        return self.fig


def _finish(fig, path):
    if path is not None:
        fig.savefig(os.fspath(path), dpi=DPI)
    return fig


def _plain(image):
    """(H, W) from (H, W), (H, W, 1) or (H, W, C) (channels averaged)."""
    image = np.asarray(image)
    return image if image.ndim == 2 else image.mean(axis=-1)


def _symmetric_limit(values, percentile=99.5):
    """A colour limit v for the range [-v, v] that ignores a few extreme values."""
    v = float(np.percentile(np.abs(values), percentile)) if np.size(values) else 0.0
    return v if v > 0 else 1.0


def _grid(n, max_cols):
    cols = max(1, min(n, max_cols))
    return cols, int(np.ceil(n / cols))


def _tiles(images, titles=None, cmap=INK, vmin=0.0, vmax=1.0, max_cols=10, tile=1.0,
           suptitle=None, colorbar=None, fontsize=8):
    """A figure with one small image per entry of ``images`` (each (H, W) or (H, W, C))."""
    n = len(images)
    cols, rows = _grid(n, max_cols)
    grid = _Grid(rows, cols, tile, 0.2 if titles is not None else 0.0,
                 right=1.0 if colorbar else max(0.1, 3.0 - (tile + 0.08) * cols),
                 top=0.35 if suptitle else 0.1, gap=0.08)
    for k in range(n):
        r, c = divmod(k, cols)
        grid.show(r, c, images[k], cmap, vmin, vmax, frame=cmap != INK)
        if titles is not None:
            grid.text(r, c, titles[k], fontsize)
    if suptitle:
        grid.suptitle(suptitle, 11)
    if colorbar:
        grid.colorbar(cmap, vmin, vmax, colorbar)
    return grid.render()


def class_names(model):
    """model.classes (characters for EMNIST), or the class indices as strings."""
    return list(model.classes) if model.classes else [str(i) for i in
                                                      range(model.output_shape[0])]


# ------------------------------------------------------------------------------ run files
def read_history(run_dir):
    """history.csv of a run as a list of dicts of floats (missing values left out)."""
    path = os.path.join(run_dir, "history.csv")
    try:
        with open(path, newline="") as f:
            return [{k: float(v) for k, v in row.items() if v not in ("", None)}
                    for row in csv.DictReader(f)]
    except OSError as exc:
        raise GlyphnetError(f"{path}: cannot read the training history ({exc})") from None


def read_batch_losses(run_dir):
    path = os.path.join(run_dir, "batch_losses.csv")
    try:
        return np.loadtxt(path, ndmin=1)
    except OSError as exc:
        raise GlyphnetError(f"{path}: cannot read the batch losses ({exc})") from None


def _rows(history):
    return history.epochs if hasattr(history, "epochs") else list(history)


# ------------------------------------------------------------------------------ learning curves
def learning_curves(history, path=None, title=None):
    """Train and test loss (left) and accuracy (right) per epoch. ``history`` is a History or
    a list of per-epoch dicts (as :func:`read_history` returns)."""
    rows = _rows(history)
    fig = _figure(9, 3.4)
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
    return _finish(fig, path)


def _moving_average(values, window):
    if len(values) < window or window < 2:
        return np.arange(1, len(values) + 1), np.asarray(values, float)
    smooth = np.convolve(values, np.ones(window) / window, mode="valid")
    return np.arange(window, len(values) + 1), smooth


def batch_losses(losses, path=None, window=None):
    """The training loss of every batch (light) and its moving average (dark)."""
    losses = np.asarray(losses, float)
    window = window or max(1, min(50, len(losses) // 10))
    fig = _figure(7, 3.4)
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
    return _finish(fig, path)


def compare_runs(runs, path=None, metrics=("test_loss", "test_accuracy")):
    """Overlaid per-epoch curves of several runs: ``runs`` maps a label to a History, a list
    of per-epoch dicts or a run directory."""
    fig = _figure(4.5 * len(metrics), 3.4)
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
    return _finish(fig, path)


# ------------------------------------------------------------------------------ weights
def weight_histograms(model, initial=None, path=None, bins=60):
    """A histogram of each weight array (filled), over that of its initial values (outline)
    when ``initial`` maps 'layer{i}.{name}' to the initial values (dynamics.npz has them, or
    a random sample of them for large arrays)."""
    arrays = weight_arrays(model)
    if not arrays:
        raise GlyphnetError("the model has no weight arrays to draw")
    cols, rows = _grid(len(arrays), 3)
    fig = _figure(3.6 * cols, 2.7 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[len(arrays):]:
        ax.set_axis_off()
    for ax, (i, name, w) in zip(axes.flat, arrays):
        key = f"layer{i}.{name}"
        w0 = None if initial is None else initial.get(key)
        values = w.ravel() if w0 is None else np.concatenate([w.ravel(), w0.ravel()])
        edges = np.histogram_bin_edges(values, bins)
        ax.hist(w.ravel(), edges, color="tab:blue", alpha=0.7, label="trained")
        if w0 is not None:   # a sample of the initial weights of large arrays: scale it up
            ax.hist(w0.ravel(), edges, weights=np.full(w0.size, w.size / w0.size),
                    histtype="step", color="black", lw=1.2, label="initial")
        ax.set_title(f"{key} ({model.layers[i].kind}, {w.size:,})", fontsize=9)
        ax.set_xlabel("weight value", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    return _finish(fig, path)


def _first_dense(model):
    """The first layer with parameters, which must be dense with image inputs."""
    layer = next((lay for lay in model.layers if lay.params), None)
    if layer is None or layer.kind != "dense" or len(model.input_shape) != 3:
        raise GlyphnetError("this picture needs a model whose first weighted layer is dense "
                            "on image inputs (for convolutional models see conv_filters)")
    return layer


def first_layer_weights(model, path=None, max_units=64):
    """The first dense layer's weights as images, one tile per hidden unit (per class, titled
    with its name, for a single-layer softmax model), on one diverging scale."""
    layer = _first_dense(model)
    W = layer.params["W"]
    dense = [lay for lay in model.layers if lay.kind == "dense"]
    single = len(dense) == 1
    units = min(W.shape[1], max_units)
    images = [W[:, j].reshape(model.input_shape) for j in range(units)]
    titles = class_names(model) if single else [f"unit {j}" for j in range(units)]
    v = _symmetric_limit(W[:, :units])
    what = "class" if single else "hidden unit"
    more = f" (first {units} of {W.shape[1]})" if units < W.shape[1] else ""
    return _finish(_tiles(images, titles[:units], DIVERGING, -v, v, max_cols=10 if single else 8,
                          suptitle=f"first-layer weights per {what}{more}",
                          colorbar="weight"), path)


def strongest_units(model):
    """For each output class, the first-layer unit most strongly connected to it: the largest
    entry of the product of the later dense layers' weights (the exact weight into the class
    for one hidden layer; the linear path strength for deeper networks)."""
    _first_dense(model)
    dense = [lay for lay in model.layers if lay.params]
    if len(dense) < 2 or any(lay.kind != "dense" for lay in dense):
        raise GlyphnetError("strongest units need a network of two or more dense layers")
    path = dense[1].params["W"].astype(np.float64)
    for lay in dense[2:]:
        path = path @ lay.params["W"]
    return path.argmax(axis=0), path


def class_unit_weights(model, classes=None, path=None):
    """For each chosen output class (all by default), the input weights of the hidden unit
    most strongly connected to it (see :func:`strongest_units`), as an image."""
    units, _ = strongest_units(model)
    names = class_names(model)
    chosen = range(len(names)) if classes is None else classes
    W = _first_dense(model).params["W"]
    images = [W[:, units[c]].reshape(model.input_shape) for c in chosen]
    v = _symmetric_limit(np.stack(images))
    titles = [f"'{names[c]}': unit {units[c]}" for c in chosen]
    return _finish(_tiles(images, titles, DIVERGING, -v, v, max_cols=10,
                          suptitle="input weights of the hidden unit most connected to each class",
                          colorbar="weight", tile=1.15), path)


# ------------------------------------------------------------------------------ dynamics
def training_dynamics(dynamics, path=None):
    """From dynamics.npz: the std of each layer's weight gradients over the steps, the mean
    magnitude of the deltas at the first conv layer (if any), and a few individual weights."""
    has_conv = len(dynamics.get("conv_deltas", ())) > 0
    panels = 3 if has_conv else 2
    fig = _figure(4.3 * panels, 3.4)
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
    return _finish(fig, path)


def weight_trajectories(runs, path=None):
    """The tracked individual weights of several runs (e.g. SGD vs Adam) on one plot, one
    colour per run: ``runs`` maps a label to dynamics (as monitor.load_dynamics returns)."""
    fig = _figure(7, 3.6)
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
    return _finish(fig, path)


def gradient_angle(dynamics, path=None):
    """Angle between finite-difference and analytic gradients (float64 check on a few training
    images) against the cost of those images, one line per parameter array."""
    cost, angle = dynamics["check_cost"], dynamics["check_angle"]
    if len(cost) == 0:
        raise GlyphnetError("the dynamics hold no gradient checks")
    fig = _figure(6.5, 3.8)
    ax = fig.subplots()
    for name, column in zip(dynamics["check_names"], angle.T):
        keep = column > 0
        ax.plot(cost[keep], column[keep], "o-", label=str(name), markersize=4, lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("cost of the check images (falls during training →)")
    ax.set_ylabel("angle (degrees)")
    ax.set_title("gradient check: finite-difference vs analytic gradient")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return _finish(fig, path)


# ------------------------------------------------------------------------------ CNNs
def _filter_tiles(W):
    """Kernels (KH, KW, C, F) or (KH, KW, C) as a list of (KH, KW) images."""
    W = np.asarray(W)
    flat = W.reshape(W.shape[0], W.shape[1], -1)
    return [flat[:, :, k] for k in range(flat.shape[2])]


def conv_filters(filters, path=None, max_filters=16):
    """The first conv layer's kernels: ``filters`` is a model, or a dict epoch -> kernels (the
    'filters' of dynamics.npz: epoch 0 is the initialisation) for one row per epoch."""
    if hasattr(filters, "layers"):
        i = first_conv(filters)
        if i is None:
            raise GlyphnetError("the model has no convolutional layer")
        layer = filters.layers[i]
        filters = {None: layer.params.get("W_depthwise", layer.params["W"])}
    rows = list(filters.items())
    n = min(len(_filter_tiles(rows[0][1])), max_filters)
    grid = _Grid(len(rows), n, 0.7, 0.2, left=0.4, top=0.35, right=max(0.1, 4.6 - 0.78 * n))
    for r, (epoch, W) in enumerate(rows):
        tiles = _filter_tiles(W)[:n]
        v = _symmetric_limit(np.stack(tiles), 100)
        for k in range(n):
            grid.show(r, k, tiles[k], DIVERGING, -v, v, frame=True)
            grid.text(r, k, f"{k}")
        if epoch is not None:
            grid.label(r, "init" if epoch == 0 else f"epoch {epoch}")
    grid.suptitle("first conv layer kernels (blue < 0 < red, one scale per row)")
    return _finish(grid.render(), path)


def feature_maps(model, image, path=None, max_channels=8):
    """One input image and its feature maps after each convolution (after its activation,
    when one follows) and each pooling stage: one row per stage."""
    if first_conv(model) is None:
        raise GlyphnetError("feature maps need a model with convolutional layers")
    x = np.asarray(image, model.dtype)[None]
    stages = [("input", x[0])]
    layers = model.layers
    for i, layer in enumerate(layers):
        x = layer.forward(x, False)
        nxt = layers[i + 1].kind if i + 1 < len(layers) else None
        if layer.kind in POOL_KINDS or (layer.kind in CONV_KINDS and nxt not in ACTIVATIONS):
            stages.append((f"{i}: {layer.kind}", x[0]))
        elif layer.kind in ACTIVATIONS and i > 0 and layers[i - 1].kind in CONV_KINDS:
            stages.append((f"{i - 1}: {layers[i - 1].kind} + {layer.kind}", x[0]))
        if x.ndim != 4:
            break
    cols = min(max(s[1].shape[-1] for s in stages), max_channels)
    grid = _Grid(len(stages), cols, 0.9, 0.2, left=0.3, top=0.35,
                 right=max(0.1, 6.5 - 0.95 * cols))
    for r, (label, maps) in enumerate(stages):
        for c in range(min(cols, maps.shape[-1])):
            grid.show(r, c, maps[:, :, c], "viridis")
        grid.label(r, f"{maps.shape[0]}x{maps.shape[1]}x{maps.shape[2]}", 7)
        grid.heading(r, label)
    grid.suptitle(f"feature maps of one image (first {cols} channels per stage, "
                  f"each map on its own scale)")
    return _finish(grid.render(), path)


# ------------------------------------------------------------------------------ results
def confusion(cm, classes, path=None):
    """The confusion matrix ``cm`` (visualize.confusion_matrix: row = true class, column =
    predicted) as counts (left) and row-normalised (right: each true class sums
    to 1). Cells are annotated when there are at most 20 classes."""
    cm = np.asarray(cm)
    n = len(classes)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4.5, min(0.45 * n + 1.5, 8.5))
    wide = n <= 20      # side by side; one above the other for many classes
    fig = _figure(2 * size + 1, size) if wide else _figure(size + 1, 2 * size)
    axes = fig.subplots(1, 2) if wide else fig.subplots(2, 1)
    for ax, data, title, fmt in ((axes[0], cm, "counts", "d"),
                                 (axes[1], norm, "row-normalised", ".2f")):
        im = ax.imshow(data, cmap="Blues", vmin=0, interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_title(f"confusion matrix ({title})", fontsize=10)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ticks = np.arange(n)
        fontsize = 8 if n <= 20 else 6
        ax.set_xticks(ticks, classes, fontsize=fontsize)
        ax.set_yticks(ticks, classes, fontsize=fontsize)
        if n <= 20:
            high = data.max() / 2 if data.size else 0
            for (r, c), v in np.ndenumerate(data):
                if v >= (1 if fmt == "d" else 0.005):
                    ax.text(c, r, format(v, fmt).lstrip("0") if fmt != "d" else str(v),
                            ha="center", va="center", fontsize=6 if n > 12 else 7,
                            color="white" if v > high else "black")
    return _finish(fig, path)


def per_class_accuracy(cm, classes, path=None):
    """Accuracy on the test images of each class, with the overall accuracy as a line."""
    cm = np.asarray(cm)
    acc = np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
    overall = np.trace(cm) / max(cm.sum(), 1)
    fig = _figure(max(5, 0.22 * len(classes) + 2), 3.4)
    ax = fig.subplots()
    ax.bar(np.arange(len(classes)), acc, color="tab:blue")
    ax.axhline(overall, color="tab:red", lw=1, ls="--", label=f"overall {overall:.3f}")
    ax.set_xticks(np.arange(len(classes)), classes, fontsize=8 if len(classes) <= 20 else 7)
    low = np.floor(10 * (acc.min() - 0.05)) / 10 if len(acc) else 0   # zoom in on the bars
    ax.set_ylim(max(0.0, low), 1.005)
    ax.set_xlabel("true class")
    ax.set_ylabel("accuracy")
    ax.set_title("per-class accuracy")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    return _finish(fig, path)


def _gallery(images, titles, suptitle, path, max_cols=10):
    if len(images) == 0:
        fig = _figure(5, 0.8)
        fig.text(0.5, 0.5, f"{suptitle}: none", ha="center", va="center")
        return _finish(fig, path)
    return _finish(_tiles(images, titles, max_cols=max_cols, suptitle=suptitle, tile=1.05), path)


def misclassified(images, labels, predicted, classes, path=None, n=30):
    """The first ``n`` misclassified images, each titled 'true -> predicted'."""
    idx = np.flatnonzero(np.asarray(labels) != np.asarray(predicted))[:n]
    titles = [f"{classes[labels[i]]} -> {classes[predicted[i]]}" for i in idx]
    return _gallery(images[idx], titles, "misclassified test images (true -> predicted)", path)


def correct(images, labels, predicted, classes, path=None, n=20):
    """The first ``n`` correctly classified images, titled with their class."""
    idx = np.flatnonzero(np.asarray(labels) == np.asarray(predicted))[:n]
    return _gallery(images[idx], [classes[labels[i]] for i in idx],
                    "correctly classified test images", path)


def confident_mistakes(images, labels, proba, classes, path=None, n=20):
    """The ``n`` mistakes made with the highest predicted probability, titled
    'true -> predicted (probability)'."""
    proba = np.asarray(proba)
    predicted = proba.argmax(axis=1)
    wrong = np.flatnonzero(np.asarray(labels) != predicted)
    idx = wrong[np.argsort(-proba[wrong, predicted[wrong]], kind="stable")][:n]
    titles = [f"{classes[labels[i]]} -> {classes[predicted[i]]} ({proba[i, predicted[i]]:.2f})"
              for i in idx]
    return _gallery(images[idx], titles, "most confident mistakes (true -> predicted (p))", path)


# ------------------------------------------------------------------------------ explanations
def image_grid(images, titles=None, path=None, suptitle=None, diverging=False, max_cols=10):
    """A plain grid of images: [0, 1] ink images, or signed maps on the diverging scale."""
    images = np.asarray(images)
    if diverging:
        v = _symmetric_limit(images, 100)
        return _finish(_tiles(images, titles, DIVERGING, -v, v, max_cols=max_cols,
                              suptitle=suptitle, colorbar="value"), path)
    return _finish(_tiles(images, titles, max_cols=max_cols, suptitle=suptitle), path)


def saliency_maps(images, maps, titles, path=None):
    """Each image (top row) above its saliency map (|d score / d input|, own scale)."""
    n = len(images)
    grid = _Grid(2, n, 0.95, 0.2, top=0.35, right=max(0.1, 5.0 - 1.03 * n), gap=0.08)
    for k in range(n):
        grid.show(0, k, images[k], INK, 0, 1)
        grid.text(0, k, titles[k])
        grid.show(1, k, maps[k], "hot")
    grid.suptitle("saliency: |d class score / d pixel| for the predicted class")
    return _finish(grid.render(), path)


def deconvolution_grid(projections, titles, path=None, max_filters=16):
    """Deconvolution view (explain.deconvolution): one row per image, one column per filter,
    each row on its own symmetric diverging scale."""
    projections = np.asarray(projections)
    n, f = projections.shape[:2]
    f = min(f, max_filters)
    grid = _Grid(n, f, 0.8, 0.0, left=0.3, top=0.75, right=max(0.1, 6.0 - 0.9 * f))
    for r in range(n):
        v = _symmetric_limit(projections[r, :f], 100)
        for c in range(f):
            grid.show(r, c, projections[r, c], DIVERGING, -v, v, frame=True)
        grid.label(r, titles[r], 9)
    for c in range(f):
        grid.text(0, c, f"filter {c}", 7)
    grid.suptitle("first-layer activation maps projected back onto the image\n"
                  "(transposed convolution; blue < 0 < red, one scale per row)")
    return _finish(grid.render(), path)
