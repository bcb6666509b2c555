"""What the network looks at and what it imagines: input gradients and related views."""
import numpy as np

from ..errors import GlyphnetError
from ..nn.layers import Activation
from .roles import first_conv, is_sigmoid_net


def class_score_gradient(model, x, targets):
    """d(score of class targets[n]) / d(x[n]) for each sample, where the score is the logit
    (the input of a final softmax) or the output unit. Returns an array shaped like x."""
    x = np.asarray(x, model.dtype)
    out = model.logits(x)
    dout = np.zeros_like(out)
    dout[np.arange(len(x)), np.asarray(targets)] = 1
    return model.backward(dout, len(model.layers) - 1 if model.ends_in_softmax else None)


def saliency(model, x, targets=None):
    """Saliency maps (Simonyan et al.): |d score / d input|, maximum over channels, one
    (H, W) map per sample. ``targets`` defaults to each sample's predicted class."""
    x = np.asarray(x, model.dtype)
    if targets is None:
        targets = model.predict(x)
    grad = class_score_gradient(model, x, targets)
    return np.abs(grad).max(axis=-1) if grad.ndim == 4 else np.abs(grad)


def _logit(y):
    return np.log(y / (1 - y))


def _rescale(a, low, high):
    """Shift and scale ``a`` into [low, high] (the backwards query's step 3)."""
    a = a - a.min()
    top = a.max()
    return low + (high - low) * (a / top if top > 0 else a)


def backwards_query(model, target, low=0.01, high=0.99):
    """The image a sigmoid network 'imagines' for class ``target`` (report 002).

    For a model made only of dense layers, each followed by a sigmoid: start from the one-hot
    target (``high`` for the class, ``low`` elsewhere) and, layer by layer down to the input,
    undo the sigmoid with the logit (divided by its slope), subtract the bias and multiply by
    the transposed weights, then rescale the result into [low, high] so the next logit is
    finite. Returns an array of the model's input shape, in the model's input space.
    """
    layers = model.layers
    pairs = list(zip(layers[0::2], layers[1::2]))
    if not is_sigmoid_net(model):
        kinds = ", ".join(layer.kind for layer in layers)
        raise GlyphnetError(f"the backwards query needs a network of dense layers each followed "
                            f"by a sigmoid; this model has: {kinds}")
    n_out = layers[-2].units
    if not 0 <= int(target) < n_out:
        raise GlyphnetError(f"target class {target!r} is out of range 0..{n_out - 1}")
    if not 0 < low < high < 1:
        raise ValueError(f"need 0 < low < high < 1, got low={low!r}, high={high!r}")
    b = np.full(n_out, low, np.float64)
    b[int(target)] = high
    for dense, sig in reversed(pairs):
        z = _logit(b) / sig.slope
        if dense.bias:
            z = z - dense.params["b"]
        b = _rescale(dense.params["W"].astype(np.float64) @ z, low, high)
    return b.reshape(model.input_shape).astype(model.dtype)


def input_range(model):
    """(low, high) arrays of the input shape: where the images [0, 1] land after the model's
    scaler (its input space)."""
    shape = (1,) + tuple(model.input_shape)
    lo, hi = np.zeros(shape, np.float32), np.ones(shape, np.float32)
    if model.scaler is not None:
        lo, hi = model.scaler.transform(lo), model.scaler.transform(hi)
    return lo[0].astype(model.dtype), hi[0].astype(model.dtype)


def activation_maximisation(model, targets, steps=100, lr=0.05, decay=1e-3, seed=0):
    """Inputs that maximise the score (logit) of each class in ``targets``, found by gradient
    ascent on the input: x <- clip(x + lr * g / rms(g) - decay * (x - grey)), with the pixel
    values kept in the range real images have. Starts from a grey image with a little noise.

    Returns (images of shape (len(targets),) + input shape, in the model's input space;
    the class scores before each step and after the last, shape (steps + 1, len(targets))).
    """
    lo, hi = input_range(model)
    grey = lo + 0.1 * (hi - lo)
    targets = np.atleast_1d(np.asarray(targets, np.int64))
    n_out = model.output_shape[0]
    if targets.ndim != 1 or len(targets) == 0 or targets.min() < 0 or targets.max() >= n_out:
        raise ValueError(f"targets must be class indices in 0..{n_out - 1}, got {targets!r}")
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((len(targets),) + grey.shape)
    x = (grey + 0.01 * (hi - lo) * noise).astype(model.dtype)
    scores = []
    for _ in range(steps):
        scores.append(_score(model, x, targets))
        grad = class_score_gradient(model, x, targets)
        rms = np.sqrt(np.mean(grad.reshape(len(x), -1) ** 2, axis=1))
        step = grad / (rms.reshape((-1,) + (1,) * (x.ndim - 1)) + 1e-12)
        x = np.clip(x + lr * (hi - lo) * step - decay * (x - grey), lo, hi).astype(model.dtype)
    scores.append(_score(model, x, targets))
    return x, np.array(scores)


def _score(model, x, targets):
    """The logit (or output) of class targets[n] for each sample."""
    return model.logits(x)[np.arange(len(x)), targets]


def deconvolution(model, x):
    """Activation maps of the first convolutional layer projected back onto that layer's input
    (the image when it is the first layer): for each image and each filter f, the transposed
    convolution (report 004's Toeplitz transpose) of the map of filter f alone, computed by the
    layer's own backward pass. The map is taken after the activation when one follows the layer.

    Returns an array (N, F, H, W), summed over input channels.
    """
    i = first_conv(model)
    if i is None:
        raise GlyphnetError("the deconvolution view needs a model with a convolutional layer")
    conv = model.layers[i]
    h = model.forward(np.asarray(x, model.dtype), False, i)
    maps = conv.forward(h, False)
    if i + 1 < len(model.layers) and isinstance(model.layers[i + 1], Activation):
        maps = model.layers[i + 1].forward(maps, False)
    saved = {k: g.copy() for k, g in conv.grads.items()}
    out = np.empty((len(h), maps.shape[-1]) + h.shape[1:3], model.dtype)
    for f in range(maps.shape[-1]):
        one = np.zeros_like(maps)
        one[..., f] = maps[..., f]
        out[:, f] = conv.backward(one).sum(axis=-1)
    for k, g in saved.items():
        conv.grads[k][...] = g
    return out
