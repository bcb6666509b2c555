"""Training dynamics, recorded cheaply while ``fit`` runs and saved as RUN_DIR/dynamics.npz.

Every ``every`` steps: the standard deviation of each weight gradient, the mean magnitude of the
deltas (dL/d output) per sample at the first convolutional layer and a few fixed individual
weights. At the start: every weight array (a fixed random sample of MAX_INITIAL entries of
larger ones). At the end of each epoch: the first convolutional layer's filters. At steps 1, 8,
64, 512, ... (or every ``check_every`` steps): a small float64 gradient check (angle between
finite-difference and analytic gradients) against the cost of a few fixed training images.
"""


import numpy as np

from ..errors import GlyphnetError
from ..fileio import NPZ_ERRORS, atomic_open, read_npz
from ..nn.gradcheck import check_model
from ..nn.training import Callback
from .roles import conv_weight, first_conv

MAX_INITIAL = 250_000


def weight_arrays(model):
    """(layer index, name, array) of every trainable array with two or more axes."""
    return [(i, k, p) for i, k, p, _ in model.parameters() if p.ndim >= 2]


def _power_of_8(n):
    return n & (n - 1) == 0 and (n.bit_length() - 1) % 3 == 0


class Monitor(Callback):
    """Records what the training-dynamics plots need (see the module docstring).

    every: sampling interval in steps; it doubles (and every other record is dropped) whenever
    more than ``max_points`` records pile up, so long runs stay cheap and small.
    tracked: how many individual weights to follow.
    check_data: (x, labels), a few training images for the gradient-angle check, or None.
    check_entries: entries checked per parameter array.
    check_method, check_h: finite differences ("central" or "forward") and their step.
    check_every: check every this many steps (and at step 1); 0: at steps 1, 8, 64, ...
    """

    def __init__(self, every=10, tracked=6, check_data=None, check_entries=3, seed=0,
                 max_points=500, check_method="central", check_h=1e-6, check_every=0):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.every, self.tracked, self.seed, self.max_points = every, tracked, seed, max_points
        self.check_data, self.check_entries = check_data, check_entries
        self.check_method, self.check_h, self.check_every = check_method, check_h, check_every
        self.steps, self.grad_std, self.weights = [], [], []
        self.delta_steps, self.deltas = [], []
        self.check_steps, self.check_cost, self.check_angle = [], [], []
        self.check_names = []
        self.initial, self.filters = {}, {}
        self.names, self.tracked_ids = [], []
        self._conv = None
        self._delta_step = 1
        self._pending = []      # (sum, count) of the conv deltas recorded in this step
        self._started = False

    # ------------------------------------------------------------------ hooks
    def on_epoch_begin(self, model, epoch):
        if not self._started:
            self._start(model)
        self._attach(model)

    def on_batch_end(self, model, step, loss):
        if step % self.every == 0 or step == 1:
            self.steps.append(step)
            arrays = weight_arrays(model)
            grads = {(i, k): g for i, k, _, g in model.parameters()}
            self.grad_std.append([float(grads[(i, k)].std()) for i, k, _ in arrays])
            self.weights.append([float(arrays[a][2].flat[j]) for a, j in self.tracked_ids])
            if len(self.steps) > self.max_points:
                self._thin()
        self._close_deltas()
        self._delta_step = step + 1 if (step + 1) % self.every == 0 else None
        if self.check_data is not None and self._check_due(step):
            self._gradient_check(model, step)

    def _check_due(self, step):
        if self.check_every:
            return step == 1 or step % self.check_every == 0
        return _power_of_8(step)

    def on_epoch_end(self, model, epoch, metrics):
        self.detach(model)
        if self._conv is not None:
            self.filters[epoch] = conv_weight(model.layers[self._conv]).copy()

    # ------------------------------------------------------------------ recording
    def _thin(self):
        """Double the interval and keep only the records that fall on it."""
        self.every *= 2

        def keep(steps, *lists):
            picks = [k for k, s in enumerate(steps) if s % self.every == 0 or s == 1]
            return [[lst[k] for k in picks] for lst in (steps, *lists)]
        self.steps, self.grad_std, self.weights = keep(self.steps, self.grad_std, self.weights)
        self.delta_steps, self.deltas = keep(self.delta_steps, self.deltas)

    def _start(self, model):
        self._started = True
        arrays = weight_arrays(model)
        self.names = [f"layer{i}.{k}" for i, k, _ in arrays]
        rng = np.random.default_rng(self.seed)
        for name, (_, _, p) in zip(self.names, arrays):
            self.initial[name] = p.copy() if p.size <= MAX_INITIAL else \
                p.ravel()[np.sort(rng.choice(p.size, MAX_INITIAL, replace=False))]
        # Follow weights of the first and the last weight array, chosen among all entries.
        picks = sorted({0, len(arrays) - 1}) if arrays else []
        for n in range(self.tracked if arrays else 0):
            a = picks[n % len(picks)]
            self.tracked_ids.append((a, int(rng.integers(arrays[a][2].size))))
        self._conv = first_conv(model)
        if self._conv is not None:
            self.filters[0] = conv_weight(model.layers[self._conv]).copy()

    def _attach(self, model):
        """Add the backward hook that records the first conv layer's deltas."""
        if self._conv is not None and self._record_delta not in model.backward_hooks:
            model.backward_hooks.append(self._record_delta)

    def _record_delta(self, index, layer, dy):
        """On sampled steps, the mean per-image norm of the first conv layer's delta
        dL_i/d(output_i) of each sample's own loss L_i (report 004's 'Mag Conv Deltas'). The
        loss of a batch (or of a slice of it, nn/parallel.py) is the mean of its L_i, so dy is
        that over its size: scaling back by len(dy) keeps a partial last batch from jumping.
        The (sum, count) of each slice is kept and the mean taken at the end of the step."""
        if index == self._conv and self._delta_step is not None:
            flat = dy.reshape(len(dy), -1)
            norms = np.sqrt(np.einsum("ij,ij->i", flat, flat, dtype=np.float64))
            self._pending.append((float(norms.sum() * len(dy)), len(dy)))

    def _close_deltas(self):
        """Record the sampled step's conv delta from its slices' (sum, count)."""
        if self._pending:
            self.deltas.append(sum(s for s, _ in self._pending) /
                               sum(n for _, n in self._pending))
            self.delta_steps.append(self._delta_step)
            self._pending = []

    def detach(self, model):
        """Remove the backward hook (also safe to call when none is attached)."""
        if self._record_delta in model.backward_hooks:
            model.backward_hooks.remove(self._record_delta)

    def _gradient_check(self, model, step):
        x, labels = self.check_data
        self.detach(model)
        results = check_model(model, x, labels, eps=self.check_h, max_entries=self.check_entries,
                              seed=self.seed, method=self.check_method)
        self._attach(model)
        self.check_names = [r["name"] for r in results]
        self.check_steps.append(step)
        self.check_cost.append(model.evaluate(x, labels)["loss"])
        self.check_angle.append([r["angle"] for r in results])

    # ------------------------------------------------------------------ output
    def arrays(self):
        """Everything recorded, as a dict of arrays (the contents of dynamics.npz)."""
        out = {
            "steps": np.array(self.steps, np.int64),
            "grad_std": np.array(self.grad_std, np.float64).reshape(len(self.steps), -1),
            "names": np.array(self.names, dtype=str),
            "tracked_values": np.array(self.weights, np.float64).reshape(len(self.steps), -1),
            "tracked_names": np.array([f"{self.names[a]}[{j}]" for a, j in self.tracked_ids],
                                      dtype=str),
            "delta_steps": np.array(self.delta_steps, np.int64),
            "conv_deltas": np.array(self.deltas, np.float64),
            "check_steps": np.array(self.check_steps, np.int64),
            "check_cost": np.array(self.check_cost, np.float64),
            "check_angle": np.array(self.check_angle, np.float64).reshape(
                len(self.check_steps), -1),
            "check_names": np.array(self.check_names, dtype=str),
        }
        for name, p in self.initial.items():
            out[f"initial/{name}"] = p
        for epoch, w in self.filters.items():
            out[f"filters/{epoch}"] = w
        return out

    def save(self, path):
        """Write dynamics.npz atomically."""
        with atomic_open(path) as f:
            np.savez_compressed(f, **self.arrays())

    # The records a checkpoint keeps, besides the arrays in ``initial`` and ``filters``.
    _STATE = ("every", "steps", "grad_std", "weights", "delta_steps", "deltas", "check_steps",
              "check_cost", "check_angle", "check_names", "names", "tracked_ids", "_conv",
              "_delta_step", "_started")

    def state(self):
        """Everything recorded so far, for a checkpoint: (JSON-ready dict, dict of arrays)."""
        arrays = {f"initial/{k}": v for k, v in self.initial.items()}
        arrays.update({f"filters/{e}": w for e, w in self.filters.items()})
        return {k: getattr(self, k) for k in self._STATE}, arrays

    def load_state(self, meta, arrays):
        """Continue from :meth:`state`'s output."""
        for k in self._STATE:
            setattr(self, k, meta[k])
        self.tracked_ids = [tuple(t) for t in self.tracked_ids]
        self.initial = {k[len("initial/"):]: v for k, v in arrays.items()
                        if k.startswith("initial/")}
        self.filters = {int(k[len("filters/"):]): v for k, v in arrays.items()
                        if k.startswith("filters/")}


# The plain arrays of every dynamics.npz (see Monitor.arrays).
DYNAMICS_KEYS = ("steps", "grad_std", "names", "tracked_values", "tracked_names", "delta_steps",
                 "conv_deltas", "check_steps", "check_cost", "check_angle", "check_names")


def load_dynamics(path):
    """dynamics.npz as a dict: plain arrays, plus 'initial' {name: array} and 'filters'
    {epoch: array}."""
    try:
        d = read_npz(path)
    except NPZ_ERRORS as exc:
        raise GlyphnetError(f"{path}: cannot read the training dynamics ({exc})") from None
    missing = [k for k in DYNAMICS_KEYS if k not in d]
    if missing:
        raise GlyphnetError(f"{path}: cannot read the training dynamics (no "
                            f"{', '.join(missing)})")
    out = {"initial": {}, "filters": {}}
    for k, v in d.items():
        if k.startswith("initial/"):
            out["initial"][k[len("initial/"):]] = v
        elif k.startswith("filters/"):
            out["filters"][int(k[len("filters/"):])] = v
        else:
            out[k] = v
    out["filters"] = dict(sorted(out["filters"].items()))
    return out
