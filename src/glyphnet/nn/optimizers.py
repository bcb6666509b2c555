"""Optimisers update parameters in place from their gradients: ``step(params, grads)``."""
import math
import os
from concurrent.futures import ThreadPoolExecutor

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
        self.scratch = {}

    def step(self, params, grads):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # The bias corrections folded into one step size and one epsilon. Python floats keep
        # the arithmetic in the parameters' dtype (a NumPy float64 scalar would promote it).
        lr_t = self.lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        eps_t = self.eps * math.sqrt(1 - b2 ** self.t)
        flush = self.t % 100 == 0
        work = []
        for i, (p, g) in enumerate(zip(params, grads)):
            if i not in self.m:
                self.m[i], self.v[i] = np.zeros_like(p), np.zeros_like(p)
                self.scratch[i] = np.empty_like(p)
            work.append((p, g, self.m[i], self.v[i], self.scratch[i]))
        in_two_threads(self._update, work, lr_t, eps_t, flush)

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
            _flush_subnormal(m, s)
            _flush_subnormal(v, s)
        np.sqrt(v, out=s)                       # w <- w - lr_t m / (sqrt(v) + eps_t)
        s += eps_t
        np.divide(m, s, out=s)
        s *= lr_t
        p -= s

    def get_config(self):
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


# ------------------------------------------------------------------------------ helpers
SPLIT_SIZE = 32768          # arrays with at least twice this many entries are split
_pool = None


def in_two_threads(update, groups, *args):
    """Call update(*group, *args) for each group of same-shaped arrays, the large ones split
    into two halves with one half done on a helper thread.

    NumPy releases the GIL inside element-wise loops, so on two or more cores the halves run
    at the same time and the optimiser step takes about half as long. Element-wise updates
    give bit-identical results however the arrays are split.
    """
    global _pool
    mine, theirs = [], []
    for group in groups:
        half = group[0].size // 2
        if half < SPLIT_SIZE or (os.cpu_count() or 1) < 2 or \
                not all(a.flags.c_contiguous for a in group):
            mine.append(group)
            continue
        flat = [a.reshape(-1) for a in group]   # views of contiguous arrays
        theirs.append([a[:half] for a in flat])
        mine.append([a[half:] for a in flat])
    errors = np.geterr()                        # the caller's errstate, e.g. from fit

    def their_halves():
        with np.errstate(**errors):
            for group in theirs:
                update(*group, *args)

    job = None
    if theirs:
        if _pool is None:
            _pool = ThreadPoolExecutor(1, thread_name_prefix="glyphnet-optimizer")
        job = _pool.submit(their_halves)
    for group in mine:
        update(*group, *args)
    if job is not None:
        job.result()


def _forget_pool():
    """A forked child has no helper thread: start a new pool there when needed."""
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def _flush_subnormal(a, scratch):
    """Zero entries with |a| < 1e-30. Moments of rarely active weights decay into subnormal
    floats, which make every later float32 operation on them many times slower."""
    np.abs(a, out=scratch)
    a[scratch < 1e-30] = 0


def optimizer_from_config(spec):
    spec = dict(spec)
    kind = spec.pop("type")
    if kind not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {kind!r}; expected one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[kind](**spec)
