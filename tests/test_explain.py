"""What the network looks at and imagines: saliency, backwards query, activation
maximisation, deconvolution."""
import numpy as np
import pytest
from vis_runs import config, run_dir

from glyphnet import Conv2D, Dense, ReLU, Sequential, Sigmoid, Softmax
from glyphnet.inspection import explain
from glyphnet.nn.conv import toeplitz_matrix
from glyphnet.data import load_from_config
from glyphnet.errors import GlyphnetError


def _trained(kind, tmp_path_factory):
    model = Sequential.load(run_dir(kind, tmp_path_factory) / "model.npz")
    ds = load_from_config(config(kind)["data"])
    return model, model.scaler.transform(ds.x_test), ds.y_test


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_saliency_is_the_abs_input_gradient(kind, tmp_path_factory):
    model, x, y = _trained(kind, tmp_path_factory)
    maps = explain.saliency(model, x[:5])
    assert maps.shape == (5, 28, 28)
    grad = explain.class_score_gradient(model, x[:5], model.predict(x[:5]))
    np.testing.assert_array_equal(maps, np.abs(grad).max(axis=-1))


def test_backwards_query_by_hand():
    # One dense+sigmoid layer, 3 inputs, 2 outputs, no bias: query for class 0 is
    # rescale(W @ logit([0.99, 0.01])) = rescale([L, -L, 0]) = [0.99, 0.01, 0.5].
    model = Sequential([Dense(2, bias=False), Sigmoid()], input_shape=(3,))
    model.layers[0].params["W"][...] = [[1, 0], [0, 1], [1, 1]]
    np.testing.assert_allclose(explain.backwards_query(model, 0), [0.99, 0.01, 0.5], atol=1e-6)
    np.testing.assert_allclose(explain.backwards_query(model, 1), [0.01, 0.99, 0.5], atol=1e-6)


@pytest.mark.slow
def test_backwards_query_of_a_trained_sigmoid_net(tmp_path_factory):
    model, x, y = _trained("sigmoid", tmp_path_factory)
    assert model.evaluate(x, y)["accuracy"] > 0.8
    queries = np.stack([explain.backwards_query(model, c) for c in range(10)])
    assert queries.shape == (10, 28, 28, 1)
    assert queries.min() == pytest.approx(0.01) and queries.max() == pytest.approx(0.99)
    out = model.predict_proba(queries)
    # Each class output is highest on the query made for it ...
    np.testing.assert_array_equal(out.argmax(axis=0), np.arange(10))
    # ... and the queries are classified as their targets (a small net gets 9 of 10 here:
    # its '1' query is read as a 3).
    assert np.sum(out.argmax(axis=1) == np.arange(10)) >= 9


def test_backwards_query_needs_a_sigmoid_network(tmp_path_factory):
    model, _, _ = _trained("mlp", tmp_path_factory)
    with pytest.raises(GlyphnetError, match="dense layers each followed by a sigmoid"):
        explain.backwards_query(model, 0)
    sig = Sequential([Dense(2), Sigmoid()], input_shape=(3,))
    with pytest.raises(GlyphnetError, match="out of range"):
        explain.backwards_query(sig, 2)


@pytest.mark.parametrize("kind", ["mlp", pytest.param("cnn", marks=pytest.mark.slow),
                                  pytest.param("sigmoid", marks=pytest.mark.slow)])
def test_activation_maximisation_raises_the_target_score(kind, tmp_path_factory):
    model, x, _ = _trained(kind, tmp_path_factory)
    images, scores = explain.activation_maximisation(model, range(10), steps=30)
    assert images.shape == (10, 28, 28, 1) and scores.shape == (31, 10)
    assert np.all(scores[-1] > scores[0] + 1e-3)
    lo, hi = explain.input_range(model)
    assert np.all(images >= lo - 1e-6) and np.all(images <= hi + 1e-6)
    # the score of class c on its own image beats the other classes' scores there
    own = explain._score(model, images, np.arange(10))
    assert np.all(scores[-1] == pytest.approx(own, rel=1e-5))
    np.testing.assert_array_equal(model.predict(images), np.arange(10))


def test_deconvolution_is_the_toeplitz_transpose(tmp_path_factory):
    model, x, y = _trained("cnn", tmp_path_factory)
    conv, relu = model.layers[0], model.layers[1]
    proj = explain.deconvolution(model, x[:3])
    assert proj.shape == (3, 4, 28, 28)
    maps = relu.forward(conv.forward(x[:3]))          # after the activation
    W = conv.params["W"]
    for n in range(3):
        for f in range(4):
            T = toeplitz_matrix(W[:, :, 0, f], (28, 28))
            np.testing.assert_allclose(proj[n, f].ravel(), T.T @ maps[n, :, :, f].ravel(),
                                       rtol=1e-4, atol=1e-5)


def test_deconvolution_leaves_gradients_alone():
    rng = np.random.default_rng(1)
    model = Sequential([Conv2D(3, 3, padding="same"), ReLU(), Dense(2), Softmax()],
                       input_shape=(6, 6, 1))
    model.layers[0].grads["W"][...] = 7.0
    explain.deconvolution(model, rng.random((2, 6, 6, 1), dtype=np.float32))
    assert np.all(model.layers[0].grads["W"] == 7.0)
    mlp = Sequential([Dense(2), Softmax()], input_shape=(6, 6, 1))
    with pytest.raises(GlyphnetError, match="convolutional"):
        explain.deconvolution(mlp, np.zeros((1, 6, 6, 1), np.float32))
