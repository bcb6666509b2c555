"""Robustness curves (perturbations, coverage against accuracy, the CLI) and the 2-D activation
maps (PCA, t-SNE)."""
import csv
import io
import os

import numpy as np
import pytest

from glyphnet import Adam, Dense, ReLU, Sequential, Softmax
from glyphnet.cli import main
from glyphnet.data import bundled_mnist_dir, load_idx_pair
from glyphnet.inspection import embedding, robustness


@pytest.fixture(scope="module")
def digits():
    d = bundled_mnist_dir()
    return load_idx_pair(os.path.join(d, "t10k-images-idx3-ubyte.gz"),
                         os.path.join(d, "t10k-labels-idx1-ubyte.gz"), 10)


@pytest.fixture(scope="module")
def model(digits):
    """A small MLP, 2 epochs on 2,000 test digits (images 1000-2999; the first 500 are used
    for measuring)."""
    x, y = digits
    m = Sequential([Dense(32), ReLU(), Dense(10), Softmax()], input_shape=(28, 28, 1), seed=1,
                   classes=[str(i) for i in range(10)])
    m.compile("cross_entropy", Adam(3e-3))
    m.fit(x[1000:3000], y[1000:3000], epochs=2, batch_size=32, seed=1, verbose=False)
    return m


def picture():
    """A 7x7 picture with one bright pixel off the centre and a dimmer one elsewhere."""
    img = np.zeros((1, 7, 7, 1), np.float32)
    img[0, 1, 4, 0] = 1.0
    img[0, 4, 2, 0] = 0.5
    return img


# ------------------------------------------------------------------------------ perturbations
def test_rotation_by_90_degrees_turns_the_picture_anticlockwise():
    img = picture()
    np.testing.assert_allclose(robustness.rotate(img, 90)[0, ..., 0], np.rot90(img[0, ..., 0]),
                               atol=1e-6)
    np.testing.assert_allclose(robustness.rotate(img, 0), img)


def test_shift_moves_right_and_down_and_fills_with_the_edge():
    img = picture()
    moved = robustness.shift(img, 2)[0, ..., 0]
    assert moved[3, 6] == 1.0 and moved[1, 4] == 0.0 and moved[6, 4] == 0.5
    assert moved[:2].max() == 0 and moved[:, :2].max() == 0   # the empty border repeats


def test_thickness_dilates_and_erodes_strokes():
    img = np.zeros((1, 9, 9, 1), np.float32)
    img[0, 4, 4] = 1
    thick = robustness.thickness(img, 1)
    assert thick[0, ..., 0].sum() == 9 and thick[0, 3:6, 3:6].min() == 1
    assert robustness.thickness(thick, 2)[0, ..., 0].sum() == 49
    np.testing.assert_array_equal(robustness.thickness(thick, -1), img)
    np.testing.assert_array_equal(robustness.thickness(img, 0), img)


def test_noise_is_seeded_and_stays_in_range():
    img = np.full((2, 5, 5, 1), 0.5, np.float32)
    a, b = robustness.noise(img, 0.3, seed=4), robustness.noise(img, 0.3, seed=4)
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() <= 1 and a.std() > 0.2
    np.testing.assert_array_equal(robustness.noise(img, 0.0), img)
    with pytest.raises(ValueError, match="unknown perturbation 'blur'"):
        robustness.perturb(img, "blur", 1)


def test_coverage_curve_counts_answers_and_their_accuracy():
    p = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 0])   # right, wrong, right, wrong
    c = robustness.coverage_curve(p, labels, thresholds=[0.0, 0.56, 0.65, 0.95])
    np.testing.assert_allclose(c["coverage"], [1.0, 0.75, 0.5, 0.0])
    np.testing.assert_allclose(c["accuracy"][:3], [0.5, 2 / 3, 1.0])
    assert np.isnan(c["accuracy"][3])


def test_robustness_of_a_model(model, digits):
    x, y = digits[0][:500], digits[1][:500]
    result = robustness.robustness(model, x, y)
    plain = float(np.mean(model.predict(x) == y))
    for kind, levels in robustness.LEVELS.items():
        curve = result[kind]
        np.testing.assert_array_equal(curve["level"], levels)
        assert curve["accuracy"][list(levels).index(0)] == pytest.approx(plain)
    assert result["coverage"]["accuracy"][0] == pytest.approx(plain)
    assert result["noise"]["accuracy"][-1] < plain - 0.2      # heavy noise hurts
    assert result["rotation"]["accuracy"][0] < plain - 0.3    # so does turning by 60 degrees
    cov = result["coverage"]
    assert np.all(np.diff(cov["coverage"]) <= 0)               # a higher bar answers fewer
    assert cov["accuracy"][10] > cov["accuracy"][0]            # ... and is right more often


def test_csv_and_figure(model, digits, tmp_path):
    x, y = digits[0][:100], digits[1][:100]
    result = robustness.robustness(model, x, y, levels={"shift": (0, 3)})
    rows = list(csv.DictReader(io.StringIO(robustness.csv_text(result))))
    assert [(r["test"], r["level"]) for r in rows[:2]] == [("shift", "0"), ("shift", "3")]
    assert float(rows[0]["accuracy"]) == pytest.approx(result["shift"]["accuracy"][0], rel=1e-5)
    assert len(rows) == 2 + len(robustness.THRESHOLDS) and rows[2]["coverage"] == "1"
    png, table = robustness.write(result, tmp_path / "out")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.exists(table)


def test_robustness_command_writes_png_and_csv(model, tmp_path, capsys):
    path = tmp_path / "digits.npz"
    model.save(path)
    assert main(["robustness", str(path), "--limit", "200", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "rotation (degrees): -60:" in out and "threshold 0.5: answers" in out
    rows = list(csv.DictReader(open(tmp_path / "r" / "robustness.csv")))
    assert {r["test"] for r in rows} == {*robustness.LEVELS, "threshold"}
    assert (tmp_path / "r" / "robustness.png").stat().st_size > 10000
    assert main(["robustness", str(tmp_path / "missing.npz")]) == 1
    assert "missing.npz" in capsys.readouterr().err


def test_a_model_without_a_known_test_set_is_refused(tmp_path):
    from glyphnet.errors import GlyphnetError
    m = Sequential([Dense(3), Softmax()], input_shape=(5, 5, 1))
    with pytest.raises(GlyphnetError, match="no test set is known"):
        robustness.evaluation_set(m)


# ------------------------------------------------------------------------------ embedding
def test_pca_finds_the_directions_of_largest_variance():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 3)) * [5.0, 2.0, 0.1] @ np.linalg.qr(
        rng.standard_normal((3, 3)))[0] + 7
    coords, mean, axes = embedding.pca(a, 2)
    np.testing.assert_allclose(axes @ axes.T, np.eye(2), atol=1e-12)
    cov_eig = np.linalg.eigh(np.cov(a.T))[1][:, ::-1][:, :2].T
    np.testing.assert_allclose(np.abs(axes @ cov_eig.T), np.eye(2), atol=1e-8)
    np.testing.assert_allclose(coords, (a - a.mean(axis=0)) @ axes.T)
    assert coords[:, 0].var() > 4 * coords[:, 1].var() > 0   # variances about 25 and 4


def test_embedding_places_new_points(model, digits):
    a = embedding.activations(model, digits[0][:300], 1)
    assert a.shape == (300, 32) and a.min() >= 0   # after the ReLU
    e = embedding.Embedding(a, "pca")
    np.testing.assert_allclose(e.place(a[:5]), e.coords[:5])
    with pytest.raises(ValueError, match="method must be one of"):
        embedding.Embedding(a, "umap")
    with pytest.raises(ValueError, match="layer must be in"):
        embedding.activations(model, digits[0][:3], 4)


@pytest.mark.slow
def test_tsne_keeps_neighbours_and_places_new_points_on_the_nearest(model, digits):
    x, y = digits[0][:300], digits[1][:300]
    a = embedding.activations(model, x, 1)
    t = embedding.Embedding(a, "tsne", seed=0)
    assert t.coords.shape == (300, 2)
    np.testing.assert_allclose(t.place(a[7] + 1e-9), t.coords[7:8])   # the nearest image
    # Most images' nearest neighbour on the map has the same label (far above chance, 10%).
    d = ((t.coords[:, None] - t.coords[None]) ** 2).sum(-1) + np.diag(np.full(300, np.inf))
    assert np.mean(y[d.argmin(axis=1)] == y) > 0.6


def test_tsne_without_scikit_learn_says_how_to_install_it(monkeypatch):
    import sys

    from glyphnet.errors import GlyphnetError
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)
    with pytest.raises(GlyphnetError, match=r'pip install "glyphnet\[sklearn\]"'):
        embedding.tsne(np.zeros((10, 3)))
