"""The extension points used as docs/architecture.md says: a data set and a report figure added
through their registries alone, then trained on, evaluated and reported; and how a user's image
is prepared like the model's training images."""
import json
import re

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from glyphnet import Dense, Sequential, Sigmoid, Softmax, cli, data, runs
from glyphnet.config import load_config
from glyphnet.data import images
from glyphnet.data.datasets import DATASETS, Dataset, NamedSet
from glyphnet.inspection.report import FIGURES, report_figure, write_report

CLASSES = ["top", "bottom"]


def _bars(n, rng):
    """8x8 images of one bright horizontal bar, in the top half (class 0) or the bottom half."""
    y = rng.integers(0, 2, n)
    x = 0.05 * rng.random((n, 8, 8, 1), dtype=np.float32)
    rows = rng.integers(0, 4, n) + 4 * y
    x[np.arange(n), rows, 1:7, 0] = 1.0
    return x, y


def _load_bars(directory, test_per_class, shuffle, seed, name="toy-bars", classes=CLASSES):
    """A NamedSet's ``load``: the same generated images every time."""
    rng = np.random.default_rng(0)
    (xtr, ytr), (xte, yte) = _bars(300, rng), _bars(60, rng)
    return Dataset(name, xtr, ytr, xte, yte, list(classes), source="generated")


def _load_renamed(*split):
    return _load_bars(*split, name="toy-renamed", classes=["a", "b"])


@pytest.fixture
def toy_set():
    """A generated data set, registered under "toy-bars" for one test."""
    DATASETS.register("toy-bars", NamedSet(
        "toy-bars", "8x8 bars, generated", None, _load_bars, lambda d: "generated", CLASSES,
        prepare="plain"))
    yield
    DATASETS.pop("toy-bars")


@pytest.fixture
def toy_figure():
    """A report figure, registered under "mean-image" for one test."""
    @report_figure("mean-image", "Toy pictures",
                   caption=lambda ctx: f"Mean of the {len(ctx.ds.x_test)} test images.",
                   applies=lambda ctx: ctx.ds.name == "toy-bars")
    def draw(ctx):
        fig = Figure(figsize=(2, 2))
        fig.subplots().imshow(ctx.ds.x_test.mean(axis=0)[..., 0])
        return fig
    yield
    FIGURES.pop("mean-image")


def _config():
    return load_config(None, {"data.dataset": "toy-bars", "training.epochs": 4,
                              "training.batch_size": 20,
                              "optimizer": {"type": "adam", "lr": 0.05},
                              "model.layers": [{"type": "dense", "units": 2},
                                               {"type": "softmax"}]})


def _png(path, grey):
    Image.fromarray(np.round(np.asarray(grey) * 255).astype(np.uint8), "L").save(path)


@pytest.mark.slow
def test_a_registered_data_set_and_figure_train_predict_and_report(toy_set, toy_figure,
                                                                   tmp_path, capsys):
    assert cli.main(["data", "list"]) == 0
    assert re.search(r"toy-bars +found: generated", capsys.readouterr().out)
    run = tmp_path / "run"
    metrics = runs.train(_config(), str(run), verbose=False)
    assert metrics["dataset"] == "toy-bars" and metrics["test_accuracy"] > 0.95
    model = Sequential.load(run / "model.npz")
    assert model.class_names == CLASSES
    assert model.preparation == {"dataset": "toy-bars", "prepare": "plain", "size": [8, 8],
                                 "invert": False, "contrast": False, "crop": False,
                                 "center": False}
    # A user's 32x32 picture of a top bar and of a bottom bar, resized whole (a digit-style
    # crop to the ink would centre both bars and lose the answer).
    paths = []
    for name, rows in (("top", slice(4, 8)), ("bottom", slice(22, 26))):
        grey = np.zeros((32, 32))
        grey[rows, 4:28] = 1
        paths.append(tmp_path / f"{name}.png")
        _png(paths[-1], grey)
    assert cli.main(["predict", str(run / "model.npz"), *map(str, paths), "--json"]) == 0
    assert [r["class"] for r in json.loads(capsys.readouterr().out)] == ["top", "bottom"]

    page = open(write_report(run, log=lambda msg: None), encoding="utf-8").read()
    assert re.findall(r'<h2 id="s\d+">([^<]*)</h2>', page)[-1] == "Toy pictures"
    assert 'alt="mean-image"' in page and "Mean of the 60 test images." in page


@pytest.mark.slow
def test_a_figure_that_does_not_apply_is_left_out(toy_set, tmp_path):
    run = tmp_path / "run"
    runs.train(_config(), str(run), verbose=False)

    @report_figure("never", "Never shown", "not drawn", applies=lambda ctx: False)
    def draw(ctx):
        raise AssertionError("a figure that does not apply is not drawn")
    try:
        page = open(write_report(run, log=lambda msg: None), encoding="utf-8").read()
    finally:
        FIGURES.pop("never")
    assert 'alt="never"' not in page and "Never shown" not in page
    assert 'alt="confusion-matrix"' in page


def test_evaluate_away_from_the_run_uses_the_recorded_data_set(toy_set, tmp_path, capsys):
    run = tmp_path / "run"
    runs.train(_config(), str(run), verbose=False)
    model = Sequential.load(run / "model.npz")
    ds = data.load_from_config(_config()["data"])
    model.preparation = data.preparation_for(ds, _config()["data"])
    away = tmp_path / "elsewhere" / "model.npz"
    away.parent.mkdir()
    model.save(away)
    assert cli.main(["evaluate", str(away), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["dataset"] == "toy-bars"
    assert "toy-bars test set (the data set recorded in the model)" in out.err
    assert "warning" not in out.err

    # the same images under other class names: evaluated, with a warning
    DATASETS.register("toy-renamed", NamedSet(
        "toy-renamed", "toy-bars renamed", None, _load_renamed, lambda d: "generated",
        ["a", "b"]))
    try:
        assert cli.main(["evaluate", str(away), "--data", "toy-renamed"]) == 0
    finally:
        DATASETS.pop("toy-renamed")
    err = capsys.readouterr().err
    assert "(--data)" in err and "warning: the model's classes (top, bottom) differ" in err

    model.preparation = None            # a model saved before glyphnet recorded its data set
    model.save(away)
    assert cli.main(["evaluate", str(away)]) == 1
    err = capsys.readouterr().err
    assert "does not record its data set; pass --data NAME" in err and "Traceback" not in err


def test_preparation_for_each_kind_of_data_set():
    def ds(shape):
        return Dataset("x", np.zeros((1,) + shape + (1,), np.float32), np.zeros(1, int),
                       np.zeros((1,) + shape + (1,), np.float32), np.zeros(1, int), ["0"])
    mnist = data.preparation_for(ds((28, 28)), {"dataset": "mnist"})
    assert mnist == {"dataset": "mnist", "prepare": "digits", "size": [28, 28],
                     "invert": "auto", "contrast": True, "crop": True, "center": True}
    faces = data.preparation_for(ds((112, 92)), {"dataset": "faces"})
    assert faces["prepare"] == "plain" and faces["size"] == [112, 92] and not faces["invert"]
    folder = data.preparation_for(ds((20, 20)), {"dataset": "folder", "path": "p", "crop": False,
                                                 "invert": True})
    assert folder == {"dataset": "folder", "prepare": "plain", "size": [20, 20], "invert": True,
                      "contrast": True, "crop": False, "center": True}
    assert data.preparation_for(ds((28, 28)), {"dataset": "files"})["prepare"] == "digits"
    assert {entry.prepare for entry in DATASETS.values()} <= set(images.PREPARATIONS)


def test_prepare_as_crops_digits_and_resizes_plain_images_whole():
    grey = np.full((40, 40), 0.9, np.float32)      # dark ink at the top left, light paper
    grey[:20, :20] = 0.1
    digits = images.prepare_as(grey, images.preparation(None, "digits", (28, 28)))
    ys, xs = np.indices(digits.shape)
    assert digits.max() == pytest.approx(1.0, abs=0.02)     # inverted: ink high
    assert abs((ys * digits).sum() / digits.sum() - 13.5) < 1  # centred by mass
    assert abs((xs * digits).sum() / digits.sum() - 13.5) < 1
    plain = images.prepare_as(grey, images.preparation(None, "plain", (20, 10)))
    assert plain.shape == (20, 10)
    np.testing.assert_allclose(plain[11:, :], 0.9, atol=0.02)   # polarity and place kept
    np.testing.assert_allclose(plain[:8, :3], 0.1, atol=0.02)

    old = Sequential([Dense(2), Softmax()], input_shape=(16, 16, 1))   # saved without a record
    assert images.preparation_of(old) == images.preparation(None, "digits", (16, 16))


def test_predict_shows_the_normalised_outputs_of_a_sigmoid_model(tmp_path, capsys):
    model = Sequential([Dense(3), Sigmoid()], input_shape=(8, 8, 1), seed=1)
    model.compile(loss="mse")
    model.preparation = images.preparation(None, "plain", (8, 8))
    model.save(tmp_path / "model.npz")
    grey = np.random.default_rng(0).random((8, 8))
    _png(tmp_path / "x.png", grey)
    assert cli.main(["predict", str(tmp_path / "model.npz"), str(tmp_path / "x.png"),
                     "--top", "3", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)[0]["probabilities"]
    x = images.load_for_model(tmp_path / "x.png", model)[None]
    out = model.predict_proba(x)[0]
    np.testing.assert_allclose([shown[c] for c in "012"], out / out.sum(), rtol=1e-5)


def test_the_data_commands_accept_a_registered_set(toy_set, tmp_path, capsys):
    assert cli.main(["data", "show", "toy-bars"]) == 0
    out = capsys.readouterr().out
    assert "toy-bars: images of shape (8, 8, 1), 2 classes" in out
    assert cli.main(["data", "grid", "toy-bars", "--out", str(tmp_path / "g.png")]) == 0
    with Image.open(tmp_path / "g.png") as grid:
        assert grid.size[1] == 2 * (16 + 2)     # one row per class, 8x8 images enlarged twice
