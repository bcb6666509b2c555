import json
import math
import os
import signal
import statistics
import sys

import pytest

import numpy as np

from glyphnet import Sequential, runs
from glyphnet.cli import main
from glyphnet.config import load_config, set_path
from glyphnet.errors import ConfigError
from glyphnet.experiments import load_experiment, mean_std, run_experiment
from glyphnet.experiments.sweep import Progress
from glyphnet.experiments.rundirs import Job, remove
from glyphnet.nn.training import Callback
from glyphnet.experiments.tables import best_epoch
from tiny import tiny_config

BASE = tiny_config(seed=1, train_limit=200, test_limit=100)


def quiet(*args):
    pass


class SignalAt(Callback):
    """Ctrl+C (a real SIGINT to this process) after update ``step``."""

    def __init__(self, step):
        self.step = step

    def on_batch_end(self, model, step, loss):
        if step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


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


def write_experiment(tmp_path, text):
    (tmp_path / "base.toml").write_text(BASE)
    path = tmp_path / "exp.toml"
    path.write_text('base = "base.toml"\n' + text)
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
    names = [r.name for r in planned]
    assert names == ["relu-lr=0.01", "relu-lr=0.0001", "tanh-lr=0.01", "tanh-lr=0.0001"]
    cfgs = {r.name: r.cfg for r in planned}
    assert cfgs["tanh-lr=0.0001"]["model"]["layers"][1] == {"type": "tanh", "slope": 0.5}
    assert cfgs["tanh-lr=0.0001"]["optimizer"]["lr"] == 0.0001
    assert all(c["training"]["epochs"] == 2 for c in cfgs.values())
    assert [r.reported for r in planned] == [{}, {}, {"test_accuracy": 0.9},
                                             {"test_accuracy": 0.9}]
    assert all(r.seed is None and r.cfg["seed"] == 1 for r in planned)


def test_seeds_repeat_every_run_and_reported_names_metrics(tmp_path):
    path = write_experiment(tmp_path, """
seeds = [0, 3]
reported_epochs = 200
[[runs]]
name = "a"
reported = {test_accuracy = 0.91, test_loss = 0.02}
[[runs]]
name = "b"
reported = {val_accuracy = 0.5, epochs = 50}
""")
    _, planned = load_experiment(path)
    assert [(r.name, r.group, r.seed, r.cfg["seed"]) for r in planned] == [
        ("a-seed0", "a", 0, 0), ("a-seed3", "a", 3, 3),
        ("b-seed0", "b", 0, 0), ("b-seed3", "b", 3, 3)]
    assert planned[0].reported == {"test_accuracy": 0.91, "test_loss": 0.02}
    assert [r.reported_epochs for r in planned] == [200, 200, 50, 50]


def test_bad_seeds_and_reported_are_reported_at_once(tmp_path):
    path = write_experiment(tmp_path, """
seeds = [1, 1]
reported_epochs = 0
[[runs]]
reported = {test_acc = 0.9, test_loss = "low", epochs = 2.5}
""")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    text = str(info.value)
    assert "seeds: expected a non-empty list of distinct integers >= 0, got [1, 1]" in text
    assert "reported_epochs: expected a positive integer, got 0" in text
    assert "runs[0].reported.test_acc: unknown metric" in text
    assert "runs[0].reported.test_loss: expected a finite number, got 'low'" in text
    assert "runs[0].reported.epochs: expected a positive integer, got 2.5" in text


def test_mean_std_is_the_sample_standard_deviation():
    values = [0.9, 0.92, 0.97]
    mean, std = mean_std(values)
    assert mean == pytest.approx(0.93, abs=1e-15)
    # n - 1 in the denominator: sum of squares 0.0009 + 0.0001 + 0.0016 = 0.0026, over 2.
    assert std == pytest.approx(math.sqrt(0.0013), rel=1e-12)
    assert std == statistics.stdev(values)
    assert mean_std([0.5]) == (0.5, None)
    assert mean_std([]) == (None, None)


def test_best_epoch_prefers_validation_accuracy():
    head = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,test_loss,test_accuracy,seconds\n"
    rows = ["1,1,0.5,1,0.6,1,0.9,1", "2,1,0.6,1,0.8,1,0.7,1", "3,1,0.7,1,0.8,1,0.95,1"]
    assert best_epoch(head + "\n".join(rows)) == 2       # first of the tied best val epochs
    no_val = [",".join(r.split(",")[:3] + ["", ""] + r.split(",")[5:]) for r in rows]
    assert best_epoch(head + "\n".join(no_val)) == 3     # best test accuracy
    assert best_epoch(head) is None


def test_progress_lines_count_runs_and_estimate_time_left():
    now = [0.0]
    lines = []
    cfg = {"training": {"epochs": 4}}
    jobs = [Job("a", cfg, "a"), Job("b", cfg, "b")]
    progress = Progress(jobs, total=3, kept=1, log=lines.append, every=5, clock=lambda: now[0])
    now[0] = 10.0
    progress.on_epoch("a", 1)
    # 1 of 8 epochs in 10 s: 7 left at 0.1 epochs/s.
    assert lines == ["progress: 1/3 runs done; epochs of running runs: a 1/4; about 1m10s left"]
    progress.on_epoch("b", 1)           # within 5 s of the last line: nothing printed
    now[0] = 12.0
    progress.on_epoch("b", 2)
    progress.on_done("a", "test accuracy 0.9")
    # 6 of 8 epochs in 12 s.
    assert lines[1:] == ["  a: test accuracy 0.9",
                         "progress: 2/3 runs done; epochs of running runs: b 2/4; about 4s left"]


@pytest.mark.slow
def test_runs_in_parallel_with_seeds_and_tabulates_mean_and_std(tmp_path):
    path = write_experiment(tmp_path, """
name = "seeded"
jobs = 2
seeds = [0, 1, 2]
reported_epochs = 200
[set]
"training.epochs" = 2
[[runs]]
name = "relu"
reported = {test_accuracy = 0.9, test_loss = 0.25}
""")
    out = tmp_path / "out"
    lines = []
    results = run_experiment(path, out, log=lines.append)
    assert sum("runs done" in line for line in lines) == 3
    assert lines[-1] == "progress: 3/3 runs done"
    rows = results["runs"]
    assert [r["run"] for r in rows] == ["relu-seed0", "relu-seed1", "relu-seed2"]
    metrics = [json.loads((out / r["run"] / "metrics.json").read_text()) for r in rows]
    assert len({m["test_accuracy"] for m in metrics}) > 1      # the seeds differ
    (summary,) = results["summary"]
    for key in ("test_accuracy", "test_loss", "train_accuracy", "train_loss", "seconds"):
        values = [m[key] for m in metrics]
        assert summary[f"{key}_mean"] == math.fsum(values) / 3
        assert summary[f"{key}_std"] == statistics.stdev(values)
    assert summary["val_accuracy_mean"] is None
    assert [r["best_epoch"] for r in rows] == [
        best_epoch((out / r["run"] / "history.csv").read_text()) for r in rows]
    assert summary["note"] == "2 of 200 epochs"
    table = (out / "results.md").read_text()
    mean, std = summary["test_accuracy_mean"], summary["test_accuracy_std"]
    assert f"| relu | 3/3 | {100 * mean:.2f}% ± {100 * std:.2f} | 90.00% |" in table
    assert "| 0.2500 |" in table and "2 of 200 epochs" in table
    assert json.loads((out / "results.json").read_text()) == results
    assert (out / "results.csv").read_text().splitlines()[1].startswith("relu,0 1 2,3,2,")


@pytest.mark.slow
def test_rerun_keeps_finished_runs_and_redoes_the_others(tmp_path, monkeypatch):
    path = write_experiment(tmp_path, """
[grid]
"optimizer.lr" = [0.01, 0.001]
""")
    out = tmp_path / "out"
    run_experiment(path, out, log=quiet)
    kept = os.stat(out / "lr=0.01" / "model.npz").st_mtime_ns
    path.write_text(path.read_text().replace("0.001]", "0.002]"))
    lines = []
    run_experiment(path, out, log=lines.append)
    assert lines[0].endswith("2 run(s), 1 kept from an earlier execution, 1 to train on the "
                             "local backend")
    assert os.stat(out / "lr=0.01" / "model.npz").st_mtime_ns == kept

    # Interrupted by Ctrl+C in the middle of its epoch: resumed from its checkpoint, and it
    # ends with the weights of the run that was never interrupted.
    run_dir = out / "lr=0.002"
    finished = Sequential.load(run_dir / "model.npz")
    cfg = load_config(run_dir / "config.toml")
    remove(str(run_dir))
    with pytest.raises(KeyboardInterrupt):
        runs.train(cfg, str(run_dir), verbose=False, callbacks=[SignalAt(3)])
    assert json.loads((run_dir / "metrics.json").read_text())["interrupted"] is True
    lines = []
    results = run_experiment(path, out, log=lines.append)
    assert lines[0].endswith("1 to train on the local backend (1 resumed)")
    resumed = Sequential.load(run_dir / "model.npz")
    assert all(np.array_equal(a, b) for a, b in zip(
        [p for _, _, p, _ in finished.parameters()], [p for _, _, p, _ in resumed.parameters()]))
    assert [r["status"] for r in results["runs"]] == ["done", "done"]
    # A run directory whose config differs from the plan's is retrained as well.
    config = out / "lr=0.01" / "config.toml"
    config.write_text(config.read_text().replace("epochs = 1", "epochs = 3"))
    lines = []
    results = run_experiment(path, out, log=lines.append)
    assert lines[0].endswith("1 kept from an earlier execution, 1 to train on the local backend")
    assert [r["status"] for r in results["runs"]] == ["done", "done"]
    assert (out / "lr=0.001").exists()          # no longer planned, left alone


@pytest.mark.slow
def test_a_failing_run_is_reported_and_the_others_finish(tmp_path, capsys):
    path = write_experiment(tmp_path, """
[[runs]]
name = "ok"
[[runs]]
name = "too-big"
"model.layers" = [{type = "conv2d", filters = 2, kernel_size = 40}, {type = "dense", units = 10},
                  {type = "softmax"}]
""")
    out = tmp_path / "out"
    assert main(["experiment", str(path), "--out", str(out)]) == 1
    results = json.loads((out / "results.json").read_text())
    ok, bad = results["runs"]
    assert ok["status"] == "done" and ok["test_accuracy"] is not None
    assert bad["status"] == "failed" and "cannot be built for inputs" in bad["error"]
    assert bad["test_accuracy"] is None
    assert "1 of 1 failed" in (out / "results.md").read_text()
    assert "too-big: failed: " in capsys.readouterr().out


def test_ray_backend_without_ray_says_how_to_install_it(experiment, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["experiment", str(experiment), "--backend", "ray"]) == 1
    err = capsys.readouterr().err
    assert err == ('glyphnet: error: --backend ray needs Ray: pip install "glyphnet[ray]" '
                   '(from a checkout: pip install ".[ray]")\n')


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


@pytest.mark.slow
def test_a_killed_driver_stops_its_workers_and_the_rerun_resumes(tmp_path):
    import subprocess
    import time
    path = write_experiment(tmp_path, """
jobs = 2
[set]
"training.epochs" = 30
"data.train_limit" = 4000
[grid]
"optimizer.lr" = [0.01, 0.001]
""")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "glyphnet.cli", "experiment", str(path), "--out", str(out)]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    deadline = time.monotonic() + 120
    while not all((out / r / "checkpoint.npz").exists() for r in ("lr=0.01", "lr=0.001")):
        assert time.monotonic() < deadline and driver.poll() is None, driver.stderr.read()
        time.sleep(0.2)
    driver.terminate()                              # SIGTERM to the driver alone, as kill does
    assert driver.wait(60) == 143
    assert "terminated; run the same command again" in driver.stderr.read()
    for run in ("lr=0.01", "lr=0.001"):           # each worker checkpointed its run and stopped
        assert json.loads((out / run / "metrics.json").read_text())["interrupted"] is True
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    time.sleep(2)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    lines = []
    results = run_experiment(path, out, log=lines.append)
    assert lines[0].endswith("2 to train on the local backend (2 resumed)")
    assert [r["status"] for r in results["runs"]] == ["done", "done"]


def test_runs_option_trains_only_the_named_groups(experiment, tmp_path, capsys):
    assert main(["experiment", str(experiment), "--dry-run", "--runs", "tanh-lr=0.01"]) == 0
    assert capsys.readouterr().out.splitlines() == ["tanh-lr=0.01: 2 epochs, reported "
                                                    "test_accuracy 0.9"]
    results = run_experiment(str(experiment), tmp_path / "out", jobs=1, log=quiet,
                             groups=["relu-lr=0.01"])
    assert [row["run"] for row in results["summary"]] == ["relu-lr=0.01"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir()) == ["relu-lr=0.01"]
    assert main(["experiment", str(experiment), "--runs", "sigmoid", "--out",
                 str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert "no runs named 'sigmoid'" in err and "relu-lr=0.01, relu-lr=0.0001" in err
    assert not (tmp_path / "none").exists()
