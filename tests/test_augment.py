"""Augmentation: exact geometry on fixed draws, reproducibility, statistics, config, training."""
import tomllib

import numpy as np
import pytest

from glyphnet.data import augment as A
from glyphnet import config
from glyphnet.errors import ConfigError


class FixedDraws:
    """Stands in for a Generator: every draw returns the given values."""

    def __init__(self, uniform=None, integers=None):
        self._uniform, self._integers = uniform, integers

    def uniform(self, low, high, size):
        return np.full(size, self._uniform, np.float64)

    def integers(self, low, high, size):
        return np.broadcast_to(np.asarray(self._integers).reshape(2, 1, 1, 1), size).copy()


def batch(n=3, h=9, w=7, c=1, seed=0):
    return np.random.default_rng(seed).random((n, h, w, c), dtype=np.float32)


def test_bilinear_at_whole_pixels_copies_them_and_clamps_outside():
    x = batch(c=2)
    ys, xs = np.meshgrid(np.arange(9.0), np.arange(7.0), indexing="ij")
    assert np.array_equal(A.bilinear(x, np.broadcast_to(ys, (3, 9, 7)),
                                     np.broadcast_to(xs, (3, 9, 7))), x)
    far = A.bilinear(x, np.full((3, 9, 7), -5.0), np.full((3, 9, 7), 50.0))
    assert np.array_equal(far, np.broadcast_to(x[:, :1, -1:, :], x.shape))


def test_bilinear_matches_hand_computed_interpolation():
    x = np.zeros((1, 2, 2, 1), np.float32)
    x[0, :, :, 0] = [[0.0, 1.0], [2.0, 3.0]]
    out = A.bilinear(x, np.full((1, 2, 2), 0.25), np.full((1, 2, 2), 0.5))
    # value(y, x) = x + 2 y for this picture
    assert np.allclose(out, 0.5 + 2 * 0.25)


def test_bilinear_agrees_with_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(1)
    x = batch(n=2, c=3)
    ys, xs = rng.uniform(-2, 10, (2, 9, 7)), rng.uniform(-2, 8, (2, 9, 7))
    out = A.bilinear(x, ys, xs)
    for n in range(2):
        for c in range(3):
            ref = ndimage.map_coordinates(x[n, :, :, c], [np.clip(ys[n], 0, 8),
                                                          np.clip(xs[n], 0, 6)], order=1)
            assert np.allclose(out[n, :, :, c], ref, atol=1e-6)


def test_rotation_by_90_degrees_is_rot90():
    x = batch(h=7, w=7)
    out = A.Rotate(90)(x, FixedDraws(uniform=90.0))
    assert np.allclose(out, np.rot90(x, k=1, axes=(1, 2)), atol=1e-5)
    back = A.Rotate(90)(x, FixedDraws(uniform=-90.0))
    assert np.allclose(back, np.rot90(x, k=-1, axes=(1, 2)), atol=1e-5)


def test_shift_moves_whole_pixels_and_repeats_the_edge():
    x = batch(h=6, w=5)
    out = A.Shift(2)(x, FixedDraws(integers=[1, -2]))  # down 1, left 2
    padded = np.pad(x, ((0, 0), (1, 0), (0, 2), (0, 0)), mode="edge")
    assert np.array_equal(out, padded[:, :6, 2:, :])


def test_elastic_is_reproducible_and_off_at_alpha_zero():
    x = batch(n=4, h=28, w=28)
    el = A.Elastic(34, 4)
    a = el(x, np.random.default_rng(5))
    b = el(x, np.random.default_rng(5))
    c = el(x, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.allclose(a, c)
    assert a.dtype == np.float32 and a.shape == x.shape
    assert a.min() >= x.min() - 1e-6 and a.max() <= x.max() + 1e-6  # interpolation only
    assert A.Elastic(0, 4)(x, np.random.default_rng(5)) is x


def test_elastic_field_scales_with_alpha_and_smooths_with_sigma():
    def field(alpha, sigma):
        _, _, dy, dx = A.elastic_field((28, 28), alpha, sigma, rng=3)
        return dy, dx

    dy1, dx1 = field(10, 4)
    dy2, dx2 = field(20, 4)
    assert np.allclose(dy2, 2 * dy1, rtol=1e-5, atol=1e-5)
    rough = np.abs(np.diff(field(10, 1)[0], axis=0)).mean() / np.abs(field(10, 1)[0]).mean()
    smooth = np.abs(np.diff(dy1, axis=0)).mean() / np.abs(dy1).mean()
    assert smooth < rough / 2
    ys, xs, dy, dx = A.elastic_field((5, 6), 34, 4, rng=0)
    assert ys.shape == xs.shape == dy.shape == dx.shape == (5, 6)
    assert ys[4, 0] == 4 and xs[0, 5] == 5


def test_gaussian_matrix_rows_sum_to_one_and_are_symmetric_inside():
    s = A.gaussian_matrix(40, 3.0)
    assert np.allclose(s.sum(axis=1), 1)
    assert np.allclose(s[20, 10:31], s[20, 10:31][::-1])
    assert s[20, 29] > 0 and s[20, 30] == 0  # truncated beyond 3 sigma


def test_noise_statistics():
    x = np.zeros((50, 28, 28, 1), np.float32)
    g = A.GaussianNoise(0.1)(x, np.random.default_rng(0))
    assert abs(g.mean()) < 0.002 and abs(g.std() - 0.1) < 0.002
    u = A.AbsUniformNoise(1.0)(x, np.random.default_rng(0))
    assert u.min() >= 0 and abs(u.mean() - 0.5) < 0.01  # |U(-1, 1)| has mean 1/2
    ones = np.ones_like(x)
    v = A.AbsUniformNoise(0.5)(ones, np.random.default_rng(0))
    assert v.min() >= 0.5 and v.max() <= 1.5  # 1 + U(-0.5, 0.5) stays positive


def test_transforms_reject_bad_arguments():
    with pytest.raises(ValueError, match="sigma must be > 0"):
        A.Elastic(34, 0)
    with pytest.raises(ValueError, match="rotate degrees"):
        A.Rotate(-1)
    with pytest.raises(ValueError, match="integer"):
        A.Shift(1.5)
    with pytest.raises(ValueError, match="NHWC"):
        A.Compose([A.Shift(1)])(np.zeros((2, 28, 28), np.float32), np.random.default_rng(0))


def test_config_defaults_errors_and_round_trip():
    problems = []
    out = A.check_config({}, problems)
    assert problems == [] and out == A.DEFAULTS and A.from_config(out) is None

    problems = []
    A.check_config({"elastic": {"alpha": -1, "size": 3}, "rotate": "10", "shift": 1.5,
                    "noise": True, "blur": 1}, problems)
    text = "\n".join(problems)
    for key in ("augment.elastic.alpha", "augment.elastic.size", "augment.rotate",
                "augment.shift", "augment.noise", "augment.blur"):
        assert key in text
    assert len(problems) == 6

    raw = {"augment": {"elastic": {"sigma": 3}, "rotate": 10, "shift": 2, "noise": 0.1,
                       "abs_uniform_noise": 1.0}}
    cfg = config.resolve(raw)
    assert cfg["augment"]["elastic"] == {"alpha": 34.0, "sigma": 3.0}
    again = config.resolve(tomllib.loads(config.dumps(cfg)))
    assert again["augment"] == cfg["augment"]
    aug = A.from_config(cfg["augment"])
    assert [type(t).__name__ for t in aug.transforms] == [
        "Elastic", "Rotate", "Shift", "GaussianNoise", "AbsUniformNoise"]
    with pytest.raises(ConfigError, match="augment.elastic: expected a table"):
        config.resolve({"augment": {"elastic": 34}})


@pytest.mark.slow
def test_training_with_elastic_distortion_learns(mnist_small):
    from glyphnet import Dense, ReLU, Sequential, Softmax
    x, y, xt, yt = mnist_small
    model = Sequential([Dense(64), ReLU(), Dense(10), Softmax()], input_shape=(28, 28, 1))
    model.compile()
    history = model.fit(x, y, epochs=3, batch_size=64, seed=0,
                        augment=A.Compose([A.Elastic(34, 4), A.Rotate(10)]))
    losses = history.column("train_loss")
    assert losses[-1] < losses[0]
    assert model.evaluate(xt, yt)["accuracy"] > 0.8


def test_bilinear_samples_any_number_of_points():
    x = batch(n=2, h=4, w=5)
    ys, xs = np.meshgrid(np.arange(0, 3.01, 0.5), np.arange(0, 4.01, 0.5), indexing="ij")
    out = A.bilinear(x, np.stack([ys, ys]), np.stack([xs, xs]))
    assert out.shape == (2, 7, 9, 1)
    assert np.array_equal(out[:, ::2, ::2], x)
    assert np.allclose(out[:, 1, 0, 0], (x[:, 0, 0, 0] + x[:, 1, 0, 0]) / 2)


def test_elastic_grid_picture_shows_the_field():
    straight = A.elastic_grid_picture((6, 8), alpha=0.0, sigma=4.0, rng=0, scale=4, spacing=2)
    assert straight.shape == (24, 32)
    rows = np.flatnonzero(straight.min(axis=1) == 1)  # full horizontal lines
    assert rows.tolist() == [4, 12, 20]
    bent = A.elastic_grid_picture((6, 8), alpha=34.0, sigma=2.0, rng=0, scale=4, spacing=2)
    assert not np.array_equal(bent, straight) and bent.min() >= 0 and bent.max() <= 1
