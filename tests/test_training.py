"""The training loop: batch sizes, presentation order, divergence, history, callbacks."""
import numpy as np
import pytest

from glyphnet import SGD, Adam, Dense, ReLU, Sequential, Softmax, TrainingDiverged
from glyphnet.nn.schedule import batches
from glyphnet.nn.training import Callback, History, fit


def small_model(seed=0, optimizer=None):
    model = Sequential([Dense(32), ReLU(), Dense(10), Softmax()], input_shape=(28, 28, 1),
                       seed=seed)
    return model.compile(optimizer=optimizer or Adam(1e-3))


@pytest.mark.parametrize("batch_size,optimizer", [
    (0, Adam(1e-2)),                  # full batch gradient descent
    (32, Adam(3e-3)),                 # mini-batches
    (1, SGD(0.01)),                   # stochastic: one image per update
], ids=["full-batch", "mini-batch", "stochastic"])
def test_every_batch_size_reduces_the_loss(mnist_small, batch_size, optimizer):
    x, y = mnist_small[0][:300], mnist_small[1][:300]
    model = small_model(optimizer=optimizer)
    before = model.evaluate(x, y)["loss"]
    epochs = 20 if batch_size == 0 else 1
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size)
    after = model.evaluate(x, y)["loss"]
    assert after < 0.6 * before
    updates = {0: epochs, 32: 10, 1: 300}[batch_size]
    assert len(history.batch_losses) == updates


def test_mini_batch_training_beats_an_accuracy_floor(mnist_small):
    x, y, xt, yt = mnist_small
    model = small_model(optimizer=Adam(3e-3))
    history = model.fit(x, y, epochs=1, batch_size=32, test_data=(xt, yt))
    assert history.epochs[0]["test_accuracy"] > 0.8
    assert history.epochs[0]["train_accuracy"] > 0.6


def test_batches_cover_the_data_in_fixed_or_shuffled_order():
    rng = np.random.default_rng(0)
    fixed = batches(10, 4, shuffle=False, rng=rng)
    assert [b.tolist() for b in fixed] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    shuffled = batches(10, 4, shuffle=True, rng=rng)
    assert sorted(np.concatenate(shuffled).tolist()) == list(range(10))
    assert np.concatenate(shuffled).tolist() != list(range(10))
    assert [b.tolist() for b in batches(5, 0, False, rng)] == [[0, 1, 2, 3, 4]]


def test_shuffle_depends_on_the_seed_fixed_order_does_not(mnist_small):
    x, y = mnist_small[0][:256], mnist_small[1][:256]

    def weights(shuffle, seed):
        model = small_model(seed=0)
        model.fit(x, y, epochs=1, batch_size=32, shuffle=shuffle, seed=seed)
        return model.layers[0].params["W"].copy()

    np.testing.assert_array_equal(weights(False, 1), weights(False, 2))
    assert not np.array_equal(weights(True, 1), weights(True, 2))
    np.testing.assert_array_equal(weights(True, 1), weights(True, 1))


@pytest.mark.filterwarnings("error")        # overflow is reported once, as TrainingDiverged
def test_divergence_stops_with_a_clear_message_and_restores_the_last_good_weights(mnist_small):
    x, y = mnist_small[0][:512], mnist_small[1][:512]
    model = small_model(optimizer=SGD(0.05))
    model.fit(x, y, epochs=1, batch_size=64)
    good = [p.copy() for _, _, p, _ in model.parameters()]
    model.optimizer.lr = 1e7
    with pytest.raises(TrainingDiverged) as info:
        model.fit(x, y, epochs=3, batch_size=64)
    err = info.value
    assert err.epoch == 1 and 1 <= err.batch <= 8
    message = str(err)
    assert f"epoch 1, batch {err.batch}" in message
    assert "lower learning rate" in message and "1e+07" in message
    for a, (_, _, b, _) in zip(good, model.parameters()):
        np.testing.assert_array_equal(a, b)
    assert all(np.isfinite(p).all() for _, _, p, _ in model.parameters())


def test_non_finite_weights_are_caught_even_when_the_loss_stays_finite(mnist_small):
    x, y = mnist_small[0][:64], mnist_small[1][:64]
    model = small_model()

    class Poison(Callback):
        def on_batch_end(self, model, step, loss):
            model.layers[0].params["W"][0, 0] = np.nan      # an unused border pixel

    start = model.layers[0].params["W"].copy()
    with pytest.raises(TrainingDiverged, match="epoch 1, batch 2"):
        model.fit(x, y, epochs=2, batch_size=32, callbacks=[Poison()])
    np.testing.assert_array_equal(model.layers[0].params["W"], start)


def test_history_lr_decay_callbacks_and_augment(mnist_small):
    x, y, xt, yt = mnist_small
    x, y = x[:200], y[:200]
    model = small_model(optimizer=Adam(1e-3))
    calls = []

    class Recorder(Callback):
        def on_epoch_begin(self, model, epoch):
            calls.append(("begin", epoch))

        def on_batch_end(self, model, step, loss):
            calls.append(("batch", step))

        def on_epoch_end(self, model, epoch, metrics):
            calls.append(("end", epoch, round(model.optimizer.lr, 12)))

    seen = []

    def augment(images, rng):
        seen.append(len(images))
        return images

    history = model.fit(x, y, epochs=2, batch_size=100, lr_decay=0.5, callbacks=[Recorder()],
                        augment=augment, test_data=(xt[:50], yt[:50]))
    assert calls == [("begin", 1), ("batch", 1), ("batch", 2), ("end", 1, 5e-4),
                     ("begin", 2), ("batch", 3), ("batch", 4), ("end", 2, 2.5e-4)]
    assert seen == [100, 100, 100, 100]
    assert history.column("epoch") == [1, 2]
    assert set(history.epochs[0]) == set(History.COLUMNS) - {"val_loss", "val_accuracy"}
    assert history.epochs[1]["train_loss"] < history.epochs[0]["train_loss"]
    lines = history.csv_text().splitlines()
    assert lines[0] == ",".join(History.COLUMNS) and len(lines) == 3
    assert len(history.batch_losses) == 4


def test_fit_argument_errors():
    model = small_model()
    with pytest.raises(ValueError, match="x has 3 samples but y has 2 labels"):
        fit(model, np.zeros((3, 28, 28, 1), np.float32), [0, 1])
    with pytest.raises(ValueError, match="x holds no samples"):
        fit(model, np.zeros((0, 28, 28, 1), np.float32), [])


@pytest.mark.parametrize("x,y,message", [
    (np.zeros((4, 27, 28, 1)), [0, 1, 2, 3], r"samples of shape \(27, 28, 1\) but the model "
                                             r"expects \(28, 28, 1\) \(or flat samples of 784"),
    (np.zeros((4, 100)), [0, 1, 2, 3], r"samples of shape \(100,\)"),
    (np.zeros((4, 28, 28, 1)), [0, 1, 2, 10], "label 10, out of range: the model has 10 "
                                             "outputs, so labels must be 0..9"),
    (np.zeros((4, 28, 28, 1)), [0, 1, -1, 2], "label -1, out of range"),
    (np.zeros((4, 28, 28, 1)), [0, 1, 0.5, 2], "integer class indices, got non-integer"),
    (np.zeros((4, 28, 28, 1)), ["a", "b", "c", "d"], "integer class indices, got <U1"),
    (np.full((4, 28, 28, 1), np.nan), [0, 1, 2, 3], "x holds NaN or infinite values "
                                                    r"\(first in sample 0\)"),
    ([[1, 2], [3]], [0, 1], "x must be an array of samples"),
    (np.zeros(4), [0, 1, 2, 3], "x must have a batch axis"),
])
def test_fit_checks_its_inputs_and_names_the_problem(x, y, message):
    with pytest.raises(ValueError, match=message):
        small_model().fit(x, y, epochs=1)


def test_array_likes_and_flat_samples_are_accepted_and_a_model_is_built_on_first_fit():
    rng = np.random.default_rng(0)
    x = rng.random((20, 28, 28, 1)).tolist()               # nested lists, float64 values
    y = [i % 10 for i in range(20)]
    model = Sequential([Dense(8), ReLU(), Dense(10), Softmax()])   # no input shape yet
    model.fit(x, y, epochs=1, batch_size=10)
    assert model.input_shape == (28, 28, 1)
    flat = np.asarray(x, np.float32).reshape(20, 784)
    np.testing.assert_array_equal(model.predict(flat), model.predict(np.asarray(x)))
    with pytest.raises(ValueError, match="validation_data must be an"):
        model.fit(x, y, validation_data=[1, 2, 3])
    with pytest.raises(ValueError, match=r"validation_data\[1\] holds label 12"):
        model.fit(x, y, validation_data=(x, [12] * 20))
    with pytest.raises(ValueError, match="no input shape yet"):
        Sequential([Dense(3)]).predict(np.zeros((2, 4)))


def test_a_validation_split_is_held_out_and_reported_every_epoch(tmp_path):
    import csv
    import json

    from glyphnet import runs
    from glyphnet.config import load_config
    cfg = load_config(None, {"data.train_limit": 0, "data.train_per_class": 60,
                             "data.validation": 0.25, "data.test_limit": 200,
                             "training.epochs": 2})
    metrics = runs.train(cfg, tmp_path, verbose=False)
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert all(0 < float(r["val_accuracy"]) <= 1 for r in rows)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["val_accuracy"] == metrics["val_accuracy"]
    # 600 images (60 per class) split 450 / 150: the held-out quarter is not trained on.
    _, ds, x_train, _ = runs.prepare(cfg)
    assert len(x_train) == 450 and len(ds.x_val) == 150


def test_penalties_reach_every_kernel_but_no_bias():
    from glyphnet import SeparableConv2D
    rng = np.random.default_rng(0)
    x = rng.random((4, 6, 6, 2), dtype=np.float32)
    model = Sequential([SeparableConv2D(3, 3), Dense(2), Softmax()], input_shape=(6, 6, 2))
    model.compile(optimizer=SGD(lr=1e-9), shrink=0.5)
    before = {(i, k): p.copy() for i, k, p, _ in model.parameters()}
    model.fit(x, np.array([0, 1, 0, 1]), epochs=1, batch_size=4)
    for i, k, p, _ in model.parameters():
        shrunk = before[(i, k)] * (1 - 0.5 * np.abs(before[(i, k)]))
        if k.startswith("W"):
            np.testing.assert_allclose(p, shrunk, atol=1e-6)
        else:
            np.testing.assert_allclose(p, before[(i, k)], atol=1e-6)
    assert {k for _, k, _, _ in model.parameters()} >= {"W_depthwise", "W", "b"}
