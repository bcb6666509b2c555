"""Sequential's two reorderings around max pooling, against the layers run one by one in their
own order, on real MNIST images, whose flat background makes whole pooling windows tie (at 0
after the ReLU, at equal values before it):

- a ReLU followed by max pooling runs pooling first (relu and max commute): bit-identical;
- a convolution under 2x2 max pooling hands its outputs over window by window
  (Conv2D.forward_windows): the same values up to the rounding of sums taken in another
  order, and the same maximum of every tied window receiving the gradient.
"""
import copy

import numpy as np
import pytest

import glyphnet as g
from glyphnet import Dense, ReLU, Softmax
from glyphnet.nn.conv import unwindow
from glyphnet.nn.model import plan_steps


def layer_by_layer(model, x, dout):
    """Forward and backward through each layer in its own order (no reordering)."""
    model = copy.deepcopy(model)
    for layer in model.layers:
        x = layer.forward(x, True)
    out = x
    for layer in reversed(model.layers):
        dout = layer.backward(dout)
    return out, dout, [gr.copy() for _, _, _, gr in model.parameters()]


def tied_model(first, pool, dtype=np.float32, second=None):
    """``first`` (a layer on the images), ReLU, pooling, ``second`` (Conv2D(4, 3)), ReLU,
    pooling, Dense: with a
    zero-initialised bias and positive-only inputs many outputs are exactly 0, and the blank
    background gives windows of equal values, ties before and after the ReLU."""
    model = g.Sequential([first, ReLU(), g.MaxPool2D(**pool), second or g.Conv2D(4, 3), ReLU(),
                          g.MaxPool2D(**pool), Dense(10)], input_shape=(28, 28, 1), seed=1,
                         dtype=dtype)
    W = model.layers[0].params["W"]
    W[...] = np.random.default_rng(5).standard_normal(W.shape)
    return model


def kinds(layers):
    return [kind for kind, _, _ in plan_steps(layers)]


@pytest.mark.parametrize("first, second, pool", [
    # not Conv2D: no windows
    (g.DepthwiseConv2D(3, init="zeros"), g.SeparableConv2D(4, 3), dict(pool_size=2)),
    (g.Conv2D(6, 3, init="zeros"), None, dict(pool_size=3, stride=2)),
    (g.Conv2D(6, 3, init="zeros"), None, dict(pool_size=3))])
def test_pool_first_gives_bit_identical_outputs_and_gradients(rng, first, second, pool):
    x = g.load_mnist().x_train[:64]
    model = tied_model(first, pool, second=second)
    assert kinds(model.layers) == ["layer", "pool_first", "layer", "pool_first", "layer"]
    out = model.forward(x, True)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    want_out, want_dx, want_grads = layer_by_layer(model, x, dout)
    np.testing.assert_array_equal(out, want_out)
    dx = model.backward(dout)
    np.testing.assert_array_equal(dx, want_dx)
    for got, want in zip((gr for _, _, _, gr in model.parameters()), want_grads):
        np.testing.assert_array_equal(got, want)
    # the windows did tie: many ReLU outputs are exactly 0
    relu_out = np.maximum(model.layers[0].forward(x), 0)
    assert (relu_out == 0).mean() > 0.3


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_windows_give_the_outputs_and_gradients_of_the_plain_layers(rng, dtype, rtol):
    x = g.load_mnist().x_train[:64].astype(dtype)
    model = tied_model(g.Conv2D(6, 3, init="zeros"), dict(pool_size=2), dtype)
    # conv 26x26 -> pool 13x13 -> conv 11x11 (odd: its last row and column are dropped)
    assert kinds(model.layers) == ["windows", "windows", "layer"]
    out = model.forward(x, True)
    dout = rng.standard_normal(out.shape).astype(dtype)
    want_out, want_dx, want_grads = layer_by_layer(model, x, dout)
    scale = lambda a: rtol * np.abs(a).max()                          # noqa: E731
    np.testing.assert_allclose(out, want_out, rtol=0, atol=scale(want_out))
    dx = model.backward(dout)
    # a tie broken another way would move a whole gradient to another input position
    np.testing.assert_allclose(dx, want_dx, rtol=0, atol=scale(want_dx))
    for got, want in zip((gr for _, _, _, gr in model.parameters()), want_grads):
        np.testing.assert_allclose(got, want, rtol=0, atol=scale(want))
    conv_out = model.layers[0].forward(x)
    windows = conv_out.reshape(64, 13, 2, 13, 2, 6)
    ties = (windows == windows.max(axis=(2, 4), keepdims=True)).sum(axis=(2, 4)) > 1
    assert ties.mean() > 0.3


@pytest.mark.parametrize("channels, kernel, stride, padding, size, bias", [
    (1, 3, 1, None, 28, True),      # cols stored transposed (fewer than 8 channels)
    (8, 3, 1, None, 13, True),      # row-major cols, an odd output (11x11)
    (3, 5, 2, 2, 17, False),        # strided, padded (9x9 outputs), no bias
    (9, 2, 1, "same", 10, True)])   # even kernel, 'same' padding
def test_conv_forward_windows_and_its_backward(rng, channels, kernel, stride, padding, size,
                                                bias):
    conv = g.Conv2D(5, kernel, stride=stride, padding=padding, bias=bias)
    shape = (size, size, channels)
    oh, ow, _ = conv.build(shape, rng, np.float64)
    if bias:
        conv.params["b"][...] = rng.standard_normal(5)
    x = rng.standard_normal((6,) + shape)
    y = conv.forward(x, True)
    yw = conv.forward_windows(x, True)
    assert yw.shape == (6, 2, 2, oh // 2, ow // 2, 5)
    kept = unwindow(yw, conv.output_shape)
    np.testing.assert_allclose(kept[:, :oh // 2 * 2, :ow // 2 * 2],
                               y[:, :oh // 2 * 2, :ow // 2 * 2], rtol=1e-12)
    assert not kept[:, oh // 2 * 2:].any() and not kept[:, :, ow // 2 * 2:].any()
    dyw = rng.standard_normal(yw.shape)
    dx = conv.backward(dyw)
    grads = {k: v.copy() for k, v in conv.grads.items()}
    conv.forward(x, True)
    want_dx = conv.backward(unwindow(dyw, conv.output_shape))
    np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
    for k, v in conv.grads.items():
        np.testing.assert_allclose(grads[k], v, rtol=1e-12, atol=1e-12)


def test_frozen_convolution_in_windows_gives_the_input_gradient_only(rng):
    x = g.load_mnist().x_train[:16].astype(np.float64)
    model = g.Sequential([g.Conv2D(4, 3), ReLU(), g.MaxPool2D(2), g.Conv2D(4, 3), ReLU(),
                          g.MaxPool2D(2), Dense(10), Softmax()], input_shape=(28, 28, 1),
                         dtype=np.float64).compile()
    model.layers[3].trainable = False      # frozen above a trainable first convolution
    plain = copy.deepcopy(model)
    labels = np.arange(16) % 10
    model.loss_and_grads(x, labels, input_grad=False)
    out = x                                          # the plain layers, one by one
    for layer in plain.layers[:-1]:
        out = layer.forward(out, True)
    _, dout = plain.loss(out, labels)
    for layer in reversed(plain.layers[:-1]):
        dout = layer.backward(dout)
    for i in (0, 6):
        for k, gr in model.layers[i].grads.items():
            np.testing.assert_allclose(gr, plain.layers[i].grads[k], rtol=1e-10, atol=1e-13)
    assert not model.layers[3].grads["W"].any()      # a frozen layer's gradients are not filled


def test_only_relu_directly_before_max_pooling_is_reordered():
    layers = [g.Conv2D(2, 3), g.LeakyReLU(), g.MaxPool2D(2), g.Conv2D(2, 3), ReLU(),
              g.AvgPool2D(2), ReLU(), Dense(10), Softmax()]
    assert kinds(layers) == ["layer"] * len(layers)


def test_which_convolutions_hand_over_windows():
    layers = [g.Conv2D(2, 3), g.MaxPool2D(2),                        # no ReLU between
              g.Conv2D(2, 1), ReLU(), g.MaxPool2D(2),                # 1x1: its cols are x
              g.Conv2D(2, 3), ReLU(), g.MaxPool2D(3, stride=2),      # not a 2x2 pooling
              g.SeparableConv2D(2, 3), ReLU(), g.MaxPool2D(2), Dense(10)]
    assert plan_steps(layers) == [("windows", (0, 1), None), ("layer", (2,), None),
                             ("pool_first", (3, 4), 3), ("layer", (5,), None),
                             ("pool_first", (6, 7), 6), ("layer", (8,), None),
                             ("pool_first", (9, 10), 9), ("layer", (11,), None)]
    assert plan_steps(layers[5:8])[0] == ("layer", (0,), None)
    assert plan_steps([g.Conv2D(2, 3), ReLU(), g.MaxPool2D(2)]) == [("windows", (0, 1, 2), 1)]


def test_forward_upto_between_the_layers_returns_their_own_outputs():
    model = g.Sequential([g.Conv2D(2, 3), ReLU(), g.MaxPool2D(2), Dense(10)],
                         input_shape=(28, 28, 1))
    x = g.load_mnist().x_train[:4]
    conv = model.layers[0].forward(x)
    np.testing.assert_array_equal(model.forward(x, upto=1), conv)
    np.testing.assert_array_equal(model.forward(x, upto=2), np.maximum(conv, 0))
    assert model.forward(x, upto=3).shape == (4, 13, 13, 2)


def test_hooks_see_the_plain_layers(rng):
    model = g.Sequential([g.Conv2D(2, 3), ReLU(), g.MaxPool2D(2), Dense(10), Softmax()],
                         input_shape=(28, 28, 1), dtype=np.float64).compile()
    seen = []
    model.backward_hooks.append(lambda i, layer, dy: seen.append((i, dy.copy())))
    x = g.load_mnist().x_train[:4].astype(np.float64)
    model.loss_and_grads(x, np.arange(4))
    assert [(i, dy.shape) for i, dy in seen] == [(3, (4, 10)), (2, (4, 13, 13, 2)),
                                                 (0, (4, 26, 26, 2))]
    # dL/d(conv output) as the plain layers give it: ReLU's and the pooling's backward
    relu, pool = copy.deepcopy(model.layers[1]), copy.deepcopy(model.layers[2])
    pool.forward(relu.forward(model.layers[0].forward(x), True), True)
    np.testing.assert_allclose(seen[2][1], relu.backward(pool.backward(seen[1][1])),
                               rtol=1e-12)
