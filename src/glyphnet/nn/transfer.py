"""Transfer learning: copy trained layers from a saved model into a new one, and freeze
layers so that training leaves them bit-identical."""
import re

from ..errors import GlyphnetError

_RANGE = re.compile(r"^(\d*):(\d*)$")


def layer_indices(spec, count, key="layers"):
    """The layer indices a spec names among ``count`` layers: a list of indices such as
    [0, 1, 2], or a range "start:stop" (Python slice meaning: "0:3" is 0, 1, 2; ":4" the
    first four; "" all). Raises ValueError naming ``key`` when it is malformed or out of
    range."""
    if isinstance(spec, str):
        if spec == "":
            return list(range(count))
        m = _RANGE.match(spec.strip())
        if not m:
            raise ValueError(f"{key}: expected a range such as \"0:4\" or a list of layer "
                             f"indices, got {spec!r}")
        start = int(m.group(1) or 0)
        stop = int(m.group(2)) if m.group(2) else count
        if not start < stop <= count:
            raise ValueError(f"{key}: range {spec!r} must lie within the {count} layers "
                             f"(0:{count}) and hold at least one")
        return list(range(start, stop))
    if not isinstance(spec, (list, tuple)) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in spec):
        raise ValueError(f"{key}: expected a range such as \"0:4\" or a list of layer indices, "
                         f"got {spec!r}")
    bad = [i for i in spec if not 0 <= i < count]
    if bad:
        raise ValueError(f"{key}: layer {bad[0]} does not exist (the model has layers 0 to "
                         f"{count - 1})")
    return sorted(set(spec))


def copy_layers(model, source, indices, path="the source model"):
    """Copy the parameters and state of layers ``indices`` of ``source`` (a Sequential) into
    ``model``; each copied layer must have the same type and shapes in both."""
    for i in indices:
        if i >= len(source.layers):
            raise GlyphnetError(f"{path}: has {len(source.layers)} layers, no layer {i} to copy")
        src, dst = source.layers[i], model.layers[i]
        if src.kind != dst.kind:
            raise GlyphnetError(f"{path}: layer {i} is {src.kind!r}, the new model's layer {i} "
                                f"is {dst.kind!r}")
        for group in ("params", "state"):
            a, b = getattr(src, group), getattr(dst, group)
            for k in b:
                if k not in a or a[k].shape != b[k].shape:
                    got = a[k].shape if k in a else "none"
                    raise GlyphnetError(f"{path}: layer {i} ({src.kind}) {k} has shape {got}, "
                                        f"the new model needs {b[k].shape}")
                b[k][...] = a[k].astype(b[k].dtype)
    return model


def init_from(model, path, spec=""):
    """Copy the layers ``spec`` names (see :func:`layer_indices`) from the model saved at
    ``path`` into ``model``."""
    from .model import Sequential
    source = Sequential.load(path)
    return copy_layers(model, source, layer_indices(spec, len(model.layers)), path)


def freeze(model, indices):
    """Mark layers ``indices`` frozen (``trainable = False``): fit neither updates them nor
    keeps optimiser state for them, frozen batch-norm layers keep their statistics, and
    nothing below the lowest trainable layer is backpropagated."""
    for i in indices:
        model.layers[i].trainable = False
    return model

