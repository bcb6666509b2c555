"""Shared fixtures. The bundled MNIST is read once per session; tests take small slices."""
import os

import numpy as np
import pytest

import glyphnet


@pytest.fixture(scope="session")
def mnist():
    """The bundled MNIST (a few seconds to read); modules may shadow this with their own."""
    return glyphnet.load_mnist()


@pytest.fixture(scope="session")
def mnist_small(mnist):
    """(x_train, y_train, x_test, y_test): the first 2000 training and 500 test images."""
    return mnist.x_train[:2000], mnist.y_train[:2000], mnist.x_test[:500], mnist.y_test[:500]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright; the test is skipped, with the reason,
    when either is missing."""
    playwright_api = pytest.importorskip(
        "playwright.sync_api",
        reason="Playwright for Python is not installed (pip install playwright)")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync"])
        yield b
        b.close()
