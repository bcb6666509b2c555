"""Optimisers update parameters in place from their gradients: ``step(params, grads)``."""
import numpy as np

OPTIMIZERS = {}


def register(name):
    def wrap(cls):
        cls.kind = name
        OPTIMIZERS[name] = cls
        return cls
    return wrap


def _positive(name, value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _fraction(name, value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


@register("sgd")
class SGD:
    """w <- w - lr * g;  with momentum mu:  v <- mu v - lr g,  w <- w + v."""

    def __init__(self, lr=0.1, momentum=0.0):
        self.lr = _positive("lr", lr)
        self.momentum = _fraction("momentum", momentum)
        self.velocity = {}

    def step(self, params, grads):
        for i, (p, g) in enumerate(zip(params, grads)):
            if self.momentum:
                v = self.velocity.get(i)
                if v is None:
                    v = self.velocity[i] = np.zeros_like(p)
                v *= self.momentum
                v -= self.lr * g
                p += v
            else:
                p -= self.lr * g

    def get_config(self):
        return {"lr": self.lr, "momentum": self.momentum}


@register("adam")
class Adam:
    """Adam (Kingma & Ba):  m <- b1 m + (1-b1) g,  v <- b2 v + (1-b2) g^2,
    w <- w - lr * m_hat / (sqrt(v_hat) + eps), with the bias corrections m_hat = m / (1-b1^t),
    v_hat = v / (1-b2^t)."""

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr = _positive("lr", lr)
        self.beta1 = _fraction("beta1", beta1)
        self.beta2 = _fraction("beta2", beta2)
        self.eps = _positive("eps", eps)
        self.m, self.v, self.t = {}, {}, 0

    def step(self, params, grads):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # The bias corrections folded into one step size and one epsilon.
        lr_t = self.lr * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        eps_t = self.eps * np.sqrt(1 - b2 ** self.t)
        flush = self.t % 100 == 0
        for i, (p, g) in enumerate(zip(params, grads)):
            if i not in self.m:
                self.m[i], self.v[i] = np.zeros_like(p), np.zeros_like(p)
            m, v = self.m[i], self.v[i]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            if flush:
                # Moments of rarely active weights decay into subnormal floats, which make every
                # later float32 operation on them many times slower; zero them instead.
                m[np.abs(m) < 1e-30] = 0
                v[v < 1e-30] = 0
            denom = np.sqrt(v)
            denom += eps_t
            p -= lr_t * m / denom

    def get_config(self):
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


def optimizer_from_config(spec):
    spec = dict(spec)
    kind = spec.pop("type")
    if kind not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {kind!r}; expected one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[kind](**spec)
