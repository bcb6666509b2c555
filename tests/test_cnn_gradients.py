"""Finite-difference gradient checks (float64, central differences) for every convolutional
layer and whole small CNNs, parameters and inputs."""
import numpy as np
import pytest

import glyphnet as g
from glyphnet.nn.gradcheck import check_model
from glyphnet.nn.layers import Dense, Dropout, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh

TOL = 1e-7


def check(layers, input_shape, n=3, classes=4, seed=0, loss="cross_entropy", x=None):
    model = g.Sequential(layers, input_shape=input_shape, seed=seed, dtype=np.float64)
    model.compile(loss)
    rng = np.random.default_rng(seed)
    if x is None:
        x = rng.normal(size=(n,) + tuple(input_shape))
    labels = rng.integers(0, classes, len(x))
    results = check_model(model, x, labels, eps=1e-6, max_entries=25, input_grad=True)
    names = [r["name"] for r in results]
    assert "input" in names and len(results) == len(model.parameters()) + 1
    for r in results:
        assert r["rel_error"] < TOL, r
    return results


@pytest.mark.parametrize("kwargs", [
    dict(filters=3, kernel_size=3),
    dict(filters=2, kernel_size=[3, 2], padding="same"),
    dict(filters=2, kernel_size=3, stride=2, padding=1),
    dict(filters=3, kernel_size=1, bias=False),
    dict(filters=2, kernel_size=7),                     # kernel as large as the image
])
def test_conv2d(kwargs):
    check([g.Conv2D(**kwargs), Tanh(), Dense(4), Softmax()], (7, 7, 2))


def test_conv2d_many_channels_path():
    check([g.Conv2D(4, 3, padding="same"), Tanh(), g.Conv2D(3, 3, stride=2), Dense(4),
           Softmax()], (6, 6, 9))


@pytest.mark.parametrize("cls,kwargs", [
    (g.DepthwiseConv2D, dict(kernel_size=3)),
    (g.DepthwiseConv2D, dict(kernel_size=3, stride=2, padding="valid", bias=False)),
    (g.SeparableConv2D, dict(filters=4, kernel_size=3, padding="same")),
    (g.SeparableConv2D, dict(filters=2, kernel_size=[2, 3], stride=2, padding=1)),
])
def test_depthwise_and_separable(cls, kwargs):
    check([cls(**kwargs), Tanh(), Dense(4), Softmax()], (7, 6, 3))


@pytest.mark.parametrize("pool,stride", [(2, None), (3, 2), (2, 1)])
def test_pooling(pool, stride):
    # Random normal inputs: no ties, so the max is differentiable everywhere.
    check([g.MaxPool2D(pool, stride), Dense(4), Softmax()], (7, 8, 2))
    check([g.AvgPool2D(pool, stride), Dense(4), Softmax()], (7, 8, 2))


@pytest.mark.parametrize("shape", [(5,), (6, 6, 3)])
def test_batch_norm_in_training_mode(shape):
    check([g.BatchNorm(), Sigmoid(), Dense(4), Softmax()], shape, n=5)


def test_whole_cnn_with_batch_norm_and_dropout():
    # No biases before batch norm: it removes them, so their gradient is exactly 0.
    layers = [g.Conv2D(4, 3, padding="same", bias=False), g.BatchNorm(), ReLU(),
              g.MaxPool2D(2), g.SeparableConv2D(6, 3, bias=False), g.BatchNorm(), LeakyReLU(0.1),
              g.AvgPool2D(2), Dense(8, bias=False), g.BatchNorm(), Tanh(), Dropout(0.3), Dense(5),
              Softmax()]
    check(layers, (10, 10, 1), n=4, classes=5)


def test_whole_cnn_on_jittered_mnist_with_mse():
    """Real digits, jittered by 1e-3 so no max-pool window ties exactly."""
    ds = g.load_mnist()
    rng = np.random.default_rng(3)
    x = ds.x_train[:3].astype(np.float64) + rng.uniform(-1e-3, 1e-3, (3, 28, 28, 1))
    layers = [g.Conv2D(3, 5, stride=2), Tanh(), g.MaxPool2D(2), g.Conv2D(4, 3, padding="same"),
              LeakyReLU(0.1), g.MaxPool2D(2), Dense(10), Sigmoid()]
    check(layers, (28, 28, 1), classes=10, loss="mse", x=x)
