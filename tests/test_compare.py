"""glyphnet compare and the experiment report: the numbers behind each overlay are the runs'
own records, legends name what differs, log axes keep series that touch zero."""
import csv
import re

import numpy as np
import pytest

from glyphnet import runs as training_runs
from glyphnet.cli import main
from glyphnet.config import load_config
from glyphnet.errors import GlyphnetError
from glyphnet.inspection import compare
from glyphnet.inspection.figures import gradient_angle
from glyphnet.inspection.figures.common import figure, plot_on_log

LAYERS = [{"type": "dense", "units": 12}, {"type": "relu"}, {"type": "dense", "units": 10},
          {"type": "softmax"}]
BASE = {"data.train_per_class": 10, "data.test_limit": 100, "training.epochs": 2,
        "training.batch_size": 20, "training.eval_every": 2, "training.eval_subset": 50,
        "model.layers": LAYERS}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """An experiment folder of two runs that differ in the optimiser."""
    root = tmp_path_factory.mktemp("exp")
    for name, extra in (("adam", {}), ("sgd", {"optimizer.type": "sgd", "optimizer.lr": 0.1})):
        training_runs.train(load_config(None, {**BASE, **extra}), root / name, verbose=False)
    return root


def _history(run_dir, column):
    with open(run_dir / "history.csv") as f:
        return [float(r[column]) for r in csv.DictReader(f)]


def test_overlaid_curves_are_each_runs_history(experiment):
    runs = compare.load_runs([experiment])
    assert [r.label for r in runs] == ["optimizer.type=adam, optimizer.lr=0.002",
                                       "optimizer.type=sgd, optimizer.lr=0.1"]
    fig, data = compare.split_curves(runs)
    for metric in ("loss", "accuracy"):
        for split in ("train", "test"):
            series = data[(metric, split)]
            for (label, x, y), name in zip(series, ("adam", "sgd")):
                assert x.tolist() == [1, 2]
                np.testing.assert_allclose(y, _history(experiment / name,
                                                       f"{split}_{metric}"))
    # The drawn lines hold the same numbers: test loss of the second run, in the loss panel.
    lines = fig.axes[0].lines
    drawn = [ln.get_ydata() for ln in lines]
    assert any(np.allclose(d, _history(experiment / "sgd", "test_loss")) for d in drawn)
    _, steps = compare.split_curves(runs, per_iteration=True)
    losses = np.loadtxt(experiment / "adam" / "batch_losses.csv")
    label, x, y = steps[("loss", "train")][0]
    assert x.tolist() == [1, 2, 4, 6, 8, 10]   # 100 images in batches of 20: 10 steps
    np.testing.assert_allclose(y, losses[x.astype(int) - 1], rtol=1e-5)
    batch = compare.batch_loss_series(runs)
    np.testing.assert_allclose(batch[0][2], losses)


def test_dynamics_overlays_are_the_recorded_arrays(experiment):
    runs = compare.load_runs([experiment / "adam", experiment / "sgd"])
    grads = compare.layer_series(runs, "grad_std", "names")
    assert list(grads) == ["layer0.W", "layer2.W"]
    d = np.load(experiment / "sgd" / "dynamics.npz")
    label, steps, values = grads["layer2.W"][1]
    np.testing.assert_array_equal(steps, d["steps"])
    np.testing.assert_array_equal(values, d["grad_std"][:, 1])
    fig = compare.overlay([(n, "std", s) for n, s in grads.items()], logy=True)
    np.testing.assert_allclose(fig.axes[1].lines[1].get_ydata(), d["grad_std"][:, 1])


def test_legends_name_what_differs():
    flats = [compare.flatten({"optimizer": {"type": "adam", "lr": 1e-3, "beta1": 0.9},
                              "seed": 0}),
             compare.flatten({"optimizer": {"type": "sgd", "lr": 0.1}, "seed": 0})]
    # beta1 comes with the type: it is not named.
    assert compare.run_labels(flats, ["a", "b"]) == ["optimizer.type=adam, optimizer.lr=0.001",
                                                     "optimizer.type=sgd, optimizer.lr=0.1"]
    same = [compare.flatten({"seed": 1})] * 2
    assert compare.run_labels(same, ["x", "y"]) == ["x", "y"]
    layers = compare.run_flats([{"model": {"layers": [{"type": "dense", "units": 4}]}},
                                {"model": {"layers": [{"type": "conv2d", "filters": 4},
                                                      {"type": "flatten"}]}}])
    assert compare.run_labels(layers, ["a", "b"]) == ["model.layers=dense",
                                                      "model.layers=conv2d-flatten"]


def test_swept_keys_give_one_panel_per_setting_of_the_others():
    def run(name, lr, kind, seed):
        cfg = {"seed": seed, "optimizer": {"type": "sgd", "lr": lr},
               "model": {"layers": [{"type": kind}]}}
        return compare.RunData(name, name, cfg, [], {})
    runs = [run(f"r{k}", lr, kind, seed) for k, (lr, kind, seed) in enumerate(
        [(0.1, "relu", 0), (0.01, "relu", 0), (0.1, "tanh", 0), (0.01, "tanh", 0),
         (0.1, "relu", 1)])]
    panels = dict(compare.swept_panels(runs))
    # Layer stacks that differ in their types are one key, valued by the stack.
    assert list(panels) == ["optimizer.lr", "model.layers"]
    by_fixed = {fixed: [r.name for r in members] for fixed, members in panels["optimizer.lr"]}
    assert by_fixed == {"model.layers=relu": ["r0", "r1", "r4"],
                        "model.layers=tanh": ["r2", "r3"]}
    # Seeds of one setting share a label (and so a colour).
    labels = [r.label for r in panels["optimizer.lr"][0][1]]
    assert labels == ["optimizer.lr=0.1", "optimizer.lr=0.01", "optimizer.lr=0.1"]


def test_log_axes_skip_zeros_but_keep_the_line():
    fig = figure(4, 3)
    ax = fig.subplots()
    ax.set_yscale("log")
    line = plot_on_log(ax, [1, 2, 3], [0.0, 1e-3, 0.0], logy=True, label="mixed")
    plot_on_log(ax, [1, 2, 3], [0.0, 0.0, 0.0], logy=True, label="zero")
    assert np.isnan(line.get_ydata()[[0, 2]]).all() and line.get_ydata()[1] == 1e-3
    assert [ln.get_label() for ln in ax.lines if not ln.get_label().startswith("_")] == \
        ["mixed", "zero"]
    fig.savefig(__import__("io").BytesIO(), format="png")
    # A layer whose angle is exactly 0 at every check keeps its legend entry.
    dyn = {"check_cost": np.array([2.0, 1.0]), "check_names": np.array(["a", "b"]),
           "check_angle": np.array([[0.0, 1e-6], [0.0, 2e-6]])}
    fig = gradient_angle(dyn)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["a", "b"]
    fig.savefig(__import__("io").BytesIO(), format="png")
    # All zero in every series: the figure still draws.
    dyn["check_angle"] = np.zeros((2, 2))
    gradient_angle(dyn).savefig(__import__("io").BytesIO(), format="png")


def test_metrics_table_gives_final_and_best(experiment):
    runs = compare.load_runs([experiment])
    rows = compare.metrics_rows(runs)
    acc = _history(experiment / "adam", "test_accuracy")
    assert rows[0]["best test_accuracy"] == max(acc)
    assert rows[0]["best test epoch"] == 1 + int(np.argmax(acc))
    assert rows[0]["final test_accuracy"] == runs[0].metrics["test_accuracy"]


def test_find_runs_takes_run_and_experiment_dirs(experiment, tmp_path):
    found = compare.find_runs([experiment, experiment / "adam"])
    assert [p.rsplit("/", 1)[-1] for p in found] == ["adam", "sgd"]
    with pytest.raises(GlyphnetError, match="neither a run directory"):
        compare.find_runs([tmp_path])
    with pytest.raises(GlyphnetError, match="no such directory"):
        compare.find_runs([tmp_path / "nope"])


@pytest.mark.slow
def test_compare_command_writes_one_self_contained_page(experiment, tmp_path, capsys):
    out = tmp_path / "cmp.html"
    assert main(["compare", str(experiment), "--out", str(out), "--loglog"]) == 0
    text = out.read_text()
    assert "wrote" in capsys.readouterr().out
    for name in ("epoch-curves", "batch-loss", "step-curves", "gradient-std",
                 "tracked-weights", "gradient-angle", "weight-histograms-0",
                 "first-layer-0", "confusion"):
        assert f'id="{name}"' in text, name
    assert not re.search(r'(src|href)="(?!data:|#)', text)   # nothing fetched from outside
    assert "optimizer.type=sgd" in text
    assert main(["compare", str(tmp_path / "missing")]) == 1


@pytest.mark.slow
def test_experiment_report_has_a_panel_per_swept_key(experiment):
    path = compare.experiment_report(experiment)
    text = open(path).read()
    assert "Swept: optimizer.type, optimizer.lr" in text
    assert text.count("<img") == 2   # per epoch and per iteration


def test_experiment_report_without_finished_runs_writes_nothing(tmp_path):
    (tmp_path / "failed-run").mkdir()
    assert compare.experiment_report(tmp_path) is None
    assert not (tmp_path / "report.html").exists()
