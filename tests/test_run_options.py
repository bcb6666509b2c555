"""The config options the reports' experiments need: class subsets, balanced batches, [-1, 1]
inputs, shrinkage before/after and on biases, fixed augmented copies, configurable gradient
checks, transfer (init_from, freeze), per-step evaluation and a step budget."""
import csv

import numpy as np
import pytest

from glyphnet import runs
from glyphnet.config import load_config, resolve
from glyphnet.data import augment
from glyphnet.errors import ConfigError
from glyphnet.inspection.monitor import Monitor
from glyphnet.inspection.steps import load_steps
from glyphnet.nn.gradcheck import numeric_gradient
from glyphnet.nn.layers import Dense, ReLU, Softmax
from glyphnet.nn.model import Sequential
from glyphnet.nn.normalization import BatchNorm
from glyphnet.nn.optimizers import SGD, Adam
from glyphnet.nn.scaling import Scaler
from glyphnet.nn.schedule import balanced_batches

SMALL = {"data.train_per_class": 20, "data.test_limit": 100, "training.epochs": 1,
         "model.layers": [{"type": "dense", "units": 16}, {"type": "relu"},
                          {"type": "dense", "units": 10}, {"type": "softmax"}]}


def test_every_problem_of_the_new_options_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        resolve({"data": {"classes_subset": [3, 3]},
                 "training": {"batch_order": "random", "shrink_when": "during",
                              "freeze": "2:1", "max_steps": -1, "eval_every": -2, "threads": 0,
                              "gradcheck": {"method": "backward", "h": 0, "entries": 0}},
                 "augment": {"copies": [{"rotate": "ten"}, {"flip": True}]},
                 "model": {"init_from": {"path": "m.npz", "layers": "0:99"}}})
    text = str(err.value)
    for key in ("data.classes_subset", "training.batch_order", "training.shrink_when",
                "training.freeze", "training.max_steps", "training.eval_every",
                "training.threads", "training.gradcheck.method", "training.gradcheck.h",
                "training.gradcheck.entries", "augment.copies[0].rotate",
                "augment.copies[1].flip", "model.init_from.layers"):
        assert key in text, key


def test_resolved_options_survive_the_written_config():
    import tomllib

    from glyphnet.config import dumps
    cfg = resolve({"training": {"batch_order": "balanced", "batch_size": 10, "freeze": "0:2",
                                "gradcheck": {"method": "forward", "h": 1e-3, "every": 50}},
                   "model": {"init_from": "runs/x/model.npz"},
                   "augment": {"copies": [{"rotate": 10}, {"rotate": -10}]}})
    assert cfg["training"]["freeze"] == [0, 1]
    assert cfg["model"]["init_from"] == {"path": "runs/x/model.npz", "layers": ""}
    assert resolve(tomllib.loads(dumps(cfg))) == cfg
    assert resolve({"training": {"shuffle": False}})["training"]["batch_order"] == "fixed"
    with pytest.raises(ConfigError, match="training.shuffle: contradicts"):
        resolve({"training": {"shuffle": False, "batch_order": "shuffled"}})


def test_a_class_subset_trains_on_exactly_those_classes_relabelled(mnist, tmp_path):
    overrides = {**SMALL, "data.classes_subset": [1, 3]}
    overrides["model.layers"] = [*SMALL["model.layers"][:2], {"type": "dense", "units": 2},
                                 {"type": "softmax"}]
    cfg = load_config(None, overrides)
    model, ds, x_train, _ = runs.prepare(cfg)
    assert ds.classes == ["1", "3"] and model.class_names == ["1", "3"]
    # The first 20 ones and the first 20 threes of MNIST, in data order, labelled 0 and 1.
    want = np.flatnonzero(np.isin(mnist.y_train, [1, 3]))
    ones = want[mnist.y_train[want] == 1][:20]
    threes = want[mnist.y_train[want] == 3][:20]
    keep = np.sort(np.concatenate([ones, threes]))
    np.testing.assert_array_equal(ds.x_train, mnist.x_train[keep])
    np.testing.assert_array_equal(ds.y_train, (mnist.y_train[keep] == 3).astype(int))
    # Limits count the subset's images: the first 100 test ones and threes.
    test = mnist.y_test[np.isin(mnist.y_test, [1, 3])][:100]
    np.testing.assert_array_equal(ds.y_test, (test == 3).astype(int))
    metrics = runs.train(cfg, tmp_path, verbose=False)
    assert 0.5 < metrics["test_accuracy"] <= 1
    with pytest.raises(Exception, match="class index 12 is out of range"):
        runs.prepare(load_config(None, {**SMALL, "data.classes_subset": [1, 12]}))


def test_balanced_batches_hold_one_image_of_each_class():
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 2, 2])
    batches = balanced_batches(labels, 0, np.random.default_rng(0))
    assert len(batches) == 3   # class 1 has three images
    for b in batches:
        assert sorted(labels[b]) == [0, 1, 2]
    assert len(np.unique(np.concatenate(batches))) == 9
    two = balanced_batches(labels, 6, np.random.default_rng(0))
    assert len(two) == 1 and sorted(labels[two[0]]) == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="multiple of the 3 classes"):
        balanced_batches(labels, 4, np.random.default_rng(0))


def test_fit_with_balanced_batches_trains_one_image_per_class_per_step():
    seen = []

    class Spy(Dense):
        def forward(self, x, training=False):
            if training:
                seen.append(x[:, 0].copy())
            return super().forward(x, training)
    x = np.zeros((9, 1), np.float32)
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    x[:, 0] = labels   # the input tells the class
    model = Sequential([Spy(3), Softmax()], input_shape=(1,))
    model.compile(optimizer=SGD(0.01))
    history = model.fit(x, labels, epochs=2, batch_size=3, batch_order="balanced")
    assert len(history.batch_losses) == 4   # two per epoch: class 1 has two images
    assert all(sorted(b.tolist()) == [0, 1, 2] for b in seen)


def test_symmetric_scaling_maps_to_minus_one_one():
    s = Scaler("symmetric").fit(np.zeros((1, 2)))
    np.testing.assert_array_equal(s.transform(np.array([[0.0, 0.5, 1.0]])), [[-1, 0, 1]])


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("biases", [False, True])
def test_shrinkage_before_or_after_the_update_and_on_biases(when, biases):
    rng = np.random.default_rng(0)
    x = rng.random((4, 3), dtype=np.float32)
    y = np.array([0, 1, 0, 1])
    model = Sequential([Dense(2), Softmax()], input_shape=(3,))
    model.layers[0].params["b"][...] = [0.5, -0.3]
    model.compile(optimizer=SGD(lr=0.5), shrink=0.2, shrink_biases=biases, shrink_when=when)
    before = {k: v.copy() for k, v in model.layers[0].params.items()}
    model.loss_and_grads(x, y)
    grads = {k: v.copy() for k, v in model.layers[0].grads.items()}
    model.fit(x, y, epochs=1, batch_size=4, batch_order="fixed")
    for k, p in model.layers[0].params.items():
        w, g = before[k], grads[k]
        shrink = k == "W" or biases
        if not shrink:
            want = w - 0.5 * g
        elif when == "before":
            want = w * (1 - 0.2 * np.abs(w)) - 0.5 * g
        else:
            want = (w - 0.5 * g) * (1 - 0.2 * np.abs(w - 0.5 * g))
        np.testing.assert_allclose(p, want, rtol=1e-6, atol=1e-7)


def test_fixed_copies_rotate_every_training_image(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((3, 8, 8, 1), dtype=np.float32)
    xs, ys = augment.with_copies(x, np.array([4, 5, 6]), [{"rotate": 10}, {"rotate": -10}])
    assert xs.shape == (9, 8, 8, 1) and ys.tolist() == [4, 5, 6] * 3
    np.testing.assert_array_equal(xs[:3], x)

    class Fixed:   # Rotate draws its angle from rng.uniform: make it exactly +10 degrees
        def uniform(self, low, high, n):
            return np.full(n, 10.0)
    np.testing.assert_array_equal(xs[3:6], augment.Rotate(10)(x, Fixed()))
    assert not np.allclose(xs[3:6], xs[6:])
    shifted = augment.transformed(x, 0, (0, 2))
    np.testing.assert_allclose(shifted[:, :, 2:], x[:, :, :-2], atol=1e-6)
    cfg = load_config(None, {**SMALL, "augment.copies": [{"rotate": 10}, {"rotate": -10}]})
    _, ds, x_train, _ = runs.prepare(cfg)
    assert len(x_train) == 3 * 200 and len(ds.y_train) == 600


def test_forward_differences_have_an_error_of_order_h():
    a = np.array([1.0, -2.0, 3.0])
    f = lambda: float(np.sum(a ** 2))   # noqa: E731
    np.testing.assert_allclose(numeric_gradient(f, a, 1e-3, method="forward"),
                               2 * a + 1e-3, rtol=1e-9)
    np.testing.assert_allclose(numeric_gradient(f, a, 1e-3), 2 * a, rtol=1e-9)


def test_gradient_checks_at_the_configured_steps(tmp_path):
    cfg = load_config(None, {**SMALL, "training.epochs": 2, "training.batch_size": 40,
                             "training.gradcheck": {"method": "forward", "h": 1e-3,
                                                    "entries": 2, "every": 3}})
    runs.train(cfg, tmp_path, verbose=False)
    d = np.load(tmp_path / "dynamics.npz")
    assert d["check_steps"].tolist() == [1, 3, 6, 9]   # 10 steps in all
    assert d["check_angle"].shape == (4, 4)
    assert np.all(d["check_angle"] < 20)


def test_conv_deltas_are_per_sample_so_a_partial_batch_does_not_jump():
    monitor = Monitor(every=1)
    monitor._conv = 0
    per_sample = np.ones((1, 4, 4, 2))
    for step, batch in enumerate((32, 5), 1):
        monitor._delta_step = step
        # The batch loss is the mean of the samples' losses: dy = dL_i/dy_i / batch.
        monitor._record_delta(0, None, np.repeat(per_sample, batch, axis=0) / batch)
        monitor._close_deltas()
    np.testing.assert_allclose(monitor.deltas, [np.sqrt(32)] * 2)
    assert monitor.delta_steps == [1, 2]


def test_frozen_layers_stay_bit_identical_and_get_no_optimizer_state_or_backward():
    rng = np.random.default_rng(0)
    x = rng.random((64, 5), dtype=np.float32)
    y = rng.integers(0, 3, 64)
    model = Sequential([Dense(8), BatchNorm(), ReLU(), Dense(3), Softmax()], input_shape=(5,))
    from glyphnet.nn.transfer import freeze
    freeze(model, [0, 1])
    frozen = {(i, g, k): v.copy() for i in (0, 1) for g in ("params", "state")
              for k, v in getattr(model.layers[i], g).items()}
    top = model.layers[3].params["W"].copy()

    def no_backward(dy):
        raise AssertionError("a frozen bottom layer was backpropagated")
    for layer in model.layers[:3]:
        layer.backward = layer.backward_params = no_backward
    model.compile(optimizer=Adam(1e-2))
    model.fit(x, y, epochs=3, batch_size=16)
    for (i, g, k), v in frozen.items():
        assert np.array_equal(getattr(model.layers[i], g)[k], v), (i, g, k)
    assert not np.array_equal(model.layers[3].params["W"], top)
    assert len(model.optimizer.m) == 2   # the top Dense layer's W and b only


def test_init_from_copies_a_layer_range_and_freeze_keeps_it(tmp_path):
    source = load_config(None, SMALL)
    runs.train(source, tmp_path / "a", verbose=False)
    saved = Sequential.load(tmp_path / "a" / "model.npz")
    cfg = load_config(None, {**SMALL, "seed": 5,
                             "model.init_from": {"path": str(tmp_path / "a" / "model.npz"),
                                                 "layers": "0:2"},
                             "training.freeze": [0]})
    runs.train(cfg, tmp_path / "b", verbose=False)
    new = Sequential.load(tmp_path / "b" / "model.npz")
    for k in ("W", "b"):
        assert np.array_equal(new.layers[0].params[k], saved.layers[0].params[k])
    assert not np.array_equal(new.layers[2].params["W"], saved.layers[2].params["W"])
    bad = load_config(None, {**SMALL, "model.layers": [{"type": "dense", "units": 7},
                                                       {"type": "relu"},
                                                       {"type": "dense", "units": 10},
                                                       {"type": "softmax"}],
                             "model.init_from": str(tmp_path / "a" / "model.npz")})
    with pytest.raises(Exception, match="layer 0 .dense. W has shape"):
        runs.prepare(bad)


def test_eval_every_writes_steps_csv_and_max_steps_ends_mid_epoch(tmp_path):
    # 200 images in batches of 50: 4 steps per epoch; 10 steps end in epoch 3.
    cfg = load_config(None, {**SMALL, "training.epochs": 5, "training.batch_size": 50,
                             "training.eval_every": 4, "training.eval_subset": 60,
                             "training.max_steps": 10})
    runs.train(cfg, tmp_path, verbose=False)
    history = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert [r["epoch"] for r in history] == ["1", "2", "3"]
    losses = [float(v) for v in open(tmp_path / "batch_losses.csv")]
    assert len(losses) == 10
    steps = load_steps(tmp_path / "steps.csv")
    assert steps["step"].tolist() == [1, 4, 8]
    assert steps["epoch"].tolist() == [1, 1, 2]
    np.testing.assert_allclose(steps["batch_loss"], [losses[0], losses[3], losses[7]],
                               rtol=1e-5)
    hits = steps["eval_accuracy"] * 60   # 60 images evaluated: whole counts of hits
    np.testing.assert_allclose(hits, np.round(hits), atol=1e-3)


def test_balanced_batches_are_checked_against_the_data_before_training():
    cfg = load_config(None, {**SMALL, "training.batch_order": "balanced",
                             "training.batch_size": 128})
    with pytest.raises(ConfigError, match="expected a multiple of 10 .* got 128"):
        runs.prepare(cfg)
    cfg = load_config(None, {**SMALL, "training.batch_order": "balanced",
                             "training.batch_size": 300})
    with pytest.raises(ConfigError, match="need 30 training image.s. of every class; class "
                                          "'0' has 20"):
        runs.prepare(cfg)


@pytest.mark.parametrize("top", ["dense", "conv"])
def test_a_frozen_layer_above_trainable_ones_passes_the_gradient_down_without_its_own(top):
    from glyphnet.nn.conv import Conv2D, DepthwiseConv2D
    from glyphnet.nn.layers import Flatten
    from glyphnet.nn.transfer import freeze
    rng = np.random.default_rng(0)

    def layers():
        if top == "dense":
            return [Dense(6), ReLU(), Dense(4), ReLU(), Dense(3), Softmax()]
        return [Conv2D(3, 3), ReLU(), DepthwiseConv2D(3), Conv2D(2, 3), ReLU(), Flatten(),
                Dense(3), Softmax()]
    if top == "dense":
        x, shape, frozen = rng.random((8, 5), dtype=np.float32), (5,), [2]
    else:
        x, shape, frozen = rng.random((8, 7, 7, 2), dtype=np.float32), (7, 7, 2), [2, 3]
    y = rng.integers(0, 3, 8)
    plain = Sequential(layers(), input_shape=shape, seed=1)
    model = Sequential(layers(), input_shape=shape, seed=1)
    freeze(model, frozen)
    plain.loss_and_grads(x, y, input_grad=False)
    model.loss_and_grads(x, y, input_grad=False)
    # The trainable layers get the same gradients; the frozen ones compute none of their own.
    for i, layer in enumerate(model.layers):
        for k, g in layer.grads.items():
            if i in frozen:
                assert not g.any(), (i, k)
            else:
                np.testing.assert_allclose(g, plain.layers[i].grads[k], rtol=1e-5, atol=1e-7)
