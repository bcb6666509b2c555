"""Export a Sequential model to ONNX, built with the ``onnx`` package's helpers and validated
by its checker (needs ``pip install 'glyphnet[onnx]'``).

The exported graph takes what glyphnet takes: float32 images of shape (N, H, W, C) with values
in [0, 1] (or (N, features) for a model built on flat samples). The model's Scaler runs first,
as graph ops, then the layers. ONNX convolutions want NCHW, so the images are transposed to
NCHW before the first convolution or pooling, and transposed back to NHWC before they are
flattened, so the dense weights see the features in glyphnet's order and apply unchanged.
Dropout is the identity in evaluation and is left out; batch norm uses its running estimates.
"""
import json

import numpy as np

from ..errors import GlyphnetError
from ..fileio import atomic_open

OPSET = 17        # every op used here exists in this form since opset 13 or earlier
IR_VERSION = 8    # the IR version of opset 17, loaded by onnxruntime >= 1.12
TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def _onnx():
    try:
        import onnx
    except ImportError:
        raise GlyphnetError("ONNX export needs the onnx package: pip install "
                            "'glyphnet[onnx]'") from None
    return onnx


class _Graph:
    """The nodes and constants of a graph under construction, and the layout of the tensor
    flowing through it: "nhwc" and "nchw" for images, "rows" for anything else."""

    def __init__(self, onnx, rank):
        self.onnx, self.nodes, self.constants = onnx, [], []
        self.tensor, self.rank = "images", rank
        self.layout = "nhwc" if rank == 4 else "rows"

    def const(self, name, array):
        array = np.ascontiguousarray(array, np.float32)
        self.constants.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type, *inputs, name, **attrs):
        """Apply ``op_type`` to the current tensor (and the named ``inputs``)."""
        out = f"{name}/{op_type}"
        self.nodes.append(self.onnx.helper.make_node(op_type, [self.tensor, *inputs], [out],
                                                     name=out, **attrs))
        self.tensor = out

    def nchw(self, name):
        if self.layout == "nhwc":
            self.op("Transpose", name=name, perm=TO_NCHW)
            self.layout = "nchw"

    def nhwc(self, name):
        if self.layout == "nchw":
            self.op("Transpose", name=name, perm=TO_NHWC)
            self.layout = "nhwc"

    def flat(self, name):
        """(N, ...) -> (N, features) in glyphnet's (row-major NHWC) order."""
        self.nhwc(name)
        if self.rank != 2:
            self.op("Flatten", name=name, axis=1)
            self.rank, self.layout = 2, "rows"


def _scaler(g, scaler):
    if scaler is None or scaler.mode == "unit":
        return
    if scaler.mode in ("offset", "symmetric"):
        slope, offset = (0.99, 0.01) if scaler.mode == "offset" else (2.0, -1.0)
        g.op("Mul", g.const("scaler/slope", slope), name="scaler")
        g.op("Add", g.const("scaler/offset", offset), name="scaler")
        return
    g.op("Sub", g.const("scaler/mean", scaler.mean), name="scaler")
    g.op("Div", g.const("scaler/std", scaler.std), name="scaler")


def _conv(g, name, W, b, layer, group=1):
    """Conv of the current NCHW tensor by OIHW kernels W, with glyphnet's padding."""
    top, bottom, left, right = layer.pads
    inputs = [g.const(f"{name}/W", W)] + ([g.const(f"{name}/b", b)] if b is not None else [])
    g.op("Conv", *inputs, name=name, kernel_shape=list(W.shape[2:]), group=group,
         strides=[layer.stride, layer.stride], pads=[top, left, bottom, right])


def _dense(g, name, layer):
    g.flat(name)
    W = g.const(f"{name}/W", layer.params["W"])
    if layer.bias:
        g.op("Gemm", W, g.const(f"{name}/b", layer.params["b"]), name=name)
    else:
        g.op("MatMul", W, name=name)


def _conv2d(g, name, layer):
    g.nchw(name)
    _conv(g, name, layer.params["W"].transpose(3, 2, 0, 1), layer.params.get("b"), layer)


def _depthwise(g, name, layer):
    g.nchw(name)
    W = layer.params["W"]
    _conv(g, name, W.transpose(2, 0, 1)[:, None], layer.params.get("b"), layer, group=W.shape[2])


def _separable(g, name, layer):
    g.nchw(name)
    Wd = layer.params["W_depthwise"]
    _conv(g, f"{name}/depthwise", Wd.transpose(2, 0, 1)[:, None], None, layer, group=Wd.shape[2])
    W = layer.params["W"]
    inputs = [g.const(f"{name}/W", W.T[:, :, None, None])]
    if layer.bias:
        inputs.append(g.const(f"{name}/b", layer.params["b"]))
    g.op("Conv", *inputs, name=f"{name}/pointwise", kernel_shape=[1, 1])


def _pool(op_type):
    def export(g, name, layer):
        g.nchw(name)
        g.op(op_type, name=name, kernel_shape=[layer.ph, layer.pw], strides=[layer.sh, layer.sw])
    return export


def _batch_norm(g, name, layer):
    g.nchw(name)      # the channel axis must be axis 1: NCHW images or (N, features)
    p, s = layer.params, layer.state
    g.op("BatchNormalization", g.const(f"{name}/gamma", p["gamma"]),
         g.const(f"{name}/beta", p["beta"]), g.const(f"{name}/mean", s["mean"]),
         g.const(f"{name}/var", s["var"]), name=name, epsilon=float(layer.eps))


def _with_slope(op_type):
    def export(g, name, layer):
        if layer.slope != 1:
            g.op("Mul", g.const(f"{name}/slope", layer.slope), name=name)
        g.op(op_type, name=name)
    return export


def _softmax(g, name, layer):
    g.nhwc(name)      # glyphnet's softmax runs over axis 1 of its own layout
    g.op("Softmax", name=name, axis=1)


EXPORTERS = {
    "dense": _dense,
    "flatten": lambda g, name, layer: g.flat(name),
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise,
    "separable_conv2d": _separable,
    "max_pool2d": _pool("MaxPool"),
    "avg_pool2d": _pool("AveragePool"),
    "batch_norm": _batch_norm,
    "dropout": lambda g, name, layer: None,
    "sigmoid": _with_slope("Sigmoid"),
    "tanh": _with_slope("Tanh"),
    "relu": lambda g, name, layer: g.op("Relu", name=name),
    "leaky_relu": lambda g, name, layer: g.op("LeakyRelu", name=name,
                                              alpha=float(layer.negative_slope)),
    "softmax": _softmax,
}


def to_onnx(model, path=None, scaler=True):
    """The ONNX ModelProto of ``model`` (checked by onnx.checker), also written to ``path``
    when given. With ``scaler`` the graph starts with the model's input scaling, so it takes
    [0, 1] images; without, it takes inputs already scaled as ``model.predict_proba`` does."""
    onnx = _onnx()
    from onnx import TensorProto, helper
    if model.input_shape is None:
        raise GlyphnetError("the model has no input shape yet: build or fit it before export")
    g = _Graph(onnx, 1 + len(model.input_shape))
    if scaler:
        _scaler(g, model.scaler)
    for i, layer in enumerate(model.layers):
        export = EXPORTERS.get(layer.kind)
        if export is None:
            raise GlyphnetError(f"layer {i} ({layer.kind}) has no ONNX export; exportable "
                                f"layers: {', '.join(EXPORTERS)}")
        export(g, f"{i}_{layer.kind}", layer)
    g.nhwc("output")
    g.nodes.append(helper.make_node("Identity", [g.tensor], ["outputs"], name="outputs"))
    graph = helper.make_graph(
        g.nodes, "glyphnet",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                       ["N", *model.input_shape])],
        [helper.make_tensor_value_info("outputs", TensorProto.FLOAT,
                                       ["N", *model.output_shape])],
        g.constants)
    proto = helper.make_model(graph, producer_name="glyphnet",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = IR_VERSION
    inputs = "[0, 1] images" if scaler or model.scaler is None else \
        f"inputs scaled by the model's scaler ({model.scaler.mode})"
    proto.doc_string = (f"glyphnet Sequential: {inputs} of shape (N, "
                        f"{', '.join(map(str, model.input_shape))}) -> outputs")
    layout = "NHWC" if len(model.input_shape) == 3 else "flat"
    helper.set_model_props(proto, {"classes": json.dumps(model.class_names),
                                   "input_layout": layout})
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        with atomic_open(path) as f:
            f.write(proto.SerializeToString())
    return proto
