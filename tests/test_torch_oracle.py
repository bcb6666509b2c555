"""PyTorch autograd as an independent oracle: the same weights in both, float64, compare the
forward outputs and every gradient. PyTorch is imported here only, never by glyphnet."""
import numpy as np
import pytest

from glyphnet import (
    SGD,
    Adam,
    CrossEntropy,
    Dense,
    Dropout,
    LeakyReLU,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    SumOfSquares,
    Tanh,
)

torch = pytest.importorskip("torch")
F = torch.nn.functional


def torch_forward(model, x, masks):
    """The glyphnet model's layers rewritten with torch operations on leaf tensors."""
    params = {}
    h = torch.tensor(x, requires_grad=True)
    inp = h
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Dense):
            W = params[(i, "W")] = torch.tensor(layer.params["W"], requires_grad=True)
            h = h.reshape(len(h), -1) @ W
            if layer.bias:
                b = params[(i, "b")] = torch.tensor(layer.params["b"], requires_grad=True)
                h = h + b
        elif isinstance(layer, Sigmoid):
            h = torch.sigmoid(layer.slope * h)
        elif isinstance(layer, Tanh):
            h = torch.tanh(layer.slope * h)
        elif isinstance(layer, LeakyReLU):
            h = F.leaky_relu(h, layer.negative_slope)
        elif isinstance(layer, ReLU):
            h = torch.relu(h)
        elif isinstance(layer, Softmax):
            h = torch.softmax(h, dim=1)
        elif isinstance(layer, Dropout):
            h = h * torch.tensor(masks[i])
        else:
            raise AssertionError(f"no torch version of {layer!r}")
    return inp, h, params


def compare(model, x, labels, torch_loss):
    """glyphnet's loss, output and gradients against torch autograd."""
    # Fix each dropout mask: glyphnet draws it, torch reuses it.
    for layer in model.layers:
        if isinstance(layer, Dropout):
            layer.rng = np.random.default_rng(3)
    loss, _, dx = model.loss_and_grads(x, labels)
    masks = {i: layer.scale for i, layer in enumerate(model.layers) if isinstance(layer, Dropout)}
    probs = model.forward(x, training=False)

    inp, out, params = torch_forward(model, x, masks)
    t_loss = torch_loss(out, torch.tensor(labels))
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    np.testing.assert_allclose(dx, inp.grad.numpy(), rtol=1e-9, atol=1e-12)
    for i, name, _, grad in model.parameters():
        np.testing.assert_allclose(grad, params[(i, name)].grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=f"layer {i} {name}")
    if not masks:
        with torch.no_grad():
            np.testing.assert_allclose(probs, torch_forward(model, x, masks)[1].numpy(),
                                       rtol=1e-12, atol=1e-14)


def float64_model(layers, input_shape, seed=0):
    return Sequential(layers, input_shape=input_shape, seed=seed, dtype=np.float64)


def test_every_activation_with_softmax_cross_entropy(mnist_small):
    x = mnist_small[0][:8].astype(np.float64)           # real images: flat zero regions
    labels = mnist_small[1][:8]
    model = float64_model([
        Dense(32), Sigmoid(slope=2.0), Dense(24, bias=False, init="glorot_normal"),
        Tanh(slope=0.5), Dense(20, init="lecun_uniform"), LeakyReLU(0.1), Dense(16), ReLU(),
        Dense(10, init="glorot_uniform"), Softmax()], (28, 28, 1))
    model.compile(loss=CrossEntropy())
    assert model._fused
    compare(model, x, labels, lambda out, t: F.nll_loss(torch.log(out), t))


def test_cross_entropy_from_logits_matches_torch(rng):
    """The fused softmax cross-entropy against torch's from-logits version, large logits."""
    model = float64_model([Dense(6, init="normal", sigma=30.0), Softmax()], (5,))
    model.compile(loss="cross_entropy")
    x, labels = rng.standard_normal((7, 5)), rng.integers(0, 6, 7)
    _, logits, _ = model.loss_and_grads(x, labels)
    assert np.abs(logits).max() > 50                    # exp would overflow float32 unshifted
    inp, _, params = torch_forward(model, x, {})
    logits_t = inp.reshape(7, -1) @ params[(0, "W")] + params[(0, "b")]
    loss_t = F.cross_entropy(logits_t, torch.tensor(labels))
    loss_t.backward()
    loss, _, dx = model.loss_and_grads(x, labels)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    np.testing.assert_allclose(dx, inp.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.layers[0].grads["W"], params[(0, "W")].grad.numpy(),
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("targets", [(0.0, 1.0), (0.01, 0.99)])
def test_sigmoid_output_with_mse(rng, targets):
    model = float64_model([Dense(12, init="normal", sigma=0.3), Sigmoid(), Dense(4), Sigmoid(3.0)],
                          (9,))
    model.compile(loss=SumOfSquares(targets))

    def mse(out, t):
        onehot = torch.full_like(out, targets[0])
        onehot[torch.arange(len(out)), t] = targets[1]
        return 0.5 * ((out - onehot) ** 2).sum() / len(out)

    compare(model, rng.standard_normal((6, 9)), rng.integers(0, 4, 6), mse)


def test_softmax_output_with_mse(rng):
    model = float64_model([Dense(8), Tanh(), Dense(5), Softmax()], (6,))
    model.compile(loss=SumOfSquares())
    assert not model._fused

    def mse(out, t):
        return 0.5 * ((out - F.one_hot(t, 5)) ** 2).sum() / len(out)

    compare(model, rng.standard_normal((4, 6)), rng.integers(0, 5, 4), mse)


def test_dropout_with_the_same_mask(rng):
    model = float64_model([Dropout(0.2), Dense(16), ReLU(), Dropout(0.5), Dense(3), Softmax()],
                          (10,))
    model.compile(loss="cross_entropy")
    compare(model, rng.standard_normal((5, 10)), rng.integers(0, 3, 5),
            lambda out, t: F.nll_loss(torch.log(out), t))


# ------------------------------------------------------------------------------ optimisers
def run_both(glyph_opt, torch_opt_factory, steps, rng, lr_schedule=None):
    """Apply the same gradient sequence to the same start values with both optimisers."""
    p = [rng.standard_normal((4, 3)), rng.standard_normal(3)]
    grads = [[rng.standard_normal(a.shape) for a in p] for _ in range(steps)]
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in p]
    topt = torch_opt_factory(tp)
    for s in range(steps):
        if lr_schedule:
            glyph_opt.lr = lr_schedule[s]
            for group in topt.param_groups:
                group["lr"] = lr_schedule[s]
        glyph_opt.step(p, grads[s])
        for t, g in zip(tp, grads[s]):
            t.grad = torch.tensor(g)
        topt.step()
    return p, [t.detach().numpy() for t in tp]


@pytest.mark.slow
def test_adam_matches_torch(rng):
    ours, theirs = run_both(Adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6),
                            lambda tp: torch.optim.Adam(tp, lr=0.01, betas=(0.8, 0.99), eps=1e-6),
                            25, rng)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_sgd_matches_torch(rng):
    ours, theirs = run_both(SGD(lr=0.05), lambda tp: torch.optim.SGD(tp, lr=0.05), 5, rng)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_sgd_momentum_matches_torch_at_a_constant_learning_rate(rng):
    """v <- mu v - lr g, w <- w + v equals PyTorch's b <- mu b + g, w <- w - lr b while lr is
    constant (v = -lr b); test_optimizers checks the formula when lr changes."""
    ours, theirs = run_both(SGD(lr=0.05, momentum=0.9),
                            lambda tp: torch.optim.SGD(tp, lr=0.05, momentum=0.9), 10, rng)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_sgd_momentum_differs_from_torch_when_the_learning_rate_changes(rng):
    """With a decaying lr the old velocity keeps its old step size in glyphnet (the velocity
    form) but is rescaled by the new lr in PyTorch."""
    ours, theirs = run_both(SGD(lr=0.1, momentum=0.9),
                            lambda tp: torch.optim.SGD(tp, lr=0.1, momentum=0.9), 4, rng,
                            lr_schedule=[0.1, 0.1, 0.01, 0.01])
    assert np.abs(ours[0] - theirs[0]).max() > 1e-3
