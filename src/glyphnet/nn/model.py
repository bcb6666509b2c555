"""Sequential: a stack of layers with fit/evaluate/predict and save/load (npz, no pickle)."""
import json
import math

import numpy as np

from .. import memory
from ..errors import ConfigError, GlyphnetError
from ..fileio import NPZ_ERRORS, atomic_open, read_npz
from .backend import blas_threads_for, pack
from .conv import Conv2D, MaxPool2D, unwindow
from .layers import Layer, ReLU, Softmax, layer_from_config, softmax
from .losses import CrossEntropy, loss_from_config
from .checking import as_inputs, check_xy
from .optimizers import Adam, optimizer_from_config
from .parallel import THREADS, SplitForwards

FORMAT_VERSION = 1


class Sequential:
    """Layers applied in order.

    >>> model = Sequential([Dense(256), ReLU(), Dense(10), Softmax()], input_shape=(28, 28, 1))
    >>> model.compile(loss="cross_entropy", optimizer=Adam(1e-3))
    >>> history = model.fit(x_train, y_train, epochs=5, batch_size=128)
    """

    def __init__(self, layers, input_shape=None, seed=0, classes=None, dtype=np.float32):
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} is {type(layer).__name__}, not a glyphnet Layer")
        self.classes = None if classes is None else [str(c) for c in classes]
        self.scaler = None
        self.preparation = None   # how the training images were prepared (data.preparation_for)
        self.loss = CrossEntropy()
        self.optimizer = None
        self.regularization = {"l1": 0.0, "l2": 0.0, "shrink": 0.0}
        self.dtype = np.dtype(dtype)
        self.seed = seed
        self.input_shape = None
        # hook(index, layer, dy) runs with dL/d(output of layer index) before its backward.
        self.backward_hooks = []
        self._steps = []            # how the last forward ran the layers (plan_steps)
        if input_shape is not None:
            self.build(input_shape, seed)

    # ----------------------------------------------------------------- structure
    def build(self, input_shape, seed=0):
        """Create every layer's parameters for samples of ``input_shape`` (no batch axis)."""
        rng = np.random.default_rng(seed)
        shape = self.input_shape = tuple(int(s) for s in input_shape)
        for i, layer in enumerate(self.layers):
            _check_memory(i, layer, shape, self.dtype.itemsize)
            try:
                shape = layer.build(shape, rng, self.dtype)
            except MemoryError:
                raise ValueError(f"layer {i} ({layer!r}): not enough memory for its "
                                 f"parameters") from None
        self._pack()
        return self

    def _pack(self):
        """Lay the parameters end to end in one buffer, and their gradients in another, in
        the order of :meth:`parameters`: the optimiser then updates them all with one call
        per operation (backend.flat_groups). Values and shapes stay as they were."""
        for group in ("params", "grads"):
            owners = [(getattr(layer, group), k) for layer in self.layers for k in layer.params]
            for (d, k), view in zip(owners, pack([d[k] for d, k in owners])):
                d[k] = view

    @property
    def output_shape(self):
        return self.layers[-1].output_shape

    def compile(self, loss="cross_entropy", optimizer=None, l1=0.0, l2=0.0, shrink=0.0,
                shrink_biases=False, shrink_when="after"):
        """Set the loss, the optimiser and the weight penalties used by ``fit``.

        l2 adds l2 * w to each weight gradient (penalty l2/2 * ||w||^2), l1 adds l1 * sign(w),
        and shrink applies w <- w * (1 - shrink * |w|) ``shrink_when`` ("after" or "before")
        each update, to the biases too with ``shrink_biases``. Otherwise biases and batch-norm
        parameters are not penalised.
        """
        if isinstance(loss, str):
            loss = loss_from_config({"type": loss})
        elif isinstance(loss, dict):
            loss = loss_from_config(loss)
        if isinstance(optimizer, dict):
            optimizer = optimizer_from_config(optimizer)
        for name, value in (("l1", l1), ("l2", l2), ("shrink", shrink)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if shrink_when not in ("after", "before"):
            raise ValueError(f"shrink_when must be 'after' or 'before', got {shrink_when!r}")
        self.loss = loss
        self.optimizer = optimizer or Adam()
        self.regularization = {"l1": float(l1), "l2": float(l2), "shrink": float(shrink),
                               "shrink_biases": bool(shrink_biases), "shrink_when": shrink_when}
        return self

    def parameters(self):
        """(layer index, name, value, gradient) for every trainable array."""
        return [(i, k, layer.params[k], layer.grads[k])
                for i, layer in enumerate(self.layers) for k in layer.params]

    def trainable_parameters(self):
        """:meth:`parameters` of the layers that are not frozen (``layer.trainable``)."""
        return [p for p in self.parameters() if getattr(self.layers[p[0]], "trainable", True)]

    def count_params(self):
        return int(sum(p.size for _, _, p, _ in self.parameters()))

    def training_bytes(self, batch_size):
        """An estimate (a lower bound) of the memory a training step on ``batch_size``
        samples needs: every parameter 4 times (value, gradient, two optimiser moments) and
        every layer's output twice (kept for backward, and its gradient)."""
        outputs = sum(math.prod(layer.output_shape) for layer in self.layers)
        outputs += math.prod(self.input_shape)
        return self.dtype.itemsize * (4 * self.count_params() + 2 * batch_size * outputs)

    def astype(self, dtype):
        """Convert every parameter and state array (float64 for gradient checks)."""
        self.dtype = np.dtype(dtype)
        for layer in self.layers:
            layer.astype(self.dtype)
        self._pack()
        return self

    def summary(self):
        lines = [f"input {self.input_shape}"]
        for i, layer in enumerate(self.layers):
            n = sum(p.size for p in layer.params.values())
            lines.append(f"{i:>3} {layer!r:<60} -> {layer.output_shape}  params {n}")
        lines.append(f"total parameters: {self.count_params()}")
        return "\n".join(lines)

    # ----------------------------------------------------------------- passes
    @property
    def _fused(self):
        """Softmax output trained through the fused softmax cross-entropy of the logits."""
        return self.ends_in_softmax and getattr(self.loss, "from_logits", False)

    def forward(self, x, training=False, upto=None):
        """Run layers[:upto] (all by default).

        Two reorderings make it faster and change nothing but rounding (see plan_steps):
        a ReLU followed by max pooling runs pooling first (max is monotone, so
        relu(maxpool(x)) = maxpool(relu(x)), on a quarter of the values, with the same
        gradients: where a window's maximum is positive the same position receives dL/dy,
        where it is not both orders give 0 everywhere; tests/test_pool_first.py), and a
        convolution under a 2x2 max pooling hands its outputs over window by window
        (Conv2D.forward_windows), so the pooling reads contiguous runs.
        """
        self._steps = plan_steps(self.layers[:upto])
        for step in self._steps:
            x = self.forward_step(step, x, training)
        return x

    def forward_step(self, step, x, training=False):
        """Run one step (kind, layer indices, ReLU index or None) of the plan (plan_steps)."""
        kind, idx, relu = step
        if kind == "layer":
            layer = self.layers[idx[0]]
            # A frozen layer with state (batch norm) runs as in evaluation: its statistics stay.
            frozen = not getattr(layer, "trainable", True) and layer.state
            return layer.forward(x, training and not frozen)
        pool = self.layers[idx[-1]]
        if kind == "windows":
            x = pool.forward_windows(self.layers[idx[0]].forward_windows(x, training), training)
        else:
            x = pool.forward(x, training)
        return x if relu is None else self.layers[relu].forward(x, training)

    def backward(self, dout, upto=None, input_grad=True):
        """Backpropagate dL/d(output of layers[:upto]); returns dL/d(input).

        With ``input_grad=False`` (training) nothing below the first trainable layer (with
        parameters, not frozen) is run,
        that layer computes only its parameter gradients when it can (``backward_params``),
        and None is returned: for the usual first Dense layer that skips a quarter of the
        work of a training step. A frozen layer above it computes only dL/d(input) when it
        can (``backward_input``). Each of ``backward_hooks`` is called as hook(i, layer,
        dL/d(output of layer i)) just before layer i's backward runs (not for a ReLU that ran
        after its pooling, see :meth:`forward`; in a step cut into slices, once per slice,
        see nn/parallel.py).
        """
        layers = self.layers[:upto]
        first = -1 if input_grad else next(
            (i for i, layer in enumerate(layers)
             if layer.params and getattr(layer, "trainable", True)), len(layers))
        for step in reversed(self._steps):
            if step[1][-1] < first:
                break
            dout = self.backward_step(step, dout, first, input_grad)
        return dout if input_grad else None

    def backward_step(self, step, dout, first=-1, input_grad=True):
        """dL/d(input of a step of the plan) from dL/d(its output), running the hooks; the
        layer with index ``first`` computes only its parameter gradients and gives None."""
        kind, idx, relu = step
        for hook in self.backward_hooks:
            hook(idx[-1], self.layers[idx[-1]], dout)
        if kind == "layer":
            return self._backward_layer(self.layers[idx[0]], dout, idx[0] == first, input_grad)
        pool = self.layers[idx[-1]]
        if relu is not None:
            dout = self.layers[relu].backward(dout)
        if kind == "pool_first":
            return pool.backward(dout)
        conv, dout = self.layers[idx[0]], pool.backward_windows(dout)
        for hook in self.backward_hooks:
            hook(idx[0], conv, unwindow(dout, conv.output_shape))
        return self._backward_layer(conv, dout, idx[0] == first, input_grad)

    @staticmethod
    def _backward_layer(layer, dout, first, input_grad):
        """dL/d(input of layer), or only its parameter gradients if it is the first trainable
        layer of a step that needs no input gradient; a frozen layer above the first trainable
        one computes only dL/d(input) when it can."""
        if first:
            getattr(layer, "backward_params", layer.backward)(dout)
            return None
        frozen = not input_grad and layer.params and not getattr(layer, "trainable", True)
        return getattr(layer, "backward_input" if frozen else "backward", layer.backward)(dout)

    def loss_and_grads(self, x, labels, training=True, input_grad=True):
        """Forward, loss and backward on one batch. Returns (loss, logits or outputs, dL/dx);
        dL/dx is None with ``input_grad=False`` (see :meth:`backward`)."""
        upto = len(self.layers) - 1 if self._fused else None
        out = self.forward(x, training, upto)
        loss, dout = self.loss(out, labels)
        dx = self.backward(dout, upto, input_grad)
        return loss, out, dx

    @property
    def class_names(self):
        """The class names, or "0", "1", ... when the model was built without them."""
        return self.classes or [str(i) for i in range(self.output_shape[-1])]

    @property
    def ends_in_softmax(self):
        return isinstance(self.layers[-1], Softmax)

    def logits(self, x, training=False):
        """The outputs before a final softmax layer (all outputs when there is none)."""
        return self.forward(x, training, len(self.layers) - 1 if self.ends_in_softmax else None)

    def probabilities(self, x, batch_size=1000):
        """Class probabilities for display and thresholds: the softmax output; a softmax of
        the outputs of a model trained with cross-entropy on logits; and the outputs
        themselves, clipped at 0 and normalised to sum 1, for any other model (e.g. sigmoid
        outputs trained with sum of squares)."""
        out = self.predict_proba(x, batch_size)
        if self.ends_in_softmax:
            return out
        if getattr(self.loss, "from_logits", False):
            return softmax(out)
        out = np.clip(out, 0, None)
        total = out.sum(axis=1, keepdims=True)
        return np.where(total > 0, out / np.where(total > 0, total, 1), 1 / out.shape[1])

    def predict_proba(self, x, batch_size=1000):
        """The model's outputs for each sample (probabilities when it ends in softmax)."""
        x = as_inputs(self, x)
        size = min(batch_size, len(x))
        with blas_threads_for(size), SplitForwards(self, THREADS, size) as forward:
            outs = [forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0,) + self.output_shape, self.dtype)

    def predict(self, x, batch_size=1000):
        """The most likely class index of each sample."""
        return self.predict_proba(x, batch_size).argmax(axis=1)

    def evaluate(self, x, labels, batch_size=1000):
        """Mean loss and accuracy on (x, labels), in evaluation mode."""
        x, labels = check_xy(self, x, labels)
        upto = len(self.layers) - 1 if self._fused else None
        total_loss, correct = 0.0, 0
        size = min(batch_size, len(x))
        with blas_threads_for(size), SplitForwards(self, THREADS, size) as forward:
            for i in range(0, len(x), batch_size):
                xb = np.asarray(x[i:i + batch_size], dtype=self.dtype)
                out = forward(xb, upto)
                loss, _ = self.loss(out, labels[i:i + batch_size])
                total_loss += loss * len(xb)
                correct += int(np.sum(out.argmax(axis=1) == labels[i:i + batch_size]))
        n = max(len(x), 1)
        return {"loss": total_loss / n, "accuracy": correct / n}

    def fit(self, x, labels, **kwargs):
        """Train; see :func:`glyphnet.nn.training.fit` for the options. Returns a History."""
        from .training import fit
        return fit(self, x, labels, **kwargs)

    # ----------------------------------------------------------------- persistence
    def to_onnx(self, path=None, **kwargs):
        """The model as an ONNX ModelProto, also written to ``path`` when given; see
        :func:`glyphnet.interop.onnx.to_onnx`. Needs ``pip install 'glyphnet[onnx]'``."""
        from ..interop.onnx import to_onnx
        return to_onnx(self, path, **kwargs)

    def get_config(self):
        if self.input_shape is None:
            raise ValueError("the model has no input shape yet: build or fit it before saving")
        return {
            "format": FORMAT_VERSION,
            "input_shape": list(self.input_shape),
            "layers": [{"type": layer.kind, **layer.get_config()} for layer in self.layers],
            "loss": {"type": self.loss.kind, **self.loss.get_config()},
            "classes": self.classes,
            "scaler": None if self.scaler is None else self.scaler.get_config(),
            "preparation": self.preparation,
        }

    def save(self, path):
        """Write weights and architecture to ``path`` (.npz), atomically."""
        arrays = {"architecture": np.array(json.dumps(self.get_config()))}
        for i, layer in enumerate(self.layers):
            for group, d in (("param", layer.params), ("state", layer.state)):
                for k, v in d.items():
                    arrays[f"{group}/{i}/{k}"] = v
        if self.scaler is not None:
            for k, v in self.scaler.arrays().items():
                arrays[f"scaler/{k}"] = v
        with atomic_open(path) as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save` (no pickle involved). Everything in the file
        is checked: the architecture record with the config validator (every problem at
        once), the weights (present, finite floats of the declared shapes) and the class
        names against the outputs; a bad file is one GlyphnetError/ConfigError naming it."""
        from .scaling import Scaler
        try:
            arrays = read_npz(path)
            if "architecture" not in arrays:
                raise ValueError("an .npz archive without glyphnet's architecture record")
            config = json.loads(str(arrays.pop("architecture")))
        except FileNotFoundError:
            raise GlyphnetError(f"{path}: no such model file") from None
        except NPZ_ERRORS as exc:
            raise GlyphnetError(f"{path}: not a glyphnet model file ({exc})") from None
        if not isinstance(config, dict):
            raise GlyphnetError(f"{path}: the architecture record is not a table")
        if config.get("format") != FORMAT_VERSION:
            raise GlyphnetError(f"{path}: model format {config.get('format')!r} is not supported")
        layers, loss, classes = _check_architecture(config, f"the model file {path}")
        model = cls([layer_from_config(s) for s in layers], classes=classes)
        try:
            model.build(config["input_shape"])
        except (ValueError, TypeError) as exc:
            raise GlyphnetError(f"{path}: the layers cannot be built for inputs of shape "
                                f"{tuple(config['input_shape'])}: {exc}") from None
        outputs = model.output_shape[-1]
        if classes is not None and len(classes) != outputs:
            raise GlyphnetError(f"{path}: {len(classes)} class names for a model with {outputs} "
                                f"outputs")
        model.loss = loss_from_config(loss)
        model.preparation = config.get("preparation")
        problems = []
        for i, layer in enumerate(model.layers):
            for group, d in (("param", layer.params), ("state", layer.state)):
                for k in d:
                    name = f"{group}/{i}/{k}"
                    saved = arrays.get(name)
                    if saved is None:
                        problems.append(f"{name}: missing")
                    elif saved.shape != d[k].shape:
                        problems.append(f"{name}: shape {saved.shape}, expected {d[k].shape}")
                    elif not np.issubdtype(saved.dtype, np.floating):
                        problems.append(f"{name}: {saved.dtype} values, expected floats")
                    elif not np.isfinite(saved).all():
                        problems.append(f"{name}: holds NaN or infinity")
                    else:
                        d[k][...] = saved       # in place: the arrays stay packed
        if problems:
            raise ConfigError(problems, f"the weights of {path}")
        if config.get("scaler"):
            extra = {k[len("scaler/"):]: v for k, v in arrays.items() if k.startswith("scaler/")}
            try:
                model.scaler = Scaler.from_config(config["scaler"], extra)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise GlyphnetError(f"{path}: bad input scaling record ({exc})") from None
        return model


def plan_steps(layers):
    """How forward runs the layers: a list of steps (kind, indices, the index of a ReLU run
    after the pooling or None): "layer" (one layer); "pool_first" (a ReLU and the max pooling
    after it: pooling, then the ReLU); "windows" (a convolution and the 2x2 max pooling after
    it, maybe with a ReLU between them: Conv2D.forward_windows, MaxPool2D.forward_windows)."""
    steps, i = [], 0
    while i < len(layers):
        after = layers[i + 1:i + 3]
        relu = bool(after) and type(after[0]) is ReLU
        if _windowed(layers[i], after[relu] if len(after) > relu else None):
            kind, size, relu_at = "windows", 2 + relu, i + 1 if relu else None
        elif type(layers[i]) is ReLU and after and isinstance(after[0], MaxPool2D):
            kind, size, relu_at = "pool_first", 2, i
        else:
            kind, size, relu_at = "layer", 1, None
        steps.append((kind, tuple(range(i, i + size)), relu_at))
        i += size
    return steps


def _windowed(conv, pool):
    """Whether a convolution hands its outputs to the max pooling above it window by window."""
    return type(conv) is Conv2D and not conv._is_pointwise() and \
        type(pool) is MaxPool2D and pool._halving()


def _check_architecture(config, source):
    """The layer specs, loss spec and class names of an architecture record, validated like a
    config's; raises ConfigError listing every problem."""
    from ..schema import _check_object
    from .layers import LAYERS
    from .losses import LOSSES
    problems = []
    shape = config.get("input_shape")
    if not isinstance(shape, list) or not 1 <= len(shape) <= 3 or \
            not all(type(s) is int and s >= 1 for s in shape):
        problems.append(f"input_shape: expected a list of 1 to 3 positive integers, got "
                        f"{shape!r}")
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        problems.append(f"layers: expected a non-empty list of layer tables, got {layers!r}")
        layers = []
    layers = [_check_object(f"layers[{i}]", LAYERS, spec, problems, "layer")
              for i, spec in enumerate(layers)]
    loss = _check_object("loss", LOSSES, config.get("loss"), problems, "loss")
    classes = config.get("classes")
    if classes is not None and (not isinstance(classes, list) or
                                not all(isinstance(c, str) for c in classes)):
        problems.append(f"classes: expected a list of class names, got {classes!r}")
    if problems:
        raise ConfigError(problems, source)
    return layers, loss, classes


def _check_memory(index, layer, input_shape, itemsize):
    """Refuse (ValueError) a layer whose parameters would need more memory than is available,
    estimated before anything is allocated: a layer has at most (its largest integer option)
    x (its input size) parameters (units x fan-in for a dense layer; more than filters x
    kernel entries for a convolution), each kept 4 times in training (value, gradient and two
    optimiser moments)."""
    sizes = [v for v in layer.get_config().values() if type(v) is int and v > 0]
    need = 4.0 * itemsize * max(sizes, default=1) * float(np.prod(input_shape, dtype=np.float64))
    free = memory.available()
    if need > free:
        raise ValueError(f"layer {index} ({layer!r}) would need about {need / 2**30:.3g} GiB "
                         f"for its parameters (an estimate), more than the {free / 2**30:.3g} "
                         f"GiB of memory available")
