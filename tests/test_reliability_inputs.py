"""Everything read from outside is checked: model files, images, configs, data files; a bad one
is one clear error naming it, never a traceback or a silently wrong result."""
import gzip
import io
import json
import struct

import numpy as np
import pytest
from PIL import Image

from glyphnet.cli import main
from glyphnet.config import load_config
from glyphnet.data import images as imaging
from glyphnet.data.datasets import load_files
from glyphnet.data.readers import load_csv, read_idx
from glyphnet.errors import ConfigError, DataError, GlyphnetError
from glyphnet.nn import Dense, ReLU, Sequential, Softmax


# ---------------------------------------------------------------------------- model files

@pytest.fixture
def saved(tmp_path):
    model = Sequential([Dense(8), ReLU(), Dense(10), Softmax()], input_shape=(4, 4, 1),
                       classes=list("0123456789"))
    path = tmp_path / "model.npz"
    model.save(path)
    return path


def rewrite(path, arch=None, drop=(), replace=None):
    """Write a copy of the model file with its record or arrays changed."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    record = json.loads(str(arrays["architecture"]))
    if arch is not None:
        record = arch(record)
    arrays["architecture"] = np.array(json.dumps(record))
    for k in drop:
        del arrays[k]
    arrays.update(replace or {})
    out = path.parent / "bad.npz"
    np.savez(out, **arrays)
    return out


def test_a_good_model_file_loads(saved):
    model = Sequential.load(saved)
    assert model.class_names == list("0123456789") and model.output_shape == (10,)


def test_every_problem_of_the_architecture_record_at_once(saved):
    def arch(r):
        r["layers"][0] = {"type": "dense", "units": -3}
        r["layers"][1] = {"type": "frobnicate"}
        r["layers"][2]["colour"] = "red"
        r["input_shape"] = [4, "four"]
        return r
    with pytest.raises(ConfigError) as info:
        Sequential.load(rewrite(saved, arch))
    problems = info.value.problems
    assert len(problems) == 4 and "bad.npz" in str(info.value)
    assert any(p.startswith("layers[0]") and "units" in p for p in problems)
    assert any("layers[1].type: unknown layer 'frobnicate'" in p for p in problems)
    assert any("layers[2].colour: unknown option" in p for p in problems)
    assert any(p.startswith("input_shape") for p in problems)


@pytest.mark.parametrize("arch,message", [
    (lambda r: [r], "not a table"),
    (lambda r: {**r, "format": 99}, "format 99 is not supported"),
    (lambda r: {**r, "layers": []}, "non-empty list"),
    (lambda r: {**r, "classes": ["a", "b"]}, "2 class names for a model with 10 outputs"),
    (lambda r: {**r, "classes": "0123456789"}, "expected a list of class names"),
    (lambda r: {**r, "layers": [{"type": "dense", "units": 10**10}, *r["layers"][1:]]},
     "memory"),
])
def test_bad_architecture_records(saved, arch, message):
    with pytest.raises(GlyphnetError, match=message):
        Sequential.load(rewrite(saved, arch))


@pytest.mark.parametrize("change,message", [
    (dict(drop=["param/0/W"]), "param/0/W: missing"),
    (dict(replace={"param/2/b": np.zeros(3, np.float32)}), r"shape \(3,\), expected \(10,\)"),
    (dict(replace={"param/0/W": np.full((16, 8), np.nan, np.float32)}), "NaN or infinity"),
    (dict(replace={"param/0/W": np.ones((16, 8), np.int64)}), "int64 values, expected floats"),
])
def test_bad_weights(saved, change, message):
    with pytest.raises(ConfigError, match=message):
        Sequential.load(rewrite(saved, **change))


def test_not_a_model_file(tmp_path):
    for content in (b"", b"hello", b"PK\x03\x04junk"):
        (tmp_path / "m.npz").write_bytes(content)
        with pytest.raises(GlyphnetError, match="not a glyphnet model file"):
            Sequential.load(tmp_path / "m.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(GlyphnetError, match="without glyphnet's architecture"):
        Sequential.load(tmp_path / "other.npz")


def test_cli_commands_answer_a_bad_model_in_one_line(saved, capsys, tmp_path):
    bad = rewrite(saved, lambda r: {**r, "classes": ["a", "b"]})
    png = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(png)
    for argv in (["evaluate", str(bad), "--data", "mnist"], ["predict", str(bad), str(png)]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and "2 class names" in err


def test_evaluate_refuses_data_with_more_classes_than_the_model(saved, tmp_path, capsys,
                                                                monkeypatch):
    from glyphnet.cli import evaluate
    from glyphnet.data.datasets import Dataset
    rng = np.random.default_rng(0)
    many = Dataset("many", rng.random((5, 4, 4, 1), np.float32), np.arange(5),
                   rng.random((47, 4, 4, 1), np.float32), np.arange(47),
                   [str(i) for i in range(47)])
    monkeypatch.setattr(evaluate, "_model_data", lambda *a: (many, "--data"))
    assert main(["evaluate", str(saved), "--data", "many"]) == 1
    assert "tells 10 classes apart but data set 'many' has 47" in capsys.readouterr().err


# ---------------------------------------------------------------------------- images

def png_bytes(array, mode=None):
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "PNG") if mode else \
        Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def test_a_16_bit_image_is_scaled_not_clipped(tmp_path):
    ink = np.zeros((20, 20), np.uint16)
    ink[5:15, 9:11] = 30000   # a dim stroke: 0.46 of full scale, 117x the 8-bit white
    (tmp_path / "seven.png").write_bytes(png_bytes(ink))
    grey = imaging.read_image(tmp_path / "seven.png")
    assert grey.max() == pytest.approx(30000 / 65535) and grey.min() == 0


def test_float_images_are_scaled(tmp_path):
    values = np.zeros((10, 10), np.float32)
    values[3:7, 3:7] = 1000.0
    Image.fromarray(values).save(tmp_path / "f.tif")
    grey = imaging.read_image(tmp_path / "f.tif")
    assert grey.max() == 1.0 and grey.min() == 0.0 and np.count_nonzero(grey) == 16


def test_huge_images_are_refused_before_decoding(tmp_path):
    side = imaging.MAX_IMAGE_SIDE + 1
    Image.new("1", (side, 8)).save(tmp_path / "wide.png")
    with pytest.raises(DataError, match=f"{side}x8 pixels; at most"):
        imaging.read_image(tmp_path / "wide.png")


def test_a_decompression_bomb_is_refused(tmp_path):
    # A PNG header declaring 100000 x 100000 pixels (a 10-gigapixel bomb), in a few bytes.
    import zlib
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data)))
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
    raw = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
           chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    (tmp_path / "bomb.png").write_bytes(raw)
    with pytest.raises(DataError, match="bomb.png"):
        imaging.read_image(tmp_path / "bomb.png")


def test_predict_answers_the_good_images_reports_the_bad_and_blank(saved, tmp_path, capsys):
    good, blank, bad = tmp_path / "good.png", tmp_path / "blank.png", tmp_path / "bad.png"
    digit = np.full((28, 28), 255, np.uint8)
    digit[6:22, 12:16] = 0
    good.write_bytes(png_bytes(digit))
    blank.write_bytes(png_bytes(np.full((28, 28), 255, np.uint8)))
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    model = Sequential.load(saved)
    model.preparation = imaging.preparation(None, "digits", (4, 4))
    model.save(saved)
    assert main(["predict", str(saved), str(bad), str(good), str(blank)]) == 1
    out, err = capsys.readouterr()
    assert f"{good}: " in out and f"{blank}: blank" in out and str(bad) not in out
    assert f"{bad}: not a readable image" in err and "1 of 3 image(s)" in err
    assert main(["predict", str(saved), str(good), str(blank), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results[1] == {"image": str(blank), "class": None, "blank": True,
                          "probabilities": {}}


def test_folders_skip_a_bad_image(tmp_path):
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "a.png").write_bytes(png_bytes(np.eye(8, dtype=np.uint8) * 255))
    (tmp_path / "0" / "b.png").write_bytes(b"broken")
    x, labels, paths, skipped = imaging.read_class_folders(str(tmp_path), ["0"], size=8)
    assert len(x) == 1 and len(skipped) == 1 and "b.png: not a readable image" in skipped[0]


# ---------------------------------------------------------------------------- configs

def test_a_config_that_is_not_utf8(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b"seed = 1\n# caf\xe9\n")
    with pytest.raises(GlyphnetError, match="not UTF-8 text"):
        load_config(str(path))


def test_a_config_nested_too_deeply(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(GlyphnetError, match="nested too deeply"):
        load_config(str(path))


def test_a_model_too_big_for_memory_is_refused_before_allocating():
    with pytest.raises(ValueError, match="GiB of memory available"):
        Sequential([Dense(10**10), Dense(10)], input_shape=(28, 28, 1))


# ---------------------------------------------------------------------------- data files

def idx_bytes(dims, data=b"", code=0x08):
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


def test_idx_dimensions_whose_product_overflows(tmp_path):
    path = tmp_path / "x.idx"
    for dims in ([2**32 - 1] * 4, [0] + [2**21] * 3):
        path.write_bytes(idx_bytes(dims, b"\0" * 16))
        with pytest.raises(DataError, match="too large for any array"):
            read_idx(str(path))
    path.write_bytes(idx_bytes([2**20, 2**20, 2**10], b"\0" * 16))   # 2**50 bytes
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(str(path))
    gz = tmp_path / "x.idx.gz"
    gz.write_bytes(gzip.compress(idx_bytes([2**20, 2**20, 2**10], b"\0" * 16)))
    with pytest.raises(DataError, match="more than the memory available"):
        read_idx(str(gz))


def test_a_compressed_idx_is_inflated_only_to_its_declared_size(tmp_path, monkeypatch):
    path = tmp_path / "x.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes([10], b"\0" * 50_000_000)))   # 50 MB inflated
    reads = []
    real_open = gzip.open

    def spy(*a, **k):
        f = real_open(*a, **k)
        read = f.read
        f.read = lambda n=-1: reads.append(n) or read(n)
        return f
    monkeypatch.setattr(gzip, "open", spy)
    with pytest.raises(DataError, match=r"holds more than 10 bytes"):
        read_idx(str(path))
    assert -1 not in reads and max(reads) == 11


def test_csv_with_a_byte_order_mark(tmp_path):
    rows = ["3," + ",".join(["0"] * 4), "1," + ",".join(["255"] * 4)]
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(rows).encode() + b"\n")
    x, labels = load_csv(str(path), image_shape=(2, 2))
    assert labels.tolist() == [3, 1] and x.shape == (2, 2, 2, 1)


@pytest.mark.parametrize("row,message", [
    ("1,0,nan,0,0", r"row 2: pixel 2 is 'nan'"),
    ("1,0,0,inf,0", r"row 2: pixel 3 is 'inf'"),
    ("123456789012345678901234567890,0,0,0,0",
     r"row 2: label '123456789012345678901234567890': it is out of range"),
    ("1e30,0,0,0,0", r"row 2: label '1e30': it is out of range"),
    ("nan,0,0,0,0", r"row 2: label 'nan': labels must be integers"),
])
def test_csv_bad_values_named_with_file_and_row(tmp_path, row, message):
    path = tmp_path / "bad.csv"
    path.write_text("label,a,b,c,d\n0,0,0,0,0\n" + row + "\n")
    with pytest.raises(DataError, match=message) as info:
        load_csv(str(path), image_shape=(2, 2))
    assert str(info.value).startswith(str(path))


def test_a_label_only_in_the_test_file_is_named(tmp_path):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("0,0,0,0,0\n1,9,9,9,9\n")
    test.write_text("0,0,0,0,0\n7,9,9,9,9\n")
    with pytest.raises(DataError, match="label 7 is in the test file but never in the training"):
        load_files(str(train), str(test), image_shape=(2, 2))
    ds = load_files(str(train), str(test), classes=list("01234567"), image_shape=(2, 2))
    assert ds.num_classes == 8


@pytest.mark.parametrize("key,value", [("rotate", float("nan")), ("noise", float("inf")),
                                       ("elastic", {"alpha": float("nan")})])
def test_augment_numbers_must_be_finite(key, value):
    with pytest.raises(ConfigError, match=f"augment.{key}"):
        load_config(None, {f"augment.{key}": value})


# ---------------------------------------------------------------------------- run files, server

def test_damaged_run_files_are_one_clear_error(tmp_path):
    from glyphnet.inspection.figures import read_batch_losses, read_history
    from glyphnet.inspection.monitor import load_dynamics
    (tmp_path / "history.csv").write_text("epoch,train_loss\n1,abc\n")
    with pytest.raises(GlyphnetError, match="history.csv: cannot read the training history"):
        read_history(str(tmp_path))
    (tmp_path / "history.csv").write_bytes(b"epoch\n\xff\xfe\n")
    with pytest.raises(GlyphnetError, match="history.csv"):
        read_history(str(tmp_path))
    (tmp_path / "batch_losses.csv").write_text("x y\n")
    with pytest.raises(GlyphnetError, match="batch_losses.csv"):
        read_batch_losses(str(tmp_path))
    for content in (b"junk", b""):
        (tmp_path / "dynamics.npz").write_bytes(content)
        with pytest.raises(GlyphnetError, match="not an .npz archive"):
            load_dynamics(str(tmp_path / "dynamics.npz"))
    np.savez(tmp_path / "dynamics.npz", steps=np.arange(3))
    with pytest.raises(GlyphnetError, match="no grad_std"):
        load_dynamics(str(tmp_path / "dynamics.npz"))


def test_serve_on_a_host_that_does_not_resolve(capsys, saved):
    assert main(["serve", str(saved), "--host", "no-such-host.invalid", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "no-such-host.invalid: the host name does not resolve" in err


def test_a_chunked_body_over_the_limit_is_413(saved):
    import http.client
    import threading
    from werkzeug.serving import make_server
    from glyphnet.web.app import MAX_BODY_BYTES, create_app
    server = make_server("127.0.0.1", 0, create_app({"m": str(saved)}), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def post(size):
        def chunks():
            yield b'{"image": "data:image/png;base64,'
            for _ in range(size // 65536 + 1):
                yield b"A" * 65536
            yield b'"}'
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
        conn.request("POST", "/api/predict", body=chunks(), encode_chunked=True,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())["error"]
    try:
        assert post(MAX_BODY_BYTES) == (413, f"request body too large: at most "
                                             f"{MAX_BODY_BYTES} bytes")
        status, error = post(1000)   # within the limit: read and judged as usual
        assert status == 400 and "not PNG data" in error
    finally:
        server.shutdown()
        server.server_close()


def test_float_idx_images_in_0_1_are_kept_and_nan_images_named(tmp_path):
    from glyphnet.data.readers import load_idx_pair
    values = np.array([[[0.0, 0.5], [1.0, 0.25]]], ">f4")
    images = write_bytes(tmp_path / "x.idx", idx_bytes([1, 2, 2], values.tobytes(), 0x0D))
    labels = write_bytes(tmp_path / "y.idx", idx_bytes([1], b"\x03"))
    x, y = load_idx_pair(images, labels)
    assert np.array_equal(x[0, ..., 0], values[0]) and y.tolist() == [3]
    values[0, 1, 1] = np.nan
    write_bytes(tmp_path / "x.idx", idx_bytes([1, 2, 2], values.tobytes(), 0x0D))
    with pytest.raises(DataError, match="image 1 holds NaN"):
        load_idx_pair(images, labels)


def write_bytes(path, content):
    path.write_bytes(content)
    return str(path)


def test_training_on_a_folder_names_the_skipped_files(tmp_path):
    from glyphnet import runs
    from glyphnet.data.datasets import Dataset
    rng = np.random.default_rng(0)
    ds = Dataset("folder", rng.random((8, 4, 4, 1), np.float32), np.arange(8) % 2,
                 rng.random((4, 4, 4, 1), np.float32), np.arange(4) % 2, ["a", "b"],
                 skipped=[f"f/{i}.png: not a readable image" for i in range(12)])
    lines = []
    cfg = load_config(None, {"training.epochs": 1, "model.layers": [
        {"type": "dense", "units": 2}, {"type": "softmax"}]})
    runs.train(cfg, str(tmp_path / "run"), log=lines.append, dataset=ds)
    warnings = [ln for ln in lines if ln.startswith("warning:")]
    assert warnings[0] == "warning: skipped f/0.png: not a readable image"
    assert len(warnings) == 11 and warnings[-1] == "warning: and 2 more file(s) skipped"


def test_a_batch_too_big_for_memory_is_refused_before_training(tmp_path, monkeypatch):
    from glyphnet import memory, runs
    from glyphnet.data.datasets import Dataset
    rng = np.random.default_rng(0)
    ds = Dataset("toy", rng.random((50, 8, 8, 1), np.float32), np.arange(50) % 2,
                 rng.random((4, 8, 8, 1), np.float32), np.arange(4) % 2, ["a", "b"])
    cfg = load_config(None, {"training.batch_size": 0, "model.layers": [
        {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same"}, {"type": "flatten"},
        {"type": "dense", "units": 2}, {"type": "softmax"}]})
    model, *_ = runs.prepare(cfg, ds)
    need = model.training_bytes(50)
    assert need >= 4 * 2 * 50 * 8 * 8 * 8   # the conv outputs and their gradients
    monkeypatch.setattr(memory, "available", lambda: need - 1)
    with pytest.raises(ConfigError, match="training.batch_size: a step on 50 samples needs"):
        runs.train(cfg, str(tmp_path / "run"), verbose=False, dataset=ds)
    monkeypatch.setattr(memory, "available", lambda: need)
    runs.train(cfg, str(tmp_path / "run2"), verbose=False, dataset=ds)
