"""Weights: histograms of every weight array and the first dense layer's weights as images."""
import numpy as np

from ...errors import GlyphnetError
from ...nn.layers import Dense
from ..monitor import weight_arrays
from ..roles import all_dense, first_dense_on_images, weighted_layers
from .common import DIVERGING, figure, finish, grid_shape, symmetric_limit, tiles


def weight_histograms(model, initial=None, path=None, bins=60):
    """A histogram of each weight array (filled), over that of its initial values (outline)
    when ``initial`` maps 'layer{i}.{name}' to the initial values (dynamics.npz has them, or
    a random sample of them for large arrays)."""
    arrays = weight_arrays(model)
    if not arrays:
        raise GlyphnetError("the model has no weight arrays to draw")
    cols, rows = grid_shape(len(arrays), 3)
    fig = figure(3.6 * cols, 2.7 * rows)
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
    return finish(fig, path)


def _first_dense(model):
    """The first layer with parameters, which must be dense with image inputs."""
    layer = first_dense_on_images(model)
    if layer is None:
        raise GlyphnetError("this picture needs a model whose first weighted layer is dense "
                            "on image inputs (for convolutional models see conv_filters)")
    return layer


def first_layer_weights(model, path=None, max_units=64):
    """The first dense layer's weights as images, one tile per hidden unit (per class, titled
    with its name, for a single-layer softmax model), on one diverging scale."""
    layer = _first_dense(model)
    W = layer.params["W"]
    single = sum(isinstance(lay, Dense) for lay in model.layers) == 1
    units = min(W.shape[1], max_units)
    images = [W[:, j].reshape(model.input_shape) for j in range(units)]
    titles = model.class_names if single else [f"unit {j}" for j in range(units)]
    v = symmetric_limit(W[:, :units])
    what = "class" if single else "hidden unit"
    more = f" (first {units} of {W.shape[1]})" if units < W.shape[1] else ""
    return finish(tiles(images, titles[:units], DIVERGING, -v, v, max_cols=10 if single else 8,
                         suptitle=f"first-layer weights per {what}{more}",
                         colorbar="weight"), path)


def strongest_units(model):
    """For each output class, the first-layer unit most strongly connected to it: the largest
    entry of the product of the later dense layers' weights (the exact weight into the class
    for one hidden layer; the linear path strength for deeper networks)."""
    _first_dense(model)
    dense = weighted_layers(model)
    if len(dense) < 2 or not all_dense(model):
        raise GlyphnetError("strongest units need a network of two or more dense layers")
    path = dense[1].params["W"].astype(np.float64)
    for lay in dense[2:]:
        path = path @ lay.params["W"]
    return path.argmax(axis=0), path


def class_unit_weights(model, classes=None, path=None):
    """For each chosen output class (all by default), the input weights of the hidden unit
    most strongly connected to it (see :func:`strongest_units`), as an image."""
    units, _ = strongest_units(model)
    names = model.class_names
    chosen = range(len(names)) if classes is None else classes
    W = _first_dense(model).params["W"]
    images = [W[:, units[c]].reshape(model.input_shape) for c in chosen]
    v = symmetric_limit(np.stack(images))
    titles = [f"'{names[c]}': unit {units[c]}" for c in chosen]
    return finish(tiles(images, titles, DIVERGING, -v, v, max_cols=10,
                         suptitle="input weights of the hidden unit most connected to each class",
                         colorbar="weight", tile=1.15), path)
