"""The convolution, pooling and batch-norm layers against PyTorch (a test-only oracle) and the
Toeplitz reference, in float64: forward values, input gradients and parameter gradients."""
import numpy as np
import pytest

import glyphnet as g
from glyphnet.nn.conv import conv2d_toeplitz
from glyphnet.nn.layers import Dense, LeakyReLU, ReLU, Softmax

torch = pytest.importorskip("torch")
F = torch.nn.functional


def nchw(a):
    return torch.tensor(np.ascontiguousarray(a.transpose(0, 3, 1, 2)), requires_grad=True)


def nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


def torch_padding(padding):
    return 0 if padding in (None, "valid") else padding


# (batch, height, width, channels, filters, kernel, stride, padding)
CONV_CASES = [
    (2, 9, 9, 3, 4, 3, 1, "valid"),
    (3, 8, 7, 2, 5, 3, 1, "same"),
    (2, 8, 8, 3, 2, (4, 2), 1, "same"),        # even kernel: extra padding bottom/right
    (2, 11, 10, 3, 4, 3, 2, None),             # stride 2
    (2, 12, 12, 9, 6, 5, 3, 2),                # stride 3, integer padding, C >= 8 path
    (1, 7, 7, 1, 3, 3, 2, 1),                  # batch 1
    (2, 6, 6, 8, 4, 1, 1, None),               # 1x1 kernel
    (2, 6, 5, 3, 4, 1, 2, 1),                  # 1x1 kernel, stride and padding
    (2, 28, 28, 1, 2, 28, 1, None),            # kernel as large as the image
    (1, 28, 28, 2, 3, 28, 1, 1),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("n,h,w,c,f,k,stride,padding", CONV_CASES)
def test_conv2d_matches_torch_and_toeplitz(n, h, w, c, f, k, stride, padding):
    rng = np.random.default_rng(sum(map(hash, (n, h, w, c, f, stride))) % 2**32)
    layer = g.Conv2D(f, k, stride=stride, padding=padding)
    layer.build((h, w, c), rng, np.float64)
    layer.params["b"][:] = rng.normal(size=f)
    x = rng.normal(size=(n, h, w, c))
    y = layer.forward(x, training=True)
    dy = rng.normal(size=y.shape)
    dx = layer.backward(dy)

    xt = nchw(x)
    wt = torch.tensor(layer.params["W"].transpose(3, 2, 0, 1).copy(), requires_grad=True)
    bt = torch.tensor(layer.params["b"], requires_grad=True)
    yt = F.conv2d(xt, wt, bt, stride=stride, padding=torch_padding(padding))
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))

    np.testing.assert_allclose(y, nhwc(yt), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y, conv2d_toeplitz(x, layer.params["W"], layer.params["b"],
                                                  stride, padding), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, nhwc(xt.grad), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grads["W"], wt.grad.numpy().transpose(2, 3, 1, 0),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grads["b"], bt.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("k,stride,padding", [(3, 1, "same"), (5, 2, 1), (1, 1, None)])
def test_depthwise_and_separable_match_torch(k, stride, padding):
    rng = np.random.default_rng(k + stride)
    n, h, w, c, f = 2, 9, 8, 3, 5
    x = rng.normal(size=(n, h, w, c))
    dw = g.DepthwiseConv2D(k, stride=stride, padding=padding)
    dw.build((h, w, c), rng, np.float64)
    dw.params["b"][:] = rng.normal(size=c)
    sep = g.SeparableConv2D(f, k, stride=stride, padding=padding)
    sep.build((h, w, c), rng, np.float64)
    sep.params["b"][:] = rng.normal(size=f)
    pad = torch_padding(padding)

    xt = nchw(x)
    wd = torch.tensor(dw.params["W"].transpose(2, 0, 1)[:, None].copy(), requires_grad=True)
    bd = torch.tensor(dw.params["b"], requires_grad=True)
    yt = F.conv2d(xt, wd, bd, stride=stride, padding=pad, groups=c)
    y = dw.forward(x, True)
    dy = rng.normal(size=y.shape)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    dx = dw.backward(dy)
    np.testing.assert_allclose(y, nhwc(yt), atol=1e-10)
    np.testing.assert_allclose(dx, nhwc(xt.grad), atol=1e-10)
    np.testing.assert_allclose(dw.grads["W"], wd.grad.numpy()[:, 0].transpose(1, 2, 0),
                               atol=1e-10)
    np.testing.assert_allclose(dw.grads["b"], bd.grad.numpy(), atol=1e-10)

    xt = nchw(x)
    wd = torch.tensor(sep.params["W_depthwise"].transpose(2, 0, 1)[:, None].copy(),
                      requires_grad=True)
    wp = torch.tensor(sep.params["W"].T[:, :, None, None].copy(), requires_grad=True)
    bp = torch.tensor(sep.params["b"], requires_grad=True)
    yt = F.conv2d(F.conv2d(xt, wd, None, stride=stride, padding=pad, groups=c), wp, bp)
    y = sep.forward(x, True)
    dy = rng.normal(size=y.shape)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    dx = sep.backward(dy)
    np.testing.assert_allclose(y, nhwc(yt), atol=1e-10)
    np.testing.assert_allclose(dx, nhwc(xt.grad), atol=1e-10)
    np.testing.assert_allclose(sep.grads["W_depthwise"], wd.grad.numpy()[:, 0].transpose(1, 2, 0),
                               atol=1e-10)
    np.testing.assert_allclose(sep.grads["W"], wp.grad.numpy()[:, :, 0, 0].T, atol=1e-10)
    np.testing.assert_allclose(sep.grads["b"], bp.grad.numpy(), atol=1e-10)


@pytest.fixture(scope="module")
def mnist():
    return g.load_mnist()


def _pool_vs_torch(layer_cls, torch_fn, x, pool, stride, rng):
    layer = layer_cls(pool, stride)
    layer.build(x.shape[1:], rng)
    y = layer.forward(x, True)
    dy = rng.normal(size=y.shape)
    dx = layer.backward(dy)
    xt = nchw(x)
    yt = torch_fn(xt, pool, stride)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y, nhwc(yt), rtol=1e-14, atol=1e-15)
    return dx, nhwc(xt.grad)


@pytest.mark.parametrize("pool,stride", [(2, None), (3, None), (3, 2), (2, 1), (2, 3)])
def test_max_pool_routes_to_first_maximum_on_mnist(mnist, pool, stride):
    """Real images: most windows are flat background (all four values tie)."""
    rng = np.random.default_rng(pool)
    x = mnist.x_train[:8].astype(np.float64)
    assert np.mean(x == 0) > 0.5          # many ties
    dx, dxt = _pool_vs_torch(g.MaxPool2D, F.max_pool2d, x, pool, stride, rng)
    np.testing.assert_allclose(dx, dxt, atol=1e-12)
    if stride is None:                    # tiling windows: one nonzero position per window
        nonzero = np.count_nonzero(dx)
        assert nonzero == np.prod(g.MaxPool2D(pool).build(x.shape[1:], rng)) * len(x)


@pytest.mark.parametrize("shape", [(2, 7, 9, 3), (1, 28, 28, 1), (3, 8, 8, 16)])
def test_pooling_matches_torch_on_random_and_tied_inputs(shape):
    rng = np.random.default_rng(shape[1])
    for x in (rng.normal(size=shape), rng.integers(0, 3, shape).astype(np.float64)):
        for pool, stride in ((2, None), (3, 2)):
            dx, dxt = _pool_vs_torch(g.MaxPool2D, F.max_pool2d, x, pool, stride, rng)
            np.testing.assert_allclose(dx, dxt, atol=1e-12)
            dx, dxt = _pool_vs_torch(g.AvgPool2D, F.avg_pool2d, x, pool, stride, rng)
            np.testing.assert_allclose(dx, dxt, atol=1e-12)


@pytest.mark.parametrize("shape", [(16, 5), (4, 6, 5, 3)])
def test_batch_norm_matches_torch(shape):
    rng = np.random.default_rng(len(shape))
    x = rng.normal(2.0, 3.0, size=shape)
    bn = g.BatchNorm(momentum=0.9, eps=1e-5)
    bn.build(shape[1:], rng, np.float64)
    bn.params["gamma"][:] = rng.normal(size=shape[-1])
    bn.params["beta"][:] = rng.normal(size=shape[-1])
    tb = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(
        shape[-1], eps=1e-5, momentum=0.1).double()
    with torch.no_grad():
        tb.weight[:] = torch.tensor(bn.params["gamma"])
        tb.bias[:] = torch.tensor(bn.params["beta"])
    to_t = (lambda a: torch.tensor(a, requires_grad=True)) if len(shape) == 2 else nchw
    from_t = (lambda t: t.detach().numpy()) if len(shape) == 2 else nhwc
    for training in (True, False):
        tb.train(training)
        y = bn.forward(x, training)
        dy = rng.normal(size=y.shape)
        dx = bn.backward(dy)
        xt = to_t(x)
        yt = tb(xt)
        yt.backward(torch.tensor(dy if len(shape) == 2 else dy.transpose(0, 3, 1, 2)))
        np.testing.assert_allclose(y, from_t(yt), atol=1e-10)
        np.testing.assert_allclose(dx, from_t(xt.grad), atol=1e-10)
        np.testing.assert_allclose(bn.grads["gamma"], tb.weight.grad.numpy(), atol=1e-10)
        np.testing.assert_allclose(bn.grads["beta"], tb.bias.grad.numpy(), atol=1e-10)
        np.testing.assert_allclose(bn.state["mean"], tb.running_mean.numpy(), atol=1e-12)
        np.testing.assert_allclose(bn.state["var"], tb.running_var.numpy(), atol=1e-12)
        tb.zero_grad()


def _copy_to_torch(model):
    """The torch modules of a glyphnet conv/pool/relu/dense model (float64, NCHW inside)."""
    nn = torch.nn
    mods = []
    for layer in model.layers:
        if isinstance(layer, g.Conv2D):
            conv = nn.Conv2d(layer.input_shape[2], layer.filters, (layer.kh, layer.kw),
                             stride=layer.stride, padding=torch_padding(layer.padding),
                             bias=layer.bias).double()
            with torch.no_grad():
                conv.weight[:] = torch.tensor(layer.params["W"].transpose(3, 2, 0, 1))
                if layer.bias:
                    conv.bias[:] = torch.tensor(layer.params["b"])
            mods.append(conv)
        elif isinstance(layer, g.MaxPool2D):
            mods.append(nn.MaxPool2d(layer.pool_size, layer.stride))
        elif isinstance(layer, ReLU):
            mods.append(nn.ReLU())
        elif isinstance(layer, LeakyReLU):
            mods.append(nn.LeakyReLU(layer.negative_slope))
        elif isinstance(layer, Dense):
            # glyphnet flattens NHWC; torch flattens NCHW: permute first.
            dense = nn.Linear(layer.params["W"].shape[0], layer.units, bias=layer.bias).double()
            with torch.no_grad():
                dense.weight[:] = torch.tensor(layer.params["W"].T)
                if layer.bias:
                    dense.bias[:] = torch.tensor(layer.params["b"])
            mods += [Permute(), nn.Flatten(), dense]
    return mods


class Permute(torch.nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1) if x.dim() == 4 else x


@pytest.mark.parametrize("arch", ["lenet", "cnn_8_16"])
def test_whole_cnn_gradients_match_torch_on_mnist(mnist, arch):
    """Parameter and input gradients of the cross-entropy loss on 6 real MNIST images (ties
    in max pooling and ReLU's zero region everywhere), float64."""
    if arch == "lenet":
        layers = [g.Conv2D(6, 5), ReLU(), g.MaxPool2D(2), g.Conv2D(8, 5), ReLU(), g.MaxPool2D(2),
                  Dense(16), ReLU(), Dense(10), Softmax()]
    else:
        layers = [g.Conv2D(8, 5, padding="same", bias=False), LeakyReLU(0.1), g.MaxPool2D(2),
                  g.Conv2D(16, 5, padding="same", bias=False), LeakyReLU(0.1), g.MaxPool2D(2),
                  Dense(10, bias=False), Softmax()]
    model = g.Sequential(layers, input_shape=(28, 28, 1), seed=1, dtype=np.float64)
    model.compile("cross_entropy")
    x, labels = mnist.x_train[:6].astype(np.float64), mnist.y_train[:6]
    loss, _, dx = model.loss_and_grads(x, labels)

    net = torch.nn.Sequential(*_copy_to_torch(model))
    xt = nchw(x)
    lt = F.cross_entropy(net(xt), torch.tensor(labels.astype(np.int64)))
    lt.backward()
    assert loss == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(dx, nhwc(xt.grad), rtol=1e-9, atol=1e-14)
    torch_params = [p for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
                    for p in (m.weight, m.bias) if p is not None]
    ours = [(layer, k) for layer in model.layers for k in layer.params]
    assert len(ours) == len(torch_params)
    for (layer, k), p in zip(ours, torch_params):
        grad = p.grad.numpy()
        if isinstance(layer, g.Conv2D) and k == "W":
            grad = grad.transpose(2, 3, 1, 0)
        elif k == "W":
            grad = grad.T
        np.testing.assert_allclose(layer.grads[k], grad, rtol=1e-9, atol=1e-14)
