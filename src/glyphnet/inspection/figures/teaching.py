"""Teaching pictures the reports drew by hand: activation functions and their derivatives
for chosen slopes and leaks, and what batch normalisation does to a batch."""
import copy

import numpy as np

from ...errors import GlyphnetError
from ...nn.layers import LeakyReLU, ReLU, Sigmoid, Tanh
from ...nn.normalization import BatchNorm
from .common import figure, finish


def activation_series(slopes=(1.0,), leaks=(0.01,), x=None):
    """[(name, x, f(x), f'(x))] computed by glyphnet's own layers (forward, and backward of
    ones): sigmoid and tanh for each slope, ReLU, and leaky ReLU for each leak."""
    x = np.linspace(-4, 4, 401) if x is None else np.asarray(x, float)
    layers = [(f"sigmoid (slope {s:g})", Sigmoid(s)) for s in slopes]
    layers += [(f"tanh (slope {s:g})", Tanh(s)) for s in slopes]
    layers += [("relu", ReLU())]
    layers += [(f"leaky relu (leak {a:g})", LeakyReLU(a)) for a in leaks]
    out = []
    for name, layer in layers:
        y = layer.forward(x.copy())
        out.append((name, x, np.asarray(y, float), np.asarray(layer.backward(np.ones_like(x)),
                                                            float)))
    return out


def activations(slopes=(1.0,), leaks=(0.01,), path=None):
    """The activation functions (left) and their derivatives (right), one colour per
    function; see :func:`activation_series`."""
    series = activation_series(slopes, leaks)
    fig = figure(10, 4.4)
    ax_f, ax_d = fig.subplots(1, 2)
    for k, (name, x, y, dy) in enumerate(series):
        # ReLU drawn thick and the leaky ones dashed over it: they coincide for x > 0.
        style = {"lw": 4 if name == "relu" else 1.5, "color": f"C{k % 10}",
                 "ls": "--" if name.startswith("leaky") else "-"}
        ax_f.plot(x, y, label=name, **style)
        ax_d.plot(x, dy, **style)
    for ax, title in ((ax_f, "f(x)"), (ax_d, "f'(x)")):
        ax.axhline(0, color="0.6", lw=0.8)
        ax.axvline(0, color="0.6", lw=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
    ax_f.set_ylim(-1.6, 2.5)
    fig.legend(loc="outside lower center", ncol=min(len(series), 4), fontsize=8,
               frameon=False)
    return finish(fig, path)


def batchnorm_batches(model, x):
    """For each batch-norm layer of ``model``: (index, its input and its output when the batch
    ``x`` is normalised by its own statistics, as in training), each (N, features) with the
    spatial positions of conv features folded into N. The model is left as it was (the
    layer's running statistics are not updated)."""
    out, a = [], np.asarray(x, model.dtype)
    for i, layer in enumerate(model.layers):
        if isinstance(layer, BatchNorm):
            b = copy.deepcopy(layer).forward(a, training=True)
            out.append((i, a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])))
        a = layer.forward(a, training=False)
    if not out:
        raise GlyphnetError("the model has no batch-norm layer")
    return out


def batchnorm(model, x, path=None):
    """What batch normalisation does to a batch: for each batch-norm layer, the histogram of
    all its inputs and outputs (left), and the batch mean and standard deviation of each
    feature before and after (right: before spread out, after near gamma and beta)."""
    layers = batchnorm_batches(model, x)
    fig = figure(10, 3.2 * len(layers))
    axes = np.atleast_2d(fig.subplots(len(layers), 2, squeeze=False))
    for (ax_h, ax_s), (i, before, after) in zip(axes, layers):
        edges = np.histogram_bin_edges(np.concatenate([before.ravel(), after.ravel()]), 80)
        ax_h.hist(before.ravel(), edges, color="0.55", alpha=0.7, label="input")
        ax_h.hist(after.ravel(), edges, color="tab:blue", alpha=0.6, label="normalised")
        ax_h.set_title(f"layer {i} (batch norm): all activations of a batch of {len(x)}",
                       fontsize=9)
        ax_h.legend(fontsize=8)
        ax_h.set_xlabel("activation", fontsize=8)
        for values, colour, name in ((before, "0.45", "input"),
                                     (after, "tab:blue", "normalised")):
            ax_s.scatter(values.mean(axis=0), values.std(axis=0), s=10, color=colour,
                         label=name, alpha=0.8)
        ax_s.set_xlabel("batch mean of a feature", fontsize=8)
        ax_s.set_ylabel("batch std", fontsize=8)
        ax_s.set_title(f"each of the {before.shape[1]} features", fontsize=9)
        ax_s.legend(fontsize=8)
        for ax in (ax_h, ax_s):
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    return finish(fig, path)
