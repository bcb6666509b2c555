"""Behaviour of the convolution, pooling and batch-norm layers: shapes, argument checks, the
Toeplitz matrix, tie routing in max pooling, batch-norm statistics, configs, save/load and a
small CNN that learns."""
import os

import numpy as np
import pytest

import glyphnet as g
from glyphnet import cli
from glyphnet.config import build_model, load_config, resolve
from glyphnet.nn.conv import conv2d_toeplitz, toeplitz_matrix
from glyphnet.errors import ConfigError
from glyphnet.nn.layers import Dense, ReLU, Softmax, layer_from_config

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
RNG = np.random.default_rng(0)


def built(layer, shape, dtype=np.float32):
    layer.build(shape, np.random.default_rng(0), dtype)
    return layer


@pytest.mark.parametrize("layer,shape,out", [
    (g.Conv2D(4, 5), (28, 28, 1), (24, 24, 4)),
    (g.Conv2D(4, 5, padding="same"), (28, 28, 1), (28, 28, 4)),
    (g.Conv2D(4, [4, 2], padding="same"), (9, 8, 3), (9, 8, 4)),
    (g.Conv2D(4, 3, stride=2, padding=1), (28, 28, 1), (14, 14, 4)),
    (g.Conv2D(2, 28), (28, 28, 1), (1, 1, 2)),
    (g.DepthwiseConv2D(3, padding="same"), (10, 10, 5), (10, 10, 5)),
    (g.SeparableConv2D(7, 5), (28, 28, 3), (24, 24, 7)),
    (g.MaxPool2D(2), (7, 7, 16), (3, 3, 16)),
    (g.MaxPool2D(3, 2), (24, 24, 8), (11, 11, 8)),
    (g.AvgPool2D([2, 1]), (8, 6, 2), (4, 6, 2)),
    (g.BatchNorm(), (6, 6, 3), (6, 6, 3)),
    (g.BatchNorm(), (10,), (10,)),
])
def test_output_shapes_and_dtype(layer, shape, out):
    assert layer.build(shape, np.random.default_rng(0)) == out
    y = layer.forward(RNG.random((2,) + shape, dtype=np.float32), training=True)
    assert y.shape == (2,) + out and y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).shape == (2,) + shape
    # get_config rebuilds an equal layer
    assert repr(layer_from_config({"type": layer.kind, **layer.get_config()})) == repr(layer)


@pytest.mark.parametrize("make,message", [
    (lambda: g.Conv2D(0, 3), "filters must be a positive integer"),
    (lambda: g.Conv2D(2.5, 3), "filters must be a positive integer"),
    (lambda: g.Conv2D(4, 0), "kernel_size must be a positive integer or a [height, width]"),
    (lambda: g.Conv2D(4, [3, 3, 3]), "kernel_size must be"),
    (lambda: g.Conv2D(4, 3, stride=0), "stride must be a positive integer"),
    (lambda: g.Conv2D(4, 3, padding="full"), "padding must be 'valid', 'same' or an integer"),
    (lambda: g.Conv2D(4, 3, padding=-1), "padding must be"),
    (lambda: g.Conv2D(4, 3, stride=2, padding="same"), "padding='same' needs stride 1"),
    (lambda: g.Conv2D(4, 3, init="bogus"), "unknown init"),
    (lambda: g.DepthwiseConv2D(True), "kernel_size must be"),
    (lambda: g.SeparableConv2D(-1, 3), "filters must be"),
    (lambda: g.MaxPool2D(0), "pool_size must be"),
    (lambda: g.AvgPool2D(2, stride=0), "stride must be"),
    (lambda: g.BatchNorm(momentum=1.0), "momentum must be in [0, 1)"),
    (lambda: g.BatchNorm(eps=0), "eps must be a positive number"),
])
def test_bad_arguments_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        make()


def test_build_errors_name_the_problem():
    with pytest.raises(ValueError, match="a 5x5 kernel does not fit in inputs of 4x4"):
        built(g.Conv2D(2, 5), (4, 4, 1))
    with pytest.raises(ValueError, match=r"needs images of shape \(height, width, channels\)"):
        built(g.Conv2D(2, 3), (784,))
    with pytest.raises(ValueError, match="a 3x3 pooling window does not fit in inputs of 2x8"):
        built(g.MaxPool2D(3), (2, 8, 1))
    with pytest.raises(ValueError, match="BatchNorm needs dense"):
        built(g.BatchNorm(), (4, 4))


def test_config_validator_reports_conv_problems():
    raw = {"model": {"layers": [
        {"type": "conv2d", "filters": 8, "kernel_size": 5, "padding": "full"},
        {"type": "conv2d", "kernel_size": 3},
        {"type": "max_pool2d", "pool_size": 2, "strides": 2},
        {"type": "batch_norm", "momentum": 2.0},
        {"type": "dense", "units": 10}, {"type": "softmax"}]}}
    with pytest.raises(ConfigError) as info:
        resolve(raw)
    text = str(info.value)
    assert "model.layers[0]: padding must be 'valid', 'same' or an integer >= 0" in text
    assert "model.layers[1].filters: required for layer 'conv2d'" in text
    assert "model.layers[2].strides: unknown option for layer 'max_pool2d'" in text
    assert "model.layers[3]: momentum must be in [0, 1)" in text


def test_config_that_cannot_be_built_is_a_config_error():
    cfg = resolve({"model": {"layers": [{"type": "conv2d", "filters": 4, "kernel_size": 30},
                                        {"type": "dense", "units": 10}]}})
    ds = g.Dataset("tiny", np.zeros((2, 28, 28, 1), np.float32), np.zeros(2, int),
                   np.zeros((2, 28, 28, 1), np.float32), np.zeros(2, int),
                   [str(i) for i in range(10)])
    with pytest.raises(ConfigError, match=r"a 30x30 kernel does not fit in inputs of 28x28"):
        build_model(cfg, ds)


@pytest.mark.parametrize("name", ["lenet", "cnn_8_16", "dwsep", "dwsep_bn", "arch_a", "arch_b",
                                  "fast99"])
def test_shipped_configs_build(name):
    cfg = load_config(os.path.join(CONFIGS, name + ".toml"))
    ds = g.Dataset("mnist-shaped", np.zeros((2, 28, 28, 1), np.float32), np.zeros(2, int),
                   np.zeros((2, 28, 28, 1), np.float32), np.zeros(2, int),
                   [str(i) for i in range(10)])
    model = build_model(cfg, ds)
    assert model.output_shape == (10,)
    assert any(isinstance(layer, (g.Conv2D, g.SeparableConv2D)) for layer in model.layers)


def test_toeplitz_matrix_by_hand():
    """2x2 kernel over a 3x3 image: 4 outputs, each row holds the kernel at its window."""
    T = toeplitz_matrix(np.array([[1., 2.], [3., 4.]]), (3, 3))
    expected = np.array([[1, 2, 0, 3, 4, 0, 0, 0, 0],
                         [0, 1, 2, 0, 3, 4, 0, 0, 0],
                         [0, 0, 0, 1, 2, 0, 3, 4, 0],
                         [0, 0, 0, 0, 1, 2, 0, 3, 4]], float)
    np.testing.assert_array_equal(T, expected)
    # Same padding drops the columns that would read the zero border.
    T = toeplitz_matrix(np.arange(1., 10.).reshape(3, 3), (2, 2), padding="same")
    np.testing.assert_array_equal(T, [[5, 6, 8, 9], [4, 5, 7, 8], [2, 3, 5, 6], [1, 2, 4, 5]])


@pytest.mark.parametrize("k,stride,padding", [(3, 1, "same"), (4, 2, 1), (28, 1, None),
                                              (1, 3, None)])
def test_fast_conv_equals_toeplitz_reference(k, stride, padding):
    layer = built(g.Conv2D(3, k, stride=stride, padding=padding), (28, 28, 2), np.float64)
    layer.params["b"][:] = [0.5, -1.0, 2.0]
    x = RNG.normal(size=(2, 28, 28, 2))
    np.testing.assert_allclose(layer.forward(x),
                               conv2d_toeplitz(x, layer.params["W"], layer.params["b"], stride,
                                               padding), rtol=1e-12, atol=1e-12)


def test_max_pool_sends_tied_gradients_to_the_first_maximum_only():
    x = np.array([[5., 5., 1., 7.],
                  [5., 5., 7., 7.],
                  [0., 2., 3., 3.],
                  [2., 2., 4., 4.]]).reshape(1, 4, 4, 1)
    for pool in (g.MaxPool2D(2), g.MaxPool2D(2, stride=[2, 2]), g.MaxPool2D(3, stride=1)):
        built(pool, (4, 4, 1))
        y = pool.forward(x)
        dx = pool.backward(np.ones_like(y))
        assert dx.sum() == y.size       # each window's gradient lands exactly once
    pool = built(g.MaxPool2D(2), (4, 4, 1))
    pool.forward(x)
    dx = pool.backward(np.array([1., 2., 3., 4.]).reshape(1, 2, 2, 1))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 0, 0, 2],
                                                   [0, 0, 0, 0],
                                                   [0, 3, 0, 0],
                                                   [0, 0, 4, 0]])


def test_batch_norm_statistics():
    bn = built(g.BatchNorm(momentum=0.9), (5, 5, 3))
    x = RNG.normal([1., -2., 3.], [0.5, 2., 4.], size=(64, 5, 5, 3)).astype(np.float32)
    y = bn.forward(x, training=True)
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1, atol=1e-3)
    m = 64 * 25
    np.testing.assert_allclose(bn.state["mean"], 0.1 * x.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(bn.state["var"], 0.9 + 0.1 * x.var(axis=(0, 1, 2)) * m / (m - 1),
                               rtol=1e-5)
    # Evaluation uses the running statistics, so one sample is normalised like the batch.
    bn.state["mean"][:], bn.state["var"][:] = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(bn.forward(x[:1]), y[:1], atol=1e-4)


def _small_cnn(seed=0):
    layers = [g.Conv2D(8, 3, padding="same", bias=False), g.BatchNorm(), ReLU(), g.MaxPool2D(2),
              g.SeparableConv2D(16, 3), ReLU(), g.AvgPool2D(2), g.DepthwiseConv2D(3), ReLU(),
              Dense(10), Softmax()]
    return g.Sequential(layers, input_shape=(28, 28, 1), seed=seed).compile(
        "cross_entropy", g.Adam(3e-3))


@pytest.fixture(scope="module")
def mnist():
    return g.load_mnist()


@pytest.mark.slow
def test_small_cnn_learns_and_round_trips(mnist, tmp_path):
    model = _small_cnn()
    x, y = mnist.x_train[:1500], mnist.y_train[:1500]
    before = model.evaluate(mnist.x_test[:500], mnist.y_test[:500])
    history = model.fit(x, y, epochs=4, batch_size=64, seed=0)
    after = model.evaluate(mnist.x_test[:500], mnist.y_test[:500])
    losses = history.column("train_loss")
    assert losses[-1] < 0.5 * losses[0]
    assert after["loss"] < before["loss"] and after["accuracy"] > 0.85
    path = tmp_path / "cnn.npz"
    model.save(path)
    loaded = g.Sequential.load(path)
    bn = loaded.layers[1]
    np.testing.assert_array_equal(bn.state["var"], model.layers[1].state["var"])
    assert not np.allclose(bn.state["var"], 1)        # running stats were trained and kept
    np.testing.assert_array_equal(loaded.predict_proba(mnist.x_test[:200]),
                                  model.predict_proba(mnist.x_test[:200]))


@pytest.mark.slow
def test_cli_trains_and_gradchecks_a_cnn_config(tmp_path, capsys):
    config = tmp_path / "cnn.toml"
    config.write_text(open(os.path.join(CONFIGS, "cnn_8_16.toml")).read().replace(
        'dataset = "mnist"', 'dataset = "mnist"\ntrain_limit = 600\ntest_limit = 300'))
    assert cli.main(["train", str(config), "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "model.npz").exists()
    assert cli.main(["gradcheck", str(config), "--samples", "2", "--entries", "8"]) == 0
    out = capsys.readouterr().out
    assert "all gradients agree" in out and "input" in out
