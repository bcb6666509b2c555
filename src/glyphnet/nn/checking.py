"""Checks of what users pass to the model's public methods, as scikit-learn checks every
entry: array-likes are accepted, shapes are checked against the model's input shape, labels
must be class indices in range, inputs must be finite, and every message names the argument
and what was expected."""
import numbers

import numpy as np


def as_inputs(model, x, name="x", build=False):
    """``x`` as a float array of shape (n, *model.input_shape). Samples given flat, (n, H*W*C),
    are reshaped to the model's image shape. A model without an input shape is built for the
    samples' shape when ``build`` is set (the first fit)."""
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of samples, got {type(x).__name__} ({exc})") \
            from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(f"{name} must hold numbers, got an array of {a.dtype}")
    if a.ndim < 2:
        raise ValueError(f"{name} must have a batch axis and at least one feature axis, got "
                         f"shape {a.shape}")
    if model.input_shape is None:
        if not build:
            raise ValueError("the model has no input shape yet: pass input_shape to Sequential, "
                             "call build(input_shape) or fit it first")
        model.build(a.shape[1:], getattr(model, "seed", 0))
    shape = tuple(model.input_shape)
    if a.shape[1:] != shape:
        if a.ndim == 2 and a.shape[1] == int(np.prod(shape)):
            a = a.reshape((len(a),) + shape)
        else:
            raise ValueError(f"{name} has samples of shape {a.shape[1:]} but the model expects "
                             f"{shape} (or flat samples of {int(np.prod(shape))} values)")
    if a.dtype != model.dtype:
        a = a.astype(model.dtype)
    if not np.isfinite(a).all():
        bad = int(np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).all(axis=1))[0])
        raise ValueError(f"{name} holds NaN or infinite values (first in sample {bad})")
    return a


def as_labels(model, y, n, name="y"):
    """``y`` as int64 class indices 0..classes-1, one per sample."""
    try:
        a = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of class indices ({exc})") from None
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one class index per sample), got "
                         f"shape {a.shape}")
    if len(a) != n:
        raise ValueError(f"x has {n} samples but {name} has {len(a)} labels")
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{name} must hold integer class indices, got {a.dtype}")
    if np.issubdtype(a.dtype, np.floating):
        if not (np.isfinite(a).all() and np.all(a == np.round(a))):
            raise ValueError(f"{name} must hold integer class indices, got non-integer values")
    classes = model.output_shape[-1]
    if len(a) and (a.min() < 0 or a.max() >= classes):
        bad = a[(a < 0) | (a >= classes)][0]
        raise ValueError(f"{name} holds label {bad:g}, out of range: the model has {classes} "
                         f"outputs, so labels must be 0..{classes - 1}")
    return a.astype(np.int64)


def check_xy(model, x, y, x_name="x", y_name="y", build=False):
    x = as_inputs(model, x, x_name, build)
    if len(x) == 0:
        raise ValueError(f"{x_name} holds no samples")
    return x, as_labels(model, y, len(x), y_name)


def check_batch_size(batch_size):
    if batch_size is None:
        return
    if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or \
            batch_size < 0:
        raise ValueError(f"batch_size must be 0/None (full batch) or a positive integer, got "
                         f"{batch_size!r}")
