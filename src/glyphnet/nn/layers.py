"""Layers: each forward keeps what its backward needs; each backward returns dL/dx and fills
``self.grads`` with dL/dparam for every entry of ``self.params``.

Arrays are batch-first. Images are NHWC: (batch, height, width, channels).
"""
import inspect

import numpy as np

from .. import checks
from ..registry import Registry
from .backend import on_halves, zeros_like
from .initializers import canonical, initialize

LAYERS = Registry("layer type")
register = LAYERS.register   # class decorator: the layer's name in configs and saved models


class Layer:
    """Base class. Subclasses set ``params`` (trainable) and ``state`` (saved, not trained) in
    ``build`` and implement ``forward``/``backward``. ``samplewise``: the forward treats the
    samples of a batch independently (nn/parallel.py may then cut a batch into slices)."""

    kind = "layer"
    samplewise = True

    def __init__(self):
        self.params, self.grads, self.state = {}, {}, {}
        self.input_shape = self.output_shape = None

    def build(self, input_shape, rng, dtype=np.float32):
        """Create parameters for inputs of ``input_shape`` (without the batch axis)."""
        self.input_shape = self.output_shape = tuple(input_shape)
        return self.output_shape

    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def get_config(self):
        """Constructor arguments, enough to rebuild this layer."""
        sig = inspect.signature(type(self).__init__)
        return {name: getattr(self, name) for name in sig.parameters if name != "self"}

    def astype(self, dtype):
        for d in (self.params, self.state):
            for k in d:
                d[k] = d[k].astype(dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@register("dense")
class Dense(Layer):
    """y = x W + b, with W of shape (inputs, units). Inputs with more than two axes are
    flattened per sample.

    dL/dW = x^T dL/dy,  dL/db = sum over the batch of dL/dy,  dL/dx = dL/dy W^T.
    """

    def __init__(self, units, bias=True, init="he_normal", sigma=0.01):
        super().__init__()
        self.units = checks.integer("units", units)
        canonical(init)
        self.sigma = checks.number("sigma", sigma, 0)
        self.bias, self.init = bool(bias), init

    def build(self, input_shape, rng, dtype=np.float32):
        self.input_shape = tuple(input_shape)
        fan_in = int(np.prod(input_shape))
        self.params["W"] = initialize(self.init, (fan_in, self.units), fan_in, self.units, rng,
                                      self.sigma, dtype)
        if self.bias:
            self.params["b"] = np.zeros(self.units, dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.output_shape = (self.units,)
        return self.output_shape

    def forward(self, x, training=False):
        x = x.reshape(len(x), -1)
        self.x = x
        y = x @ self.params["W"]
        if self.bias:
            y += self.params["b"]
        return y

    def backward(self, dy):
        self.backward_params(dy)
        return self.backward_input(dy)

    def backward_input(self, dy):
        """Only dL/dx: what a frozen layer above trainable ones passes down."""
        dx = dy @ self.params["W"].T
        return dx.reshape((len(dy),) + self.input_shape)

    def backward_params(self, dy):
        """Only dL/dW and dL/db: what training needs from a first layer, whose dL/dx is
        never used."""
        np.matmul(self.x.T, dy, out=self.grads["W"])
        if self.bias:
            np.sum(dy, axis=0, out=self.grads["b"])


@register("flatten")
class Flatten(Layer):
    """(N, ...) -> (N, prod(...)); the backward reshapes the gradient back."""

    def build(self, input_shape, rng, dtype=np.float32):
        self.input_shape = tuple(input_shape)
        self.output_shape = (int(np.prod(input_shape)),)
        return self.output_shape

    def forward(self, x, training=False):
        return x.reshape(len(x), -1)

    def backward(self, dy):
        return dy.reshape((len(dy),) + self.input_shape)


class Activation(Layer):
    """An element-wise (or, for softmax, row-wise) function with no parameters."""


@register("sigmoid")
class Sigmoid(Activation):
    """y = 1 / (1 + exp(-slope x));   dy/dx = slope y (1 - y)."""

    def __init__(self, slope=1.0):
        super().__init__()
        self.slope = checks.positive("slope", slope)

    def forward(self, x, training=False):
        # 0.5 (1 + tanh(z/2)) equals the logistic function and never overflows.
        y = np.tanh(x * (0.5 * self.slope))
        y += 1
        y *= 0.5
        self.y = y
        return y

    def backward(self, dy):
        return dy * (self.slope * self.y * (1 - self.y))


@register("tanh")
class Tanh(Activation):
    """y = tanh(slope x);   dy/dx = slope (1 - y^2)."""

    def __init__(self, slope=1.0):
        super().__init__()
        self.slope = checks.positive("slope", slope)

    def forward(self, x, training=False):
        self.y = np.tanh(x * self.slope) if self.slope != 1 else np.tanh(x)
        return self.y

    def backward(self, dy):
        return dy * (self.slope * (1 - self.y * self.y))


@register("relu")
class ReLU(Activation):
    """y = max(0, x);   dy/dx = 1 where x > 0, else 0."""

    def forward(self, x, training=False):
        self.y = np.empty_like(x)
        on_halves(_relu, x, self.y)
        return self.y

    def backward(self, dy):
        dx = np.empty_like(dy)
        on_halves(_relu_grad, dy, self.y, dx)
        return dx


def _relu(x, y):
    np.maximum(x, zeros_like(x), out=y)


def _relu_grad(dy, y, dx):
    np.multiply(dy, y > 0, out=dx)


@register("leaky_relu")
class LeakyReLU(Activation):
    """y = x for x > 0, negative_slope * x otherwise (the reports' gamma): with a slope below
    1 that is y = max(x, negative_slope * x);  dy/dx = 1 where x > 0, else negative_slope,
    which is max([x > 0], negative_slope). (np.where gives the same values, but it branches
    on a mixed mask: 8-19x slower, benchmarks/bench_layers.py --only rectifiers.)"""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = checks.fraction("negative_slope", negative_slope)

    def forward(self, x, training=False):
        self.mask = x > 0
        s = self.negative_slope
        return np.maximum(x, x * s if s else zeros_like(x))    # slope 0: the ReLU, inf kept

    def backward(self, dy):
        return dy * np.maximum(self.mask, self.negative_slope, dtype=dy.dtype)


def softmax(z):
    """Row-wise softmax, shifted by the row maximum so exp never overflows."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


@register("softmax")
class Softmax(Activation):
    """y_i = exp(x_i) / sum_j exp(x_j);   dL/dx = y * (dL/dy - sum_j dL/dy_j y_j).

    With the cross-entropy loss the model skips this layer in training and differentiates the
    fused, numerically stable softmax cross-entropy of the logits instead.
    """

    def forward(self, x, training=False):
        self.y = softmax(x)
        return self.y

    def backward(self, dy):
        return self.y * (dy - np.sum(dy * self.y, axis=1, keepdims=True))


@register("dropout")
class Dropout(Layer):
    """Inverted dropout: in training, zero each input with probability ``rate`` and scale the
    rest by 1/(1 - rate); the identity in evaluation.  dL/dx = dL/dy * mask / (1 - rate)."""

    def __init__(self, rate=0.5):
        super().__init__()
        self.rate = checks.fraction("rate", rate)
        self.rng = np.random.default_rng(0)
        self.planned = None     # the next training forward's scale, drawn beforehand

    def build(self, input_shape, rng, dtype=np.float32):
        self.rng = np.random.default_rng(rng.integers(2**63))
        return super().build(input_shape, rng, dtype)

    def forward(self, x, training=False):
        if not training or self.rate == 0:
            self.scale = None
            return x
        if self.planned is None:
            self.scale = self.draw(x.shape, x.dtype)
        else:
            self.scale, self.planned = self.planned.astype(x.dtype, copy=False), None
        return x * self.scale

    def draw(self, shape, dtype):
        """The next mask of ``shape``: 1/(1 - rate) where an input is kept, else 0."""
        keep = 1.0 - self.rate
        return (self.rng.random(shape, dtype=np.float32) < keep).astype(dtype) / keep

    def backward(self, dy):
        return dy if self.scale is None else dy * self.scale


def layer_from_config(spec):
    """Build a layer from a dict such as {"type": "dense", "units": 10}."""
    return LAYERS.build(spec)
