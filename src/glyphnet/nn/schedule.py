"""The order in which training samples are presented: one list of index batches per epoch."""
import numpy as np

BATCH_ORDERS = ("shuffled", "fixed", "balanced")


def batches(n, batch_size, shuffle, rng):
    """Index arrays covering range(n): batch_size None or 0 means the whole set (full batch)."""
    order = rng.permutation(n) if shuffle else np.arange(n)
    size = n if not batch_size else batch_size
    return [order[i:i + size] for i in range(0, n, size)]


def balanced_batches(labels, batch_size, rng, num_classes=None):
    """Batches holding batch_size / k images of each of the k classes (batch_size 0: one of
    each), in a new random order every epoch; an epoch ends when the smallest class runs out,
    so the other classes' left-over images wait for a later epoch's draw."""
    labels = np.asarray(labels)
    k = int(labels.max()) + 1 if num_classes is None else num_classes
    per = max(1, (batch_size or k) // k)
    if batch_size and batch_size % k:
        raise ValueError(f"balanced batches need a batch size that is a multiple of the "
                         f"{k} classes, got {batch_size}")
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in range(k)]
    empty = [c for c, pool in enumerate(pools) if len(pool) < per]
    if empty:
        raise ValueError(f"balanced batches need {per} image(s) of every class; class "
                         f"{empty[0]} has {len(pools[empty[0]])}")
    count = min(len(pool) for pool in pools) // per
    out = []
    for b in range(count):
        idx = np.concatenate([pool[b * per:(b + 1) * per] for pool in pools])
        out.append(rng.permutation(idx))
    return out


def epoch_batches(order, labels, batch_size, rng, num_classes=None):
    """One epoch's index batches for ``order`` in BATCH_ORDERS."""
    if order == "balanced":
        return balanced_batches(labels, batch_size, rng, num_classes)
    if order not in BATCH_ORDERS:
        raise ValueError(f"batch_order must be one of {', '.join(BATCH_ORDERS)}, got {order!r}")
    return batches(len(labels), batch_size, order == "shuffled", rng)
