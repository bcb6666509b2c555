"""Shared fixtures. The bundled MNIST is read once per session; tests take small slices."""
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
