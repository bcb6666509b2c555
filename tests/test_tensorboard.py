"""TensorBoard event files: written by `glyphnet train --tensorboard`, read back with
TensorBoard's own reader and compared with history.csv, batch_losses.csv and model.npz."""
import csv
import sys

import numpy as np
import pytest

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

from glyphnet.cli import main  # noqa: E402
from glyphnet.errors import GlyphnetError  # noqa: E402
from glyphnet.interop.tensorboard import (TensorBoard, _as_pictures,  # noqa: E402
                                          first_layer_filters)
from glyphnet.nn import Conv2D, Dense, ReLU, Sequential  # noqa: E402

CONFIG = """
seed = 0
[data]
dataset = "mnist"
train_per_class = 40       # 400 images: 300 to train, 100 held out
test_limit = 200
validation = 0.25
[model]
layers = [{type = "dense", units = 16}, {type = "relu"}, {type = "dense", units = 10},
          {type = "softmax"}]
[training]
epochs = 3
batch_size = 50
lr_decay = 0.5
[optimizer]
type = "adam"
lr = 0.004
"""


def read_events(log_dir):
    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={
        event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0,
        event_accumulator.IMAGES: 0})
    return acc.Reload()


@pytest.mark.slow
def test_train_tensorboard_events_equal_the_run_files(tmp_path, capsys):
    config, out = tmp_path / "small.toml", tmp_path / "run"
    config.write_text(CONFIG)
    assert main(["train", str(config), "--tensorboard", "--out", str(out)]) == 0
    capsys.readouterr()
    events = read_events(out / "tensorboard")
    tags = events.Tags()

    with open(out / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in history] == [1, 2, 3]
    for column in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
                   "test_accuracy", "seconds"):
        split, _, name = column.partition("_")
        tag = f"{name}/{split}" if name else "epoch/seconds"
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [1, 2, 3]
        # history.csv keeps 6 significant digits
        np.testing.assert_allclose([e.value for e in logged],
                                   [float(r[column]) for r in history], rtol=1e-5)
    lr = events.Scalars("learning_rate")
    np.testing.assert_allclose([e.value for e in lr], [0.004, 0.002, 0.001], rtol=1e-6)
    batch = np.loadtxt(out / "batch_losses.csv")
    assert len(batch) == 3 * 6                          # 300 training images in batches of 50
    logged = events.Scalars("loss/batch")
    assert [e.step for e in logged] == list(range(1, 19))
    np.testing.assert_allclose([e.value for e in logged], batch, rtol=1e-5)

    with np.load(out / "model.npz") as saved:
        params = {k: saved[k] for k in saved.files if k.startswith("param/")}
    assert len(params) == 4
    for key, value in params.items():
        _, layer, name = key.split("/")
        tag = f"{layer}_dense/{name}"
        assert f"weights/{tag}" in tags["histograms"] and f"gradients/{tag}" in tags["histograms"]
        last = events.Histograms(f"weights/{tag}")[-1]
        assert last.step == 3 and last.histogram_value.num == value.size
        assert last.histogram_value.min == pytest.approx(value.min(), rel=1e-6)
        assert last.histogram_value.max == pytest.approx(value.max(), rel=1e-6)
        assert events.Histograms(f"gradients/{tag}")[-1].histogram_value.num == value.size

    images = events.Images("filters/first_layer")
    assert [e.step for e in images] == [1, 2, 3]
    # 16 units of 28x28 weights, tiled by tensorboardX's grid (8 per row, 2-pixel borders)
    assert images[-1].width >= 8 * 28 and images[-1].height >= 2 * 28


def test_filter_pictures(rng):
    model = Sequential([Conv2D(3, 5), ReLU(), Dense(2)], input_shape=(9, 9, 2))
    filters = first_layer_filters(model)
    np.testing.assert_array_equal(filters, model.layers[0].params["W"][:, :, 0].transpose(2, 0, 1))
    pictures = _as_pictures(filters)
    assert pictures.shape == (3, 25, 25, 1)           # 5x5 kernels enlarged 5 times
    for f, p in zip(filters, pictures[..., 0]):
        np.testing.assert_allclose(p[::5, ::5], 0.5 + 0.5 * f / np.abs(f).max(), rtol=1e-6)
    dense = Sequential([Dense(4)], input_shape=(6, 5, 1))
    np.testing.assert_array_equal(first_layer_filters(dense)[2],
                                  dense.layers[0].params["W"][:, 2].reshape(6, 5))
    assert first_layer_filters(Sequential([Dense(4)], input_shape=(30,))) is None


def test_without_tensorboardx_a_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(GlyphnetError, match=r"pip install 'glyphnet\[tensorboard\]'"):
        TensorBoard(tmp_path / "tb")
    config = tmp_path / "small.toml"
    config.write_text(CONFIG)
    assert main(["train", str(config), "--tensorboard", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tensorboardX" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "model.npz").exists()
