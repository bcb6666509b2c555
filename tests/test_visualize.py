"""Each picture is drawn for an MLP and a CNN run, and the numbers behind it are right."""
import json
import os

import numpy as np
import pytest
from vis_runs import config, run_dir

from glyphnet import Dense, Sequential, Softmax, cli
from glyphnet.inspection import explain
from glyphnet.inspection import figures as viz
from glyphnet.data import load_from_config
from glyphnet.errors import GlyphnetError
from glyphnet.nn.conv import Conv2D
from glyphnet.nn.layers import ReLU
from glyphnet.inspection.metrics import confusion_matrix
from glyphnet.inspection.monitor import Monitor, load_dynamics
from glyphnet.nn.training import Callback

PNG = b"\x89PNG\r\n\x1a\n"


def _png_ok(path):
    with open(path, "rb") as f:
        return f.read(8) == PNG and os.path.getsize(path) > 1000


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def run(request, tmp_path_factory):
    """(kind, run dir, model, test images as loaded, model inputs, test labels)."""
    kind = request.param
    d = run_dir(kind, tmp_path_factory)
    model = Sequential.load(d / "model.npz")
    ds = load_from_config(config(kind)["data"])
    return kind, d, model, ds.x_test, model.scaler.transform(ds.x_test), ds.y_test


def _texts(fig):
    return [t.get_text() for t in fig.texts]


def test_learning_curves_plot_the_history(run, tmp_path):
    kind, d, *_ = run
    rows = viz.read_history(d)
    fig = viz.learning_curves(rows, tmp_path / "curves.png")
    assert _png_ok(tmp_path / "curves.png")
    ax_loss, ax_acc = fig.axes
    lines = {line.get_label(): line for line in ax_acc.lines}
    assert list(lines["test"].get_ydata()) == [r["test_accuracy"] for r in rows]
    assert list(lines["train"].get_ydata()) == [r["train_accuracy"] for r in rows]
    metrics = json.loads((d / "metrics.json").read_text())
    assert lines["test"].get_ydata()[-1] == pytest.approx(metrics["test_accuracy"], abs=1e-5)


def test_batch_losses_and_comparison(run, tmp_path):
    kind, d, *_ = run
    losses = viz.read_batch_losses(d)
    fig = viz.batch_losses(losses, tmp_path / "batches.png")
    assert _png_ok(tmp_path / "batches.png")
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), losses)
    assert len(losses) == (30 if kind == "mlp" else 25)  # 600/20 and 500/20 batches
    fig = viz.compare_runs({"a": d, "b": viz.read_history(d)}, tmp_path / "compare.png")
    assert _png_ok(tmp_path / "compare.png")
    assert [line.get_label() for line in fig.axes[1].lines] == ["a", "b"]


def test_weight_histograms_count_every_weight(run, tmp_path):
    kind, d, model, *_ = run
    dyn = load_dynamics(d / "dynamics.npz")
    fig = viz.weight_histograms(model, dyn["initial"], tmp_path / "hist.png")
    assert _png_ok(tmp_path / "hist.png")
    arrays = [p for _, _, p, _ in model.parameters() if p.ndim >= 2]
    for ax, w in zip(fig.axes, arrays):
        trained = sum(patch.get_height() for patch in ax.patches[:-1])
        assert trained == w.size
    # the initial weights recorded are those the seed gives an untrained model
    fresh = runs_model(kind)
    for (i, k, p, _) in fresh.parameters():
        if p.ndim >= 2:
            np.testing.assert_array_equal(dyn["initial"][f"layer{i}.{k}"], p)


def runs_model(kind):
    from glyphnet import runs
    model, *_ = runs.prepare(config(kind))
    return model


def test_first_layer_weights(run, tmp_path):
    kind, d, model, *_ = run
    if kind == "cnn":
        with pytest.raises(GlyphnetError, match="dense"):
            viz.first_layer_weights(model)
        return
    fig = viz.first_layer_weights(model, tmp_path / "w.png")
    assert _png_ok(tmp_path / "w.png")
    assert [t for t in _texts(fig) if t.startswith("unit")] == [f"unit {j}" for j in range(32)]


def test_single_layer_softmax_tiles_are_titled_by_class(tmp_path):
    letters = [chr(ord("A") + i) for i in range(5)]
    model = Sequential([Dense(5), Softmax()], input_shape=(6, 6, 1), classes=letters)
    fig = viz.first_layer_weights(model, tmp_path / "classes.png")
    assert _png_ok(tmp_path / "classes.png")
    assert letters == [t for t in _texts(fig) if t in letters]
    assert "per class" in " ".join(_texts(fig))


def test_strongest_unit_is_the_largest_weight_into_the_class(run, tmp_path):
    kind, d, model, *_ = run
    if kind == "cnn":
        with pytest.raises(GlyphnetError):
            viz.class_unit_weights(model)
        return
    units, _ = viz.strongest_units(model)
    np.testing.assert_array_equal(units, model.layers[2].params["W"].argmax(axis=0))
    fig = viz.class_unit_weights(model, path=tmp_path / "units.png")
    assert _png_ok(tmp_path / "units.png")
    assert f"'3': unit {units[3]}" in _texts(fig)
    deep = Sequential([Dense(8), ReLU(), Dense(6), ReLU(), Dense(3)], input_shape=(4, 4, 1))
    units, strength = viz.strongest_units(deep)
    np.testing.assert_allclose(strength, deep.layers[2].params["W"] @ deep.layers[4].params["W"],
                               rtol=1e-6)


def test_training_dynamics_recorded_and_drawn(run, tmp_path):
    kind, d, model, *_ = run
    dyn = load_dynamics(d / "dynamics.npz")
    n_weights = sum(1 for _, _, p, _ in model.parameters() if p.ndim >= 2)
    assert dyn["grad_std"].shape == (len(dyn["steps"]), n_weights)
    assert np.all(np.diff(dyn["steps"]) > 0) and np.all(dyn["grad_std"] > 0)
    assert dyn["tracked_values"].shape == (len(dyn["steps"]), 6)
    if kind == "cnn":
        assert len(dyn["conv_deltas"]) == len(dyn["delta_steps"]) > 0
        assert np.all(dyn["conv_deltas"] > 0)
        assert sorted(dyn["filters"]) == [0, 1]          # initialisation and epoch 1
        np.testing.assert_array_equal(dyn["filters"][1], model.layers[0].params["W"])
        np.testing.assert_array_equal(dyn["filters"][0], dyn["initial"]["layer0.W"])
    else:
        assert len(dyn["conv_deltas"]) == 0 and not dyn["filters"]
    fig = viz.training_dynamics(dyn, tmp_path / "dyn.png")
    assert _png_ok(tmp_path / "dyn.png")
    assert len(fig.axes) == (3 if kind == "cnn" else 2)
    fig = viz.weight_trajectories({"run": dyn, "again": dyn}, tmp_path / "traj.png")
    assert _png_ok(tmp_path / "traj.png")
    # the recorded gradient checks pass: analytic and numeric gradients agree
    assert list(dyn["check_steps"]) == [1, 8]
    assert np.all(dyn["check_angle"] < 1e-3)
    viz.gradient_angle(dyn, tmp_path / "angle.png")
    assert _png_ok(tmp_path / "angle.png")


def test_backward_hooks_get_each_layer_output_gradient():
    model = Sequential([Dense(3), Softmax()], input_shape=(4,))
    x = np.random.default_rng(0).random((2, 4), dtype=np.float32)
    model.forward(x)
    seen = []
    model.backward_hooks.append(lambda i, layer, dy: seen.append((i, layer, dy.copy())))
    dout = np.array([[1, 0, 0], [0, 0, 1]], np.float32)
    model.backward(dout)
    assert [(i, layer) for i, layer, _ in seen] == [(1, model.layers[1]), (0, model.layers[0])]
    np.testing.assert_array_equal(seen[0][2], dout)
    np.testing.assert_allclose(seen[1][2], model.layers[1].backward(dout))


def test_monitor_records_conv_deltas_through_a_backward_hook():
    rng = np.random.default_rng(0)
    x = rng.random((16, 6, 6, 1), dtype=np.float32)
    y = rng.integers(0, 3, 16)
    model = Sequential([Conv2D(2, 3), ReLU(), Dense(3), Softmax()], input_shape=(6, 6, 1))
    model.compile()
    truth = []

    def norms(i, layer, dy):
        if i == 0:   # per sample: dy of the mean batch loss times the batch size
            truth.append(len(dy) * float(np.linalg.norm(dy.reshape(len(dy), -1), axis=1).mean()))
    model.backward_hooks.append(norms)
    monitor = Monitor(every=1)
    model.fit(x, y, epochs=2, batch_size=4, callbacks=[monitor])
    assert model.backward_hooks == [norms]          # the monitor removed its own hook
    assert monitor.delta_steps == list(range(1, 9)) and len(truth) == 8
    np.testing.assert_allclose(monitor.deltas, truth, rtol=1e-6)


def test_monitor_records_the_true_gradient_std(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((64, 4, 4, 1), dtype=np.float32)
    y = rng.integers(0, 3, 64)
    model = Sequential([Dense(5), ReLU(), Dense(3), Softmax()], input_shape=(4, 4, 1))
    model.compile()

    class Truth(Callback):
        stds = []

        def on_batch_end(self, model, step, loss):
            self.stds.append([g.std() for _, _, p, g in model.parameters() if p.ndim >= 2])

    monitor = Monitor(every=2, check_data=(x[:4], y[:4]))
    model.fit(x, y, epochs=2, batch_size=8, callbacks=[Truth(), monitor])
    truth = np.array(Truth.stds)
    assert monitor.steps == [1, 2, 4, 6, 8, 10, 12, 14, 16]
    np.testing.assert_allclose(monitor.arrays()["grad_std"], truth[np.array(monitor.steps) - 1],
                               rtol=1e-6)
    monitor.save(tmp_path / "dynamics.npz")
    assert load_dynamics(tmp_path / "dynamics.npz")["names"].tolist() == ["layer0.W", "layer2.W"]


def test_cnn_filters_and_feature_maps(run, tmp_path):
    kind, d, model, x_raw, x, y = run
    if kind == "mlp":
        for draw in (viz.conv_filters, lambda m: viz.feature_maps(m, x[0])):
            with pytest.raises(GlyphnetError, match="convolutional"):
                draw(model)
        return
    dyn = load_dynamics(d / "dynamics.npz")
    fig = viz.conv_filters(dyn["filters"], tmp_path / "filters.png")
    assert _png_ok(tmp_path / "filters.png")
    assert {"init", "epoch 1"} <= set(_texts(fig))
    viz.conv_filters(model, tmp_path / "filters_now.png")
    assert _png_ok(tmp_path / "filters_now.png")
    fig = viz.feature_maps(model, x[0], tmp_path / "maps.png")
    assert _png_ok(tmp_path / "maps.png")
    labels = _texts(fig)
    # input, conv+relu, pool, conv+relu, pool: 28 -> 24 -> 12 -> 10 -> 5
    for shape in ("28x28x1", "24x24x4", "12x12x4", "10x10x6", "5x5x6"):
        assert shape in labels
    assert "0: conv2d + relu" in labels and "5: max_pool2d" in labels


@pytest.mark.slow
def test_confusion_matrix_matches_evaluate(run, tmp_path, capsys):
    kind, d, model, x_raw, x, y = run
    predicted = model.predict(x)
    classes = model.class_names
    cm = confusion_matrix(y, predicted, len(classes))
    assert cm.sum() == len(y) == len(x_raw)
    assert cli.main(["evaluate", str(d / "model.npz"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    np.testing.assert_array_equal(cm, report["confusion_matrix"])
    fig = viz.confusion(cm, classes, tmp_path / "cm.png")
    assert _png_ok(tmp_path / "cm.png")
    counts, normalised = fig.axes[0].images[0].get_array(), fig.axes[1].images[0].get_array()
    np.testing.assert_array_equal(counts, cm)
    np.testing.assert_allclose(normalised.sum(axis=1)[cm.sum(axis=1) > 0], 1.0)
    fig = viz.per_class_accuracy(cm, classes, tmp_path / "per_class.png")
    assert _png_ok(tmp_path / "per_class.png")
    heights = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(heights, [report["per_class_accuracy"][c] for c in classes])


def test_galleries_are_titled_true_to_predicted(run, tmp_path):
    kind, d, model, x_raw, x, y = run
    proba = model.predict_proba(x)
    predicted = proba.argmax(axis=1)
    letters = [chr(ord("a") + i) for i in range(10)]    # as EMNIST characters would show
    wrong = np.flatnonzero(predicted != y)
    fig = viz.misclassified(x_raw, y, predicted, letters, tmp_path / "wrong.png", n=12)
    assert _png_ok(tmp_path / "wrong.png")
    titles = [t for t in _texts(fig) if "->" in t and "(" not in t]
    assert titles == [f"{letters[y[i]]} -> {letters[predicted[i]]}" for i in wrong[:12]]
    fig = viz.correct(x_raw, y, predicted, letters, tmp_path / "right.png", n=5)
    assert _png_ok(tmp_path / "right.png")
    right = np.flatnonzero(predicted == y)[:5]
    assert [letters[y[i]] for i in right] == [t for t in _texts(fig) if t in letters]
    fig = viz.confident_mistakes(x_raw, y, proba, letters, tmp_path / "confident.png", n=8)
    assert _png_ok(tmp_path / "confident.png")
    shown = [float(t.rsplit("(", 1)[1].rstrip(")")) for t in _texts(fig) if t.endswith(")")
             and "->" in t and not t.startswith("most")]
    best = np.sort(proba[wrong, predicted[wrong]])[::-1][:8]
    np.testing.assert_allclose(shown, best, atol=0.005)


def test_empty_gallery_says_none(tmp_path):
    x = np.zeros((3, 28, 28, 1), np.float32)
    fig = viz.misclassified(x, np.arange(3), np.arange(3), ["0", "1", "2"], tmp_path / "e.png")
    assert _png_ok(tmp_path / "e.png") and "none" in " ".join(_texts(fig))


def test_explanation_pictures(run, tmp_path):
    kind, d, model, x_raw, x, y = run
    idx = [int(np.flatnonzero(y == c)[0]) for c in range(4)]
    maps = explain.saliency(model, x[idx])
    viz.saliency_maps(x_raw[idx], maps, ["0", "1", "2", "3"], tmp_path / "sal.png")
    assert _png_ok(tmp_path / "sal.png")
    dream, _ = explain.activation_maximisation(model, [0, 1], steps=5)
    viz.image_grid(dream, ["0", "1"], tmp_path / "dream.png", suptitle="dreams")
    assert _png_ok(tmp_path / "dream.png")
    if kind == "cnn":
        proj = explain.deconvolution(model, x[idx])
        fig = viz.deconvolution_grid(proj, ["0", "1", "2", "3"], tmp_path / "deconv.png")
        assert _png_ok(tmp_path / "deconv.png")
        assert [f"filter {f}" for f in range(4)] == [t for t in _texts(fig)
                                                    if t.startswith("filter")]
