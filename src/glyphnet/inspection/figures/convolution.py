"""Convolutional layers: kernels, feature maps and the deconvolution view."""
import numpy as np

from ...errors import GlyphnetError
from ...nn.conv import ConvLayer, Pool2D
from ...nn.layers import Activation
from ..roles import conv_weight, first_conv
from .common import DIVERGING, Grid, finish, symmetric_limit


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
        filters = {None: conv_weight(layer)}
    rows = list(filters.items())
    n = min(len(_filter_tiles(rows[0][1])), max_filters)
    grid = Grid(len(rows), n, 0.7, 0.2, left=0.4, top=0.35, right=max(0.1, 4.6 - 0.78 * n))
    for r, (epoch, W) in enumerate(rows):
        tiles = _filter_tiles(W)[:n]
        v = symmetric_limit(np.stack(tiles), 100)
        for k in range(n):
            grid.show(r, k, tiles[k], DIVERGING, -v, v, frame=True)
            grid.text(r, k, f"{k}")
        if epoch is not None:
            grid.label(r, "init" if epoch == 0 else f"epoch {epoch}")
    grid.suptitle("first conv layer kernels (blue < 0 < red, one scale per row)")
    return finish(grid.render(), path)


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
        activated = i + 1 < len(layers) and isinstance(layers[i + 1], Activation)
        if isinstance(layer, Pool2D) or (isinstance(layer, ConvLayer) and not activated):
            stages.append((f"{i}: {layer.kind}", x[0]))
        elif isinstance(layer, Activation) and i > 0 and isinstance(layers[i - 1], ConvLayer):
            stages.append((f"{i - 1}: {layers[i - 1].kind} + {layer.kind}", x[0]))
        if x.ndim != 4:
            break
    cols = min(max(s[1].shape[-1] for s in stages), max_channels)
    grid = Grid(len(stages), cols, 0.9, 0.2, left=0.3, top=0.35,
                 right=max(0.1, 6.5 - 0.95 * cols))
    for r, (label, maps) in enumerate(stages):
        for c in range(min(cols, maps.shape[-1])):
            grid.show(r, c, maps[:, :, c], "viridis")
        grid.label(r, f"{maps.shape[0]}x{maps.shape[1]}x{maps.shape[2]}", 7)
        grid.heading(r, label)
    grid.suptitle(f"feature maps of one image (first {cols} channels per stage, "
                  f"each map on its own scale)")
    return finish(grid.render(), path)


def deconvolution_grid(projections, titles, path=None, max_filters=16):
    """Deconvolution view (explain.deconvolution): one row per image, one column per filter,
    each row on its own symmetric diverging scale."""
    projections = np.asarray(projections)
    n, f = projections.shape[:2]
    f = min(f, max_filters)
    grid = Grid(n, f, 0.8, 0.0, left=0.3, top=0.75, right=max(0.1, 6.0 - 0.9 * f))
    for r in range(n):
        v = symmetric_limit(projections[r, :f], 100)
        for c in range(f):
            grid.show(r, c, projections[r, c], DIVERGING, -v, v, frame=True)
        grid.label(r, titles[r], 9)
    for c in range(f):
        grid.text(0, c, f"filter {c}", 7)
    grid.suptitle("first-layer activation maps projected back onto the image\n"
                  "(transposed convolution; blue < 0 < red, one scale per row)")
    return finish(grid.render(), path)
