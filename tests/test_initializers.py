"""Each initialisation scheme draws values with the spread its formula promises."""
import numpy as np
import pytest

from glyphnet import Dense, Sequential
from glyphnet.nn.initializers import ALIASES, SCHEMES, canonical, initialize

FAN_IN, FAN_OUT = 400, 250
SHAPE = (FAN_IN, FAN_OUT)                   # 100 000 draws: std within about 0.5%

EXPECTED_STD = {
    "normal": 0.2,
    "uniform": 0.2 / np.sqrt(3),            # U(-sigma, sigma)
    "lecun_normal": np.sqrt(1 / FAN_IN),
    "lecun_uniform": np.sqrt(1 / FAN_IN),
    "glorot_normal": np.sqrt(2 / (FAN_IN + FAN_OUT)),
    "glorot_uniform": np.sqrt(2 / (FAN_IN + FAN_OUT)),
    "he_normal": np.sqrt(2 / FAN_IN),
    "he_uniform": np.sqrt(2 / FAN_IN),
}


@pytest.mark.parametrize("scheme", sorted(EXPECTED_STD))
def test_empirical_std_matches_the_formula(scheme):
    w = initialize(scheme, SHAPE, FAN_IN, FAN_OUT, np.random.default_rng(0), sigma=0.2)
    assert w.shape == SHAPE and w.dtype == np.float32
    std = EXPECTED_STD[scheme]
    assert w.std() == pytest.approx(std, rel=0.02)
    assert abs(w.mean()) < 0.02 * std
    if scheme.endswith("uniform"):
        bound = np.sqrt(3) * std                 # U(-a, a) has std a / sqrt(3)
        assert np.abs(w).max() <= bound * (1 + 1e-6)
        assert np.abs(w).max() > 0.99 * bound
    else:
        # About 31.7% of normal draws lie beyond one standard deviation.
        assert np.mean(np.abs(w) > std) == pytest.approx(0.317, abs=0.01)


@pytest.mark.parametrize("scheme", ["normal", "uniform", "zeros"])
def test_sigma_zero_or_zeros_gives_zeros(scheme):
    w = initialize(scheme, (5, 4), 5, 4, np.random.default_rng(0), sigma=0.0)
    np.testing.assert_array_equal(w, np.zeros((5, 4)))


def test_dense_layer_with_sigma_zero_starts_at_zero():
    model = Sequential([Dense(6, init="normal", sigma=0.0), Dense(3, init="normal", sigma=0.25)],
                       input_shape=(8,), seed=0)
    assert not model.layers[0].params["W"].any()
    assert model.layers[1].params["W"].std() > 0
    assert not model.layers[1].params["b"].any()        # biases start at zero


def test_fan_in_of_a_dense_layer_counts_every_input_pixel():
    model = Sequential([Dense(500, init="lecun_normal")], input_shape=(28, 28, 1), seed=0)
    assert model.layers[0].params["W"].std() == pytest.approx(np.sqrt(1 / 784), rel=0.02)


def test_dtype_and_determinism():
    a = initialize("he_normal", (3, 3), 3, 3, np.random.default_rng(5), dtype=np.float64)
    b = initialize("he_normal", (3, 3), 3, 3, np.random.default_rng(5), dtype=np.float64)
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a, b)


def test_aliases_and_unknown_names():
    assert {canonical(a) for a in ALIASES} <= set(SCHEMES)
    assert canonical("xavier") == "glorot_uniform" and canonical("he") == "he_normal"
    with pytest.raises(ValueError, match="unknown init 'gaussian'; expected one of"):
        canonical("gaussian")
