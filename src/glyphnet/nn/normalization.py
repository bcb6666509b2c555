"""Batch normalisation for dense (N, F) and convolutional (N, H, W, C) activations."""
import numpy as np

from .. import checks
from .backend import on_halves
from .layers import Layer, register


@register("batch_norm")
class BatchNorm(Layer):
    """Normalise each feature (the last axis: units or channels) over the batch, then scale
    and shift it:

        x_hat = (x - mu) / sqrt(var + eps),   y = gamma x_hat + beta.

    In training mu and var are the batch statistics over every axis but the last (m values
    per feature), and the running estimates are updated as
    running = momentum * running + (1 - momentum) * batch (the running variance uses the
    unbiased batch variance, as PyTorch does; PyTorch's momentum is 1 minus this one). In
    evaluation the running estimates are used.

    dL/dgamma = sum dL/dy x_hat,   dL/dbeta = sum dL/dy, and in training
    dL/dx = gamma / (m sqrt(var + eps)) (m dL/dy - dL/dbeta - x_hat dL/dgamma);
    in evaluation (fixed statistics) dL/dx = gamma / sqrt(var + eps) dL/dy.
    """

    samplewise = False      # training statistics couple the samples of a batch

    def __init__(self, momentum=0.9, eps=1e-5):
        super().__init__()
        self.momentum = checks.fraction("momentum", momentum)
        self.eps = checks.positive("eps", eps)

    def build(self, input_shape, rng, dtype=np.float32):
        self.input_shape = self.output_shape = tuple(input_shape)
        if len(self.input_shape) not in (1, 3):
            raise ValueError(f"BatchNorm needs dense (features,) or image (height, width, "
                             f"channels) inputs, got inputs of shape {self.input_shape}")
        features = self.input_shape[-1]
        self.params = {"gamma": np.ones(features, dtype), "beta": np.zeros(features, dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.state = {"mean": np.zeros(features, dtype), "var": np.ones(features, dtype)}
        return self.output_shape

    def _sum(self, a2):
        """Column sums of a (m, features) array, as one BLAS product (NumPy's own sum over
        the long axis is many times slower with few features)."""
        if getattr(self, "ones", None) is None or len(self.ones) != len(a2) or \
                self.ones.dtype != a2.dtype:
            self.ones = np.ones(len(a2), a2.dtype)
        return self.ones @ a2

    def forward(self, x, training=False):
        x2 = x.reshape(-1, x.shape[-1])
        m = len(x2)
        xc = np.empty_like(x2)
        if training:
            mu = self._sum(x2) / m
            on_halves(lambda x2, xc: np.subtract(x2, mu, out=xc), x2, xc)
            squares = np.empty_like(xc)
            on_halves(lambda xc, sq: np.multiply(xc, xc, out=sq), xc, squares)
            var = self._sum(squares) / m
            for name, batch in (("mean", mu), ("var", var * (m / max(m - 1, 1)))):
                running = self.state[name]
                running *= self.momentum
                running += (1 - self.momentum) * batch
        else:
            var = self.state["var"]
            on_halves(lambda x2, xc: np.subtract(x2, self.state["mean"], out=xc), x2, xc)
        self.training = training
        self.inv_std = inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)
        gamma, beta = self.params["gamma"], self.params["beta"]
        y = np.empty_like(xc)

        def normalise(xc, y):
            xc *= inv_std
            np.multiply(xc, gamma, out=y)
            y += beta
        on_halves(normalise, xc, y)
        self.x_hat = xc                                     # (m, features)
        return y.reshape(x.shape)

    def backward(self, dy):
        dy2 = dy.reshape(self.x_hat.shape)
        dgamma, dbeta = self.grads["gamma"], self.grads["beta"]
        dx = np.empty_like(dy2)
        on_halves(lambda d, xh, p: np.multiply(d, xh, out=p), dy2, self.x_hat, dx)
        dgamma[...] = self._sum(dx)
        dbeta[...] = self._sum(dy2)
        scale = self.params["gamma"] * self.inv_std
        if not self.training:
            on_halves(lambda d, dx: np.multiply(d, scale, out=dx), dy2, dx)
            return dx.reshape(dy.shape)
        m = len(dy2)
        dgamma_m, dbeta_m = dgamma / m, dbeta / m

        def grad(d, xh, dx):              # dx = scale (dy - dbeta/m - x_hat dgamma/m)
            np.multiply(xh, dgamma_m, out=dx)
            dx += dbeta_m
            np.subtract(d, dx, out=dx)
            dx *= scale
        on_halves(grad, dy2, self.x_hat, dx)
        return dx.reshape(dy.shape)
