"""Teaching pictures: activation functions and derivatives, batch norm on a batch."""
import numpy as np
import pytest

from glyphnet.cli import main
from glyphnet.inspection.figures.teaching import (activation_series, activations,
                                                  batchnorm, batchnorm_batches)
from glyphnet.nn.conv import Conv2D
from glyphnet.nn.layers import Dense, Flatten, ReLU, Softmax
from glyphnet.nn.model import Sequential
from glyphnet.nn.normalization import BatchNorm


def test_activation_curves_are_the_functions_and_their_derivatives():
    x = np.linspace(-3, 3, 61)
    series = {name: (f, d) for name, _, f, d in activation_series([0.5], [0.2], x)}
    assert list(series) == ["sigmoid (slope 0.5)", "tanh (slope 0.5)", "relu",
                            "leaky relu (leak 0.2)"]
    sig = 1 / (1 + np.exp(-0.5 * x))
    np.testing.assert_allclose(series["sigmoid (slope 0.5)"][0], sig, rtol=1e-12)
    np.testing.assert_allclose(series["sigmoid (slope 0.5)"][1], 0.5 * sig * (1 - sig),
                               rtol=1e-12)
    np.testing.assert_allclose(series["tanh (slope 0.5)"][1], 0.5 / np.cosh(0.5 * x) ** 2,
                               rtol=1e-12)
    np.testing.assert_array_equal(series["leaky relu (leak 0.2)"][1], np.where(x > 0, 1, 0.2))
    np.testing.assert_array_equal(series["relu"][0], np.maximum(x, 0))
    fig = activations([1, 2], [0.01])
    # two sigmoids, two tanhs, relu, a leaky relu and the lines x = 0 and y = 0
    assert len(fig.axes[0].lines) == len(fig.axes[1].lines) == 2 + 2 + 1 + 1 + 2


def test_batchnorm_picture_shows_the_batch_normalised_and_leaves_the_model():
    rng = np.random.default_rng(0)
    model = Sequential([Conv2D(3, 3), BatchNorm(), ReLU(), Flatten(), Dense(5), BatchNorm(),
                        Dense(2), Softmax()], input_shape=(6, 6, 1))
    x = 3 + 2 * rng.random((32, 6, 6, 1), dtype=np.float32)
    running = [layer.state["mean"].copy() for layer in model.layers
               if isinstance(layer, BatchNorm)]
    layers = batchnorm_batches(model, x)
    assert [i for i, _, _ in layers] == [1, 5]
    for _, before, after in layers:
        np.testing.assert_allclose(after.mean(axis=0), 0, atol=1e-4)   # beta = 0
        np.testing.assert_allclose(after.std(axis=0), 1, atol=1e-2)    # gamma = 1
        assert not np.allclose(before.mean(axis=0), 0, atol=1e-2)
    assert layers[0][1].shape == (32 * 4 * 4, 3)   # conv positions folded into the batch
    for r, layer in zip(running, [lay for lay in model.layers if isinstance(lay, BatchNorm)]):
        np.testing.assert_array_equal(layer.state["mean"], r)
    assert len(batchnorm(model, x).axes) == 4


def test_plot_activations_command(tmp_path, capsys):
    out = tmp_path / "act.png"
    assert main(["plot", "activations", "--slopes", "1", "0.5", "--leaks", "0.1",
                 "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit) as exit_:
        main(["plot", "activations", "--slopes", "-1"])
    assert exit_.value.code == 2
    assert "expected a positive number, got '-1'" in capsys.readouterr().err


def test_report_entries_apply_where_the_pictures_do():
    from types import SimpleNamespace

    from glyphnet.inspection.report_figures import FIGURES
    from glyphnet.nn.layers import LeakyReLU, Tanh
    plain = Sequential([Dense(3), ReLU(), Dense(2), Softmax()], input_shape=(4,))
    tanh = Sequential([Dense(3), Tanh(0.5), Dense(2), BatchNorm(), LeakyReLU(0.1), Softmax()],
                      input_shape=(4,))
    for model, want in ((plain, False), (tanh, True)):
        ctx = SimpleNamespace(model=model)
        assert FIGURES["activation-functions"].applies(ctx) is want
        assert FIGURES["batchnorm-batch"].applies(ctx) is want
    ctx = SimpleNamespace(model=tanh)
    fig = FIGURES["activation-functions"].draw(ctx)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "sigmoid (slope 0.5)", "tanh (slope 0.5)", "relu", "leaky relu (leak 0.1)"]
    steps = SimpleNamespace(has_file=lambda name: name == "steps.csv")
    assert FIGURES["step-curves"].applies(steps)
    assert not FIGURES["step-curves"].applies(SimpleNamespace(has_file=lambda name: False))
