"""Convolution and pooling layers on NHWC images (batch, height, width, channels).

Like PyTorch and Keras, "convolution" here is cross-correlation:

    y[n, p, q, f] = b[f] + sum_{i, j, c} x_pad[n, p*s + i, q*s + j, c] * W[i, j, c, f]

Kernels are stored (KH, KW, C, F). The fast path (im2col) copies every receptive field into a
row of a matrix ``cols`` of shape (N*OH*OW, KH*KW*C), so the whole layer is one matrix product
``cols @ W.reshape(KH*KW*C, F)`` whose result is already NHWC. The backward pass is two more:
dL/dW = cols^T dL/dy and dL/dcols = dL/dy W^T, and dL/dcols is summed back onto the input
positions it was copied from (col2im). With fewer than 8 input channels both are stored
transposed (one row per kernel offset and channel), which makes the copies long and contiguous.
Under a 2x2 max pooling the rows of ``cols`` can come ordered by pooling window
(``Conv2D.forward_windows``), so the pooling reads four contiguous runs
(``MaxPool2D.forward_windows``). ``toeplitz_matrix``/``conv2d_toeplitz`` compute the same convolution as one
explicit matrix product, for teaching and for cross-checking.
"""
import numpy as np

from .. import checks
from .backend import (Buffers, col2im, col2im_transposed, copyto, offset, on_halves, windows,
                      windows_by_pool)
from .initializers import canonical, initialize
from .layers import Layer, register


# ------------------------------------------------------------------------------ helpers
def _pair(name, value):
    """An int or a [height, width] pair of positive integers -> (height, width)."""
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)
    pair = (value, value) if is_int(value) else value
    if isinstance(pair, (list, tuple)) and len(pair) == 2 and all(is_int(v) and v >= 1
                                                                 for v in pair):
        return int(pair[0]), int(pair[1])
    raise ValueError(f"{name} must be a positive integer or a [height, width] pair of them, "
                     f"got {value!r}")


def _check_padding(padding, stride):
    if padding is None or padding in ("valid", "same"):
        if padding == "same" and stride != 1:
            raise ValueError(f"padding='same' needs stride 1, got stride {stride}; use an "
                             f"integer padding with strided convolutions")
        return
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool) and padding >= 0:
        return
    raise ValueError(f"padding must be 'valid', 'same' or an integer >= 0, got {padding!r}")


def pad_amounts(padding, kh, kw):
    """(top, bottom, left, right) rows/columns of zeros. 'same' pads kernel - 1 in all; an even
    kernel gets the extra row/column at the bottom/right, as in PyTorch and TensorFlow."""
    if padding is None or padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        return (kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2
    return (int(padding),) * 4


def _output_size(h, w, pads, kh, kw, stride_h, stride_w, what):
    """(OH, OW) of a kh x kw window moved by the strides over h x w inputs padded by pads."""
    top, bottom, left, right = pads
    hp, wp = h + top + bottom, w + left + right
    if hp < kh or wp < kw:
        padded = f" ({hp}x{wp} after padding)" if (hp, wp) != (h, w) else ""
        raise ValueError(f"{what} does not fit in inputs of {h}x{w}{padded}")
    return (hp - kh) // stride_h + 1, (wp - kw) // stride_w + 1


def _check_image_shape(input_shape, what):
    if len(input_shape) != 3:
        raise ValueError(f"{what} needs images of shape (height, width, channels), got inputs "
                         f"of shape {tuple(input_shape)}")


def _pad(x, pads, buffers):
    """x with zero borders (top, bottom, left, right), in a reused buffer whose borders stay 0."""
    top, bottom, left, right = pads
    if not any(pads):
        return x
    n, h, w, c = x.shape
    xp = buffers.get("padded", (n, h + top + bottom, w + left + right, c), x.dtype, zeros=True)
    copyto(xp[:, top:top + h, left:left + w], x)
    return xp


def _unpad(dxp, pads):
    top, bottom, left, right = pads
    return dxp[:, top:dxp.shape[1] - bottom, left:dxp.shape[2] - right]


# ------------------------------------------------------------------------------ Conv2D
class ConvLayer(Layer):
    """Base of the convolution layers: kernels slid over NHWC images (argument checks, the
    output size, padding)."""

    def _setup(self, kernel_size, stride, padding, bias, init, sigma):
        self.kh, self.kw = _pair("kernel_size", kernel_size)
        checks.integer("stride", stride)
        _check_padding(padding, stride)
        canonical(init)
        checks.number("sigma", sigma, 0)
        self.kernel_size = kernel_size if isinstance(kernel_size, (int, np.integer)) \
            else [self.kh, self.kw]
        self.stride, self.padding = int(stride), "valid" if padding is None else padding
        self.bias, self.init, self.sigma = bool(bias), init, float(sigma)
        self.pads = pad_amounts(padding, self.kh, self.kw)
        self.buffers = Buffers()

    def _build_output(self, input_shape):
        _check_image_shape(input_shape, f"{type(self).__name__}")
        h, w, c = (int(v) for v in input_shape)
        oh, ow = _output_size(h, w, self.pads, self.kh, self.kw, self.stride, self.stride,
                              f"a {self.kh}x{self.kw} kernel")
        self.input_shape = (h, w, c)
        return oh, ow, c


@register("conv2d")
class Conv2D(ConvLayer):
    """2D convolution: ``filters`` kernels of ``kernel_size`` over all input channels.

    y = im2col(x) W + b  with cols = im2col(x) of shape (N*OH*OW, KH*KW*C);
    dL/dW = cols^T dL/dy,   dL/db = sum of dL/dy over batch and positions,
    dL/dx = col2im(dL/dy W^T): each receptive field's gradient added back where it was read.
    padding: 'valid' (None, the default: no padding), 'same' (output size = input size,
    stride 1) or a number of zero rows/columns on every side.
    """

    EVAL_CHUNK = 256      # images per im2col in evaluation

    def __init__(self, filters, kernel_size, stride=1, padding=None, bias=True,
                 init="he_normal", sigma=0.01):
        super().__init__()
        self.filters = checks.integer("filters", filters)
        self._setup(kernel_size, stride, padding, bias, init, sigma)

    def build(self, input_shape, rng, dtype=np.float32):
        oh, ow, c = self._build_output(input_shape)
        kh, kw, f = self.kh, self.kw, self.filters
        self.params["W"] = initialize(self.init, (kh, kw, c, f), kh * kw * c, kh * kw * f, rng,
                                      self.sigma, dtype)
        if self.bias:
            self.params["b"] = np.zeros(f, dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.output_shape = (oh, ow, f)
        return self.output_shape

    def _is_pointwise(self):
        return self.kh == self.kw == self.stride == 1 and not any(self.pads)

    def forward(self, x, training=False):
        return self._forward(x, training, pooled=False)

    def forward_windows(self, x, training=False):
        """forward(x) arranged by the 2x2 windows of the stride-2 max pooling above it (see
        Sequential.forward): y_w[n, di, dj, p, q] = y[n, 2p + di, 2q + dj], of shape
        (N, 2, 2, OH//2, OW//2, F). Each window's four values lie in four long contiguous
        runs, so the pooling is three element-wise maxima; an odd last row or column of
        outputs, which the pooling drops, is not computed. backward takes dL/dy_w."""
        return self._forward(x, training, pooled=True)

    def _forward(self, x, training, pooled):
        if not training and len(x) > self.EVAL_CHUNK:
            # Evaluation needs no cols for a backward pass: bound their memory.
            return np.concatenate([self._forward(x[i:i + self.EVAL_CHUNK], False, pooled)
                                   for i in range(0, len(x), self.EVAL_CHUNK)])
        n = len(x)
        oh, ow, f = self.output_shape
        W = self.params["W"].reshape(-1, f)
        out_shape = (n, 2, 2, oh // 2, ow // 2, f) if pooled else (n, oh, ow, f)
        if self._is_pointwise() and not pooled:
            cols = x.reshape(n * oh * ow, -1)
        else:
            xp = _pad(x, self.pads, self.buffers)
            win = (windows_by_pool if pooled else windows)(xp, self.kh, self.kw, self.stride)
            rows, k, c = int(np.prod(out_shape[:-1])), W.shape[0], x.shape[-1]
            # With a bias, cols gets a last column of ones and W a last row b: the bias is the
            # weight of a constant input, so one product gives y and one gives dW and db.
            if c >= 8:
                cols = self.buffers.get("cols", (rows, k + self.bias), x.dtype)
                copyto(cols[:, :k].reshape(win.shape), win)
            else:
                # Few channels: build cols^T, one row per (kernel offset, channel); each row is
                # a shifted copy of the images, copied in long runs.
                cols = self.buffers.get("cols", (k + self.bias, rows), x.dtype).T
                at = win.ndim - 3               # the kernel axes (KH, KW, C) go first
                copyto(cols.T[:k].reshape(win.shape[at:] + win.shape[:at]),
                       win.transpose(*range(at, win.ndim), *range(at)), axis=3)
            if self.bias:
                cols[:, k] = 1
                W = np.concatenate([W, self.params["b"][None]])
        y = cols @ W
        if self.bias and self._is_pointwise() and not pooled:
            y += self.params["b"]
        self.cols, self.x_shape = cols, x.shape
        return y.reshape(out_shape)

    def backward_params(self, dy):
        """Only dL/dW and dL/db (training skips dL/dx of a first layer)."""
        f = dy.shape[-1]
        dy2 = dy.reshape(-1, f)
        if self._is_pointwise() and dy.ndim == 4:
            np.matmul(self.cols.T, dy2, out=self.grads["W"].reshape(-1, f))
            if self.bias:
                np.sum(dy2, axis=0, out=self.grads["b"])
            return
        # cols^T dL/dy; for row-major cols OpenBLAS runs it faster as (dL/dy^T cols)^T.
        grad = (dy2.T @ self.cols).T if self.cols.flags.c_contiguous else self.cols.T @ dy2
        self.grads["W"].reshape(-1, f)[...] = grad[:self.grads["W"].size // f]
        if self.bias:
            self.grads["b"][...] = grad[-1]

    def backward(self, dy):
        """dL/dx from dL/dy, or from dL/dy_w after forward_windows; fills dL/dW, dL/db."""
        self.backward_params(dy)
        return self.backward_input(dy)

    def backward_input(self, dy):
        """Only dL/dx (a frozen layer above trainable ones)."""
        pooled = dy.ndim == 6
        n, f = len(dy), dy.shape[-1]
        dy2 = dy.reshape(-1, f)
        W = self.params["W"]
        if self._is_pointwise() and not pooled:
            return (dy2 @ W.reshape(-1, f).T).reshape(self.x_shape)
        top, bottom, left, right = self.pads
        _, h, w, c = self.x_shape
        dxp = np.zeros((n, h + top + bottom, w + left + right, c), dy.dtype)
        s, field = self.stride, (self.kh, self.kw, c)
        if c >= 8:
            # One product for all of dL/dcols (few large BLAS calls stay fast when the cores
            # are shared), then col2im adds it back one kernel row at a time.
            dcols = self.buffers.get("dcols", (len(dy2), W[..., 0].size), dy.dtype)
            np.matmul(dy2, W.reshape(-1, f).T, out=dcols)
            dcols, add = dcols.reshape(dy.shape[:-1] + field), col2im
            part = lambda di, dj: dcols[:, di, dj]                              # noqa: E731
        else:
            # Few channels: dL/dcols transposed, so each (offset, channel) is one contiguous row.
            dcols = (W.reshape(-1, f) @ dy2.T).reshape(field + dy.shape[:-1])
            add, part = col2im_transposed, lambda di, dj: dcols[:, :, :, :, di, dj]  # noqa: E731
        if not pooled:
            add(dcols, dxp, s)
            return _unpad(dxp, self.pads)
        for di, dj in _WINDOW:
            # the outputs (2p + di, 2q + dj): those of a convolution of stride 2s from (di s, dj s)
            add(part(di, dj), dxp[:, di * s:, dj * s:], 2 * s)
        return _unpad(dxp, self.pads)


_WINDOW = ((0, 0), (0, 1), (1, 0), (1, 1))     # (row, column) in a 2x2 pooling window


def unwindow(yw, output_shape):
    """The (N, OH, OW, F) array of Conv2D.forward_windows' yw: y[n, 2p + di, 2q + dj] =
    yw[n, di, dj, p, q], and 0 in an odd last row or column."""
    n, f = len(yw), yw.shape[-1]
    y = np.zeros((n,) + tuple(output_shape), yw.dtype)
    for di, dj in _WINDOW:
        y[:, di:2 * yw.shape[3]:2, dj:2 * yw.shape[4]:2] = yw[:, di, dj]
    return y


# ------------------------------------------------------------------------------ depthwise
def _depthwise(xp, W, stride, oh, ow):
    """y[n, p, q, c] = sum_{i, j} xp[n, p*s + i, q*s + j, c] W[i, j, c]."""
    kh, kw = W.shape[:2]
    y = xp[offset(0, 0, oh, ow, stride)] * W[0, 0]
    for i in range(kh):
        for j in range(kw):
            if i or j:
                y += xp[offset(i, j, oh, ow, stride)] * W[i, j]
    return y


def _depthwise_grad_w(xp, dy, stride, dW):
    """dW[i, j, c] = sum over batch and positions of xp[offset (i, j)] * dy, for _depthwise."""
    oh, ow = dy.shape[1:3]
    for i in range(dW.shape[0]):
        for j in range(dW.shape[1]):
            np.einsum("nhwc,nhwc->c", xp[offset(i, j, oh, ow, stride)], dy, out=dW[i, j])


def _depthwise_grad_x(W, dy, stride, padded_shape):
    """dL/dxp for _depthwise: each output's gradient times W[i, j] added where it read."""
    oh, ow = dy.shape[1:3]
    dxp = np.zeros(padded_shape, dy.dtype)
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            dxp[offset(i, j, oh, ow, stride)] += dy * W[i, j]
    return dxp


@register("depthwise_conv2d")
class DepthwiseConv2D(ConvLayer):
    """Per-channel 2D convolution: channel c of the output only sees channel c of the input,
    through its own kernel W[:, :, c] (kernels stored (KH, KW, C)).

    y[n, p, q, c] = b[c] + sum_{i, j} x_pad[n, p*s + i, q*s + j, c] W[i, j, c];
    dL/dW[i, j, c] = sum_{n, p, q} x_pad[n, p*s + i, q*s + j, c] dL/dy[n, p, q, c];
    dL/dx_pad[n, p*s + i, q*s + j, c] += W[i, j, c] dL/dy[n, p, q, c].
    """

    def __init__(self, kernel_size, stride=1, padding=None, bias=True, init="he_normal",
                 sigma=0.01):
        super().__init__()
        self._setup(kernel_size, stride, padding, bias, init, sigma)

    def build(self, input_shape, rng, dtype=np.float32):
        oh, ow, c = self._build_output(input_shape)
        k = self.kh * self.kw
        self.params["W"] = initialize(self.init, (self.kh, self.kw, c), k, k, rng, self.sigma,
                                      dtype)
        if self.bias:
            self.params["b"] = np.zeros(c, dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.output_shape = (oh, ow, c)
        return self.output_shape

    def forward(self, x, training=False):
        oh, ow, _ = self.output_shape
        self.xp = _pad(x, self.pads, self.buffers)
        y = _depthwise(self.xp, self.params["W"], self.stride, oh, ow)
        if self.bias:
            y += self.params["b"]
        return y

    def backward_params(self, dy):
        if self.bias:
            np.sum(dy.reshape(-1, dy.shape[-1]), axis=0, out=self.grads["b"])
        _depthwise_grad_w(self.xp, dy, self.stride, self.grads["W"])

    def backward(self, dy):
        self.backward_params(dy)
        return self.backward_input(dy)

    def backward_input(self, dy):
        """Only dL/dx (a frozen layer above trainable ones)."""
        dxp = _depthwise_grad_x(self.params["W"], dy, self.stride, self.xp.shape)
        return _unpad(dxp, self.pads)


@register("separable_conv2d")
class SeparableConv2D(ConvLayer):
    """Depthwise-separable convolution: a depthwise convolution (kernel "W_depthwise",
    (KH, KW, C)) followed by a 1x1 pointwise convolution mixing the channels (kernel "W",
    (C, F)) and the bias.

    d = depthwise(x);  y = d W + b;  dL/dW = d^T dL/dy;  dL/dd = dL/dy W^T, then the depthwise
    backward (see DepthwiseConv2D) gives dL/dW_depthwise and dL/dx.
    """

    def __init__(self, filters, kernel_size, stride=1, padding=None, bias=True,
                 init="he_normal", sigma=0.01):
        super().__init__()
        self.filters = checks.integer("filters", filters)
        self._setup(kernel_size, stride, padding, bias, init, sigma)

    def build(self, input_shape, rng, dtype=np.float32):
        oh, ow, c = self._build_output(input_shape)
        k, f = self.kh * self.kw, self.filters
        self.params["W_depthwise"] = initialize(self.init, (self.kh, self.kw, c), k, k, rng,
                                                self.sigma, dtype)
        self.params["W"] = initialize(self.init, (c, f), c, f, rng, self.sigma, dtype)
        if self.bias:
            self.params["b"] = np.zeros(f, dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.output_shape = (oh, ow, f)
        return self.output_shape

    def forward(self, x, training=False):
        oh, ow, f = self.output_shape
        self.xp = _pad(x, self.pads, self.buffers)
        d = _depthwise(self.xp, self.params["W_depthwise"], self.stride, oh, ow)
        self.d = d.reshape(-1, d.shape[-1])
        y = self.d @ self.params["W"]
        if self.bias:
            y += self.params["b"]
        return y.reshape(len(x), oh, ow, f)

    def backward_params(self, dy):
        dy2 = dy.reshape(-1, dy.shape[-1])
        np.matmul(self.d.T, dy2, out=self.grads["W"])
        if self.bias:
            np.sum(dy2, axis=0, out=self.grads["b"])
        self.dd = (dy2 @ self.params["W"].T).reshape(dy.shape[:3] + (-1,))
        _depthwise_grad_w(self.xp, self.dd, self.stride, self.grads["W_depthwise"])

    def backward(self, dy):
        self.backward_params(dy)
        dxp = _depthwise_grad_x(self.params["W_depthwise"], self.dd, self.stride, self.xp.shape)
        return _unpad(dxp, self.pads)


# ------------------------------------------------------------------------------ pooling
class Pool2D(Layer):
    """Pooling windows of ``pool_size`` moved by ``stride`` (default: pool_size, so the windows
    tile the image); rows/columns left over at the bottom/right are dropped, as in PyTorch."""

    def __init__(self, pool_size=2, stride=None):
        super().__init__()
        self.ph, self.pw = _pair("pool_size", pool_size)
        self.sh, self.sw = (self.ph, self.pw) if stride is None else _pair("stride", stride)
        self.pool_size, self.stride = pool_size, pool_size if stride is None else stride

    def build(self, input_shape, rng, dtype=np.float32):
        _check_image_shape(input_shape, type(self).__name__)
        h, w, c = (int(v) for v in input_shape)
        oh, ow = _output_size(h, w, (0, 0, 0, 0), self.ph, self.pw, self.sh, self.sw,
                              f"a {self.ph}x{self.pw} pooling window")
        self.input_shape, self.output_shape = (h, w, c), (oh, ow, c)
        return self.output_shape

    def _offsets(self):
        """(k, index) for each position k of the window, in row-major order."""
        oh, ow, _ = self.output_shape
        for i in range(self.ph):
            for j in range(self.pw):
                yield i * self.pw + j, (slice(None),
                                        slice(i, i + self.sh * (oh - 1) + 1, self.sh),
                                        slice(j, j + self.sw * (ow - 1) + 1, self.sw))

    @property
    def _tiles(self):
        """Windows do not overlap, so each input position belongs to at most one window."""
        return self.sh >= self.ph and self.sw >= self.pw


@register("max_pool2d")
class MaxPool2D(Pool2D):
    """y = the maximum of each window. dL/dx = dL/dy at the window's first maximum (in
    row-major order, as PyTorch does) and 0 elsewhere: with ties (flat background) exactly one
    position receives the gradient."""

    def _halving(self):
        return self.ph == self.pw == self.sh == self.sw == 2

    def forward(self, x, training=False):
        self.x_shape = x.shape
        if self._halving():
            return self._forward_2x2(x)
        offsets = list(self._offsets())
        y = x[offsets[0][1]].copy()
        for _, idx in offsets[1:]:
            np.maximum(y, x[idx], out=y)
        # Going backwards through the window, the last match written is the first maximum.
        arg = np.zeros(y.shape, np.uint8)
        for k, idx in reversed(offsets[1:]):
            arg = np.where(x[idx] == y, np.uint8(k), arg)
        arg[x[offsets[0][1]] == y] = 0
        self.arg = arg
        return y

    def backward(self, dy):
        if self._halving():
            return self._backward_2x2(dy)
        dx = np.zeros(self.x_shape, dy.dtype)
        for k, idx in self._offsets():
            if self._tiles:
                dx[idx] = np.where(self.arg == k, dy, 0)
            else:
                dx[idx] += np.where(self.arg == k, dy, 0)
        return dx

    # 2x2 windows, stride 2: the image seen as (N, 2, 2, OH, OW, C), [n, di, dj, p, q] the
    # value at (2p + di, 2q + dj); the maximum is taken over the two columns of each window's
    # rows and then over the two rows; ties keep the first. Both passes run on the two halves
    # of the batch at once (backend.on_halves).
    def _forward_2x2(self, x):
        n = len(x)
        oh, ow, c = self.output_shape
        x6 = x[:, :2 * oh, :2 * ow].reshape(n, oh, 2, ow, 2, c)
        # the masks in the image's order, so that every pass runs in memory order
        self.right = np.empty((n, oh, 2, ow, c), bool).transpose(0, 2, 1, 3, 4)
        self.bottom = np.empty((n, oh, ow, c), bool)
        y = np.empty((n, oh, ow, c), x.dtype)
        on_halves(_max_2x2, x6.transpose(0, 2, 4, 1, 3, 5), self.right, self.bottom, y)
        return y

    def _backward_2x2(self, dy):
        n, h, w, c = self.x_shape
        oh, ow, _ = self.output_shape
        dx6 = np.empty((n, oh, 2, ow, 2, c), dy.dtype)
        on_halves(_unmax_2x2, dy, self.right, self.bottom, dx6.transpose(0, 2, 4, 1, 3, 5))
        if (h, w) == (2 * oh, 2 * ow):
            return dx6.reshape(self.x_shape)
        dx = np.zeros(self.x_shape, dy.dtype)      # odd sizes: the last row/column gets 0
        dx[:, :2 * oh, :2 * ow] = dx6.reshape(n, 2 * oh, 2 * ow, c)
        return dx

    def forward_windows(self, xw, training=False):
        """The pooling of inputs given window by window, xw[n, di, dj, p, q] = x[n, 2p + di,
        2q + dj] (Conv2D.forward_windows): the same outputs as forward(x), from contiguous
        runs. backward_windows gives dL/dxw."""
        n, _, _, oh, ow, c = xw.shape
        self.right = np.empty((n, 2, oh, ow, c), bool)
        self.bottom = np.empty((n, oh, ow, c), bool)
        y = np.empty((n, oh, ow, c), xw.dtype)
        on_halves(_max_2x2, xw, self.right, self.bottom, y)
        return y

    def backward_windows(self, dy):
        """dL/dxw for forward_windows: dL/dy at each window's first maximum, 0 elsewhere."""
        n, oh, ow, c = dy.shape
        dxw = np.empty((n, 2, 2, oh, ow, c), dy.dtype)
        on_halves(_unmax_2x2, dy, self.right, self.bottom, dxw)
        return dxw


def _max_2x2(w, right, bottom, y):
    """y = the maximum of each window of w (N, 2, 2, OH, OW, C); right[:, di]: the window's
    row di has its maximum in the right column; bottom: the maximum is in the lower row."""
    left, right_value = w[:, :, 0], w[:, :, 1]
    np.greater(right_value, left, out=right)
    row_max = np.maximum(left, right_value)                         # (N, 2, OH, OW, C)
    np.greater(row_max[:, 1], row_max[:, 0], out=bottom)
    np.maximum(row_max[:, 0], row_max[:, 1], out=y)


def _unmax_2x2(dy, right, bottom, dw):
    """dL/dy sent to the first maximum of each 2x2 window, zero to the other three."""
    lower = dy * bottom
    for row, d in ((0, dy - lower), (1, lower)):
        np.multiply(d, right[:, row], out=dw[:, row, 1])
        np.subtract(d, dw[:, row, 1], out=dw[:, row, 0])


@register("avg_pool2d")
class AvgPool2D(Pool2D):
    """y = the mean of each window;  dL/dx = dL/dy / (window size) at every position of it."""

    def forward(self, x, training=False):
        offsets = iter(self._offsets())
        y = x[next(offsets)[1]].copy()
        for _, idx in offsets:
            y += x[idx]
        y *= 1.0 / (self.ph * self.pw)
        self.x_shape = x.shape
        return y

    def backward(self, dy):
        dx = np.zeros(self.x_shape, dy.dtype)
        share = dy * (1.0 / (self.ph * self.pw))
        for _, idx in self._offsets():
            dx[idx] += share
        return dx


# ------------------------------------------------------------------------------ Toeplitz
def toeplitz_matrix(kernel, input_size, stride=1, padding=None):
    """The matrix T of a single-channel 2D convolution (cross-correlation) of an HxW image by
    ``kernel`` (KH, KW): y.ravel() = T @ x.ravel(), T of shape (OH*OW, H*W).

    T is doubly block Toeplitz: an OH x H grid of OW x W blocks, where block (p, r) is the
    Toeplitz matrix of kernel row i = r - p*stride + top (zero if no such row), shifted by the
    stride. Zero padding needs no columns: a padded position contributes nothing.
    """
    kernel = np.asarray(kernel)
    kh, kw = kernel.shape
    h, w = input_size
    _check_padding(padding, stride)
    top, bottom, left, right = pads = pad_amounts(padding, kh, kw)
    oh, ow = _output_size(h, w, pads, kh, kw, stride, stride, f"a {kh}x{kw} kernel")
    T = np.zeros((oh, ow, h, w), kernel.dtype)
    for p in range(oh):
        for i in range(kh):
            r = p * stride + i - top          # input row read by kernel row i
            if not 0 <= r < h:
                continue
            for q in range(ow):
                for j in range(kw):
                    col = q * stride + j - left
                    if 0 <= col < w:
                        T[p, q, r, col] = kernel[i, j]
    return T.reshape(oh * ow, h * w)


def conv2d_toeplitz(x, W, b=None, stride=1, padding=None):
    """Reference convolution of NHWC images x by kernels W (KH, KW, C, F) through Toeplitz
    matrices: y[n, :, :, f] = sum_c T(W[:, :, c, f]) x[n, :, :, c] + b[f]. Slow; for tests and
    teaching."""
    n, h, w, c = x.shape
    kh, kw, _, f = W.shape
    oh, ow = _output_size(h, w, pad_amounts(padding, kh, kw), kh, kw, stride, stride,
                          f"a {kh}x{kw} kernel")
    y = np.zeros((n, oh * ow, f), np.result_type(x, W))
    for fi in range(f):
        for ci in range(c):
            T = toeplitz_matrix(W[:, :, ci, fi], (h, w), stride, padding)
            y[:, :, fi] += x[:, :, :, ci].reshape(n, h * w) @ T.T
    y = y.reshape(n, oh, ow, f)
    return y if b is None else y + b
