"""Training steps cut into slices on threads (nn/parallel.py): the same step as a whole
batch up to float rounding, the same weights whether the slices run at once or one after
another, dropout masks as a whole-batch step draws them, and models that cannot be cut take
whole steps."""
import copy
import threading

import numpy as np
import pytest

import glyphnet as g
from glyphnet import Dense, ReLU, Softmax
from glyphnet.inspection.monitor import Monitor
from glyphnet.nn import backend, parallel
from glyphnet.nn.parallel import SplitSteps, parts_for


@pytest.fixture(scope="module")
def mnist():
    ds = g.load_mnist()
    return ds.x_train[:300], ds.y_train[:300]


def cnn(dtype=np.float32, dropout=0.3, seed=0):
    layers = [g.Conv2D(4, 3), ReLU(), g.MaxPool2D(2), g.Dropout(dropout),
              g.Conv2D(6, 3, padding="same"), ReLU(), Dense(16), ReLU(), g.Dropout(dropout),
              Dense(10), Softmax()]
    return g.Sequential(layers, input_shape=(28, 28, 1), seed=seed, dtype=dtype).compile()


def grads(model):
    return [gr.copy() for _, _, _, gr in model.parameters()]


@pytest.mark.parametrize("n,threads", [(131, 2), (131, 3), (128, 4)])
def test_a_split_step_is_the_whole_batch_step(mnist, n, threads):
    """float64: loss, outputs and every gradient agree to rounding, dropout included."""
    x, y = mnist[0][:n].astype(np.float64), mnist[1][:n]
    whole, split = cnn(np.float64), cnn(np.float64)
    assert parts_for(split, n, threads) == threads
    loss_w, out_w = SplitSteps(whole, 1, n).loss_and_grads(x, y)
    loss_s, out_s = SplitSteps(split, threads, n).loss_and_grads(x, y)
    assert loss_s == pytest.approx(loss_w, rel=1e-13)
    np.testing.assert_allclose(out_s, out_w, rtol=1e-13, atol=1e-13)
    for a, b in zip(grads(split), grads(whole)):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)


def test_dropout_masks_are_those_of_the_whole_batch(mnist):
    x, y = mnist[0][:128].astype(np.float64), mnist[1][:128]
    whole, split = cnn(np.float64, dropout=0.5), cnn(np.float64, dropout=0.5)
    SplitSteps(whole, 1, 128).loss_and_grads(x, y)
    steps = SplitSteps(split, 2, 128)
    steps.loss_and_grads(x, y)
    for i in (3, 8):
        got = np.concatenate([r.layers[i].scale for r in steps.replicas])
        np.testing.assert_array_equal(got, whole.layers[i].scale)
    # and the generators moved on by the same draws
    assert split.layers[3].rng.random() == whole.layers[3].rng.random()


def test_fit_gives_the_same_weights_whether_slices_run_at_once_or_in_turn(mnist, monkeypatch):
    x, y = mnist
    monkeypatch.setattr(parallel, "cores_busy", lambda: False)
    runs = {}
    threads_seen = set()
    real = backend.run_parts

    def spy(calls, at_once):
        out = real(calls, at_once)
        threads_seen.add(at_once)
        return out

    monkeypatch.setattr(parallel, "run_parts", spy)
    for at_once in (1, 2):
        monkeypatch.setattr(parallel, "thread_budget", lambda at_once=at_once: at_once)
        model = cnn()
        model.fit(x, y, epochs=2, batch_size=100, seed=3, threads=2)
        runs[at_once] = [p.copy() for _, _, p, _ in model.parameters()]
    assert threads_seen == {1, 2}
    for a, b in zip(runs[1], runs[2]):
        np.testing.assert_array_equal(a, b)


def test_two_slices_use_two_threads(mnist, monkeypatch):
    monkeypatch.setattr(parallel, "cores_busy", lambda: False)
    monkeypatch.setattr(parallel, "thread_budget", lambda: 2)
    model = cnn(dropout=0.0)
    seen = set()
    model.backward_hooks.append(lambda i, layer, dy: seen.add(threading.get_ident()))
    steps = SplitSteps(model, 2, 128)
    with steps:
        steps.loss_and_grads(*(a[:128] for a in mnist))
    assert len(steps.replicas) == 2 and len(seen) == 2


def test_split_training_learns_like_whole_training(mnist):
    x, y = mnist
    accuracy = {}
    for threads in (1, 2):
        model = cnn(dropout=0.0)
        model.fit(x, y, epochs=12, batch_size=64, seed=0, threads=threads)
        accuracy[threads] = model.evaluate(x, y)["accuracy"]
    assert accuracy[2] > 0.6
    assert abs(accuracy[2] - accuracy[1]) < 0.05


def test_models_that_are_not_cut():
    bn = g.Sequential([g.Conv2D(4, 3), g.BatchNorm(), ReLU(), Dense(10), Softmax()],
                      input_shape=(28, 28, 1))
    mlp = g.Sequential([Dense(32), ReLU(), Dense(10), Softmax()], input_shape=(784,))
    assert parts_for(bn, 128, 2) == 1           # batch statistics couple the samples
    assert parts_for(mlp, 128, 2) == 1          # products BLAS already spreads
    assert parts_for(cnn(), 128, 1) == 1
    assert parts_for(cnn(), 63, 2) == 1          # slices of at least MIN_PART samples
    assert parts_for(cnn(), 64, 2) == 2
    bn.layers[1].trainable = False              # frozen batch norm uses fixed statistics
    assert parts_for(bn, 128, 2) == 2


def test_a_split_fit_leaves_blas_threads_as_they_were(mnist):
    before = backend._blas_threads()
    cnn().fit(*mnist, epochs=1, batch_size=128, threads=2, test_data=mnist)
    assert backend._blas_threads() == before


def test_monitor_conv_deltas_agree_with_whole_steps(mnist):
    """Backward hooks run once per slice; the monitor averages the per-image deltas."""
    x, y = mnist[0][:256].astype(np.float64), mnist[1][:256]
    deltas = {}
    for threads in (1, 2):
        model, monitor = cnn(np.float64, dropout=0.0), Monitor(every=1)
        model.fit(x, y, epochs=1, batch_size=128, seed=0, threads=threads, callbacks=[monitor])
        deltas[threads] = monitor.deltas
    assert len(deltas[2]) == len(deltas[1]) == 2
    np.testing.assert_allclose(deltas[2], deltas[1], rtol=1e-10)


def test_threads_must_be_a_positive_integer(mnist):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            cnn().fit(*mnist, threads=bad)


def test_replicas_share_weights_but_not_gradients_or_buffers():
    model = cnn()
    twin = parallel._replica(model)
    for a, b in zip(model.layers, twin.layers):
        for k in a.params:
            assert a.params[k] is b.params[k]
            assert a.grads[k] is not b.grads[k]
    assert twin.layers[0].buffers is not model.layers[0].buffers
    assert copy.copy(model).layers[0] is model.layers[0]    # a shallow copy would share them


def test_evaluation_forwards_are_cut_too_batch_norm_included(mnist):
    """In evaluation every layer treats the samples independently: the slices' outputs are
    the whole batch's."""
    x = mnist[0][:200].astype(np.float64)
    model = g.Sequential([g.Conv2D(4, 3), g.BatchNorm(), ReLU(), g.MaxPool2D(2), Dense(10),
                          Softmax()], input_shape=(28, 28, 1), dtype=np.float64).compile()
    model.fit(x, mnist[1][:200], epochs=1, batch_size=50)        # running statistics
    assert parts_for(model, 200, 2) == 1 and parts_for(model, 200, 2, training=False) == 2
    whole = model.forward(x)
    with parallel.SplitForwards(model, 2, 200) as forward:
        np.testing.assert_allclose(forward(x), whole, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(model.predict_proba(x, batch_size=200), whole, rtol=1e-13)


def test_slices_inside_a_split_fit_keep_its_thread_budget(monkeypatch):
    monkeypatch.setattr(backend, "cores_busy", lambda: False)
    with backend.slices_of_batches(2):
        assert backend._blas_threads() == 1
        assert backend.thread_budget() == 2


def test_an_interrupted_split_run_resumes_bit_identical(tmp_path):
    """Checkpoints of split runs (dropout, the monitor's per-slice conv deltas) continue
    exactly: interrupted mid-epoch, resumed, the weights and dynamics equal an unbroken run."""
    import json
    import os
    import signal

    from glyphnet import config, runs
    from glyphnet.data import Dataset
    from glyphnet.nn.training import Callback

    rng = np.random.default_rng(0)
    x = rng.random((300, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    x[np.arange(300), y, y] += 2.0
    toy = Dataset("toy", x[:256], y[:256], x[256:], y[256:], classes=["a", "b", "c"])
    cfg = config.load_config(None, {
        "model.layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "relu"},
                         {"type": "max_pool2d"}, {"type": "dropout", "rate": 0.3},
                         {"type": "dense", "units": 3}, {"type": "softmax"}],
        "training.epochs": 2, "training.batch_size": 64, "data.scale": "unit"})
    assert parts_for(g.Sequential([g.Conv2D(4, 3), Dense(3)], input_shape=(8, 8, 1)),
                     64, cfg["training"]["threads"]) == 2

    class StopAt(Callback):
        def on_batch_end(self, model, step, loss):
            if step == 3:
                os.kill(os.getpid(), signal.SIGINT)

    whole, broken = str(tmp_path / "whole"), str(tmp_path / "broken")
    runs.train(cfg, whole, verbose=False, dataset=toy)
    with pytest.raises(KeyboardInterrupt):
        runs.train(cfg, broken, verbose=False, dataset=toy, callbacks=[StopAt()])
    runs.resume(broken, verbose=False, dataset=toy)
    a = g.Sequential.load(os.path.join(whole, "model.npz"))
    b = g.Sequential.load(os.path.join(broken, "model.npz"))
    for (_, _, p, _), (_, _, q, _) in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
    da, db = np.load(os.path.join(whole, "dynamics.npz")), np.load(os.path.join(broken,
                                                                                "dynamics.npz"))
    np.testing.assert_array_equal(da["conv_deltas"], db["conv_deltas"])
    assert json.load(open(os.path.join(broken, "metrics.json")))["test_accuracy"] == \
        json.load(open(os.path.join(whole, "metrics.json")))["test_accuracy"]
