"""The panels beyond the pad used as a person would, in headless Chromium: train and stop,
ablate a unit, hover the map, read a robustness curve, and look at every panel at desktop and
phone widths. Skipped without Playwright or Chromium."""
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from glyphnet import Adam, Conv2D, Dense, MaxPool2D, ReLU, Sequential, Softmax
from glyphnet.data import bundled_mnist_dir, load_idx_pair
from glyphnet.web import inspect_api
from glyphnet.web.app import create_app
from tiny import tiny_config

# Where the screenshots go, to look at (docs/images/web-*.png were made with
# GLYPHNET_SCREENSHOTS=docs/images); by default a temporary folder.
SCREENSHOTS = os.environ.get("GLYPHNET_SCREENSHOTS")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SEVEN = [[(70, 55), (210, 50), (180, 110), (150, 170), (125, 240)]]
ONE = [[(150, 40), (143, 140), (136, 240)]]
TINY = tiny_config(batch_size=16, comment="# 1 epoch on 500 digits: a few seconds\n")
LONG_NAME = "digits-mlp-with-a-long-run-name"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Two small MLPs and a small CNN trained on bundled MNIST test digits (an MLP with a long
    name, for the picker) and a training lab offering the tiny config."""
    from werkzeug.serving import make_server
    d = bundled_mnist_dir()
    x, y = load_idx_pair(os.path.join(d, "t10k-images-idx3-ubyte.gz"),
                         os.path.join(d, "t10k-labels-idx1-ubyte.gz"), 10)
    models = {}
    for name, units in ((LONG_NAME, 64), ("small", 16)):
        m = Sequential([Dense(units), ReLU(), Dense(10), Softmax()], input_shape=(28, 28, 1),
                       seed=1, classes=[str(i) for i in range(10)])
        m.compile("cross_entropy", Adam(2e-3), l2=1e-3)
        m.fit(x[1000:5000], y[1000:5000], epochs=2, batch_size=32, seed=1, verbose=False)
        models[name] = m
    cnn = Sequential([Conv2D(6, 5, padding="same"), ReLU(), MaxPool2D(2), Dense(10), Softmax()],
                     input_shape=(28, 28, 1), seed=1, classes=[str(i) for i in range(10)])
    cnn.compile("cross_entropy", Adam(3e-3))
    cnn.fit(x[1000:3000], y[1000:3000], epochs=1, batch_size=32, seed=1, verbose=False)
    models["cnn"] = cnn
    tmp = tmp_path_factory.mktemp("lab")
    (tmp / "configs").mkdir()
    (tmp / "configs" / "tiny.toml").write_text(TINY)
    old = inspect_api.MAP_IMAGES
    inspect_api.MAP_IMAGES = 1000
    app = create_app(models, runs_dir=tmp / "runs", configs_dir=tmp / "configs",
                     allowed_hosts=("127.0.0.1", "localhost"))
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{srv.server_port}/", "runs": tmp / "runs",
           "models": models, "x": x, "y": y}
    app.lab.stop_all()
    srv.shutdown()
    srv.server_close()
    thread.join(10)
    inspect_api.MAP_IMAGES = old


def open_page(browser, server, width=1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" and not
            m.text.startswith("Failed to load resource") else None)   # refusals are tested
    page.goto(server["url"])
    page.wait_for_selector(f"#model option[value='{LONG_NAME}']", state="attached")
    return page


@pytest.fixture
def page(browser, server):
    page = open_page(browser, server)
    yield page
    page.close()
    assert page.errors == []


def draw(page, strokes):
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 280
    for stroke in strokes:
        (x, y), rest = stroke[0], stroke[1:]
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=10)
        page.mouse.up()
    page.wait_for_selector('#answer:not([data-label=""])')


def wait_until(page, expression, timeout=60):
    """Poll a JavaScript expression until it is true (wait_for_function evaluates strings in
    the page, which its Content-Security-Policy forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(100)


def start_training(page, epochs, name):
    page.click("nav >> text=Train")
    page.wait_for_selector("#train-config option[value='tiny']", state="attached")
    page.select_option("#train-config", "tiny")
    page.fill("#train-epochs", str(epochs))
    page.fill("#train-name", name)
    page.click("#train-start")


def test_train_live_and_find_the_model_in_the_picker(page, server):
    page.click("nav >> text=Train")
    page.wait_for_selector("#train-config option[value='tiny']", state="attached")
    page.fill("#train-text", "[training]\nwhat = 1\n")
    page.fill("#train-epochs", "0")
    page.click("#train-check")
    page.wait_for_selector("#train-problems li")
    problems = page.locator("#train-problems li").all_text_contents()
    assert any("training.epochs" in p for p in problems) and \
        any("training.what: unknown key" in p for p in problems)

    start_training(page, 1, "live-1")
    wait_until(page, "Number(document.querySelector('#chart-loss').dataset.points) >= 5")
    page.wait_for_selector("#train-state[data-state='finished']", timeout=60000)
    assert int(page.locator("#chart-loss").get_attribute("data-points")) == 32   # 500 / 16
    assert page.locator("#chart-acc circle").count() == 2   # train and test after epoch 1
    assert page.locator("#train-weights canvas").count() == 16
    assert "in the model picker as live-1" in page.locator("#train-state").text_content()
    assert page.locator("#model option[value='live-1']").count() == 1
    assert (server["runs"] / "live-1" / "model.npz").exists()
    page.select_option("#model", "live-1")
    page.click("nav >> text=Draw")
    draw(page, ONE)   # the new model answers
    assert page.locator("#bars li").count() == 5


def test_stop_a_training_after_reloading_the_page(page, server):
    start_training(page, 1000, "stop-me")
    wait_until(page, "Number(document.querySelector('#train-progress').dataset.step) > 0")
    page.reload()   # the page finds the running training again and replays its events
    page.wait_for_selector(f"#model option[value='{LONG_NAME}']", state="attached")
    page.click("nav >> text=Train")
    wait_until(page, "Number(document.querySelector('#chart-loss').dataset.points) > 0")
    assert "Training stop-me" in page.locator("#train-state").text_content()
    page.click("#train-stop")
    page.wait_for_selector("#train-state[data-state='stopped']", timeout=60000)
    assert page.locator("#train-stop").is_disabled()
    assert (server["runs"] / "stop-me" / "config.toml").exists()
    assert page.locator("#model option[value='stop-me']").count() == 0 or \
        (server["runs"] / "stop-me" / "model.npz").exists()   # with checkpointing it is kept


def scores(page):
    return {li.get_attribute("data-label"): float(li.get_attribute("data-probability"))
            for li in page.locator("#inspect-bars li").all()}


def test_ablate_units_and_see_the_scores_change(page):
    draw(page, SEVEN)
    page.click("nav >> text=Inspect")
    page.wait_for_selector("#layers .layer")
    assert page.locator("#layers .layer h3").all_text_contents()[0].startswith("0 · dense")
    intact = scores(page)
    top = max(intact, key=intact.get)
    # Switch off the five most active hidden units.
    values = page.evaluate("""() => [...document.querySelectorAll('#layers [data-layer="1"]')]
        .map((e) => Number(e.title.split(': ')[1]))""")
    for unit in np.argsort(values)[::-1][:5]:
        page.click(f'#layers [data-layer="1"][data-unit="{unit}"]')
        page.wait_for_selector("#unit-weights canvas")   # its 28x28 incoming weights
        page.click("#unit-toggle")
        page.wait_for_selector(f'#layers [data-layer="1"][data-unit="{unit}"].off')
    assert "5 units switched off" in page.locator("#ablated").text_content()
    ablated = scores(page)
    assert ablated.get(top, 0) < intact[top] - 0.01
    page.click("#ablate-reset")
    page.wait_for_selector("#ablated:has-text('All units on')")
    assert scores(page) == intact


def test_hover_a_point_on_the_map(page, server):
    draw(page, SEVEN)
    page.click("nav >> text=Map")
    page.click("#map-draw")
    page.wait_for_selector("#map[data-points='1000']", timeout=60000)
    assert page.locator("#map").get_attribute("data-drawing") != ""
    box = page.locator("#map").bounding_box()
    i = 17
    px, py, label, pred = page.evaluate(
        f"[...toCanvas(mapData.x[{i}], mapData.y[{i}]), mapData.label[{i}], "
        f"mapData.prediction[{i}]]")
    scale = box["width"] / 560
    page.mouse.move(box["x"] + px * scale, box["y"] + py * scale)
    page.wait_for_selector("#map-tip:not([hidden])")
    shown = int(page.locator("#map-tip").get_attribute("data-index"))
    text = page.locator("#map-tip-text").text_content()
    if shown == i:   # another point may lie on top of it
        assert text.startswith(f"label {label} · predicted {pred}")
    assert int(server["y"][shown]) == int(text.split()[1])


def test_read_a_robustness_curve(page, server):
    page.click("nav >> text=Robustness")
    page.select_option("#rob-limit", "500")
    page.click("#rob-run")
    page.wait_for_selector("[data-curve='coverage'] circle", timeout=60000)
    points = page.evaluate("""() => [...document.querySelectorAll('[data-curve="noise"] circle')]
        .map((c) => [Number(c.dataset.x), Number(c.dataset.y)])""")
    assert [x for x, _ in points] == [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    model = server["models"][LONG_NAME]
    plain = float(np.mean(model.predict(server["x"][:500]) == server["y"][:500]))
    assert points[0][1] == pytest.approx(plain)
    assert points[-1][1] < points[0][1]
    assert page.locator("[data-curve] svg").count() == 5


@pytest.mark.parametrize("width", [1280, 390])
def test_every_panel_fits_the_screen(browser, server, width, tmp_path):
    page = open_page(browser, server, width)
    shots = Path(SCREENSHOTS or tmp_path)
    page.select_option("#model", "cnn")
    draw(page, SEVEN)
    for tab in ("draw", "inspect", "map", "robustness", "train"):
        page.click(f"nav button[data-tab='{tab}']")
        if tab == "inspect":   # a feature map of the pooling layer switched off
            page.wait_for_selector("#layers .layer")
            page.click('#layers [data-layer="2"][data-unit="1"]')
            page.wait_for_selector("#unit-weights canvas")
            assert "it passes on unit 1 of layer 0, conv2d" in page.locator(
                "#unit-note").text_content()
            page.click("#unit-toggle")
            page.wait_for_selector("#ablated:has-text('1 unit switched off')")
        elif tab == "map":
            page.click("#map-draw")
            page.wait_for_selector("#map[data-points='1000']", timeout=60000)
        elif tab == "robustness":
            page.select_option("#rob-limit", "500")
            page.click("#rob-run")
            page.wait_for_selector("[data-curve='coverage'] circle", timeout=60000)
        elif tab == "train":
            start_training(page, 3, f"phone-{width}" if width < 700 else f"desktop-{width}")
            page.wait_for_selector("#train-state[data-state='finished']", timeout=60000)
        # Nothing sticks out sideways (the model picker used to, at 390 pixels).
        assert page.evaluate("document.documentElement.scrollWidth") <= width, tab
        page.screenshot(path=str(shots / f"web-{tab}-{width}.png"), full_page=True)
    page.close()
    assert page.errors == []
