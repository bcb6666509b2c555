"""Argument checks shared by layers, optimisers, augmentation and configs: each returns the
value converted, or raises ValueError naming the argument, what was expected and what came."""
import math

import numpy as np


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def is_number(value):
    """A finite real number (booleans excluded): for validators that collect problems."""
    return _is_number(value) and math.isfinite(value)


def is_positive_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def number(name, value, low=None, high=None, low_open=False, high_open=False):
    """A finite real number within the bounds (closed unless ``low_open``/``high_open``)."""
    ok = _is_number(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
        if low is not None and high is not None:
            what = f"in {lo}, {hi}"
        elif low is not None:
            what = f"{'>' if low_open else '>='} {low:g}"
        elif high is not None:
            what = f"{'<' if high_open else '<='} {high:g}"
        else:
            what = "a finite number"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(value)


def positive(name, value):
    if not (_is_number(value) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def fraction(name, value):
    """A number in [0, 1)."""
    return number(name, value, 0, 1, high_open=True)


def integer(name, value, low=1):
    """An integer >= low (booleans refused)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        what = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)
