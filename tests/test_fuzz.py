"""Property-based fuzzing of everything glyphnet reads from outside: IDX and CSV files, configs,
image files, model files and the web API. Each answer is either a correct result or a clear
error (a GlyphnetError, or a 4xx JSON answer from the server), never another exception."""
import gzip
import io
import json
import math
import os
import string
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from glyphnet import config
from glyphnet.data.images import read_image
from glyphnet.data.readers import IDX_TYPES, load_csv, read_idx
from glyphnet.errors import GlyphnetError
from glyphnet.nn import Dense, Dropout, ReLU, Sequential, Softmax

# Derandomized: the same examples on every run, so CI cannot fail by chance. To explore new
# ones: HYPOTHESIS_EXPLORE=1 HYPOTHESIS_EXAMPLES=400 python -m pytest tests/test_fuzz.py
FAST = settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", 60)), deadline=None,
                database=None, derandomize=not os.environ.get("HYPOTHESIS_EXPLORE"),
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


# ---------------------------------------------------------------------------- IDX

@st.composite
def idx_files(draw):
    """Mostly well-formed IDX headers with random dims and data (too little, too much, right)."""
    code = draw(st.sampled_from(sorted(IDX_TYPES) + [0x00, 0x0A]))
    dims = draw(st.lists(st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1)), max_size=5))
    itemsize = np.dtype(IDX_TYPES.get(code, np.uint8)).itemsize
    right = math.prod(dims) * itemsize if math.prod(dims) * itemsize < 4096 else 16
    size = draw(st.sampled_from([right, max(right - 1, 0), right + 1, 0]))
    data = draw(st.binary(min_size=size, max_size=size))
    head = bytes([0, 0, code, draw(st.sampled_from([len(dims), len(dims) + 1, 0]))])
    return head + b"".join(struct.pack(">I", d) for d in dims) + data, dims, code, size


def header_shape(raw):
    """The shape an IDX header declares (its dimension count may differ from the drawn dims:
    then the first data bytes are read as one more size, and the file may still be valid)."""
    ndim = raw[3]
    return tuple(struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim]))


@FAST
@given(f=idx_files(), compress=st.booleans())
def test_fuzz_idx(tmp_path, f, compress):
    raw, dims, code, size = f
    path = write(tmp_path, "x.idx.gz" if compress else "x.idx",
                 gzip.compress(raw) if compress else raw)
    try:
        array = read_idx(path)
    except GlyphnetError as exc:
        assert path in str(exc)
        return
    assert array.shape == header_shape(raw) and array.dtype == np.dtype(IDX_TYPES[code])
    assert array.nbytes == len(raw) - 4 - 4 * len(array.shape)


@FAST
@given(raw=st.binary(max_size=64))
def test_fuzz_idx_random_bytes(tmp_path, raw):
    path = write(tmp_path, "x.idx", raw)
    try:
        read_idx(path)
    except GlyphnetError as exc:
        assert path in str(exc)


# ---------------------------------------------------------------------------- CSV

FIELDS = st.one_of(st.integers(-3, 300).map(str), st.sampled_from(
    ["nan", "inf", "-inf", "1e30", "2.5", "", " 7 ", "x", "0x1f", "1e400", "١"]))


@FAST
@given(rows=st.lists(st.lists(FIELDS, min_size=3, max_size=6), max_size=5),
       bom=st.booleans(), header=st.booleans())
def test_fuzz_csv(tmp_path, rows, bom, header):
    text = ("label,a,b,c,d\n" if header else "") + "\n".join(",".join(r) for r in rows) + "\n"
    path = write(tmp_path, "x.csv", (b"\xef\xbb\xbf" if bom else b"") + text.encode())
    try:
        x, labels = load_csv(path, image_shape=(2, 2))
    except GlyphnetError as exc:
        assert path in str(exc)
        return
    assert x.shape == (len(labels), 2, 2, 1) and x.dtype == np.float32
    assert np.all((x >= 0) & (x <= 1)) and labels.dtype == np.int64 and np.all(labels >= 0)
    good = [r for r in rows if r]
    assert labels.tolist() == [int(float(r[0])) for r in good][-len(labels):]


# ---------------------------------------------------------------------------- configs

VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(),
              st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(string.ascii_lowercase, max_size=6), inner,
                                            max_size=3)),
    max_leaves=8).filter(lambda v: v is not None)
KEYS = st.sampled_from(["seed", "training.epochs", "training.batch_size", "training.l2",
                        "training.lr_decay", "optimizer.lr", "optimizer.type", "loss.type",
                        "augment.rotate", "augment.shift", "augment.elastic", "augment.copies",
                        "data.dataset", "data.scale", "data.validation", "model.layers",
                        "model.layers[0].units", "training.freeze", "training.gradcheck",
                        "nonsense", "training.nonsense"])


@FAST
@given(changes=st.dictionaries(KEYS, VALUES, max_size=4))
def test_fuzz_config_values(changes):
    try:
        cfg = config.load_config(None, changes)
    except GlyphnetError:
        return
    text = config.dumps(cfg)   # a valid config writes back and reads the same
    assert config.resolve(__import__("tomllib").loads(text)) == cfg


@FAST
@given(raw=st.binary(max_size=200))
def test_fuzz_config_files(tmp_path, raw):
    path = write(tmp_path, "c.toml", raw)
    try:
        config.load_config(path)
    except GlyphnetError as exc:
        assert path in str(exc) or "problem" in str(exc)


# ---------------------------------------------------------------------------- images

def png(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


@FAST
@given(data=st.binary(max_size=300), keep=st.integers(0, 300))
def test_fuzz_image_bytes(tmp_path, data, keep):
    """Random bytes, and a real PNG cut short or with random bytes spliced in."""
    good = png(np.arange(64, dtype=np.uint8).reshape(8, 8))
    for content in (data, good[:keep], good[:keep] + data):
        path = write(tmp_path, "x.png", content)
        try:
            grey = read_image(path)
        except GlyphnetError as exc:
            assert path in str(exc)
            continue
        assert grey.ndim == 2 and grey.dtype == np.float32
        assert np.all((grey >= 0) & (grey <= 1))


@FAST
@given(kind=st.sampled_from(["uint8", "uint16", "float32"]),
       values=st.lists(st.floats(0, 1), min_size=4, max_size=4))
def test_fuzz_image_depths_are_scaled(tmp_path, kind, values):
    """8-bit, 16-bit and float images come back in [0, 1], proportional to the stored values."""
    scale = {"uint8": 255, "uint16": 65535, "float32": 1.0}[kind]
    stored = np.array(values, np.float64).reshape(2, 2) * scale
    array = stored.astype(kind) if kind == "float32" else np.round(stored).astype(kind)
    path = str(tmp_path / ("x.tif" if kind == "float32" else "x.png"))
    Image.fromarray(array).save(path)
    grey = read_image(path)
    assert np.allclose(grey, array / scale, atol=1e-6)


# ---------------------------------------------------------------------------- model files

@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    model = Sequential([Dense(6), ReLU(), Dropout(0.1), Dense(3), Softmax()],
                       input_shape=(2, 2, 1), classes=["a", "b", "c"])
    path = tmp_path_factory.mktemp("model") / "model.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


PATHS = st.sampled_from([("input_shape",), ("input_shape", 0), ("layers",), ("layers", 0),
                         ("layers", 0, "units"), ("layers", 1, "type"), ("layers", 2, "rate"),
                         ("layers", 3, "init"), ("loss",), ("loss", "type"), ("classes",),
                         ("classes", 1), ("format",), ("scaler",), ("preparation",)])


def set_at(record, path, value):
    node = record
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@FAST
@given(changes=st.lists(st.tuples(PATHS, VALUES), max_size=3),
       array=st.sampled_from([None, "param/0/W", "param/3/b", "state/0/x"]),
       replacement=st.sampled_from(["nan", "int", "shape", "drop"]))
def test_fuzz_model_files(tmp_path, model_file, changes, array, replacement):
    arrays = dict(model_file)
    record = json.loads(str(arrays["architecture"]))
    for path, value in changes:
        try:
            set_at(record, path, value)
        except (KeyError, IndexError, TypeError):
            pass
    arrays["architecture"] = np.array(json.dumps(record))
    if array is not None and array in arrays:
        if replacement == "drop":
            del arrays[array]
        else:
            shape = arrays[array].shape
            arrays[array] = {"nan": np.full(shape, np.nan, np.float32),
                             "int": np.ones(shape, np.int32),
                             "shape": np.ones(shape + (1,), np.float32)}[replacement]
    path = tmp_path / "m.npz"
    np.savez(path, **arrays)
    try:
        model = Sequential.load(path)
    except GlyphnetError as exc:
        assert str(path) in str(exc)
        return
    out = model.probabilities(np.zeros((2,) + model.input_shape, np.float32))
    assert np.all(np.isfinite(out)) and len(model.class_names) == model.output_shape[-1]


# ---------------------------------------------------------------------------- web API

@pytest.fixture(scope="module")
def client(model_file, tmp_path_factory):
    from glyphnet.web.app import create_app
    path = tmp_path_factory.mktemp("served") / "model.npz"
    np.savez(path, **model_file)
    save_dir = tmp_path_factory.mktemp("drawings")
    return create_app({"m": str(path)}, data_dir=str(save_dir)).test_client()


BODIES = st.dictionaries(
    st.sampled_from(["model", "image", "pixels", "threshold", "top", "label", "layer", "unit",
                     "ablate", "method", "index", "limit", "extra"]),
    st.one_of(VALUES, st.just("data:image/png;base64,iVBORw0KGgo="),
              st.lists(st.lists(st.floats(0, 1), min_size=2, max_size=2), min_size=2,
                       max_size=2)),
    max_size=4)


@FAST
@given(endpoint=st.sampled_from(["/api/predict", "/api/save", "/api/inspect", "/api/weights",
                                 "/api/map"]),
       body=st.one_of(BODIES, VALUES))
def test_fuzz_web_api(client, endpoint, body):
    response = client.post(endpoint, data=json.dumps(body),
                           headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.get_json()
    answer = response.get_json()
    assert isinstance(answer, dict)
    if response.status_code >= 400:
        assert isinstance(answer.get("error"), str) and answer["error"]
