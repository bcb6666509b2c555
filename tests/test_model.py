"""Sequential: learning, saving and loading, determinism, the training shortcut in backward."""
import numpy as np
import pytest

from glyphnet import (
    Adam,
    Dense,
    Dropout,
    GlyphnetError,
    LeakyReLU,
    ReLU,
    Scaler,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)


def mlp(seed=0, hidden=32):
    return Sequential([Dense(hidden), ReLU(), Dense(10, init="glorot_uniform"), Softmax()],
                      input_shape=(28, 28, 1), seed=seed)


def test_tiny_network_overfits_a_handful_of_images(mnist_small):
    x, y = mnist_small[0][:16], mnist_small[1][:16]
    model = mlp()
    model.compile(optimizer=Adam(1e-2))
    history = model.fit(x, y, epochs=150, batch_size=0, shuffle=False)
    first, last = history.epochs[0]["train_loss"], history.epochs[-1]["train_loss"]
    assert first > 1.5
    assert last < 1e-3
    assert model.evaluate(x, y)["accuracy"] == 1.0


def test_save_load_round_trip_gives_identical_predictions(mnist_small, tmp_path):
    x, y = mnist_small[0][:300], mnist_small[1][:300]
    model = Sequential([Dropout(0.1), Dense(24, init="lecun_uniform"), Sigmoid(2.0),
                        Dense(16, bias=False), Tanh(0.5), Dense(12), LeakyReLU(0.1),
                        Dense(10), Softmax()], input_shape=(28, 28, 1), seed=3,
                       classes=list("abcdefghij"))
    model.scaler = Scaler("standardize").fit(x)
    model.compile(optimizer=Adam(3e-3))
    model.fit(model.scaler.transform(x), y, epochs=2, batch_size=32)
    path = tmp_path / "sub" / "model.npz"
    model.save(path)
    loaded = Sequential.load(path)
    assert loaded.get_config() == model.get_config()
    assert loaded.classes == list("abcdefghij")
    xs = loaded.scaler.transform(mnist_small[2][:100])
    np.testing.assert_array_equal(xs, model.scaler.transform(mnist_small[2][:100]))
    np.testing.assert_array_equal(loaded.predict_proba(xs), model.predict_proba(xs))
    for (_, _, a, _), (_, _, b, _) in zip(model.parameters(), loaded.parameters()):
        assert b.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.npz"]   # no temp files


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(GlyphnetError, match="no such model file"):
        Sequential.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(GlyphnetError, match="not a glyphnet model file"):
        Sequential.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    with pytest.raises(GlyphnetError, match="not a glyphnet model file"):
        Sequential.load(other)


def test_same_seed_same_weights_different_seed_different(mnist_small):
    x, y = mnist_small[0][:400], mnist_small[1][:400]

    def trained(seed):
        model = Sequential([Dense(16), ReLU(), Dropout(0.2), Dense(10), Softmax()],
                           input_shape=(28, 28, 1), seed=seed)
        model.compile(optimizer=Adam(1e-3))
        model.fit(x, y, epochs=2, batch_size=64, seed=seed)
        return [p.copy() for _, _, p, _ in model.parameters()]

    a, b, c = trained(7), trained(7), trained(8)
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa, pb)
    assert not np.array_equal(a[0], c[0])


def test_input_gradient_is_skipped_in_training_only(rng):
    """backward(input_grad=False) gives the same parameter gradients and returns None."""
    model = Sequential([Dropout(0.0), Dense(8), ReLU(), Dense(3), Softmax()], input_shape=(5,),
                       dtype=np.float64)
    x, y = rng.standard_normal((4, 5)), np.array([0, 1, 2, 1])
    _, _, dx = model.loss_and_grads(x, y)
    full = [g.copy() for _, _, _, g in model.parameters()]
    assert dx.shape == x.shape
    _, _, none = model.loss_and_grads(x, y, input_grad=False)
    assert none is None
    for a, (_, _, _, b) in zip(full, model.parameters()):
        np.testing.assert_array_equal(a, b)


def test_predict_evaluate_and_summary(mnist_small):
    x, y = mnist_small[0][:200], mnist_small[1][:200]
    model = mlp(hidden=20)
    p = model.predict_proba(x, batch_size=64)
    assert p.shape == (200, 10) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(x), p.argmax(axis=1))
    ev = model.evaluate(x, y, batch_size=64)
    assert ev["accuracy"] == pytest.approx(np.mean(p.argmax(axis=1) == y))
    assert ev["loss"] == pytest.approx(-np.mean(np.log(p[np.arange(200), y])), rel=1e-4)
    assert model.count_params() == 784 * 20 + 20 + 20 * 10 + 10
    assert "total parameters: 15910" in model.summary()
    assert model.predict_proba(x[:0]).shape == (0, 10)


def test_non_layers_are_rejected():
    with pytest.raises(TypeError, match="layer 1 is str, not a glyphnet Layer"):
        Sequential([Dense(3), "relu"])


def test_parameters_and_gradients_are_packed_after_build_astype_and_load(tmp_path):
    """One buffer for the values and one for the gradients, in the order of parameters(), so
    Adam updates them with one call per operation (backend.flat_groups)."""
    from glyphnet.nn.backend import flat_groups
    model = Sequential([Dense(8), ReLU(), Dense(6, bias=False), Dense(10), Softmax()],
                       input_shape=(5,), seed=1)
    model.save(tmp_path / "m.npz")
    loaded = Sequential.load(tmp_path / "m.npz")
    wide = Sequential([Dense(8), ReLU(), Dense(6, bias=False), Dense(10), Softmax()],
                      input_shape=(5,), seed=1).astype(np.float64)
    for m, dtype in ((model, np.float32), (loaded, np.float32), (wide, np.float64)):
        values = [p for _, _, p, _ in m.parameters()]
        grads = [g for _, _, _, g in m.parameters()]
        ((flat_p, flat_g),) = flat_groups(values, grads)
        assert flat_p.size == m.count_params() == 5 * 8 + 8 + 8 * 6 + 6 * 10 + 10
        assert flat_p.dtype == flat_g.dtype == dtype
        np.testing.assert_array_equal(flat_p, np.concatenate([p.ravel() for p in values]))
    for (_, _, a, _), (_, _, b, _), (_, _, c, _) in zip(model.parameters(), loaded.parameters(),
                                                       wide.parameters()):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c.astype(np.float32))
