import json

import pytest

from glyphnet.cli import main
from glyphnet.config import set_path
from glyphnet.errors import ConfigError
from glyphnet.experiments import load_experiment, run_experiment

BASE = """
seed = 1
[data]
dataset = "mnist"
train_limit = 600
test_limit = 300
[model]
layers = [{type = "dense", units = 32}, {type = "relu"}, {type = "dense", units = 10},
          {type = "softmax"}]
[training]
epochs = 1
batch_size = 32
"""


@pytest.fixture
def experiment(tmp_path):
    (tmp_path / "base.toml").write_text(BASE)
    path = tmp_path / "exp.toml"
    path.write_text("""
name = "tiny"
base = "base.toml"
jobs = 2
[set]
"training.epochs" = 2
[grid]
"optimizer.lr" = [0.01, 0.0001]
[[runs]]
name = "relu"
[[runs]]
name = "tanh"
"model.layers[1]" = {type = "tanh", slope = 0.5}
reported = 0.9
""")
    return path


def test_set_path_handles_tables_and_list_indices():
    cfg = {"model": {"layers": [{"type": "dense"}, {"type": "relu"}]}}
    set_path(cfg, "model.layers[1].type", "tanh")
    set_path(cfg, "training.epochs", 3)
    assert cfg["model"]["layers"][1]["type"] == "tanh"
    assert cfg["training"]["epochs"] == 3
    with pytest.raises(ValueError, match="out of range"):
        set_path(cfg, "model.layers[5].type", "relu")


def test_plan_expands_grid_for_every_run(experiment):
    _, planned = load_experiment(experiment)
    names = [n for n, _, _ in planned]
    assert names == ["relu-lr=0.01", "relu-lr=0.0001", "tanh-lr=0.01", "tanh-lr=0.0001"]
    cfgs = dict((n, c) for n, c, _ in planned)
    assert cfgs["tanh-lr=0.0001"]["model"]["layers"][1] == {"type": "tanh", "slope": 0.5}
    assert cfgs["tanh-lr=0.0001"]["optimizer"]["lr"] == 0.0001
    assert all(c["training"]["epochs"] == 2 for c in cfgs.values())
    assert [r for _, _, r in planned] == [None, None, 0.9, 0.9]


def test_runs_in_parallel_and_tabulates(experiment, tmp_path):
    out = tmp_path / "out"
    rows = run_experiment(experiment, out, jobs=2, log=lambda *a: None)
    assert len(rows) == 4
    for row in rows:
        metrics = json.loads((out / row["run"] / "metrics.json").read_text())
        assert row["test_accuracy"] == metrics["test_accuracy"]
        assert metrics["epochs"] == 2
    acc = {r["run"]: r["test_accuracy"] for r in rows}
    # A 100x larger step learns far more in two short epochs.
    assert acc["relu-lr=0.01"] > acc["relu-lr=0.0001"]
    assert acc["relu-lr=0.01"] > 0.7
    table = (out / "results.md").read_text()
    assert "tanh-lr=0.01" in table and "90.00%" in table
    assert (out / "results.csv").read_text().count("\n") == 5


def test_every_problem_is_reported_before_training(tmp_path, capsys):
    (tmp_path / "base.toml").write_text(BASE)
    bad = tmp_path / "bad.toml"
    bad.write_text("""
base = "base.toml"
colour = "red"
[grid]
"optimizer.lr" = [-1.0]
"training.epochz" = [1]
""")
    with pytest.raises(ConfigError) as info:
        load_experiment(bad)
    text = str(info.value)
    assert "colour: unknown key" in text
    assert "optimizer: lr must be a positive number, got -1.0" in text
    assert "training.epochz: unknown key" in text
    assert main(["experiment", str(bad), "--dry-run"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_missing_base_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "e.toml"
    path.write_text('base = "nope.toml"\n')
    assert main(["experiment", str(path), "--dry-run"]) == 2
    assert "nope.toml: base config not found" in capsys.readouterr().err


def test_set_option_overrides_every_run(experiment, capsys):
    assert main(["experiment", str(experiment), "--dry-run", "--set", "training.epochs=7"]) == 0
    out = capsys.readouterr().out
    assert out.count("7 epochs") == 4
    assert main(["experiment", str(experiment), "--dry-run", "--set", "epochs"]) == 1
    assert "expected KEY=VALUE" in capsys.readouterr().err
