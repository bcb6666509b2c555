"""Looking inside a served model for the page: every layer's activations for one drawing, the
incoming weights of a unit, ablation (units switched off), a 2-D map of the test set's
activations and the robustness curves. Callers hold the model's lock, except for
ActivationMap and robustness_answer, which take it themselves."""
import numpy as np

from ..inspection import embedding, robustness

MAX_MAPS = 64          # feature maps sent per layer
MAP_IMAGES = 2000      # test images on the 2-D map


def _rounded(a, decimals=3):
    return np.round(np.asarray(a, np.float64), decimals).tolist()


class _Ablate:
    """Switches units (dense) or feature maps (conv, pool) off: a pass-through layer put into
    the model for one forward pass."""

    def __init__(self, units):
        self.units = sorted(units)

    def forward(self, x, training=False):
        x = x.copy()
        x[..., self.units] = 0
        return x


def layer_info(model):
    """What the page needs to draw each layer: index, kind, output shape, maps or units."""
    return [{"index": i, "kind": layer.kind, "shape": list(layer.output_shape),
             "maps": len(layer.output_shape) == 3,
             "ablatable": layer.kind != "softmax" and i < len(model.layers) - 1}
            for i, layer in enumerate(model.layers)]


def check_ablation(model, ablate):
    """{layer index: set of units} from [[layer, unit], ...]; raises ValueError naming the bad
    pair."""
    out = {}
    info = layer_info(model)
    for pair in ablate:
        ok = isinstance(pair, list) and len(pair) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in pair)
        if ok:
            i, unit = pair
            ok = 0 <= i < len(info) and info[i]["ablatable"] and \
                0 <= unit < info[i]["shape"][-1]
        if not ok:
            raise ValueError(f'"ablate" holds {pair!r}; expected [layer, unit] pairs with a '
                             f"layer below the output and a unit (or feature map) index of it")
        out.setdefault(i, set()).add(unit)
    return out


def probabilities(model, x, ablate=None):
    """model.probabilities(x) with the units of ``ablate`` ({layer: units}) switched off."""
    layers = list(model.layers)
    try:
        for i in sorted(ablate or {}, reverse=True):
            model.layers.insert(i + 1, _Ablate(ablate[i]))
        return model.probabilities(x)
    finally:
        model.layers[:] = layers


def activations(model, x, ablate=None):
    """Every layer's output for one scaled input x (1, ...), ablated units at zero."""
    out = []
    for i, layer in enumerate(model.layers):
        x = layer.forward(x, False)
        if ablate and i in ablate:
            x = _Ablate(ablate[i]).forward(x)
        a = x[0]
        out.append(_rounded(np.moveaxis(a[..., :MAX_MAPS], -1, 0)) if a.ndim == 3
                   else _rounded(a))
    return out


def incoming_weights(model, index, unit):
    """The weights into ``unit`` of layer ``index``, from the nearest layer at or below it
    that has weights and the same number of units (so a ReLU or pooling unit shows the dense
    unit or filter it passes on). Returns a dict: layer, kind, maps (list of 2D arrays, one
    per input channel, for images and filters) or vector, bias; or None."""
    units = model.layers[index].output_shape[-1]
    for j in range(index, -1, -1):
        layer = model.layers[j]
        w = layer.params.get("W")
        if w is not None and layer.output_shape[-1] == units and w.ndim in (2, 4):
            b = layer.params.get("b")
            found = {"layer": j, "kind": layer.kind,
                     "bias": None if b is None else float(b[unit])}
            if w.ndim == 4:                                  # (kh, kw, in, out)
                found["maps"] = _rounded(np.moveaxis(w[:, :, :MAX_MAPS, unit], -1, 0), 4)
            elif len(layer.input_shape) == 3:                # dense on maps or an image
                maps = w[:, unit].reshape(layer.input_shape)
                found["maps"] = _rounded(np.moveaxis(maps[..., :MAX_MAPS], -1, 0), 4)
            else:
                found["vector"] = _rounded(w[:, unit], 4)
            return found
        if w is not None or layer.output_shape[-1] != units:
            return None
    return None


class ActivationMap:
    """The served model's test images, their predictions and 2-D maps of layer activations
    (computed once per layer and method). ``lock`` is the model's: held while the model runs,
    not while t-SNE runs."""

    def __init__(self, model, x, y, lock, limit=None):
        limit = limit or MAP_IMAGES
        self.model, self.x, self.y, self.lock = model, x[:limit], np.asarray(y[:limit]), lock
        self.scaled = model.scaler.transform(self.x) if model.scaler is not None else self.x
        with lock:
            self.pred = model.probabilities(self.scaled).argmax(axis=1)
        self.maps = {}

    def embedding(self, layer, method):
        key = (layer, method)
        if key not in self.maps:
            with self.lock:
                a = embedding.activations(self.model, self.scaled, layer)
            self.maps[key] = embedding.Embedding(a, method)
        return self.maps[key]

    def answer(self, layer, method, drawing=None):
        e = self.embedding(layer, method)
        placed = None
        if drawing is not None:
            with self.lock:
                a = embedding.activations(self.model, drawing, layer)
            placed = _rounded(e.place(a)[0])
        return {"layer": layer, "method": method, "count": len(self.y),
                "x": _rounded(e.coords[:, 0]), "y": _rounded(e.coords[:, 1]),
                "label": self.y.tolist(), "prediction": self.pred.tolist(),
                "accuracy": float(np.mean(self.pred == self.y)), "drawing": placed}

    def sample(self, i):
        return {"index": i, "pixels": _rounded(self.x[i, ..., 0], 2),
                "label": int(self.y[i]), "prediction": int(self.pred[i])}


def robustness_answer(model, x, y, limit, lock):
    """robustness.robustness on the first ``limit`` test images, as JSON lists."""
    with lock:
        result = robustness.robustness(model, x[:limit], y[:limit])
    out = {kind: {k: [None if np.isnan(v) else float(v) for v in values]
                  for k, values in curve.items()} for kind, curve in result.items()}
    return {"count": int(min(limit, len(y))), "units": robustness.UNITS, "curves": out}
