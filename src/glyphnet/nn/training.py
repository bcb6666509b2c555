"""The training loop: mini-batches, weight penalties, divergence detection, history."""
import sys
import time

import numpy as np

from ..errors import TrainingDiverged
from .backend import blas_threads_for
from .parallel import THREADS, SplitSteps
from .schedule import BATCH_ORDERS, epoch_batches


class History:
    """Per-epoch metrics (``epochs``: list of dicts) and the loss of every batch."""

    COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
               "test_accuracy", "seconds")

    def __init__(self):
        self.epochs = []
        self.batch_losses = []
        self.batch_accuracies = []

    def column(self, name):
        return [row.get(name) for row in self.epochs]

    def csv_text(self):
        lines = [",".join(self.COLUMNS)]
        for row in self.epochs:
            lines.append(",".join("" if row.get(c) is None else f"{row[c]:.6g}"
                                  for c in self.COLUMNS))
        return "\n".join(lines) + "\n"


class ProgressBar:
    """A one-line progress bar on stderr with the running loss (only on a terminal)."""

    def __init__(self, total, prefix, stream=None, width=30):
        self.total, self.prefix, self.width = total, prefix, width
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.start = time.perf_counter()
        self.last = 0.0

    def update(self, done, loss):
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.1 and done < self.total):
            return
        self.last = now
        filled = int(self.width * done / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.prefix} [{bar}] {done}/{self.total} loss {loss:.4f} "
                          f"{now - self.start:.1f}s")
        self.stream.flush()

    def close(self):
        if self.enabled:
            self.stream.write("\r" + " " * (self.width + len(self.prefix) + 50) + "\r")
            self.stream.flush()


class Callback:
    """Hooks into ``fit``. ``on_batch_end`` runs after the gradients are computed and the
    parameters updated, so ``model.parameters()`` gives this step's gradients; ``history``
    is set to the run's History when fit starts (its batch_losses/batch_accuracies end with
    this step's)."""

    history = None

    def on_epoch_begin(self, model, epoch):
        pass

    def on_batch_end(self, model, step, loss):
        pass

    def on_epoch_end(self, model, epoch, metrics):
        pass


class LoopState:
    """Where a training loop stands, enough to continue it exactly (see nn/checkpoint.py):
    ``epoch`` (1-based) and ``batch`` (batches of it done; 0: the epoch has not started),
    that epoch's index ``batches`` (None when not started), the update count ``step``, the
    epoch's partial (loss_sum, correct, seen), the order and augmentation generators' states
    and the History so far."""

    def __init__(self, epoch, batch, batches, step, sums, rng, aug_rng, history):
        self.epoch, self.batch, self.batches, self.step = epoch, batch, batches, step
        self.sums, self.rng, self.aug_rng, self.history = sums, rng, aug_rng, history


class TrainingInterrupted(KeyboardInterrupt):
    """fit stopped after a batch because ``checkpoint.requested`` was set (a signal);
    ``state`` is the LoopState to continue from, ``signum`` the signal's number."""

    def __init__(self, state, signum):
        super().__init__(f"training interrupted by signal {signum}")
        self.state, self.signum = state, signum


# A finite loss this many times the first batch's (at least 1) counts as divergence.
EXPLODED = 1e6


def _snapshot(model):
    return [[dict((k, v.copy()) for k, v in d.items()) for d in (layer.params, layer.state)]
            for layer in model.layers]


def _restore(model, snapshot):
    for layer, (params, state) in zip(model.layers, snapshot):
        for k, v in params.items():
            layer.params[k][...] = v
        for k, v in state.items():
            layer.state[k][...] = v


def fit(model, x, labels, *, epochs=1, batch_size=128, shuffle=True, seed=0,
        validation_data=None, test_data=None, augment=None, callbacks=(), lr_decay=1.0,
        verbose=False, log=print, batch_order=None, max_steps=0, checkpoint=None,
        resume=None, threads=THREADS):
    """Train ``model`` on (x, labels) with its compiled loss, optimiser and penalties.

    batch_size: samples per update; 0/None trains full-batch, 1 is stochastic gradient descent.
    shuffle: draw a new presentation order each epoch (else the data's order is kept).
    batch_order: "shuffled", "fixed" (the data's order) or "balanced" (every batch holds
    batch_size / k images of each of the k classes; batch_size 0: one of each); None follows
    ``shuffle``.
    max_steps: stop after this many updates, mid-epoch if need be (0: no limit).
    checkpoint: an object with ``save(model, state)``, called with a LoopState at every epoch
    end, and ``requested``, checked after every batch: when set, fit raises
    TrainingInterrupted (see nn/checkpoint.Checkpointer).
    resume: a LoopState (from a checkpoint) to continue from; the model, optimiser and
    dropout generators must already hold the checkpoint's state.
    augment: optional function (images, rng) -> images applied to each training batch.
    lr_decay: the optimiser's learning rate is multiplied by this after every epoch.
    threads: cut each batch into up to this many slices of at least 32 samples, computed on
    as many threads at once as the cores and BLAS's thread limit allow (nn/parallel.py); 1
    computes every batch whole. The weights depend on this number, never on the machine's
    cores or load.
    validation_data: (x, labels) held out of training, evaluated after every epoch as
    val_loss/val_accuracy (the Keras meaning).
    test_data: (x, labels) of a test set, evaluated after every epoch as test_loss/test_accuracy.
    Raises TrainingDiverged (the model restored to its last good epoch) if the loss or the
    weights become non-finite or the loss explodes (over EXPLODED times the first batch's).
    """
    from .checking import check_batch_size, check_xy
    x, labels = check_xy(model, x, labels, "x", "y", build=True)
    named = {"validation_data": validation_data, "test_data": test_data}
    for name, pair in named.items():
        if pair is not None:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"{name} must be an (x, y) pair, got {type(pair).__name__}")
            named[name] = check_xy(model, *pair, f"{name}[0]", f"{name}[1]")
    check_batch_size(batch_size)
    order = batch_order or ("shuffled" if shuffle else "fixed")
    if order not in BATCH_ORDERS:
        raise ValueError(f"batch_order must be one of {', '.join(BATCH_ORDERS)}, got {order!r}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) \
            or max_steps < 0:
        raise ValueError(f"max_steps must be an integer >= 0, got {max_steps!r}")
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    with blas_threads_for(batch_size), SplitSteps(model, threads, batch_size or len(x)) as split:
        return _fit(model, x, labels, epochs, batch_size, order, seed, named["validation_data"],
                    named["test_data"], augment, callbacks, lr_decay, verbose, log, max_steps,
                    checkpoint, resume, split)


# Overflow in a diverging run is reported once, as TrainingDiverged, not as NumPy warnings.
@np.errstate(over="ignore", invalid="ignore")
def _fit(model, x, labels, epochs, batch_size, order, seed, validation_data, test_data,
         augment, callbacks, lr_decay, verbose, log, max_steps, checkpoint, resume, split):
    if model.optimizer is None:
        model.compile()
    rng = np.random.default_rng(seed)
    aug_rng = np.random.default_rng(rng.integers(2**63))
    history = History() if resume is None else resume.history
    for cb in callbacks:
        cb.history = history
    # Frozen layers' arrays are left out: no optimiser state, no penalties, no updates.
    params = model.trainable_parameters()
    values = [p for _, _, p, _ in params]
    grads = [g for _, _, _, g in params]
    weights = [(p, g) for _, name, p, g in params if name.startswith("W")]
    reg = model.regularization
    shrunk = [p for _, name, p, _ in params
              if name.startswith("W") or (reg.get("shrink_biases") and name == "b")]
    shrink_before = reg.get("shrink_when") == "before"
    step, first_epoch, done = 0, 1, 0
    if resume is not None:
        rng.bit_generator.state, aug_rng.bit_generator.state = resume.rng, resume.aug_rng
        step, first_epoch, done = resume.step, resume.epoch, resume.batch
    for epoch in range(first_epoch, epochs + 1):
        good = _snapshot(model)
        for cb in callbacks:
            cb.on_epoch_begin(model, epoch)
        start = time.perf_counter()
        index_batches = resume.batches if done else \
            epoch_batches(order, labels, batch_size, rng, model.output_shape[-1])
        bar = ProgressBar(len(index_batches), f"epoch {epoch}/{epochs}") if verbose else None
        loss_sum, correct, seen = resume.sums if done else (0.0, 0, 0)
        for b, idx in enumerate(index_batches, 1):
            if b <= done:   # already trained before the checkpoint
                continue
            xb = x if order == "fixed" and len(idx) == len(x) else x[idx]
            if augment is not None:
                xb = augment(xb, aug_rng)
            yb = labels[idx]
            loss, out = split.loss_and_grads(xb, yb)
            if not np.isfinite(loss) or history.batch_losses and \
                    loss > EXPLODED * max(history.batch_losses[0], 1.0):
                _restore(model, good)
                raise TrainingDiverged(epoch, b, getattr(model.optimizer, "lr", None), history,
                                       loss=loss)
            for p, g in weights:
                if reg["l2"]:
                    g += reg["l2"] * p
                if reg["l1"]:
                    g += reg["l1"] * np.sign(p)
            if reg["shrink"] and shrink_before:
                _shrink(shrunk, reg["shrink"])
            model.optimizer.step(values, grads)
            if reg["shrink"] and not shrink_before:
                _shrink(shrunk, reg["shrink"])
            step += 1
            loss_sum += loss * len(idx)
            hits = int(np.sum(out.argmax(axis=1) == yb))
            correct += hits
            seen += len(idx)
            history.batch_losses.append(loss)
            history.batch_accuracies.append(hits / len(idx))
            for cb in callbacks:
                cb.on_batch_end(model, step, loss)
            if bar:
                bar.update(b, loss_sum / seen)
            if checkpoint is not None and checkpoint.requested and step != max_steps:
                raise TrainingInterrupted(
                    LoopState(epoch, b, index_batches, step, (loss_sum, correct, seen),
                              rng.bit_generator.state, aug_rng.bit_generator.state, history),
                    checkpoint.requested)
            if step == max_steps:
                break
        if bar:
            bar.close()
        if not all(np.isfinite(p).all() for p in values):
            _restore(model, good)
            raise TrainingDiverged(epoch, len(index_batches),
                                   getattr(model.optimizer, "lr", None), history)
        row = {"epoch": epoch, "train_loss": loss_sum / seen, "train_accuracy": correct / seen}
        for prefix, data in (("val", validation_data), ("test", test_data)):
            if data is not None:
                ev = model.evaluate(*data)
                row.update({f"{prefix}_loss": ev["loss"], f"{prefix}_accuracy": ev["accuracy"]})
        row["seconds"] = time.perf_counter() - start
        history.epochs.append(row)
        if lr_decay != 1.0:
            model.optimizer.lr *= lr_decay
        for cb in callbacks:
            cb.on_epoch_end(model, epoch, row)
        if verbose:
            msg = (f"epoch {epoch}/{epochs}: train loss {row['train_loss']:.4f} "
                   f"acc {row['train_accuracy']:.4f}")
            for prefix, data in (("val", validation_data), ("test", test_data)):
                if data is not None:
                    msg += (f" | {prefix} loss {row[prefix + '_loss']:.4f} "
                            f"acc {row[prefix + '_accuracy']:.4f}")
            log(msg + f" | {row['seconds']:.1f}s")
        done = 0
        if checkpoint is not None:
            checkpoint.save(model, LoopState(epoch + 1, 0, None, step, (0.0, 0, 0),
                                             rng.bit_generator.state,
                                             aug_rng.bit_generator.state, history))
        if step == max_steps:
            break
    return history


def _shrink(arrays, rate):
    """Multiplicative shrinkage w <- w (1 - rate |w|), in place."""
    for p in arrays:
        p *= 1 - rate * np.abs(p)
