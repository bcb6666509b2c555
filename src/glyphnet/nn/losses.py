"""Losses. Each returns (mean loss over the batch, dL/d(output)) for integer class labels."""
import numpy as np

from ..registry import Registry

LOSSES = Registry("loss")


class Loss:
    """``loss(outputs, labels)`` returns (mean loss over the batch, dL/d(outputs)).
    ``from_logits``: the loss takes the logits of a final softmax layer (the model then
    skips that layer in training)."""

    from_logits = False

    def __init__(self):
        pass

    def get_config(self):
        return {}


@LOSSES.register("cross_entropy")
class CrossEntropy(Loss):
    """Softmax cross-entropy computed from logits z:

    L = mean_n [ logsumexp(z_n) - z_n[y_n] ],   dL/dz = (softmax(z) - onehot(y)) / N.
    The log-sum-exp is shifted by the row maximum, so extreme logits give no overflow or NaN.
    """

    from_logits = True

    def __call__(self, z, labels):
        n = len(z)
        shifted = z - z.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        sum_e = e.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        loss = float(np.mean(np.log(sum_e[:, 0]) - shifted[rows, labels]))
        grad = e
        grad /= sum_e
        grad[rows, labels] -= 1
        grad /= n
        return loss, grad


@LOSSES.register("mse")
class SumOfSquares(Loss):
    """Sum-of-squares error against one-hot targets, averaged over the batch:

    L = mean_n 0.5 * sum_k (o_nk - t_nk)^2,   dL/do = (o - t) / N.
    ``targets`` = (low, high) softens the one-hot code, e.g. (0.01, 0.99) for sigmoid outputs.
    """

    from_logits = False

    def __init__(self, targets=(0.0, 1.0)):
        low, high = (float(v) for v in targets)
        if not low < high:
            raise ValueError(f"targets must be (low, high) with low < high, got {targets!r}")
        self.targets = (low, high)

    def __call__(self, out, labels):
        n = len(out)
        low, high = self.targets
        diff = out - low
        diff[np.arange(n), labels] -= high - low
        loss = float(0.5 * np.sum(diff * diff) / n)
        diff /= n
        return loss, diff

    def get_config(self):
        return {"targets": list(self.targets)}


def loss_from_config(spec):
    """A loss from a name or a dict such as {"type": "mse", "targets": [0.01, 0.99]}."""
    return LOSSES.build({"type": spec} if isinstance(spec, str) else spec)
