"""The losses' values and gradients (central finite differences, float64), and the stability of
the softmax cross-entropy at extreme logits."""
import warnings

import numpy as np
import pytest

from glyphnet import CrossEntropy, Dense, Sequential, Softmax, SumOfSquares
from glyphnet.nn.gradcheck import numeric_gradient
from glyphnet.nn.losses import loss_from_config


def numeric_grad(f, a, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of a, shaped like a."""
    return numeric_gradient(f, a, eps).reshape(a.shape)


def check_loss(loss, out, labels):
    value, grad = loss(out.copy(), labels)
    numeric = numeric_grad(lambda: loss(out.copy(), labels)[0], out)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
    return value


def test_cross_entropy_value_and_gradient(rng):
    z = rng.standard_normal((6, 4)) * 3
    labels = np.array([0, 1, 2, 3, 1, 0])
    value = check_loss(CrossEntropy(), z, labels)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert value == pytest.approx(-np.mean(np.log(p[np.arange(6), labels])), rel=1e-12)


@pytest.mark.parametrize("targets", [(0.0, 1.0), (0.01, 0.99)])
def test_mse_value_and_gradient_with_soft_targets(rng, targets):
    out = rng.uniform(0, 1, (5, 3))
    labels = np.array([2, 0, 1, 1, 2])
    value = check_loss(SumOfSquares(targets), out, labels)
    t = np.full((5, 3), targets[0])
    t[np.arange(5), labels] = targets[1]
    assert value == pytest.approx(0.5 * np.sum((out - t) ** 2) / 5, rel=1e-12)


def test_softmax_with_mse_through_a_model(rng):
    """Softmax followed by MSE is not fused: the gradient goes through Softmax.backward."""
    model = Sequential([Dense(4, init="normal", sigma=0.5), Softmax()], input_shape=(3,),
                       dtype=np.float64)
    model.compile(loss=SumOfSquares((0.01, 0.99)))
    assert not model._fused
    x, labels = rng.standard_normal((5, 3)), np.array([0, 1, 2, 3, 0])
    _, _, dx = model.loss_and_grads(x, labels)
    grads = {k: g.copy() for _, k, _, g in model.parameters()}

    def loss():
        return model.loss_and_grads(x, labels)[0]

    for _, k, p, _ in model.parameters():
        np.testing.assert_allclose(grads[k], numeric_grad(loss, p), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_stable_at_extreme_logits(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [1e4, 1e4, -1e4]], dtype)
    errors = np.errstate(over="raise", divide="raise", invalid="raise")
    with warnings.catch_warnings(), errors:
        warnings.simplefilter("error")
        good, grad_good = CrossEntropy()(z.copy(), np.array([0, 1, 0]))
        bad, grad_bad = CrossEntropy()(z.copy(), np.array([1, 0, 2]))
    for grad in (grad_good, grad_bad):
        assert np.isfinite(grad).all()
        np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-6)
    # Confident and right: (0 + 0 + log 2) / 3.  Confident and wrong: logit gaps of 2e4.
    assert good == pytest.approx(np.log(2) / 3, rel=1e-5)
    assert bad == pytest.approx((6e4 + np.log(2)) / 3, rel=1e-6)
    np.testing.assert_allclose(grad_bad[0], np.array([1, -1, 0]) / 3, atol=1e-6)


def test_losses_keep_float32(rng):
    z = rng.standard_normal((4, 3)).astype(np.float32)
    for loss in (CrossEntropy(), SumOfSquares()):
        _, grad = loss(z.copy(), np.array([0, 1, 2, 0]))
        assert grad.dtype == np.float32


def test_loss_from_config_and_bad_targets():
    assert loss_from_config({"type": "mse", "targets": [0.01, 0.99]}).targets == (0.01, 0.99)
    with pytest.raises(ValueError, match="targets must be \\(low, high\\) with low < high"):
        SumOfSquares((1.0, 0.0))
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        loss_from_config({"type": "hinge"})
