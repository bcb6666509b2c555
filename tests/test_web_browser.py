"""The drawing pad used as a person would: draw with the mouse in headless Chromium, read the
answer, undo, change the threshold, save drawings. Skipped without Playwright or Chromium."""
import os
import threading
from pathlib import Path

import pytest
from PIL import Image

from glyphnet import Adam, Dense, ReLU, Sequential, Softmax
from glyphnet.data import bundled_mnist_dir, load_idx_pair
from glyphnet.web.app import create_app

# Where the screenshot of the pad goes, to look at (docs/images/drawing-pad.png was made with
# GLYPHNET_SCREENSHOT=docs/images/drawing-pad.png); by default a temporary folder.
SCREENSHOT = os.environ.get("GLYPHNET_SCREENSHOT")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# A "1": one slightly slanted stroke; a "7": a bar and a long diagonal. Points are in the
# 280x280 canvas's own pixels.
ONE = [[(150, 40), (143, 140), (136, 240)]]
SEVEN = [[(70, 55), (210, 50), (180, 110), (150, 170), (125, 240)]]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A small MLP (2 epochs on 4,000 digits of the bundled MNIST test set, quicker to read
    than the training set) served on a free loopback port."""
    from werkzeug.serving import make_server
    d = bundled_mnist_dir()
    x, y = load_idx_pair(os.path.join(d, "t10k-images-idx3-ubyte.gz"),
                         os.path.join(d, "t10k-labels-idx1-ubyte.gz"), 10)
    model = Sequential([Dense(64), ReLU(), Dense(10), Softmax()], input_shape=(28, 28, 1),
                       seed=1, classes=[str(i) for i in range(10)])
    model.compile("cross_entropy", Adam(2e-3), l2=1e-3)   # l2: a cleaner saliency map
    model.fit(x[1000:5000], y[1000:5000], epochs=2, batch_size=32, seed=1, verbose=False)
    data_dir = tmp_path_factory.mktemp("drawings")
    app = create_app({"digits": model}, data_dir=data_dir, threshold=0.5,
                     allowed_hosts=("127.0.0.1", "localhost"))
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}/", data_dir
    srv.shutdown()
    srv.server_close()
    thread.join(10)


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 1000, "height": 720})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not
            m.text.startswith("Failed to load resource") else None)   # refusals are tested
    page.goto(server[0])
    page.wait_for_selector("#model-name:has-text('digits')")
    yield page
    page.close()
    assert errors == []


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


def answer(page):
    """Wait for the pad's answer to a drawing; returns (predicted label, shown text)."""
    page.wait_for_selector('#answer:not([data-label=""])')
    el = page.locator("#answer")
    return el.get_attribute("data-label"), el.text_content()


def test_draw_undo_and_threshold(page, tmp_path):
    draw(page, ONE)
    assert answer(page) == ("1", "1")
    assert page.locator("#bars li").count() == 5
    assert page.locator("#bars li.top .label").text_content() == "1"
    shot = Path(SCREENSHOT or tmp_path / "drawing-pad.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page.click("#undo")
    page.wait_for_selector('#answer[data-state="empty"]')
    assert page.locator("#bars li").count() == 0

    draw(page, SEVEN)
    assert answer(page) == ("7", "7")
    page.locator("#threshold").fill("1")
    page.wait_for_selector('#answer[data-state="uncertain"]')
    assert page.locator("#answer").text_content() == "not sure"
    assert "below the 100% threshold" in page.locator("#answer-note").text_content()
    page.click("#clear")
    page.wait_for_selector('#answer[data-state="empty"]')


def test_save_drawings_into_label_folders(page, server):
    data_dir = server[1]
    draw(page, SEVEN)
    answer(page)
    page.fill("#label", "7")
    page.click("#save")
    page.wait_for_selector("#save-status[data-saved]")
    saved = data_dir / page.locator("#save-status").get_attribute("data-saved")
    assert saved.parent == data_dir / "7" and saved.exists()
    with Image.open(saved) as im:
        assert im.size == (280, 280) and im.convert("L").getextrema() == (0, 255)
    assert "1 drawing of \"7\"" in page.locator("#save-status").text_content()
    page.wait_for_selector('#answer[data-state="empty"]')   # the pad is cleared for the next

    draw(page, ONE)
    page.fill("#label", "nul")   # passes the page's own pattern check; the server refuses it
    page.click("#save")
    page.wait_for_selector("#save-status:has-text('Not saved')")
    assert "reserved device name" in page.locator("#save-status").text_content()
    assert sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*")) == \
        ["7", f"7/{saved.name}"]
