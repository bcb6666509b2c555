"""Subsets and splits of a data set by class: held-out test images, the first n per class, a
validation split. Every function returns index arrays in data order."""
import numpy as np

from ..errors import DataError


def _class_order(labels, shuffle, seed):
    """Indices of each class in data order, or shuffled with ``seed``."""
    rng = np.random.default_rng(seed)
    out = {}
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        out[int(c)] = rng.permutation(idx) if shuffle else idx
    return out


def split_per_class(labels, test_per_class, shuffle=False, seed=0):
    """(train, test) index arrays: the last ``test_per_class`` samples of each class (in data
    order, or shuffled with ``seed``) go to test. Indices stay in data order."""
    train, test = [], []
    for c, idx in _class_order(labels, shuffle, seed).items():
        if len(idx) <= test_per_class:
            raise DataError(f"class {c} has {len(idx)} samples; cannot hold out "
                            f"{test_per_class} for testing and keep some for training")
        train.append(idx[:len(idx) - test_per_class])
        test.append(idx[len(idx) - test_per_class:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def first_per_class(labels, n, shuffle=False, seed=0):
    """Indices (in data order) of the first ``n`` samples of each class."""
    keep = [idx[:n] for idx in _class_order(labels, shuffle, seed).values()]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def validation_split(labels, fraction, shuffle=False, seed=0):
    """(train, validation) index arrays holding out ``fraction`` of each class (at least one
    sample of every class with two or more)."""
    train, val = [], []
    for idx in _class_order(labels, shuffle, seed).values():
        k = min(max(1, int(round(fraction * len(idx)))), len(idx) - 1) if len(idx) > 1 else 0
        train.append(idx[:len(idx) - k])
        val.append(idx[len(idx) - k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
