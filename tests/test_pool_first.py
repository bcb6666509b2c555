"""A ReLU followed by max pooling runs pooling first inside Sequential (relu and max commute):
outputs and gradients are bit-identical to the layers run one by one in their own order, on
real MNIST images, whose flat background makes whole pooling windows tie (at 0 after the
ReLU, at equal values before it)."""
import copy

import numpy as np
import pytest

import glyphnet as g
from glyphnet import Dense, ReLU, Softmax
from glyphnet.nn.model import _pool_first


def layer_by_layer(model, x, dout):
    """Forward and backward through each layer in its own order (no reordering)."""
    model = copy.deepcopy(model)
    for layer in model.layers:
        x = layer.forward(x, True)
    out = x
    for layer in reversed(model.layers):
        dout = layer.backward(dout)
    return out, dout, [gr.copy() for _, _, _, gr in model.parameters()]


@pytest.mark.parametrize("pool", [dict(pool_size=2), dict(pool_size=3, stride=2),
                                  dict(pool_size=3)])
def test_pool_first_gives_bit_identical_outputs_and_gradients(rng, pool):
    ds = g.load_mnist()
    x = ds.x_train[:64]
    # A zero-initialised bias and positive-only inputs leave many outputs exactly 0, and the
    # blank background gives windows of equal values: ties before and after the ReLU.
    model = g.Sequential([g.Conv2D(6, 3, init="zeros"), ReLU(), g.MaxPool2D(**pool),
                          g.Conv2D(4, 3), ReLU(), g.MaxPool2D(**pool), Dense(10)],
                         input_shape=(28, 28, 1), seed=1)
    model.layers[0].params["W"][...] = rng.standard_normal(model.layers[0].params["W"].shape)
    assert _pool_first(model.layers) == {1, 4}
    out = model.forward(x, True)
    assert model._pool_first == {1, 4}
    dout = rng.standard_normal(out.shape).astype(np.float32)
    want_out, want_dx, want_grads = layer_by_layer(model, x, dout)
    np.testing.assert_array_equal(out, want_out)
    dx = model.backward(dout)
    np.testing.assert_array_equal(dx, want_dx)
    for got, want in zip((gr for _, _, _, gr in model.parameters()), want_grads):
        np.testing.assert_array_equal(got, want)
    # the windows did tie: some pooled outputs are exactly 0 with more than one 0 behind them
    relu_out = np.maximum(model.layers[0].forward(x), 0)
    assert (relu_out == 0).mean() > 0.3


def test_only_relu_directly_before_max_pooling_is_reordered():
    layers = [g.Conv2D(2, 3), g.LeakyReLU(), g.MaxPool2D(2), g.Conv2D(2, 3), ReLU(),
              g.AvgPool2D(2), ReLU(), Dense(10), Softmax()]
    assert _pool_first(layers) == set()


def test_forward_upto_between_relu_and_pool_returns_the_relu_output():
    model = g.Sequential([g.Conv2D(2, 3), ReLU(), g.MaxPool2D(2), Dense(10)],
                         input_shape=(28, 28, 1))
    x = g.load_mnist().x_train[:4]
    assert model.forward(x, upto=2).shape == (4, 26, 26, 2)
    assert model.forward(x, upto=3).shape == (4, 13, 13, 2)


def test_hooks_see_the_pair_as_one_layer(rng):
    model = g.Sequential([g.Conv2D(2, 3), ReLU(), g.MaxPool2D(2), Dense(10), Softmax()],
                         input_shape=(28, 28, 1)).compile()
    seen = []
    model.backward_hooks.append(lambda i, layer, dy: seen.append((i, dy.shape)))
    x = g.load_mnist().x_train[:4]
    model.loss_and_grads(x, np.arange(4))
    assert seen == [(3, (4, 10)), (2, (4, 13, 13, 2)), (0, (4, 26, 26, 2))]
