"""Optimiser steps against hand-computed values, and the L1/L2/shrink penalties of fit."""
import math
import warnings

import numpy as np
import pytest

from glyphnet import SGD, Adam, Dense, Sequential, Softmax
from glyphnet.nn.optimizers import optimizer_from_config


def test_sgd_step():
    p, g = np.array([1.0, -2.0, 0.5]), np.array([0.5, 1.0, -4.0])
    SGD(lr=0.1).step([p], [g])
    np.testing.assert_allclose(p, [0.95, -2.1, 0.9])


def test_sgd_momentum_follows_the_velocity_formula():
    """v <- mu v - lr g,  w <- w + v, also when lr changes between steps."""
    opt = SGD(lr=0.1, momentum=0.5)
    p = np.array([1.0, -1.0])
    g1, g2, g3 = np.array([1.0, 2.0]), np.array([-1.0, 0.5]), np.array([2.0, 2.0])
    opt.step([p], [g1])                      # v = -0.1 g1 = (-0.1, -0.2)
    np.testing.assert_allclose(p, [0.9, -1.2])
    opt.step([p], [g2])                      # v = 0.5 v - 0.1 g2 = (0.05, -0.15)
    np.testing.assert_allclose(p, [0.95, -1.35])
    opt.lr = 0.01
    opt.step([p], [g3])                      # v = 0.5 v - 0.01 g3 = (0.005, -0.095)
    np.testing.assert_allclose(p, [0.955, -1.445])


def test_adam_first_steps_by_hand():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    opt = Adam(lr, b1, b2, eps)
    p, g1, g2 = np.array([1.0, -1.0, 0.0]), np.array([0.3, -2.0, 0.0]), np.array([0.1, 1.0, 4.0])
    opt.step([p], [g1])
    # m_hat = g, v_hat = g^2: the first step is lr * g / (|g| + eps), about lr * sign(g).
    np.testing.assert_allclose(p, [1.0 - lr * 0.3 / (0.3 + eps), -1.0 + lr * 2 / (2 + eps), 0.0])
    before = p.copy()
    opt.step([p], [g2])
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1 ** 2 + (1 - b2) * g2 ** 2
    m_hat, v_hat = m / (1 - b1 ** 2), v / (1 - b2 ** 2)
    np.testing.assert_allclose(p, before - lr * m_hat / (np.sqrt(v_hat) + eps), rtol=1e-12)


def test_adam_keeps_float32_and_allocates_its_state_once():
    rng = np.random.default_rng(0)
    p = rng.standard_normal((30, 20)).astype(np.float32)
    opt = Adam()
    for _ in range(3):
        opt.step([p], [rng.standard_normal(p.shape).astype(np.float32)])
    assert p.dtype == opt.m[0].dtype == opt.v[0].dtype == np.float32
    state = (id(opt.m[0]), id(opt.v[0]))
    opt.step([p], [np.ones_like(p)])
    assert (id(opt.m[0]), id(opt.v[0])) == state


def test_adam_flushes_tiny_moments_to_zero():
    """Weights that stop receiving gradients (border pixels) would otherwise decay into
    subnormal floats, which are very slow."""
    p = np.ones(4, np.float32)
    opt = Adam()
    opt.step([p], [np.array([1e-3, 1e-3, 1e-3, 1.0], np.float32)])
    zero = np.zeros(4, np.float32)
    for _ in range(598):                     # m = 1e-4 * 0.9^(t-1): 4e-32 at t = 599
        opt.step([p], [zero])
    assert 0 < opt.m[0][0] < 1e-30
    opt.step([p], [zero])                    # t = 600: a flush step
    np.testing.assert_array_equal(opt.m[0][:3], 0)
    assert opt.m[0][3] > 1e-30               # 1e-1 * 0.9^599, still above the threshold
    assert np.all(opt.v[0] > 0)              # v decays slowly (0.999 per step): kept


def test_adam_split_over_two_threads_gives_identical_results(monkeypatch):
    """Large arrays are updated in two halves (one on a helper thread); the result must be
    bit-identical to updating them whole, also for non-contiguous arrays (never split)."""
    rng = np.random.default_rng(0)
    start = [rng.standard_normal((400, 300)).astype(np.float32),
             rng.standard_normal((300, 400)).astype(np.float32)[:, ::2],
             rng.standard_normal(7).astype(np.float32)]
    grads = [[rng.standard_normal(p.shape).astype(np.float32) for p in start] for _ in range(5)]

    def run():
        params, opt = [p.copy() for p in start], Adam(1e-2)
        params[1] = np.repeat(start[1], 2, axis=1)[:, ::2]       # a strided view
        for g in grads:
            opt.step(params, g)
        return params

    monkeypatch.setattr("glyphnet.nn.backend.cores_busy", lambda: False)   # split even under load
    split = run()
    monkeypatch.setattr("glyphnet.nn.backend.SPLIT_SIZE", 10**9)
    whole = run()
    for a, b, p0 in zip(split, whole, start):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, p0)


def test_adam_helper_thread_follows_the_callers_errstate(monkeypatch):
    """fit silences overflow warnings (divergence is reported once); the half of a large
    array updated on the helper thread must honour that, and a raising errstate too."""
    monkeypatch.setattr("glyphnet.nn.backend.cores_busy", lambda: False)
    g = np.ones(200_000, np.float32)
    g[:100_000] = np.inf                          # only the helper thread's half: inf / inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(invalid="ignore"):
            p = np.ones_like(g)
            Adam().step([p], [g])
    assert np.isnan(p[:100_000]).all() and np.isfinite(p[100_000:]).all()
    with np.errstate(invalid="raise"), pytest.raises(FloatingPointError):
        Adam().step([np.ones_like(g)], [g])


@pytest.mark.parametrize("kind,kwargs,message", [
    ("sgd", {"lr": 0}, "lr must be a positive number"),
    ("sgd", {"momentum": 1.0}, "momentum must be in [0, 1)"),
    ("adam", {"beta2": 1.5}, "beta2 must be in [0, 1)"),
    ("adam", {"eps": -1.0}, "eps must be a positive number"),
    ("rmsprop", {}, "unknown optimizer 'rmsprop'"),
])
def test_bad_optimizer_arguments(kind, kwargs, message):
    with pytest.raises(ValueError) as info:
        optimizer_from_config({"type": kind, **kwargs})
    assert message in str(info.value)


# ------------------------------------------------------------------------------ penalties
def one_sgd_step(rng, lr=0.1, **penalties):
    """One full-batch SGD step through fit; returns (W before, its plain loss gradient,
    W after, b before, b gradient, b after)."""
    model = Sequential([Dense(3, init="normal", sigma=0.5), Softmax()], input_shape=(4,),
                       seed=1, dtype=np.float64)
    model.compile(optimizer=SGD(lr=lr), **penalties)
    x, y = rng.standard_normal((6, 4)), np.array([0, 1, 2, 0, 1, 2])
    model.loss_and_grads(x, y)
    W0, b0 = model.layers[0].params["W"].copy(), model.layers[0].params["b"].copy()
    gW, gb = model.layers[0].grads["W"].copy(), model.layers[0].grads["b"].copy()
    model.fit(x, y, epochs=1, batch_size=0, shuffle=False)
    return W0, gW, model.layers[0].params["W"], b0, gb, model.layers[0].params["b"]


def test_l2_adds_l2_times_w(rng):
    W0, gW, W1, b0, gb, b1 = one_sgd_step(rng, l2=0.5)
    np.testing.assert_allclose(W1, W0 - 0.1 * (gW + 0.5 * W0))
    np.testing.assert_allclose(b1, b0 - 0.1 * gb)                # biases are not penalised


def test_l1_adds_l1_times_sign_w(rng):
    W0, gW, W1, b0, gb, b1 = one_sgd_step(rng, l1=0.2)
    np.testing.assert_allclose(W1, W0 - 0.1 * (gW + 0.2 * np.sign(W0)))
    np.testing.assert_allclose(b1, b0 - 0.1 * gb)


def test_shrink_multiplies_by_one_minus_reg_abs_w(rng):
    W0, gW, W1, b0, gb, b1 = one_sgd_step(rng, shrink=0.3)
    stepped = W0 - 0.1 * gW
    np.testing.assert_allclose(W1, stepped * (1 - 0.3 * np.abs(stepped)))
    np.testing.assert_allclose(b1, b0 - 0.1 * gb)


def test_penalties_shrink_the_weights_in_training(mnist_small):
    x, y = mnist_small[0][:500], mnist_small[1][:500]
    norms = {}
    for name, kw in (("none", {}), ("l2", {"l2": 0.5}), ("l1", {"l1": 1e-2}),
                     ("shrink", {"shrink": 0.5})):
        model = Sequential([Dense(32), Dense(10), Softmax()], input_shape=(28, 28, 1), seed=0)
        model.compile(optimizer=SGD(0.1), **kw)
        model.fit(x, y, epochs=2, batch_size=50, seed=0)
        norms[name] = float(np.abs(model.layers[0].params["W"]).sum())
    for name in ("l2", "l1", "shrink"):
        assert norms[name] < 0.9 * norms["none"], norms


@pytest.mark.parametrize("name", ["l1", "l2", "shrink"])
def test_negative_penalties_are_rejected(name):
    model = Sequential([Dense(2)], input_shape=(3,))
    with pytest.raises(ValueError, match=f"{name} must be a number >= 0"):
        model.compile(**{name: -1.0})


def test_bias_correction_is_exact_after_many_steps():
    """After t steps with a constant gradient g, m_hat = g and v_hat = g^2 exactly."""
    opt = Adam(lr=1e-3)
    p, g = np.zeros(2), np.array([0.5, -3.0])
    for _ in range(50):
        before = p.copy()
        opt.step([p], [g])
    np.testing.assert_allclose(before - p, 1e-3 * np.sign(g), rtol=1e-6)
    assert math.isclose(opt.t, 50)


def test_adam_on_packed_arrays_matches_adam_on_separate_ones():
    """Sequential packs its parameters and gradients; Adam then updates runs of them as one
    flat array: bit-identical to updating each, with a gap (a frozen layer left out) and with
    a parameter the user replaced between steps (updated where it now lives)."""
    from glyphnet.nn.backend import pack
    rng = np.random.default_rng(0)
    start = [rng.standard_normal(s).astype(np.float32) for s in ((30, 20), (20,), (20, 5), (5,))]
    grads = [[rng.standard_normal(p.shape).astype(np.float32) for p in start] for _ in range(4)]
    keep = [0, 1, 3]                                      # position 2 frozen
    separate, packed, packed_grads = [p.copy() for p in start], pack(start), pack(grads[0])
    opt_a, opt_b = Adam(1e-2), Adam(1e-2)
    for t, g in enumerate(grads):
        for view, value in zip(packed_grads, g):
            view[...] = value
        if t == 2:
            packed[1] = packed[1].copy()                  # replaced by the user
        opt_a.step([separate[i] for i in keep], [g[i] for i in keep])
        opt_b.step([packed[i] for i in keep], [packed_grads[i] for i in keep])
        for i in keep:
            np.testing.assert_array_equal(packed[i], separate[i])
    assert len(opt_b._arranged[1]) == 3 and not np.array_equal(packed[0], start[0])
    np.testing.assert_array_equal(packed[2], start[2])


def test_adam_checkpointed_state_is_packed_again():
    model = Sequential([Dense(4), Softmax()], input_shape=(3,), seed=0).compile()
    params = [p for _, _, p, _ in model.parameters()]
    grads = [np.ones_like(p) for p in params]
    model.optimizer.step(params, grads)
    state = {k: np.array(v) for k, v in model.optimizer.state_arrays().items()}
    fresh = Adam()
    fresh.load_state(state)
    assert fresh.m[1].base is fresh.m[0].base is not None
    np.testing.assert_array_equal(fresh.v[1], model.optimizer.v[1])
    before = [p.copy() for p in params]
    fresh.step(params, grads)
    model.optimizer.load_state(state)
    model.optimizer.step(before, grads)
    for a, b in zip(params, before):
        np.testing.assert_array_equal(a, b)
