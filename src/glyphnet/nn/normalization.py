"""Batch normalisation for dense (N, F) and convolutional (N, H, W, C) activations."""
import numpy as np

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

    def __init__(self, momentum=0.9, eps=1e-5):
        super().__init__()
        if not isinstance(momentum, (int, float)) or isinstance(momentum, bool) or \
                not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or eps <= 0:
            raise ValueError(f"eps must be a positive number, got {eps!r}")
        self.momentum, self.eps = float(momentum), float(eps)

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
        if training:
            mu = self._sum(x2) / m
            xc = x2 - mu
            var = self._sum(xc * xc) / m
            for name, batch in (("mean", mu), ("var", var * (m / max(m - 1, 1)))):
                running = self.state[name]
                running *= self.momentum
                running += (1 - self.momentum) * batch
        else:
            var = self.state["var"]
            xc = x2 - self.state["mean"]
        self.training = training
        self.inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)
        xc *= self.inv_std
        self.x_hat = xc                                     # (m, features)
        return (xc * self.params["gamma"] + self.params["beta"]).reshape(x.shape)

    def backward(self, dy):
        dy2 = dy.reshape(self.x_hat.shape)
        dgamma, dbeta = self.grads["gamma"], self.grads["beta"]
        dgamma[...] = self._sum(dy2 * self.x_hat)
        dbeta[...] = self._sum(dy2)
        scale = self.params["gamma"] * self.inv_std
        if not self.training:
            return (dy2 * scale).reshape(dy.shape)
        m = len(dy2)
        dx = self.x_hat * (dgamma / m)
        dx += dbeta / m
        np.subtract(dy2, dx, out=dx)
        dx *= scale
        return dx.reshape(dy.shape)
