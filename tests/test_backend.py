"""The CPU backend: its tricks give exactly what the plain computation gives, and the layers
that split their work over two threads give bit-identical outputs and gradients either way
(on real MNIST images, whose flat background makes max-pool windows tie)."""
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import glyphnet as g
from glyphnet.nn import backend


@pytest.fixture
def split(monkeypatch):
    """Split everything that can be split, however small and however busy the machine."""
    monkeypatch.setattr(backend, "cores_busy", lambda: False)
    monkeypatch.setattr(backend, "SPLIT_SIZE", 8)
    monkeypatch.setattr(backend, "_blas_threads", lambda: 1)


def test_on_halves_runs_one_half_on_the_helper_thread(split):
    x = np.arange(40.0).reshape(10, 4)
    y = np.empty_like(x)
    seen = []

    def double(a, out):
        seen.append((threading.get_ident(), len(a)))
        np.multiply(a, 2, out=out)

    backend.on_halves(double, x, y)
    np.testing.assert_array_equal(y, 2 * x)
    assert sorted(n for _, n in seen) == [5, 5]
    assert len({ident for ident, _ in seen}) == 2


def test_on_halves_stays_on_one_thread_when_the_cores_are_busy(monkeypatch):
    monkeypatch.setattr(backend, "SPLIT_SIZE", 8)
    monkeypatch.setattr(backend, "cores_busy", lambda: True)
    seen = []
    backend.on_halves(lambda a: seen.append(len(a)), np.zeros((10, 4)))
    assert seen == [10]


def test_on_halves_stays_on_one_thread_while_blas_has_threads_of_its_own(split, monkeypatch):
    monkeypatch.setattr(backend, "_blas_threads", lambda: 2)
    seen = []
    backend.on_halves(lambda a: seen.append(len(a)), np.zeros((10, 4)))
    assert seen == [10]


def test_on_halves_splits_each_array_along_its_own_axis(split):
    a = np.arange(2 * 3 * 6.0).reshape(2, 3, 6)        # batch along axis 2
    b = np.zeros((6, 2, 3))                             # batch along axis 0
    backend.on_halves(lambda a, b: np.copyto(b, a.transpose(2, 0, 1)), a, b, axis=(2, 0))
    np.testing.assert_array_equal(b, a.transpose(2, 0, 1))


def test_helper_thread_errors_reach_the_caller(split):
    def fail(a):
        if a[0] == 0:
            raise RuntimeError("first half")

    with pytest.raises(RuntimeError, match="first half"):
        backend.on_halves(fail, np.arange(20))


def _col2im_loops(dcols, dxp, stride):
    n, oh, ow, kh, kw, c = dcols.shape
    for p in range(oh):
        for q in range(ow):
            dxp[:, p * stride:p * stride + kh, q * stride:q * stride + kw] += dcols[:, p, q]


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("oh,kh", [(4, 3), (2, 3)])     # more output rows than kernel rows, fewer
def test_col2im_both_layouts_match_plain_loops(split, rng, stride, oh, kh):
    n, ow, kw, c = 5, 3, 2, 3
    dcols = rng.standard_normal((n, oh, ow, kh, kw, c))
    shape = (n, (oh - 1) * stride + kh, (ow - 1) * stride + kw, c)
    expected = np.zeros(shape)
    _col2im_loops(dcols, expected, stride)
    got = np.zeros(shape)
    backend.col2im(dcols, got, stride)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    got_t = np.zeros(shape)
    backend.col2im_transposed(np.ascontiguousarray(dcols.transpose(3, 4, 5, 0, 1, 2)), got_t,
                              stride)
    np.testing.assert_allclose(got_t, expected, rtol=1e-12, atol=1e-12)


def test_windows_are_the_receptive_fields(rng):
    xp = rng.standard_normal((2, 7, 6, 3))
    win = backend.windows(xp, 3, 2, 2)
    assert win.shape == (2, 3, 3, 3, 2, 3) and not win.flags.writeable
    for p in range(3):
        for q in range(3):
            np.testing.assert_array_equal(win[:, p, q], xp[:, 2 * p:2 * p + 3, 2 * q:2 * q + 2])


def test_flush_subnormal_zeroes_only_tiny_values():
    a = np.array([1e-38, -1e-31, 1e-29, -0.5, 0.0], np.float32)
    backend.flush_subnormal(a, np.empty_like(a))
    np.testing.assert_array_equal(a, np.array([0, 0, 1e-29, -0.5, 0], np.float32))


def _blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_blas_threads_depend_on_the_batch_size_not_the_load(monkeypatch):
    before = _blas_threads()
    for busy in (False, True):
        monkeypatch.setattr(backend, "cores_busy", lambda: busy)
        with backend.blas_threads_for(8):
            assert set(_blas_threads()) == {1}
        with backend.blas_threads_for(128):
            assert _blas_threads() == before
    assert _blas_threads() == before


def test_buffers_reuse_their_memory():
    buffers = backend.Buffers()
    a = buffers.get("x", (4, 5), np.float32)
    b = buffers.get("x", (2, 5), np.float32)           # the front of the earlier one
    assert np.shares_memory(a, b) and b.shape == (2, 5)
    z = buffers.get("z", (3, 3), np.float32, zeros=True)
    assert not z.any() and buffers.get("z", (3, 3), np.float32, zeros=True) is z
    assert buffers.get("x", (4, 5), np.float64).dtype == np.float64


# ------------------------------------------------------------------------------ layers
def _run(layers, x, dy_seed=0):
    """Outputs, dL/dx and every parameter gradient of a stack of layers in training."""
    out = x
    for layer in layers:
        out = layer.forward(out, True)
    dy = np.random.default_rng(dy_seed).standard_normal(out.shape).astype(x.dtype)
    d = dy
    for layer in reversed(layers):
        d = layer.backward(d)
    grads = [gr.copy() for layer in layers for gr in layer.grads.values()]
    return out, d, grads


def _stack(kind, dtype):
    if kind == "lenet":
        layers = [g.Conv2D(8, 5), g.ReLU(), g.MaxPool2D(2), g.BatchNorm(), g.Conv2D(12, 3),
                  g.ReLU(), g.MaxPool2D(2), g.Dense(10)]
    else:       # padding and bias, 'same' and odd pooled sizes
        layers = [g.Conv2D(4, 3, padding="same"), g.MaxPool2D(2), g.BatchNorm(), g.ReLU(),
                  g.Conv2D(9, 2, stride=2, bias=False), g.MaxPool2D(2), g.ReLU()]
    model = g.Sequential(layers, input_shape=(28, 28, 1), seed=3)
    return model.astype(dtype).layers


@pytest.mark.parametrize("kind", ["lenet", "padded"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_split_over_threads_match_the_plain_path_on_mnist(mnist, monkeypatch, kind,
                                                                 dtype):
    x = mnist.x_train[:16].astype(dtype)
    monkeypatch.setattr(backend, "cores_busy", lambda: False)
    monkeypatch.setattr(backend, "SPLIT_SIZE", 10**12)
    plain = _run(_stack(kind, dtype), x)
    monkeypatch.setattr(backend, "SPLIT_SIZE", 8)
    split = _run(_stack(kind, dtype), x)
    for a, b in zip(plain[:2] + tuple(plain[2]), split[:2] + tuple(split[2])):
        np.testing.assert_array_equal(a, b)


def test_split_max_pool_sends_tied_windows_gradient_to_the_first_position(mnist, split):
    x = mnist.x_train[:10].astype(np.float64)       # mostly flat background: 4-way ties
    pool = g.MaxPool2D(2)
    pool.build((28, 28, 1), None)
    y = pool.forward(x, True)
    dx = pool.backward(np.ones_like(y))
    windows = dx.reshape(10, 14, 2, 14, 2).transpose(0, 1, 3, 2, 4).reshape(10, 14, 14, 4)
    assert (windows.sum(axis=-1) == 1).all()         # one position per window
    tied = (x.reshape(10, 14, 2, 14, 2) == 0).all(axis=(2, 4))
    assert tied.mean() > 0.5 and (windows[tied][:, 0] == 1).all()


def test_cores_busy_compares_the_load_average_with_the_cores(monkeypatch):
    monkeypatch.setattr(backend, "CORES", 2)
    for load, busy in ((1.9, False), (2.4, False), (2.6, True), (9.0, True)):
        monkeypatch.setattr(backend.os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        monkeypatch.setattr(backend, "_load", [-1.0, False])     # forget the last reading
        assert backend.cores_busy() is busy


def test_the_same_seed_gives_the_same_weights_on_a_busy_or_an_idle_machine(monkeypatch):
    from glyphnet import Dense, ReLU, Sequential, Softmax
    from glyphnet.data import load_mnist
    ds = load_mnist()
    x, y = ds.x_train[:2048], ds.y_train[:2048]
    weights = []
    for busy in (False, True):
        monkeypatch.setattr(backend, "cores_busy", lambda: busy)
        model = Sequential([Dense(256), ReLU(), Dense(256), ReLU(), Dense(10), Softmax()],
                           input_shape=(28, 28, 1))
        model.fit(x, y, epochs=1, batch_size=128, seed=0)
        weights.append([p.copy() for _, _, p, _ in model.parameters()])
    assert all(np.array_equal(a, b) for a, b in zip(*weights))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zeros_like_is_a_read_only_zero_view(dtype):
    small = backend.zeros_like(np.ones((3, 4), dtype))
    big = backend.zeros_like(np.ones((700, 300), dtype))      # grows the shared buffer
    for z, shape in ((small, (3, 4)), (big, (700, 300))):
        assert z.shape == shape and z.dtype == dtype and not z.any()
        with pytest.raises(ValueError):
            z[0, 0] = 1


def test_pack_lays_copies_end_to_end_in_one_buffer(rng):
    arrays = [rng.standard_normal((3, 4)), rng.standard_normal(5), rng.standard_normal((2, 1, 2))]
    packed = backend.pack(arrays)
    for a, p in zip(arrays, packed):
        assert p.shape == a.shape and p.flags.c_contiguous and np.array_equal(p, a)
        assert p.base is packed[0].base and not np.shares_memory(p, a)
    (group,) = backend.flat_groups(packed)
    assert group[0].shape == (21,)
    np.testing.assert_array_equal(group[0], np.concatenate([a.ravel() for a in arrays]))
    group[0][...] = 0                           # the flat view writes through to every array
    assert not any(p.any() for p in packed)


def test_flat_groups_join_only_positions_adjacent_in_every_list(rng):
    a = backend.packed_like([np.ones(3), np.ones(4), np.ones(2), np.ones(6)])
    b = backend.packed_like([np.ones(3), np.ones(4), np.ones(2), np.ones(6)])
    b[2] = np.zeros(2)                          # replaced: no longer inside b's buffer
    loose = [np.zeros(3), np.zeros(4), np.zeros(2), np.zeros(6)]
    groups = backend.flat_groups(a, b)
    assert [tuple(x.size for x in g) for g in groups] == [(7, 7), (2, 2), (6, 6)]
    assert groups[1][1] is b[2] and groups[2][0] is a[3]
    assert len(backend.flat_groups(a, loose)) == 4            # separate arrays: one group each
    strided = backend.packed_like([np.ones((4, 4)), np.ones(3)])
    strided[0] = strided[0][:, ::2]                          # a view, not C-contiguous
    assert [g[0].shape for g in backend.flat_groups(strided)] == [(4, 2), (3,)]
    mixed = backend.packed_like([np.ones(3, np.float32), np.ones(3)])
    assert mixed[0].base is None and len(backend.flat_groups(mixed)) == 2
