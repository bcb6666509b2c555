"""Finite-difference gradient checks in float64."""
import copy

import numpy as np


def relative_error(numeric, analytic):
    """||n - a|| / max(||n|| + ||a||, 1e-12): 0 when equal, 1 when opposite or one is zero."""
    denom = max(np.linalg.norm(numeric) + np.linalg.norm(analytic), 1e-12)
    return float(np.linalg.norm(numeric - analytic) / denom)


def angle_degrees(numeric, analytic):
    """Angle between the two gradient vectors, in degrees (0 = same direction)."""
    nn, na = np.linalg.norm(numeric), np.linalg.norm(analytic)
    if nn == 0 and na == 0:
        return 0.0
    if nn == 0 or na == 0:
        return 90.0
    u, v = numeric.ravel() / nn, analytic.ravel() / na
    # 2 atan2(|u - v|, |u + v|) stays accurate for tiny angles, where arccos(u.v) rounds to 0.
    return float(np.degrees(2 * np.arctan2(np.linalg.norm(u - v), np.linalg.norm(u + v))))


def numeric_gradient(f, a, eps=1e-6, entries=None, method="central"):
    """Finite differences of the scalar function f() with respect to the flat ``entries`` of
    the array a (all of them by default), perturbing a in place and restoring it: central
    (f(a + eps) - f(a - eps)) / (2 eps), error O(eps^2), or forward (f(a + eps) - f(a)) / eps,
    error O(eps) and one evaluation per entry. Returns a flat array, one value per entry."""
    if method not in ("central", "forward"):
        raise ValueError(f"method must be 'central' or 'forward', got {method!r}")
    flat = a.reshape(-1)
    entries = np.arange(flat.size) if entries is None else entries
    numeric = np.empty(len(entries))
    base = f() if method == "forward" else None
    for j, idx in enumerate(entries):
        old = flat[idx]
        flat[idx] = old + eps
        up = f()
        if method == "forward":
            flat[idx] = old
            numeric[j] = (up - base) / eps
            continue
        flat[idx] = old - eps
        down = f()
        flat[idx] = old
        numeric[j] = (up - down) / (2 * eps)
    return numeric


def check_model(model, x, labels, eps=1e-6, max_entries=40, seed=0, input_grad=False,
                method="central"):
    """Compare analytic gradients of the model's loss with finite differences (``method``:
    "central" or "forward", see :func:`numeric_gradient`).

    Works on a float64 copy of ``model``. For each parameter array, up to ``max_entries``
    randomly chosen entries are perturbed by +-eps. Returns a list of dicts: name, shape,
    checked (entries), rel_error, angle (degrees). With ``input_grad`` the gradient with respect
    to the input is checked too (as parameter "input").
    """
    model = copy.deepcopy(model).astype(np.float64)
    x = np.asarray(x, np.float64)
    rng = np.random.default_rng(seed)

    def reseed():
        # Every random layer (dropout) re-seeded so each evaluation draws the same mask.
        for layer in model.layers:
            if hasattr(layer, "rng"):
                layer.rng = np.random.default_rng(seed)

    def run():
        # In training mode (batch statistics).
        reseed()
        return model.loss_and_grads(x, labels, training=True)

    def loss_at():
        # The loss alone: a forward pass, no backward.
        reseed()
        upto = len(model.layers) - 1 if model._fused else None
        return model.loss(model.forward(x, True, upto), labels)[0]

    # Analytic gradients for every parameter (copied before the probes overwrite them).
    _, _, dx = run()
    analytic = {(i, k): g.copy() for i, k, _, g in model.parameters()}
    targets = [(f"layer{i}.{k}", p, analytic[(i, k)]) for i, k, p, _ in model.parameters()]
    if input_grad:
        targets.append(("input", x, dx))
    results = []
    for name, value, grad in targets:
        picks = np.arange(value.size) if value.size <= max_entries else \
            rng.choice(value.size, max_entries, replace=False)
        numeric = numeric_gradient(loss_at, value, eps, picks, method)
        exact = grad.reshape(-1)[picks]
        results.append({"name": name, "shape": tuple(value.shape), "checked": len(picks),
                        "rel_error": relative_error(numeric, exact),
                        "angle": angle_degrees(numeric, exact)})
    return results
