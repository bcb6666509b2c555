"""ONNX export: onnxruntime must compute what glyphnet computes, for every layer type and for
every shipped config trained a few batches, on real test images."""
import glob
import json
import os
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from glyphnet import runs  # noqa: E402
from glyphnet.cli import main  # noqa: E402
from glyphnet.config import load_config  # noqa: E402
from glyphnet.data import load_from_config  # noqa: E402
from glyphnet.errors import DataError, GlyphnetError  # noqa: E402
from glyphnet.interop.onnx import EXPORTERS, IR_VERSION, OPSET, to_onnx  # noqa: E402
from glyphnet.nn import (AvgPool2D, BatchNorm, Conv2D, Dense, DepthwiseConv2D,  # noqa: E402
                         Dropout, Flatten, LeakyReLU, MaxPool2D, ReLU, Scaler, SeparableConv2D,
                         Sequential, Sigmoid, Softmax, Tanh)
from glyphnet.nn.layers import LAYERS  # noqa: E402

CONFIGS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "configs", "*.toml")))
ATOL = 1e-5


def run_onnx(proto, x):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    return session.run(["outputs"], {"images": np.asarray(x, np.float32)})[0]


def randomize(model, rng):
    """Random parameters and batch-norm statistics, so no layer is close to the identity."""
    for layer in model.layers:
        for k, v in layer.params.items():
            v[...] = rng.normal(0, 0.5, v.shape)
        if "mean" in layer.state:
            layer.state["mean"][...] = rng.normal(0, 0.2, layer.state["mean"].shape)
            layer.state["var"][...] = rng.uniform(0.5, 2.0, layer.state["var"].shape)
    return model


def every_layer_model():
    """Every layer type, with strides, integer and 'same' padding (an even kernel pads
    asymmetrically), slopes, overlapping pools and batch norm on images and on features."""
    return Sequential([
        Conv2D(4, 4, padding="same"), Sigmoid(slope=0.7),
        Conv2D(5, 3, stride=2, padding=1), LeakyReLU(0.1),
        BatchNorm(),
        DepthwiseConv2D(3, padding="same"), Tanh(slope=0.5),
        DepthwiseConv2D([2, 3], stride=2, bias=False), ReLU(),
        SeparableConv2D(6, 2, padding="same"), Sigmoid(),
        MaxPool2D(2, stride=1), AvgPool2D([2, 1]),
        Dropout(0.5), Flatten(),
        Dense(12), BatchNorm(), Tanh(),
        Dense(8, bias=False), LeakyReLU(0.2),
        Dense(10), Softmax(),
    ], input_shape=(15, 14, 1), seed=1)


def test_every_layer_type_has_an_exporter():
    assert set(LAYERS) <= set(EXPORTERS)


@pytest.mark.parametrize("mode", Scaler.MODES)
def test_every_layer_type_matches_glyphnet(mode, rng):
    model = randomize(every_layer_model(), rng)
    x = rng.random((9, 15, 14, 1), dtype=np.float32)
    model.scaler = Scaler(mode).fit(rng.random((40, 15, 14, 1), dtype=np.float32))
    expected = model.predict_proba(model.scaler.transform(x))
    assert expected.std(axis=0).mean() > 1e-3       # the outputs depend on the image
    proto = to_onnx(model)
    got = run_onnx(proto, x)
    assert got.shape == expected.shape == (9, 10)
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    ops = [n.op_type for n in proto.graph.node]
    assert "Dropout" not in ops and ops.count("BatchNormalization") == 2
    grouped = [n for n in proto.graph.node if n.op_type == "Conv" and
               any(a.name == "group" and a.i > 1 for a in n.attribute)]
    assert len(grouped) == 3         # two depthwise layers and the separable one's first half
    assert proto.opset_import[0].version == OPSET and proto.ir_version == IR_VERSION


def test_without_the_scaler_the_graph_takes_scaled_inputs(rng):
    model = randomize(every_layer_model(), rng)
    model.scaler = Scaler("standardize_global").fit(rng.random((20, 15, 14, 1)))
    x = model.scaler.transform(rng.random((5, 15, 14, 1), dtype=np.float32))
    np.testing.assert_allclose(run_onnx(to_onnx(model, scaler=False), x),
                               model.predict_proba(x), rtol=0, atol=ATOL)


def test_flat_samples_and_a_conv_output(rng):
    flat = randomize(Sequential([Dense(7), Sigmoid(2.0), Dense(3), Softmax()],
                                input_shape=(20,)), rng)
    x = rng.random((4, 20), dtype=np.float32)
    np.testing.assert_allclose(run_onnx(to_onnx(flat), x), flat.predict_proba(x), atol=ATOL)
    # A model ending in a convolution gives NHWC outputs, as glyphnet does.
    maps = randomize(Sequential([Conv2D(3, 3), ReLU()], input_shape=(6, 5, 2)), rng)
    x = rng.random((2, 6, 5, 2), dtype=np.float32)
    got = run_onnx(to_onnx(maps), x)
    assert got.shape == (2, 4, 3, 3)
    np.testing.assert_allclose(got, maps.predict_proba(x), rtol=0, atol=ATOL)


def test_file_metadata_and_cli(tmp_path, rng, capsys):
    model = randomize(Sequential([Flatten(), Dense(3), Softmax()], input_shape=(4, 4, 1),
                                 classes=["a", "b", "c"]), rng)
    model.scaler = Scaler("offset")
    model.save(tmp_path / "model.npz")
    out = tmp_path / "model.onnx"
    assert main(["export", str(tmp_path / "model.npz"), "--onnx", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    proto = onnx.load(str(out))
    assert model.to_onnx(tmp_path / "direct.onnx") == proto
    assert (tmp_path / "direct.onnx").read_bytes() == out.read_bytes()
    onnx.checker.check_model(proto)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["classes"]) == ["a", "b", "c"] and props["input_layout"] == "NHWC"
    x = rng.random((3, 4, 4, 1), dtype=np.float32)
    np.testing.assert_allclose(run_onnx(proto, x), model.predict_proba(model.scaler.transform(x)),
                               rtol=0, atol=ATOL)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.npz"), "--onnx", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("glyphnet: error:") and "missing.npz" in err and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists()


def test_missing_onnx_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(GlyphnetError, match=r"pip install 'glyphnet\[onnx\]'"):
        to_onnx(Sequential([Dense(2)], input_shape=(3,)))


_datasets = {}


def _load(cfg):
    key = json.dumps(cfg["data"], sort_keys=True)
    if key not in _datasets:
        _datasets[key] = load_from_config(cfg["data"])
    return _datasets[key]


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.basename(p))
def test_shipped_config_matches_on_real_test_images(path):
    cfg = load_config(path, {"data.train_limit": 256, "data.test_limit": 256})
    if cfg["data"]["dataset"] != "mnist" and not os.environ.get("GLYPHNET_DATA"):
        pytest.skip(f"needs the {cfg['data']['dataset']} data set: set GLYPHNET_DATA")
    try:
        ds = _load(cfg)
    except DataError as exc:
        pytest.skip(f"data set not available: {exc}")
    model, ds, x_train, x_test = runs.prepare(cfg, ds)
    batch = cfg["training"]["batch_size"] or len(x_train)
    n = min(3 * batch, len(x_train))
    model.fit(x_train[:n], ds.y_train[:n], epochs=1, batch_size=batch, seed=0)
    expected = model.predict_proba(x_test)
    assert expected.std(axis=0).mean() > 1e-3
    got = run_onnx(to_onnx(model), ds.x_test)        # the [0, 1] images: the graph scales them
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
