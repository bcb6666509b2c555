"""The drawing pad's JSON API: answers match `glyphnet predict`, bad input gets a clear 4xx,
saving stays inside the data folder, and a real server answers a burst of parallel requests."""
import base64
import io
import json
import os
import queue
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from glyphnet import Adam, Dense, ReLU, Sequential, Softmax
from glyphnet.cli import main
from glyphnet.data import bundled_mnist_dir, load_idx_pair
from glyphnet.inspection.explain import saliency
from glyphnet.data.images import mnist_like
from glyphnet.nn.layers import layer_from_config
from glyphnet.web.app import MAX_BODY_BYTES, create_app, is_reject_class, model_names

DIGITS = [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def mnist():
    """The bundled MNIST test set (10,000 digits; quicker to read than the training set)."""
    d = bundled_mnist_dir()
    x, y = load_idx_pair(os.path.join(d, "t10k-images-idx3-ubyte.gz"),
                         os.path.join(d, "t10k-labels-idx1-ubyte.gz"), 10)
    return x[..., 0], y


@pytest.fixture(scope="module")
def model_path(mnist, tmp_path_factory):
    """A small MLP trained for 2 epochs on 4,000 of those digits (the first 1,000 are held
    out for the tests); about 90% accurate."""
    x, y = mnist
    model = Sequential([Dense(64), ReLU(), Dense(10), Softmax()], input_shape=(28, 28, 1),
                       seed=1, classes=DIGITS)
    model.compile("cross_entropy", Adam(2e-3))
    model.fit(x[1000:5000, ..., None], y[1000:5000], epochs=2, batch_size=32, seed=1,
              verbose=False)
    path = tmp_path_factory.mktemp("models") / "digits.npz"
    model.save(path)
    return path


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "drawings"


@pytest.fixture
def client(model_path, data_dir):
    return create_app({"digits": model_path}, data_dir=data_dir).test_client()


def png_url(grey, mode="L"):
    """A data URL of a greyscale [0, 1] image; mode "LA" draws it as black ink on transparent
    paper (``grey`` is then the ink's opacity)."""
    g = np.round(np.asarray(grey) * 255).astype(np.uint8)
    im = Image.fromarray(g, "L") if mode == "L" else \
        Image.fromarray(np.stack([np.zeros_like(g), g], axis=-1), "LA")
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def expected_answer(model, grey):
    """What `glyphnet predict` computes for ``grey``: class probabilities and the input."""
    seen = mnist_like(grey, 28)
    return model.predict_proba(seen[None, ..., None])[0], seen


# ------------------------------------------------------------------------------ reading
def test_models_lists_the_served_models(client, data_dir):
    info = client.get("/api/models").get_json()
    assert [m["name"] for m in info["models"]] == ["digits"]
    assert info["models"][0]["classes"] == [str(i) for i in range(10)]
    assert info["models"][0]["size"] == 28 and info["models"][0]["rejection_classes"] == []
    assert info["default"] == "digits" and info["threshold"] == 0.5
    assert info["saving"] and info["save_dir"] == os.path.abspath(data_dir)


def test_model_names_come_from_file_stems_or_run_directories():
    names = model_names(["runs/mlp/model.npz", "runs/cnn/model.npz", "a/digits.npz",
                         "b/digits.npz", "c/digits.npz"])
    assert names == {"mlp": "runs/mlp/model.npz", "cnn": "runs/cnn/model.npz",
                     "digits": "a/digits.npz", "digits-2": "b/digits.npz",
                     "digits-3": "c/digits.npz"}


def test_page_and_static_files_are_served(client):
    with client.get("/") as page:
        assert page.status_code == 200 and b'<canvas id="pad"' in page.data
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for name in ("app.js", "style.css"):
        with client.get(f"/static/{name}") as r:
            assert r.status_code == 200 and len(r.data) > 1000


# ------------------------------------------------------------------------------ predicting
def test_predict_pixels_gives_what_glyphnet_predict_gives(client, model_path, mnist):
    model = Sequential.load(model_path)
    for i in range(8):
        grey = mnist[0][i]
        r = client.post("/api/predict", json={"pixels": grey.tolist(), "top": 10})
        assert r.status_code == 200, r.get_json()
        answer = r.get_json()
        p, seen = expected_answer(model, grey)
        assert answer["model"] == "digits"
        assert answer["prediction"] == str(int(np.argmax(p)))
        got = {c["label"]: c["probability"] for c in answer["classes"]}
        np.testing.assert_allclose([got[str(k)] for k in range(10)], p, rtol=1e-5, atol=1e-7)
        probs = [c["probability"] for c in answer["classes"]]
        assert probs == sorted(probs, reverse=True)
        np.testing.assert_allclose(answer["input"], seen, atol=5e-4)
        sal = np.array(answer["saliency"])
        assert sal.shape == (28, 28) and sal.max() == 1.0 and sal.min() >= 0
        assert answer["uncertain"] == (max(probs) < 0.5)


def test_png_drawings_in_either_polarity_give_the_same_answer(client, mnist):
    grey = mnist[0][0]        # white ink on black, like MNIST
    padded = np.pad(grey, 30)               # a bigger canvas: cropping removes the margin
    by_pixels = client.post("/api/predict", json={"pixels": grey.tolist()}).get_json()
    for url in (png_url(padded), png_url(1 - padded), png_url(padded, "LA")):
        answer = client.post("/api/predict", json={"image": url}).get_json()
        assert answer["prediction"] == by_pixels["prediction"]
        np.testing.assert_allclose(answer["input"], by_pixels["input"], atol=2e-3)


def test_blank_drawing_is_not_classified(client):
    answer = client.post("/api/predict", json={"pixels": np.ones((50, 40)).tolist()}).get_json()
    assert answer["prediction"] is None and answer["uncertain"] and answer["classes"] == []
    assert "blank" in answer["reason"]


def test_threshold_makes_the_answer_uncertain(client, mnist):
    grey = mnist[0][1].tolist()
    sure = client.post("/api/predict", json={"pixels": grey, "threshold": 0}).get_json()
    assert not sure["uncertain"] and sure["reason"] is None
    unsure = client.post("/api/predict", json={"pixels": grey, "threshold": 1}).get_json()
    assert unsure["uncertain"] and "is below the threshold 100%" in unsure["reason"]
    assert unsure["prediction"] == sure["prediction"]


@pytest.mark.parametrize("name, rejects", [
    ("none", True), ("None", True), ("not a character", True), ("not_a_character", True),
    ("Not-A-Character", True), ("reject", True), ("unknown", True), ("nonchar", True),
    ("n", False), ("nine", False), ("0", False), ("O", False)])
def test_rejection_class_names(name, rejects):
    assert is_reject_class(name) is rejects


def test_rejection_class_answers_not_a_character(mnist):
    model = Sequential([Dense(11), Softmax()], input_shape=(28, 28, 1),
                       classes=DIGITS + ["not a character"])
    model.layers[0].params["b"][10] = 50.0   # always the rejection class
    client = create_app({"m": model}).test_client()
    answer = client.post("/api/predict", json={"pixels": mnist[0][0].tolist(),
                                               "threshold": 0}).get_json()
    assert answer["prediction"] == "not a character" and answer["uncertain"]
    assert "rejection class" in answer["reason"]
    info = client.get("/api/models").get_json()
    assert info["models"][0]["rejection_classes"] == ["not a character"]
    assert not info["saving"]


def test_several_models_are_picked_by_name(model_path, mnist):
    other = Sequential([Dense(3), Softmax()], input_shape=(16, 16, 1), classes=["a", "b", "c"])
    client = create_app({"digits": model_path, "abc": other}).test_client()
    grey = mnist[0][0].tolist()
    assert client.post("/api/predict", json={"pixels": grey}).get_json()["model"] == "digits"
    answer = client.post("/api/predict", json={"pixels": grey, "model": "abc"}).get_json()
    assert answer["model"] == "abc" and np.array(answer["input"]).shape == (16, 16)
    assert {c["label"] for c in answer["classes"]} == {"a", "b", "c"}


def test_a_cnn_is_served_with_its_saliency_map(mnist):
    layers = [layer_from_config(c) for c in (
        {"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "relu"},
        {"type": "max_pool2d"}, {"type": "batch_norm"}, {"type": "flatten"},
        {"type": "dense", "units": 10}, {"type": "softmax"})]
    model = Sequential(layers, input_shape=(28, 28, 1), seed=3, classes=DIGITS)
    grey = mnist[0][5]
    answer = create_app({"cnn": model}).test_client().post(
        "/api/predict", json={"pixels": grey.tolist()}).get_json()
    x = mnist_like(grey, 28)[None, ..., None]
    best = int(np.argmax(model.predict_proba(x)[0]))
    assert answer["prediction"] == DIGITS[best]
    expected = saliency(model, x, [best])[0]
    np.testing.assert_allclose(answer["saliency"], expected / expected.max(), atol=6e-4)


# ------------------------------------------------------------------------------ bad requests
def png_claiming_size(width, height):
    """A PNG whose header claims width x height but which holds almost no data."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    raw = bytearray(buf.getvalue())
    ihdr = raw[12:29]   # chunk type + 13 data bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    raw[12:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return "data:image/png;base64," + base64.b64encode(bytes(raw)).decode()


def _png_bytes_as(fmt):
    buf = io.BytesIO()
    Image.new("L", (8, 8), 255).save(buf, fmt)
    return base64.b64encode(buf.getvalue()).decode()


ok = [[0.0, 1.0], [1.0, 0.0]]
BAD_PREDICTIONS = [
    # (body: dict or raw bytes, status, words the error must contain)
    (b"{", 400, "not valid JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b"null", 400, "must be a JSON object"),
    (b"[" * 100000 + b"]" * 100000, 400, "not valid JSON"),
    ({"pixels": ok, "colour": "red"}, 400, "unknown field(s) 'colour'"),
    ({}, 400, 'exactly one of "image"'),
    ({"pixels": ok, "image": png_url(np.eye(4))}, 400, 'exactly one of "image"'),
    ({"image": 42}, 400, "must be a data URL"),
    ({"image": "http://example.com/a.png"}, 400, "must be a data URL"),
    ({"image": "data:image/png,abc"}, 400, "base64 data URL"),
    ({"image": "data:image/gif;base64,R0lGOD"}, 415, "media type 'image/gif'"),
    ({"image": "data:image/png;base64,@@@"}, 400, "not valid base64"),
    ({"image": "data:image/png;base64,aGVsbG8gd29ybGQ="}, 400, "is not PNG data"),
    ({"image": "data:image/png;base64," + _png_bytes_as("JPEG")}, 415, "holds JPEG data"),
    ({"image": "data:image/png;base64," + base64.b64encode(
        base64.b64decode(png_url(np.eye(16)).split(",")[1])[:45]).decode()},
     400, "could not be decoded"),
    ({"image": png_claiming_size(100000, 100000)}, 413, "at most 2048x2048 pixels"),
    ({"image": png_claiming_size(3000, 20)}, 413, "is 3000x20 pixels; at most 2048x2048"),
    ({"pixels": []}, 400, "2D array"),
    ({"pixels": [1, 2, 3]}, 400, "2D array"),
    ({"pixels": "0.5"}, 400, "2D array"),
    ({"pixels": [[0.1], [0.2, 0.3]]}, 400, "different lengths"),
    ({"pixels": [[0.1], 0.2]}, 400, "different lengths"),
    ({"pixels": [[[0.1]]]}, 400, "shape (1, 1, 1)"),
    ({"pixels": [[]]}, 400, "shape (1, 0)"),
    ({"pixels": [["a", "b"]]}, 400, "values of type"),
    ({"pixels": [[True, False]]}, 400, "values of type bool"),
    ({"pixels": [[None, 0.5]]}, 400, "values of type object"),
    (b'{"pixels": [[0.5, NaN]]}', 400, "NaN or infinite"),
    (b'{"pixels": [[0.5, Infinity]]}', 400, "NaN or infinite"),
    (b'{"pixels": [[0.5, 1e999]]}', 400, "NaN or infinite"),
    ({"pixels": [[0.5, 255]]}, 400, "must lie in [0, 1]; got 0.5 to 255"),
    ({"pixels": [[-0.1, 0.5]]}, 400, "must lie in [0, 1]"),
    ({"pixels": [[0.0]] * 1025}, 413, "at most 1024x1024"),
    ({"pixels": ok, "model": "cnn"}, 404, "unknown model 'cnn'; served: digits"),
    ({"pixels": ok, "model": ["digits"]}, 404, "unknown model"),
    ({"pixels": ok, "threshold": 1.5}, 400, '"threshold" must lie in [0, 1]'),
    ({"pixels": ok, "threshold": "high"}, 400, '"threshold" must be a number'),
    ({"pixels": ok, "threshold": True}, 400, '"threshold" must be a number'),
    ({"pixels": ok, "top": 0}, 400, '"top" must lie in [1, 10]'),
    ({"pixels": ok, "top": 11}, 400, '"top" must lie in [1, 10]'),
    ({"pixels": ok, "top": 2.5}, 400, '"top" must be an integer'),
]


@pytest.mark.parametrize("body, status, words", BAD_PREDICTIONS,
                         ids=[f"{i}-{w[:24]}" for i, (_, _, w) in enumerate(BAD_PREDICTIONS)])
def test_bad_predict_requests_get_a_clear_4xx(client, body, status, words):
    if isinstance(body, dict):
        r = client.post("/api/predict", json=body)
    else:
        r = client.post("/api/predict", data=body, content_type="application/json")
    assert r.status_code == status, r.get_json()
    assert words in r.get_json()["error"]


def test_oversized_body_and_wrong_content_type_are_refused(client):
    r = client.post("/api/predict", data=b"x" * (MAX_BODY_BYTES + 1),
                    content_type="application/json")
    assert r.status_code == 413 and "too large" in r.get_json()["error"]
    r = client.post("/api/predict", data=b'{"pixels": [[1]]}', content_type="text/plain")
    assert r.status_code == 415 and "application/json" in r.get_json()["error"]


def test_unknown_routes_and_methods_answer_json(client):
    r = client.get("/api/nothing")
    assert r.status_code == 404 and "error" in r.get_json()
    r = client.get("/api/predict")
    assert r.status_code == 405 and "error" in r.get_json()


def test_requests_for_another_host_are_refused(model_path):
    app = create_app({"digits": model_path}, allowed_hosts=("127.0.0.1", "localhost", "::1"))
    client = app.test_client()
    assert client.get("/api/models", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.get("/api/models", headers={"Host": "[::1]:8000"}).status_code == 200
    r = client.get("/api/models", headers={"Host": "attacker.example:8000"})
    assert r.status_code == 400 and "Host" in r.get_json()["error"]


# ------------------------------------------------------------------------------ saving
def test_save_writes_a_png_into_the_label_folder(client, data_dir, mnist):
    grey = 1 - np.pad(mnist[0][0], 10)   # dark ink on white paper
    for n in (1, 2):
        r = client.post("/api/save", json={"label": "7", "image": png_url(grey)})
        assert r.status_code == 200, r.get_json()
        saved = r.get_json()
        assert saved["label"] == "7" and saved["count"] == n
        path = data_dir / saved["path"]
        assert path.parent == data_dir / "7" and path.suffix == ".png"
        with Image.open(path) as im:
            assert im.mode == "L" and im.size == (48, 48)
            np.testing.assert_allclose(np.asarray(im) / 255, grey, atol=1 / 255)
    r = client.post("/api/save", json={"label": "none", "pixels": ok})
    assert r.status_code == 200
    assert sorted(p.name for p in data_dir.iterdir()) == ["7", "none"]
    assert not [p for p in data_dir.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("label", [
    "../evil", "..", ".", "a/b", "a\\b", "/etc", "", " ", "7 ", "x" * 33, "é", "a\x00b",
    "-rf", "_x", ".hidden", "con", "NUL", "lpt1", None, 7, ["7"]])
def test_save_refuses_unsafe_labels(client, data_dir, tmp_path, label):
    before = sorted(tmp_path.rglob("*"))
    r = client.post("/api/save", json={"label": label, "pixels": ok})
    assert r.status_code == 400 and '"label"' in r.get_json()["error"]
    assert sorted(tmp_path.rglob("*")) == before


def test_save_refuses_a_label_folder_that_links_outside(client, data_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    data_dir.mkdir()
    (data_dir / "seven").symlink_to(outside, target_is_directory=True)
    r = client.post("/api/save", json={"label": "seven", "pixels": ok})
    assert r.status_code == 403 and "outside" in r.get_json()["error"]
    assert list(outside.iterdir()) == []


def test_save_into_an_unusable_folder_is_a_clear_server_error(model_path, tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    client = create_app({"digits": model_path}, data_dir=not_a_folder).test_client()
    r = client.post("/api/save", json={"label": "7", "pixels": ok})
    assert r.status_code == 500 and "cannot save drawings in" in r.get_json()["error"]


def test_save_validates_the_picture_and_needs_a_data_dir(client, model_path, data_dir):
    r = client.post("/api/save", json={"label": "7", "pixels": [[2.0]]})
    assert r.status_code == 400 and not data_dir.exists()
    r = client.post("/api/save", json={"label": "7", "pixels": ok, "model": "digits"})
    assert r.status_code == 400 and "unknown field(s) 'model'" in r.get_json()["error"]
    r = create_app({"digits": model_path}).test_client().post(
        "/api/save", json={"label": "7", "pixels": ok})
    assert r.status_code == 403 and "--save-dir" in r.get_json()["error"]


# ------------------------------------------------------------------------------ command line
def test_serve_reports_bad_models_and_options(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing.npz")]) == 1
    assert "missing.npz: no such model file" in capsys.readouterr().err
    for option in (["--threshold", "1.5"], ["--port", "70000"]):
        with pytest.raises(SystemExit) as exc:
            main(["serve", "m.npz", *option])
        assert exc.value.code == 2
        assert "expected a" in capsys.readouterr().err


def test_serve_command_answers_on_loopback(model_path, tmp_path):
    (tmp_path / "runs" / "earlier").mkdir(parents=True)   # a finished run is served too
    (tmp_path / "runs" / "earlier" / "model.npz").write_bytes(model_path.read_bytes())
    with subprocess.Popen(
            [sys.executable, "-m", "glyphnet.cli", "serve", str(model_path), "--port", "0",
             "--save-dir", str(tmp_path / "d"), "--runs-dir", str(tmp_path / "runs")],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout],
                         daemon=True).start()
        try:
            url = None
            while url is None:
                line = lines.get(timeout=30)
                if line.startswith("drawing pad at "):
                    url = line.split()[3]
            assert url.startswith("http://127.0.0.1:")
            with urllib.request.urlopen(url + "api/models", timeout=10) as r:
                info = json.load(r)
            assert [m["name"] for m in info["models"]] == ["digits", "earlier"] and info["lab"]
        finally:
            proc.terminate()


# ------------------------------------------------------------------------------ concurrency
@pytest.fixture
def live_server(model_path, data_dir):
    from werkzeug.serving import make_server
    server = make_server("127.0.0.1", 0, create_app({"digits": model_path}, data_dir=data_dir),
                         threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_burst_of_parallel_predictions_all_answered_correctly(live_server, model_path, mnist):
    """200 requests from 8 threads (half PNG, half pixel arrays): every answer, saliency map
    included (it needs the forward state each layer keeps), must equal the in-process answer
    for its image; p50/p99 latency is printed, not asserted."""
    model = Sequential.load(model_path)
    images = mnist[0][:40]
    expected = [expected_answer(model, g)[0] for g in images]
    maps = [saliency(model, mnist_like(g, 28)[None, ..., None])[0] for g in images]
    bodies = [json.dumps({"image": png_url(g)} if i % 2 else {"pixels": g.tolist()}).encode()
              for i, g in enumerate(images)]

    def call(i):
        k = i % len(images)
        request = urllib.request.Request(live_server + "/api/predict", data=bodies[k],
                                         headers={"Content-Type": "application/json"})
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as r:
            status, answer = r.status, json.load(r)
        return k, status, answer, time.perf_counter() - start

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(200)))
    for k, status, answer, _ in results:
        assert status == 200
        p = expected[k]
        assert answer["prediction"] == str(int(np.argmax(p)))
        top = answer["classes"][0]
        assert top["label"] == answer["prediction"]
        np.testing.assert_allclose(top["probability"], p.max(), rtol=1e-5)
        np.testing.assert_allclose(answer["saliency"], maps[k] / maps[k].max(), atol=6e-4)
    latency = np.array([r[3] for r in results]) * 1000
    print(f"\n/api/predict burst: 200 requests, 8 threads: p50 {np.percentile(latency, 50):.1f} "
          f"ms, p99 {np.percentile(latency, 99):.1f} ms")
