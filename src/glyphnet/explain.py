"""What the network looks at and what it imagines: input gradients and related views."""
import numpy as np


def class_score_gradient(model, x, targets):
    """d(score of class targets[n]) / d(x[n]) for each sample, where the score is the logit
    (the input of a final softmax) or the output unit. Returns an array shaped like x."""
    from .layers import Softmax
    x = np.asarray(x, model.dtype)
    upto = len(model.layers) - 1 if isinstance(model.layers[-1], Softmax) else None
    out = model.forward(x, False, upto)
    dout = np.zeros_like(out)
    dout[np.arange(len(x)), np.asarray(targets)] = 1
    return model.backward(dout, upto)


def saliency(model, x, targets=None):
    """Saliency maps (Simonyan et al.): |d score / d input|, maximum over channels, one
    (H, W) map per sample. ``targets`` defaults to each sample's predicted class."""
    x = np.asarray(x, model.dtype)
    if targets is None:
        targets = model.predict(x)
    grad = class_score_gradient(model, x, targets)
    return np.abs(grad).max(axis=-1) if grad.ndim == 4 else np.abs(grad)
