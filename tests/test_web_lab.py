"""The page's inspector, map, robustness and training-lab API: answers equal what the library
computes, bad requests get a clear 4xx, only the server's own page may post, trainings run in
a child process, write only inside the runs folder and join the served models."""
import json
import os
import threading
import time
import urllib.request

import numpy as np
import pytest

from glyphnet import Adam, Conv2D, Dense, MaxPool2D, ReLU, Sequential, Sigmoid, Softmax
from glyphnet.data import bundled_mnist_dir, load_idx_pair
from glyphnet.inspection import embedding, robustness
from glyphnet.web import inspect_api
from glyphnet.web.app import create_app, percent
from tiny import tiny_config

DIGITS = [str(i) for i in range(10)]
TINY = tiny_config()


@pytest.fixture(scope="module")
def mnist():
    d = bundled_mnist_dir()
    return load_idx_pair(os.path.join(d, "t10k-images-idx3-ubyte.gz"),
                         os.path.join(d, "t10k-labels-idx1-ubyte.gz"), 10)


@pytest.fixture(scope="module")
def cnn(mnist):
    """A small CNN, 1 epoch on 1,000 test digits (images 2000-2999)."""
    x, y = mnist
    m = Sequential([Conv2D(4, 5, padding="same"), ReLU(), MaxPool2D(2), Dense(10), Softmax()],
                   input_shape=(28, 28, 1), seed=2, classes=DIGITS)
    m.compile("cross_entropy", Adam(3e-3))
    m.fit(x[2000:3000], y[2000:3000], epochs=1, batch_size=32, seed=1, verbose=False)
    return m


@pytest.fixture
def app(cnn, tmp_path, monkeypatch):
    monkeypatch.setattr(inspect_api, "MAP_IMAGES", 300)
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "tiny.toml").write_text(TINY)
    a = create_app({"cnn": cnn}, data_dir=tmp_path / "drawings", runs_dir=tmp_path / "runs",
                   configs_dir=configs)
    yield a
    a.lab.stop_all()


@pytest.fixture
def client(app):
    return app.test_client()


def pixels(mnist, i):
    return mnist[0][i, ..., 0].tolist()


def scaled(model, grey):
    from glyphnet.data.images import prepare_as, preparation_of
    return prepare_as(np.asarray(grey, np.float32), preparation_of(model))[None, ..., None]


# ------------------------------------------------------------------------------ formats
@pytest.mark.parametrize("p, text", [(0.9996, "99.9%"), (1.0, "100%"), (0.5, "50%"),
                                     (0.977, "97.7%"), (0.0004, "0.1%"), (0.0, "0%")])
def test_percent_never_rounds_to_a_false_100_or_0(p, text):
    assert percent(p) == text


def test_sigmoid_outputs_are_shown_as_model_probabilities(mnist):
    x, y = mnist
    m = Sequential([Dense(10), Sigmoid()], input_shape=(28, 28, 1), seed=0, classes=DIGITS)
    m.compile("mse", Adam(1e-2))
    m.fit(x[:300], y[:300], epochs=1, batch_size=50, verbose=False)
    answer = create_app({"s": m}).test_client().post(
        "/api/predict", json={"pixels": pixels(mnist, 0), "top": 10}).get_json()
    p = m.probabilities(scaled(m, pixels(mnist, 0)))[0]
    got = {c["label"]: c["probability"] for c in answer["classes"]}
    np.testing.assert_allclose([got[c] for c in DIGITS], p, rtol=1e-6)
    assert sum(got.values()) == pytest.approx(1.0)


def test_reject_class_named_in_the_run_config_is_honoured(mnist, tmp_path):
    x, y = mnist
    classes = DIGITS[:9] + ["scribble"]
    m = Sequential([Dense(10), Softmax()], input_shape=(28, 28, 1), seed=0, classes=classes)
    m.compile("cross_entropy", Adam(1e-2))
    m.fit(x[:300], np.full(300, 9), epochs=1, batch_size=50, verbose=False)   # all "scribble"
    run = tmp_path / "run"
    run.mkdir()
    m.save(run / "model.npz")
    (run / "config.toml").write_text('[data]\ndataset = "folder"\npath = "d"\n'
                                     'reject_class = "scribble"\n')
    c = create_app({"m": run / "model.npz"}).test_client()
    assert c.get("/api/models").get_json()["models"][0]["rejection_classes"] == ["scribble"]
    answer = c.post("/api/predict", json={"pixels": pixels(mnist, 1)}).get_json()
    assert answer["prediction"] == "scribble" and answer["uncertain"]
    assert "rejection class 'scribble'" in answer["reason"]


# ------------------------------------------------------------------------------ inspecting
def test_inspect_gives_every_layer_for_the_drawing(client, cnn, mnist):
    r = client.post("/api/inspect", json={"pixels": pixels(mnist, 0)})
    assert r.status_code == 200, r.get_json()
    answer = r.get_json()
    x = scaled(cnn, pixels(mnist, 0))
    assert [layer["kind"] for layer in answer["layers"]] == \
        ["conv2d", "relu", "max_pool2d", "dense", "softmax"]
    pooled = answer["layers"][2]
    assert pooled["maps"] and pooled["shape"] == [14, 14, 4]
    np.testing.assert_allclose(np.moveaxis(np.array(pooled["values"]), 0, -1),
                               cnn.forward(x, False, 3)[0], atol=6e-4)
    np.testing.assert_allclose(answer["layers"][3]["values"], cnn.forward(x, False, 4)[0],
                               atol=6e-4)
    p = cnn.probabilities(x)[0]
    assert answer["prediction"] == DIGITS[int(p.argmax())]
    assert [c["probability"] for c in answer["classes"]] == pytest.approx(sorted(p)[::-1])


def test_ablation_switches_units_off_and_reset_restores(client, cnn, mnist):
    body = {"pixels": pixels(mnist, 0)}
    intact = client.post("/api/inspect", json=body).get_json()
    off = client.post("/api/inspect", json={**body, "ablate": [[2, 0], [2, 3]]}).get_json()
    assert off["ablated"] == [[2, 0], [2, 3]]
    maps = np.array(off["layers"][2]["values"])
    assert maps[0].max() == 0 and maps[3].max() == 0 and maps[1].max() > 0
    x = scaled(cnn, pixels(mnist, 0))
    h = cnn.forward(x, False, 3).copy()
    h[..., [0, 3]] = 0
    expected = cnn.layers[4].forward(cnn.layers[3].forward(h))[0]
    got = {c["label"]: (c["probability"], c["before"]) for c in off["classes"]}
    np.testing.assert_allclose([got[d][0] for d in DIGITS], expected, rtol=1e-5, atol=1e-7)
    before = {c["label"]: c["probability"] for c in intact["classes"]}
    assert [got[d][1] for d in DIGITS] == pytest.approx([before[d] for d in DIGITS])
    assert max(abs(got[d][0] - got[d][1]) for d in DIGITS) > 1e-3   # the scores changed
    again = client.post("/api/inspect", json={**body, "ablate": []}).get_json()
    assert again["classes"] == intact["classes"]
    assert len(cnn.layers) == 5   # the ablation layers are gone again


@pytest.mark.parametrize("ablate, words", [
    ([[4, 0]], "ablate"), ([[0, 4]], "ablate"), ([[9, 0]], "ablate"), ([["0", 1]], "ablate"),
    ([[True, 1]], "ablate"), ({"0": 1}, "list of [layer, unit] pairs")])
def test_bad_ablations_are_refused(client, mnist, ablate, words):
    r = client.post("/api/inspect", json={"pixels": pixels(mnist, 0), "ablate": ablate})
    assert r.status_code == 400 and words in r.get_json()["error"]


def test_incoming_weights_of_filters_units_and_pass_through_layers(client, cnn):
    conv = client.post("/api/weights", json={"layer": 0, "unit": 2}).get_json()
    assert conv["layer"] == 0 and conv["kind"] == "conv2d"
    np.testing.assert_allclose(conv["maps"][0], cnn.layers[0].params["W"][:, :, 0, 2], atol=1e-4)
    pooled = client.post("/api/weights", json={"layer": 2, "unit": 2}).get_json()
    assert pooled["layer"] == 0 and pooled["maps"] == conv["maps"]   # the filter it passes on
    dense = client.post("/api/weights", json={"layer": 4, "unit": 7}).get_json()
    assert dense["layer"] == 3 and len(dense["maps"]) == 4           # one map per input channel
    np.testing.assert_allclose(np.moveaxis(np.array(dense["maps"]), 0, -1),
                               cnn.layers[3].params["W"][:, 7].reshape(14, 14, 4), atol=1e-4)
    assert dense["bias"] == pytest.approx(float(cnn.layers[3].params["b"][7]))
    r = client.post("/api/weights", json={"layer": 0, "unit": 4})
    assert r.status_code == 400 and '"unit" must lie in [0, 3]' in r.get_json()["error"]


def test_the_map_of_test_activations(client, cnn, mnist):
    r = client.post("/api/map", json={"layer": 2, "method": "pca", "pixels": pixels(mnist, 5)})
    assert r.status_code == 200, r.get_json()
    m = r.get_json()
    x = cnn.scaler.transform(mnist[0][:300]) if cnn.scaler else mnist[0][:300]
    a = embedding.activations(cnn, x, 2)
    coords, mean, axes = embedding.pca(a)
    np.testing.assert_allclose(np.c_[m["x"], m["y"]], coords, atol=2e-3)
    assert m["label"] == mnist[1][:300].tolist() and m["count"] == 300
    assert m["prediction"] == cnn.predict(x).tolist()
    # The drawing (test image 5, prepared like a drawing) is projected onto the same axes.
    drawn = embedding.activations(cnn, scaled(cnn, pixels(mnist, 5)), 2)
    np.testing.assert_allclose(m["drawing"], ((drawn - mean) @ axes.T)[0], atol=2e-3)
    s = client.post("/api/sample", json={"index": 7}).get_json()
    assert s["label"] == int(mnist[1][7]) and np.array(s["pixels"]).shape == (28, 28)
    bad = client.post("/api/map", json={"layer": 2, "method": "umap"})
    assert bad.status_code == 400 and '"method" must be "pca" or "tsne"' in bad.get_json()["error"]
    assert client.post("/api/sample", json={"index": 300}).status_code == 400


@pytest.mark.slow
def test_the_tsne_map_puts_the_drawing_on_the_nearest_test_image(client, cnn, mnist):
    m = client.post("/api/map", json={"layer": 2, "method": "tsne",
                                      "pixels": pixels(mnist, 5)}).get_json()
    assert m["method"] == "tsne" and len(m["x"]) == len(m["y"]) == 300
    a = embedding.activations(cnn, mnist[0][:300], 2)
    drawn = embedding.activations(cnn, scaled(cnn, pixels(mnist, 5)), 2)
    nearest = int(((a - drawn) ** 2).sum(axis=1).argmin())
    assert m["drawing"] == pytest.approx([m["x"][nearest], m["y"][nearest]], abs=1e-3)


def test_robustness_curves_match_the_library(client, cnn, mnist):
    r = client.post("/api/robustness", json={"limit": 40}).get_json()
    expected = robustness.robustness(cnn, mnist[0][:40], mnist[1][:40])
    assert r["count"] == 40
    for kind in robustness.LEVELS:
        assert r["curves"][kind]["accuracy"] == pytest.approx(expected[kind]["accuracy"])
    assert r["curves"]["coverage"]["coverage"] == \
        pytest.approx(expected["coverage"]["coverage"])


# ------------------------------------------------------------------------------ origins
def test_posts_from_another_origin_are_refused(client, mnist):
    evil = {"Origin": "http://evil.example"}
    for path, body in (("/api/save", {"label": "7", "pixels": pixels(mnist, 0)}),
                       ("/api/lab/start", {"config": TINY}),
                       ("/api/inspect", {"pixels": pixels(mnist, 0)})):
        r = client.post(path, json=body, headers=evil)
        assert r.status_code == 403 and "only this server's own page" in r.get_json()["error"]
    assert client.post("/api/save", json={"label": "7", "pixels": pixels(mnist, 0)},
                       headers={"Origin": "null"}).status_code == 403
    own = client.post("/api/save", json={"label": "7", "pixels": pixels(mnist, 0)},
                      headers={"Origin": "http://localhost"})
    assert own.status_code == 200


# ------------------------------------------------------------------------------ the lab
def test_lab_lists_configs_and_checks_them_with_every_problem(client):
    info = client.get("/api/lab").get_json()
    assert info["configs"] == {"tiny": TINY} and info["sessions"] == []
    ok = client.post("/api/lab/check", json={"config": TINY, "epochs": 3}).get_json()
    assert ok == {"ok": True, "dataset": "mnist", "epochs": 3,
                  "layers": ["dense", "relu", "dense", "softmax"]}
    bad = client.post("/api/lab/check", json={
        "config": TINY.replace("units = 16", "units = -1") + "\nfoo = 1\n", "lr": -2})
    assert bad.status_code == 400
    problems = bad.get_json()["problems"]
    assert any(p.startswith("optimizer.lr: expected a number") for p in problems)
    assert any(p.startswith("training.foo: unknown key") for p in problems)
    assert any(p.startswith("model.layers[0]") for p in problems)
    r = client.post("/api/lab/check", json={"config": "[training\n"})
    assert r.status_code == 400 and r.get_json()["problems"][0].startswith("invalid TOML")


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "x" * 65, 7])
def test_run_names_stay_inside_the_runs_folder(client, tmp_path, name):
    r = client.post("/api/lab/start", json={"config": TINY, "name": name})
    assert r.status_code == 400 and "run name" in r.get_json()["problems"][0]
    assert not (tmp_path / "escape").exists()


def test_lab_is_off_without_a_runs_folder(cnn):
    c = create_app({"cnn": cnn}).test_client()
    assert c.get("/api/models").get_json()["lab"] is False
    r = c.post("/api/lab/start", json={"config": TINY})
    assert r.status_code == 403 and "--runs-dir" in r.get_json()["error"]


def test_a_server_without_models_waits_for_a_training(tmp_path):
    c = create_app({}, runs_dir=tmp_path / "runs").test_client()
    assert c.get("/api/models").get_json()["models"] == []
    r = c.post("/api/predict", json={"pixels": [[0, 1], [1, 0]]})
    assert r.status_code == 404 and "train one in the Train tab" in r.get_json()["error"]
    assert not (tmp_path / "runs").exists()   # nothing is written before a training starts


def test_a_damaged_run_in_the_runs_folder_is_skipped_with_a_warning(cnn, tmp_path, capsys):
    (tmp_path / "runs" / "broken").mkdir(parents=True)
    (tmp_path / "runs" / "broken" / "model.npz").write_bytes(b"not a model")
    c = create_app({"cnn": cnn}, runs_dir=tmp_path / "runs").test_client()
    assert [m["name"] for m in c.get("/api/models").get_json()["models"]] == ["cnn"]
    err = capsys.readouterr().err
    assert "warning: not serving" in err and "broken" in err and "not a glyphnet model" in err


def wait_done(client, sid, timeout=120):
    events, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = client.get(f"/api/lab/{sid}?since={len(events)}").get_json()
        events += d["new"]
        if d["state"] in ("finished", "stopped", "failed"):
            return d, events
        time.sleep(0.2)
    raise AssertionError(f"training {sid} did not end; events so far: {events[-3:]}")


@pytest.mark.slow
def test_a_training_reports_progress_and_joins_the_models(client, tmp_path):
    r = client.post("/api/lab/start", json={"config": TINY, "name": "tiny-1", "lr": 0.005})
    assert r.status_code == 200, r.get_json()
    state, events = wait_done(client, r.get_json()["id"])
    assert state["state"] == "finished", events[-1]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished" and "epoch" in kinds
    assert events[0]["total"] == 16 and events[0]["train"] == 500   # 500 images / 32
    steps = [e["step"] for e in events if e["type"] == "step"]
    assert steps == list(range(1, 17))
    weights = next(e for e in events if e["type"] == "weights")
    assert np.array(weights["maps"]).shape == (16, 28, 28)
    assert events[-1]["model"] == "tiny-1" and events[-1]["metrics"]["epochs"] == 1
    run = tmp_path / "runs" / "tiny-1"
    assert sorted(os.listdir(tmp_path / "runs")) == ["tiny-1"]
    assert (run / "model.npz").exists() and "lr = 0.005" in (run / "config.toml").read_text()
    models = client.get("/api/models").get_json()["models"]
    assert [m["name"] for m in models] == ["cnn", "tiny-1"]
    answer = client.post("/api/predict", json={"model": "tiny-1", "pixels": [[0, 1], [1, 0]]})
    assert answer.status_code == 200
    again = client.post("/api/lab/start", json={"config": TINY, "name": "tiny-1"})
    assert again.status_code == 400 and "already exists" in again.get_json()["problems"][0]


@pytest.mark.slow
def test_a_training_can_be_stopped(client, tmp_path):
    long = TINY.replace("epochs = 1", "epochs = 1000")
    sid = client.post("/api/lab/start", json={"config": long, "name": "long"}).get_json()["id"]
    deadline = time.monotonic() + 60
    while not any(e["type"] == "weights" for e in
                  client.get(f"/api/lab/{sid}?since=0").get_json()["new"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    second = client.post("/api/lab/start", json={"config": TINY, "name": "second"})
    assert second.status_code == 409 and "long is still training" in second.get_json()["error"]
    assert client.post(f"/api/lab/{sid}/stop", json={}).status_code == 200
    state, events = wait_done(client, sid)
    assert state["state"] == "stopped" and events[-1]["type"] == "stopped"
    weights = [e for e in events if e["type"] == "weights"]   # only the newest kept
    assert weights[-1]["maps"] is not None and all(e["maps"] is None for e in weights[:-1])
    assert (tmp_path / "runs" / "long" / "config.toml").exists()
    assert client.post("/api/lab/99/stop", json={}).status_code == 404


@pytest.mark.slow
def test_predict_latency_while_training_and_the_event_stream(app, mnist):
    """Prints /api/predict latency (28x28 pixel arrays, the small CNN) on a real server, idle
    and while a training runs in its child process, and reads the server-sent events to the
    end."""
    from werkzeug.serving import make_server
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{srv.server_port}"

    def post(path, body):
        req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)
    try:
        idle, idle_times = [], []
        for i in range(100):
            t = time.perf_counter()
            idle.append(post("/api/predict", {"pixels": pixels(mnist, i % 3)}))
            idle_times.append(time.perf_counter() - t)
        sid = post("/api/lab/start", {"config": TINY.replace("epochs = 1", "epochs = 100"),
                                      "name": "busy"})["id"]
        while app.lab.get(sid).state == "starting":
            time.sleep(0.05)
        times, answers = [], []
        while not app.lab.get(sid).done and len(times) < 500:
            t = time.perf_counter()
            answers.append(post("/api/predict", {"pixels": pixels(mnist, len(times) % 3)}))
            times.append(time.perf_counter() - t)
        assert [a["classes"] for a in answers[:3]] == [a["classes"] for a in idle[:3]]
        with urllib.request.urlopen(f"{base}/api/lab/{sid}/events", timeout=120) as resp:
            text = resp.read().decode()
        events = [json.loads(line[6:]) for line in text.splitlines()
                  if line.startswith('data: {"')]
        assert events[0]["type"] == "started" and events[-1]["type"] == "finished"
        assert text.rstrip().endswith("event: end\ndata: {}")
        for what, ms in (("idle", np.array(idle_times) * 1000),
                         ("while training", np.array(times) * 1000)):
            print(f"\n/api/predict {what}: {len(ms)} requests, p50 {np.percentile(ms, 50):.1f} "
                  f"ms, p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms")
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(10)
