"""Optimisers update parameters in place from their gradients: ``step(params, grads)``."""
import math

import numpy as np

from .. import checks
from ..registry import Registry
from .backend import flat_groups, flush_subnormal, in_two_threads, pack, packed_like

OPTIMIZERS = Registry("optimizer")


class Optimizer:
    """The protocol every optimiser follows:

    ``lr``: the learning rate, a float that training may change (decay);
    ``step(params, grads)``: update each parameter array in place from its gradient (the lists
    keep the same order from step to step, so per-array state can be keyed by position);
    ``get_config()``: the constructor arguments, enough to rebuild it from a config;
    ``state_arrays()`` / ``load_state(arrays)``: the internal state (moments, velocities, step
    count) as named arrays, for checkpoints.
    """

    lr = 0.0

    def step(self, params, grads):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    def state_arrays(self):
        return {}

    def load_state(self, arrays):
        pass


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """w <- w - lr * g;  with momentum mu:  v <- mu v - lr g,  w <- w + v."""

    def __init__(self, lr=0.1, momentum=0.0):
        self.lr = checks.positive("lr", lr)
        self.momentum = checks.fraction("momentum", momentum)
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

    def state_arrays(self):
        return {f"velocity/{i}": v for i, v in self.velocity.items()}

    def load_state(self, arrays):
        self.velocity = {int(k.split("/")[1]): v.copy() for k, v in arrays.items()
                         if k.startswith("velocity/")}


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """Adam (Kingma & Ba):  m <- b1 m + (1-b1) g,  v <- b2 v + (1-b2) g^2,
    w <- w - lr * m_hat / (sqrt(v_hat) + eps), with the bias corrections m_hat = m / (1-b1^t),
    v_hat = v / (1-b2^t)."""

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr = checks.positive("lr", lr)
        self.beta1 = checks.fraction("beta1", beta1)
        self.beta2 = checks.fraction("beta2", beta2)
        self.eps = checks.positive("eps", eps)
        self.m, self.v, self.t = {}, {}, 0
        self._arranged = None       # (the arrays of the last step, their update groups)

    def step(self, params, grads):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # The bias corrections folded into one step size and one epsilon. Python floats keep
        # the arithmetic in the parameters' dtype (a NumPy float64 scalar would promote it).
        lr_t = self.lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        eps_t = self.eps * math.sqrt(1 - b2 ** self.t)
        flush = self.t % 100 == 0
        arrays = list(params) + list(grads)
        if self._arranged is None or len(arrays) != len(self._arranged[0]) or \
                any(a is not b for a, b in zip(arrays, self._arranged[0])):
            self._arranged = arrays, self._groups(params, grads)
        in_two_threads(self._update, self._arranged[1], lr_t, eps_t, flush)

    def _groups(self, params, grads):
        """Update groups (backend.flat_groups): the moments are laid out like the parameters,
        so arrays packed end to end (Sequential packs them) are updated in one go."""
        missing = [i for i in range(len(params)) if i not in self.m]
        for state in (self.m, self.v):
            state.update(zip(missing, packed_like([params[i] for i in missing])))
        index = range(len(params))
        return flat_groups(params, grads, [self.m[i] for i in index],
                           [self.v[i] for i in index], packed_like(params))

    def _update(self, p, g, m, v, s, lr_t, eps_t, flush):
        """The update of one array, in place, through the scratch array s (no temporaries)."""
        b1, b2 = self.beta1, self.beta2
        m *= b1                                 # m <- b1 m + (1 - b1) g
        np.multiply(g, 1 - b1, out=s)
        m += s
        v *= b2                                 # v <- b2 v + (1 - b2) g^2
        np.multiply(g, g, out=s)
        s *= 1 - b2
        v += s
        if flush:
            flush_subnormal(m, s)
            flush_subnormal(v, s)
        np.sqrt(v, out=s)                       # w <- w - lr_t m / (sqrt(v) + eps_t)
        s += eps_t
        np.divide(m, s, out=s)
        s *= lr_t
        p -= s

    def get_config(self):
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def state_arrays(self):
        out = {"t": np.array(self.t, np.int64)}
        for i in self.m:
            out[f"m/{i}"], out[f"v/{i}"] = self.m[i], self.v[i]
        return out

    def load_state(self, arrays):
        self.t = int(arrays.get("t", 0))
        for name, state in (("m", self.m), ("v", self.v)):
            keys = sorted(int(k[2:]) for k in arrays if k.startswith(name + "/"))
            state.clear()
            state.update(zip(keys, pack([arrays[f"{name}/{i}"] for i in keys])))
        self._arranged = None


def optimizer_from_config(spec):
    """An optimiser from a dict such as {"type": "adam", "lr": 1e-3}."""
    return OPTIMIZERS.build(spec)
