"""Checkpoints: everything a training run needs to continue exactly where it stopped, in one
.npz without pickle (RUN_DIR/checkpoint.npz).

A checkpoint holds the model's parameters and state arrays, the optimiser's state (moments,
velocities, step count) and learning rate after decay, the state of every random generator
(presentation order, augmentation, each dropout layer's), the position in training (epoch,
batch, the current epoch's batches and partial sums), the history and the records of the
callbacks given as ``recorders`` (any object with ``state()`` -> (JSON-ready dict, arrays)
and ``load_state(meta, arrays)``, such as the Monitor). Generator states and the other small
records are JSON text inside the archive, so loading needs no pickle.
"""
import json
import signal
import sys
import threading

import numpy as np

from ..errors import GlyphnetError
from ..fileio import NPZ_ERRORS, atomic_open, read_npz
from .training import History, LoopState, TrainingInterrupted

FORMAT = 1
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _json(value):
    return json.dumps(value, default=float)


def _generators(model):
    """(layer index, generator) of every layer that draws random numbers (dropout)."""
    return [(i, layer.rng) for i, layer in enumerate(model.layers)
            if isinstance(getattr(layer, "rng", None), np.random.Generator)]


def save(path, model, state, recorders=None, samples=None):
    """Write the checkpoint of ``model`` at loop position ``state`` (a LoopState) atomically;
    ``samples``: the number of training samples, checked on resuming."""
    meta = {
        "format": FORMAT, "samples": samples, "epoch": state.epoch, "batch": state.batch,
        "step": state.step,
        "sums": list(state.sums), "rng": state.rng, "aug_rng": state.aug_rng,
        "history": vars(state.history), "lr": float(model.optimizer.lr),
        "dropout": {str(i): g.bit_generator.state for i, g in _generators(model)},
    }
    arrays = {}
    for i, layer in enumerate(model.layers):
        for group, d in (("param", layer.params), ("state", layer.state)):
            for k, v in d.items():
                arrays[f"{group}/{i}/{k}"] = v
    for k, v in model.optimizer.state_arrays().items():
        arrays[f"optimizer/{k}"] = v
    if state.batches is not None:
        arrays["order"] = np.concatenate(state.batches).astype(np.int64)
        arrays["sizes"] = np.array([len(b) for b in state.batches], np.int64)
    meta["recorders"] = {}
    for name, recorder in (recorders or {}).items():
        meta["recorders"][name], extra = recorder.state()
        arrays.update({f"{name}/{k}": v for k, v in extra.items()})
    arrays["meta"] = np.array(_json(meta))
    with atomic_open(path) as f:
        np.savez(f, **arrays)


class Checkpoint:
    """A checkpoint read back: ``meta`` (the JSON record) and ``arrays``."""

    def __init__(self, path, meta, arrays):
        self.path, self.meta, self.arrays = path, meta, arrays

    def _group(self, prefix):
        return {k[len(prefix):]: v for k, v in self.arrays.items() if k.startswith(prefix)}

    def restore(self, model, recorders=None, samples=None):
        """Put the saved weights, optimiser and generators into ``model`` (built and compiled
        like the saved one) and the saved records into ``recorders`` (as given to
        :func:`save`); returns the LoopState to pass to fit. ``samples``: the number of
        training samples now, which must be the number the checkpoint was written for."""
        saved = self.meta.get("samples")
        if samples is not None and saved is not None and saved != samples:
            raise GlyphnetError(f"{self.path}: written for {saved} training samples but the data "
                                f"set now has {samples}; the data changed since the run was "
                                f"interrupted, so it cannot be continued")
        for i, layer in enumerate(model.layers):
            for group, d in (("param", layer.params), ("state", layer.state)):
                for k in d:
                    saved = self.arrays.get(f"{group}/{i}/{k}")
                    if saved is None or saved.shape != d[k].shape:
                        raise GlyphnetError(
                            f"{self.path}: {group} {k} of layer {i} is "
                            f"{'missing' if saved is None else f'of shape {saved.shape}'}, "
                            f"expected shape {d[k].shape}: the checkpoint is not of this "
                            f"run's model")
                    d[k][...] = saved
        model.optimizer.load_state(self._group("optimizer/"))
        model.optimizer.lr = self.meta["lr"]
        dropout = self.meta["dropout"]
        try:
            for i, g in _generators(model):
                if str(i) in dropout:
                    g.bit_generator.state = dropout[str(i)]
            for key in ("rng", "aug_rng"):   # checked here, set by fit
                np.random.default_rng().bit_generator.state = self.meta[key]
        except (ValueError, TypeError, KeyError) as exc:
            raise GlyphnetError(f"{self.path}: damaged checkpoint (a generator state: "
                                f"{exc})") from None
        saved = self.meta.get("recorders", {})
        for name, recorder in (recorders or {}).items():
            if name in saved:
                recorder.load_state(saved[name], self._group(f"{name}/"))
        history = History()
        for k, v in self.meta["history"].items():
            setattr(history, k, v)
        batches = None
        if "order" in self.arrays:
            bounds = np.cumsum(self.arrays["sizes"])[:-1]
            batches = np.split(self.arrays["order"].astype(np.intp), bounds)
        m = self.meta
        return LoopState(m["epoch"], m["batch"], batches, m["step"], tuple(m["sums"]),
                         m["rng"], m["aug_rng"], history)


def load(path):
    """Read a checkpoint written by :func:`save`; a damaged file is a GlyphnetError."""
    try:
        arrays = read_npz(path)
        meta = json.loads(str(arrays.pop("meta")))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"checkpoint format {meta.get('format')!r} is not supported"
                             if isinstance(meta, dict) else "the record is not a table")
        for key, kind in (("epoch", int), ("batch", int), ("step", int), ("sums", list),
                          ("rng", dict), ("aug_rng", dict), ("history", dict),
                          ("lr", (int, float)), ("dropout", dict)):
            if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
                raise ValueError(f"the record's {key!r} is {meta.get(key)!r}")
        if meta["batch"] and ("order" not in arrays or "sizes" not in arrays):
            raise ValueError("the record is mid-epoch but the epoch's order is missing")
    except FileNotFoundError:
        raise GlyphnetError(f"{path}: no checkpoint (the run cannot be resumed)") from None
    except NPZ_ERRORS as exc:
        raise GlyphnetError(f"{path}: damaged checkpoint ({exc})") from None
    return Checkpoint(path, meta, arrays)


class Checkpointer:
    """What ``fit(checkpoint=...)`` needs: ``save(model, state)`` at every epoch end and
    ``requested`` (the number of a signal received, or None), checked after every batch.

    Between ``catch_signals()`` and ``release_signals()``, SIGINT and SIGTERM set ``requested``
    instead of stopping the program, so the current batch finishes and a checkpoint is
    written. Outside the main thread (where Python cannot handle signals) nothing changes.
    """

    def __init__(self, path, recorders=None, samples=None):
        self.path, self.recorders, self.samples = path, recorders, samples
        self.requested = None
        self._previous = {}

    def save(self, model, state):
        save(self.path, model, state, self.recorders, self.samples)

    def request(self, signum=signal.SIGINT):
        """Ask fit to stop after the current batch, as a signal would."""
        self.requested = signum

    def _handler(self, signum, frame):
        # Asked twice: stop at once, unless the program had its own handler (it may not be
        # safe to stop it just anywhere, e.g. inside a queue operation).
        if self.requested is not None and \
                self._previous.get(signum) in (signal.default_int_handler, signal.SIG_DFL):
            raise KeyboardInterrupt
        self.requested = signum
        print("glyphnet: finishing the current batch, then writing a checkpoint (interrupt "
              "again to stop at once)", file=sys.stderr, flush=True)

    def catch_signals(self):
        """Make SIGINT and SIGTERM set ``requested`` until :meth:`release_signals`."""
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handler) for s in SIGNALS}

    def release_signals(self):
        """Put back the handlers :meth:`catch_signals` replaced."""
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

__all__ = ["Checkpoint", "Checkpointer", "TrainingInterrupted", "load", "save"]
