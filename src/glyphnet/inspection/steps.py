"""Curves per iteration: every N training steps, the training batch's loss and accuracy and the
loss and accuracy on a fixed evaluation subset, written as RUN_DIR/steps.csv."""
import numpy as np

from ..fileio import write_atomic
from ..nn.training import Callback

COLUMNS = ("step", "epoch", "batch_loss", "batch_accuracy", "eval_loss", "eval_accuracy")


class StepEvaluator(Callback):
    """Evaluates ``eval_data`` = (x, labels) every ``every`` steps (and at step 1).

    The batch columns are those of the step itself (``history.batch_losses`` and
    ``batch_accuracies``, computed in training mode as the update saw them); the eval columns
    come from ``model.evaluate`` on the same images every time.
    """

    def __init__(self, every, eval_data):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.every, self.eval_data = every, eval_data
        self.rows = []
        self._epoch = 0

    def on_epoch_begin(self, model, epoch):
        self._epoch = epoch

    def on_batch_end(self, model, step, loss):
        if step % self.every and step != 1:
            return
        ev = model.evaluate(*self.eval_data)
        self.rows.append({"step": step, "epoch": self._epoch, "batch_loss": float(loss),
                          "batch_accuracy": self.history.batch_accuracies[-1],
                          "eval_loss": ev["loss"], "eval_accuracy": ev["accuracy"]})

    def csv_text(self):
        lines = [",".join(COLUMNS)]
        lines += [",".join(f"{row[c]:.6g}" for c in COLUMNS) for row in self.rows]
        return "\n".join(lines) + "\n"

    def save(self, path):
        write_atomic(path, self.csv_text())

    def state(self):
        """The rows so far, for a checkpoint: (JSON-ready dict, no arrays)."""
        return {"rows": self.rows}, {}

    def load_state(self, meta, arrays):
        self.rows = meta["rows"]


def eval_subset(x, labels, size, seed=0):
    """A fixed random subset of ``size`` samples (0 or more than there are: all), in data
    order, the same for every run with the same seed."""
    if not size or size >= len(x):
        return x, labels
    keep = np.sort(np.random.default_rng(seed).choice(len(x), size, replace=False))
    return x[keep], labels[keep]


def load_steps(path):
    """steps.csv as a dict of column name -> float array."""
    with open(path) as f:
        header = f.readline().strip().split(",")
        rows = [line.strip().split(",") for line in f if line.strip()]
    data = np.array(rows, np.float64).reshape(len(rows), len(header))
    return {name: data[:, k] for k, name in enumerate(header)}
