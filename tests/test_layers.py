"""Every layer's gradients against central finite differences, in float64."""
import warnings

import numpy as np
import pytest

from glyphnet import Dense, Dropout, Flatten, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from glyphnet.nn.gradcheck import numeric_gradient
from glyphnet.nn.layers import LAYERS, layer_from_config

EPS = 1e-6


def numeric_grad(f, a, eps=EPS):
    """Central differences of the scalar f() with respect to every entry of a, shaped like a."""
    return numeric_gradient(f, a, eps).reshape(a.shape)


def check_layer(layer, x, rng, training=True):
    """L = sum(R * layer(x)) for a fixed random R, so dL/dy = R. Compares dL/dx and every
    dL/dparam with finite differences."""
    layer.build(x.shape[1:], rng, np.float64)
    out = layer.forward(x, training)
    r = rng.standard_normal(out.shape)

    def loss():
        return float(np.sum(r * layer.forward(x, training)))

    loss()
    dx = layer.backward(r)
    analytic = {k: g.copy() for k, g in layer.grads.items()}
    assert dx.shape == x.shape and dx.dtype == np.float64
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    for name, p in layer.params.items():
        np.testing.assert_allclose(analytic[name], numeric_grad(loss, p), rtol=1e-6, atol=1e-8,
                                   err_msg=f"gradient of {name}")
    return out


def away_from_zero(rng, shape, margin=0.05):
    """Inputs with |x| >= margin, so a finite difference never straddles the ReLU kink."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < margin, np.sign(x + 1e-12) * margin, x)


@pytest.mark.parametrize("bias", [True, False])
def test_dense_gradients(rng, bias):
    layer = Dense(5, bias=bias, init="normal", sigma=0.5)
    x = rng.standard_normal((4, 3, 2, 1))          # flattened to 6 inputs per sample
    out = check_layer(layer, x, rng)
    assert out.shape == (4, 5)
    assert ("b" in layer.params) == bias
    expected = x.reshape(4, -1) @ layer.params["W"] + (layer.params["b"] if bias else 0)
    np.testing.assert_allclose(out, expected)


def test_dense_backward_params_matches_backward(rng):
    layer = Dense(4)
    layer.build((6,), rng, np.float64)
    x, dy = rng.standard_normal((3, 6)), rng.standard_normal((3, 4))
    layer.forward(x, True)
    layer.backward(dy)
    full = {k: g.copy() for k, g in layer.grads.items()}
    for g in layer.grads.values():
        g[...] = 0
    layer.backward_params(dy)
    for k in full:
        np.testing.assert_array_equal(layer.grads[k], full[k])


@pytest.mark.parametrize("layer", [Sigmoid(), Sigmoid(slope=2.5), Tanh(), Tanh(slope=0.7)],
                         ids=["sigmoid", "sigmoid-slope2.5", "tanh", "tanh-slope0.7"])
def test_squashing_gradients_and_values(rng, layer):
    x = rng.standard_normal((3, 7)) * 2
    out = check_layer(layer, x, rng)
    if isinstance(layer, Sigmoid):
        np.testing.assert_allclose(out, 1 / (1 + np.exp(-layer.slope * x)))
    else:
        np.testing.assert_allclose(out, np.tanh(layer.slope * x))


def test_sigmoid_does_not_overflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = Sigmoid(slope=3).forward(np.array([[-1e4, 0.0, 1e4]], np.float32))
    np.testing.assert_array_equal(y, [[0.0, 0.5, 1.0]])


def test_relu_gradients(rng):
    x = away_from_zero(rng, (4, 6))
    out = check_layer(ReLU(), x, rng)
    np.testing.assert_array_equal(out, np.maximum(x, 0))


@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_leaky_relu_gradients(rng, slope):
    x = away_from_zero(rng, (4, 6))
    out = check_layer(LeakyReLU(slope), x, rng)
    np.testing.assert_allclose(out, np.where(x > 0, x, slope * x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer", [ReLU(), LeakyReLU(0.01), LeakyReLU(0.3), LeakyReLU(0.0)])
def test_rectifiers_give_the_selections_bit_for_bit(rng, dtype, layer):
    """max(x, 0), max(x, slope x) and the gradient factors select exactly what the plain
    definitions select: the same bits, zeros, infinities and NaN included."""
    x = rng.standard_normal((64, 13, 13, 8)).astype(dtype)
    x.flat[:6] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-42 if dtype == np.float32 else 1e-310]
    dy = rng.standard_normal(x.shape).astype(dtype)
    with np.errstate(invalid="ignore"):           # -inf * 0 with a slope of 0
        y, dx = layer.forward(x, True), layer.backward(dy)
        if isinstance(layer, LeakyReLU) and layer.negative_slope:
            s = layer.negative_slope
            want_y, want_dx = np.where(x > 0, x, x * s), np.where(x > 0, dy, dy * s)
        else:
            want_y = np.maximum(x, 0)
            want_dx = dy * (want_y > 0)
    assert y.dtype == dx.dtype == dtype
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(dx, want_dx)


def test_softmax_gradients(rng):
    x = rng.standard_normal((3, 5))
    out = check_layer(Softmax(), x, rng)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


def test_flatten_gradients(rng):
    x = rng.standard_normal((2, 3, 2, 2))
    out = check_layer(Flatten(), x, rng)
    assert out.shape == (2, 12)


def test_dropout_with_fixed_mask(rng):
    """Reseeding the layer's generator fixes the mask, so finite differences are defined."""
    layer = Dropout(0.4)
    layer.build((50,), rng, np.float64)
    x = rng.standard_normal((4, 50))

    def forward():
        layer.rng = np.random.default_rng(7)
        return layer.forward(x, training=True)

    out = forward()
    kept = out != 0
    assert 0.25 < 1 - kept.mean() < 0.55
    np.testing.assert_allclose(out[kept], x[kept] / 0.6)
    r = rng.standard_normal(x.shape)
    dx = layer.backward(r)
    np.testing.assert_allclose(dx, numeric_grad(lambda: float(np.sum(r * forward())), x),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(dx[~kept], 0)
    # Evaluation mode is the identity.
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    np.testing.assert_array_equal(layer.backward(r), r)


def test_dropout_rate_is_respected(rng):
    layer = Dropout(0.25)
    layer.build((1000,), rng)
    out = layer.forward(np.ones((100, 1000), np.float32), training=True)
    assert out.dtype == np.float32
    assert abs((out == 0).mean() - 0.25) < 0.01
    assert abs(out.mean() - 1.0) < 0.02                 # inverted dropout keeps the mean


# ------------------------------------------------------------------------------ construction
@pytest.mark.parametrize("kind,kwargs,message", [
    ("dense", {"units": 0}, "units must be a positive integer"),
    ("dense", {"units": 3, "init": "magic"}, "unknown init 'magic'"),
    ("dense", {"units": 3, "sigma": -1.0}, "sigma must be >= 0"),
    ("sigmoid", {"slope": 0}, "slope must be a positive number"),
    ("tanh", {"slope": -2.0}, "slope must be a positive number"),
    ("leaky_relu", {"negative_slope": 1.5}, "negative_slope must be in [0, 1)"),
    ("dropout", {"rate": 1.0}, "rate must be in [0, 1)"),
    ("dropout", {"rate": float("nan")}, "rate must be in [0, 1), got nan"),
    ("dense", {"units": 3, "sigma": float("inf")}, "sigma must be >= 0, got inf"),
])
def test_bad_layer_arguments_are_explained(kind, kwargs, message):
    with pytest.raises(ValueError) as info:
        LAYERS[kind](**kwargs)
    assert message in str(info.value)


def test_layer_from_config_round_trips_get_config():
    for spec in ({"type": "dense", "units": 7, "bias": False, "init": "lecun_uniform",
                  "sigma": 0.01}, {"type": "sigmoid", "slope": 2.0},
                 {"type": "leaky_relu", "negative_slope": 0.1}, {"type": "dropout", "rate": 0.3}):
        layer = layer_from_config(spec)
        assert {"type": layer.kind, **layer.get_config()} == spec
    with pytest.raises(ValueError, match="unknown layer type 'dense3'"):
        layer_from_config({"type": "dense3"})
