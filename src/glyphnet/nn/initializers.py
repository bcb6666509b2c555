"""Weight initialisation schemes, chosen per layer.

fan_in is the number of inputs feeding one unit (kernel_h * kernel_w * in_channels for a
convolution), fan_out the number of units one input feeds.
"""
import numpy as np

SCHEMES = ("normal", "uniform", "lecun_normal", "lecun_uniform", "glorot_normal",
           "glorot_uniform", "he_normal", "he_uniform", "zeros")
ALIASES = {"lecun": "lecun_normal", "glorot": "glorot_uniform", "xavier": "glorot_uniform",
           "he": "he_normal"}


def canonical(scheme):
    name = ALIASES.get(scheme, scheme)
    if name not in SCHEMES:
        raise ValueError(f"unknown init {scheme!r}; expected one of "
                         f"{', '.join(SCHEMES + tuple(ALIASES))}")
    return name


def initialize(scheme, shape, fan_in, fan_out, rng, sigma=0.01, dtype=np.float32):
    """Draw an array of ``shape``.

    normal:  N(0, sigma^2) (sigma = 0 gives zeros);   uniform: U(-sigma, sigma)
    lecun:   variance 1/fan_in;   glorot: variance 2/(fan_in + fan_out);   he: variance 2/fan_in
    (the *_uniform forms use U(-a, a) with a = sqrt(3 * variance)).
    """
    name = canonical(scheme)
    if name == "zeros" or (name in ("normal", "uniform") and sigma == 0):
        return np.zeros(shape, dtype)
    if name == "normal":
        return rng.normal(0.0, sigma, shape).astype(dtype)
    if name == "uniform":
        return rng.uniform(-sigma, sigma, shape).astype(dtype)
    family, dist = name.split("_")
    var = {"lecun": 1.0 / fan_in, "glorot": 2.0 / (fan_in + fan_out), "he": 2.0 / fan_in}[family]
    if dist == "normal":
        return rng.normal(0.0, np.sqrt(var), shape).astype(dtype)
    a = np.sqrt(3.0 * var)
    return rng.uniform(-a, a, shape).astype(dtype)
