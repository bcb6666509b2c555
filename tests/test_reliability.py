"""Never lose work: checkpoints at epoch ends and on SIGINT/SIGTERM, bit-identical resume,
run directories that never mix two runs, divergence of a finite but exploding loss."""
import json
import os
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from glyphnet import config, runs
from glyphnet.cli import main
from glyphnet.data.datasets import Dataset
from glyphnet.errors import GlyphnetError, TrainingDiverged
from glyphnet.nn import checkpoint
from glyphnet.nn.model import Sequential
from glyphnet.nn.training import Callback

LAYERS = [{"type": "dense", "units": 16}, {"type": "relu"}, {"type": "dropout", "rate": 0.3},
          {"type": "dense", "units": 3}, {"type": "softmax"}]


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    x = rng.random((300, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    x[np.arange(300), y, y] += 2.0   # learnable
    return Dataset("toy", x[:240], y[:240], x[240:], y[240:], classes=["a", "b", "c"])


def toy_config(optimizer=None, **training):
    overrides = {"model.layers": LAYERS, "training.epochs": 3, "training.batch_size": 32,
                 "training.lr_decay": 0.9, "augment.rotate": 10.0, "augment.noise": 0.1,
                 "data.scale": "unit"}
    if optimizer:
        overrides["optimizer"] = optimizer
    overrides.update({f"training.{k}": v for k, v in training.items()})
    return config.load_config(None, overrides)


class SignalAt(Callback):
    """Sends a real signal to this process after update ``step``, as Ctrl+C or kill would."""

    def __init__(self, step, signum=signal.SIGINT):
        self.step, self.signum = step, signum

    def on_batch_end(self, model, step, loss):
        if step == self.step:
            os.kill(os.getpid(), self.signum)


def weights(run_dir):
    model = Sequential.load(os.path.join(run_dir, "model.npz"))
    return [a for layer in model.layers for a in (*layer.params.values(),
                                                  *layer.state.values())]


def same_weights(a, b):
    wa, wb = weights(a), weights(b)
    return len(wa) == len(wb) and all(np.array_equal(p, q) for p, q in zip(wa, wb))


@pytest.fixture(scope="module")
def reference(toy, tmp_path_factory):
    """The toy run left alone, for each optimiser."""
    out = {}
    for name, opt in (("adam", None), ("sgd", {"type": "sgd", "lr": 0.05, "momentum": 0.9})):
        d = tmp_path_factory.mktemp(f"ref-{name}")
        runs.train(toy_config(opt), str(d), verbose=False, dataset=toy)
        out[name] = str(d)
    return out


# 8 batches an epoch: 3 and 12 are mid-epoch, 8 the last batch of epoch 1, 24 the last of all.
@pytest.mark.parametrize("step", [1, 3, 8, 12, 24])
@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_interrupted_and_resumed_run_is_bit_identical(toy, reference, tmp_path, step, opt):
    optimizer = None if opt == "adam" else {"type": "sgd", "lr": 0.05, "momentum": 0.9}
    run = str(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt) as info:
        runs.train(toy_config(optimizer), run, verbose=False, dataset=toy,
                   callbacks=[SignalAt(step)])
    assert info.value.signum == signal.SIGINT and info.value.state.step == step
    metrics = json.loads(open(os.path.join(run, "metrics.json")).read())
    assert metrics["interrupted"] is True and metrics["epochs"] == (step - 1) // 8
    runs.resume(run, verbose=False, dataset=toy)
    assert same_weights(run, reference[opt])
    for name in ("batch_losses.csv", "dynamics.npz"):
        with open(os.path.join(run, name), "rb") as f, \
                open(os.path.join(reference[opt], name), "rb") as g:
            assert f.read() == g.read(), name
    ours = [r.split(",")[:-1] for r in open(os.path.join(run, "history.csv")).readlines()]
    theirs = [r.split(",")[:-1] for r in
              open(os.path.join(reference[opt], "history.csv")).readlines()]
    assert ours == theirs   # every column but the seconds


def test_resuming_twice_and_sigterm(toy, reference, tmp_path):
    run = str(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt) as info:
        runs.train(toy_config(), run, verbose=False, dataset=toy,
                   callbacks=[SignalAt(5, signal.SIGTERM)])
    assert info.value.signum == signal.SIGTERM
    with pytest.raises(KeyboardInterrupt):
        runs.resume(run, verbose=False, dataset=toy, callbacks=[SignalAt(19)])
    runs.resume(run, verbose=False, dataset=toy)
    assert same_weights(run, reference["adam"])


def alone_and_resumed(cfg, toy, tmp_path, step=10):
    """Run folders of ``cfg`` trained without a break, and interrupted by Ctrl+C after
    ``step`` then resumed."""
    alone, run = str(tmp_path / "alone"), str(tmp_path / "run")
    runs.train(cfg, alone, verbose=False, dataset=toy)
    with pytest.raises(KeyboardInterrupt):
        runs.train(cfg, run, verbose=False, dataset=toy, callbacks=[SignalAt(step)])
    runs.resume(run, verbose=False, dataset=toy)
    return alone, run


def test_per_step_evaluations_survive_a_resume(toy, tmp_path):
    alone, run = alone_and_resumed(toy_config(eval_every=3), toy, tmp_path)
    steps = open(os.path.join(run, "steps.csv")).read()
    assert steps == open(os.path.join(alone, "steps.csv")).read()
    assert len(steps.splitlines()) == 1 + 1 + 24 // 3   # header, step 1, every 3rd


def test_signal_handlers_are_restored(toy, tmp_path):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    runs.train(toy_config(epochs=1), str(tmp_path / "a"), verbose=False, dataset=toy)
    with pytest.raises(KeyboardInterrupt):
        runs.train(toy_config(), str(tmp_path / "b"), verbose=False, dataset=toy,
                   callbacks=[SignalAt(2)])
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_checkpoint_holds_everything_without_pickle(toy, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        runs.train(toy_config(), str(run), verbose=False, dataset=toy, callbacks=[SignalAt(11)])
    assert {"checkpoint.npz", "model.npz", "history.csv", "metrics.json", "config.toml",
            "dynamics.npz"} <= {p.name for p in run.iterdir()}
    with np.load(run / "checkpoint.npz", allow_pickle=False) as f:
        assert all(f[k].dtype != object for k in f.files)
        meta = json.loads(str(f["meta"]))
        names = set(f.files)
    assert meta["epoch"] == 2 and meta["batch"] == 3 and meta["step"] == 11
    assert meta["lr"] == pytest.approx(2e-3 * 0.9)   # the default 2e-3 after one decay
    assert set(meta["dropout"]) == {"2"} and meta["rng"]["bit_generator"] == "PCG64"
    assert {"optimizer/t", "optimizer/m/0", "order", "sizes", "param/0/W"} <= names
    assert len(meta["history"]["batch_losses"]) == 11 and len(meta["history"]["epochs"]) == 1


def test_a_damaged_checkpoint_is_one_clear_error(tmp_path):
    path = tmp_path / "checkpoint.npz"
    for content in (b"", b"not a zip", b"PK\x03\x04garbage"):
        path.write_bytes(content)
        with pytest.raises(GlyphnetError, match="damaged checkpoint"):
            checkpoint.load(str(path))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("meta.npy", b"\x93NUMPY junk")
    with pytest.raises(GlyphnetError, match="damaged checkpoint"):
        checkpoint.load(str(path))
    with pytest.raises(GlyphnetError, match="no checkpoint"):
        checkpoint.load(str(tmp_path / "missing.npz"))


def test_a_checkpoint_of_another_model_is_refused(toy, tmp_path):
    run = str(tmp_path / "run")
    runs.train(toy_config(epochs=1), run, verbose=False, dataset=toy)
    other = toy_config(epochs=1)
    other["model"]["layers"][0]["units"] = 8
    model, *_ = runs.prepare(other, toy)
    with pytest.raises(GlyphnetError, match="not of this run's model"):
        checkpoint.load(os.path.join(run, "checkpoint.npz")).restore(model)


# ---------------------------------------------------------------------------- divergence

def test_an_exploding_finite_loss_stops_training(toy, tmp_path):
    cfg = toy_config({"type": "sgd", "lr": 1e6}, epochs=2)
    with pytest.raises(TrainingDiverged, match="exploded") as info:
        runs.train(cfg, str(tmp_path / "run"), verbose=False, dataset=toy)
    assert "lower learning rate (it is 1e+06)" in str(info.value)
    assert "initial weights (no epoch completed)" in str(info.value)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "exploded" in metrics["diverged"] and np.isfinite(metrics["test_loss"])
    model, *_ = runs.prepare(cfg, toy)   # the initial model, same seed
    assert all(np.array_equal(p, q) for (_, _, p, _), q in
               zip(model.parameters(), weights(str(tmp_path / "run"))))


def test_a_healthy_run_is_not_called_divergent(toy, tmp_path):
    runs.train(toy_config({"type": "sgd", "lr": 0.5}), str(tmp_path / "run"), verbose=False,
               dataset=toy)


@pytest.mark.slow
def test_sgd_lr_1e6_on_the_default_mlp_stops_with_the_hint(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\ndataset = "mnist"\ntrain_limit = 2000\ntest_limit = 200\n'
                   '[training]\nepochs = 2\n[optimizer]\ntype = "sgd"\nlr = 1e6\n')
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "diverged" in err and "lower learning rate" in err


# ---------------------------------------------------------------------------- run directories

def test_out_naming_a_non_empty_directory_is_refused(tmp_path, capsys):
    run = tmp_path / "old"
    run.mkdir()
    (run / "model.npz").write_bytes(b"old model")
    assert main(["train", "--out", str(run), "--epochs", "1"]) == 1
    assert "--resume" in capsys.readouterr().err and \
        (run / "model.npz").read_bytes() == b"old model"
    assert sorted(os.listdir(run)) == ["model.npz"]


def test_force_replaces_the_old_run_whole(toy, tmp_path, monkeypatch):
    from glyphnet import rundir
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.toml").write_text("old")
    (run / "report.html").write_text("old report")
    (run / "tensorboard").mkdir()
    rundir.prepare(str(run), force=True)
    assert os.listdir(run) == []
    other = tmp_path / "notarun"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    with pytest.raises(GlyphnetError, match="no glyphnet run"):
        rundir.prepare(str(other), force=True)
    assert (other / "thesis.tex").read_text() == "precious"


def test_resume_needs_a_checkpoint_and_its_own_config(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 1
    assert "no such run directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["train", "--resume", str(tmp_path / "empty")]) == 1
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "empty"), "--epochs", "3"]) == 1
    assert "drop --epochs" in capsys.readouterr().err


def test_default_run_names_never_collide(tmp_path, monkeypatch):
    from glyphnet import rundir
    monkeypatch.setattr(rundir.time, "strftime", lambda fmt: "20260101-000000")
    names = [rundir.new_name("mlp", str(tmp_path)) for _ in range(3)]
    assert [os.path.basename(n) for n in names] == \
        ["mlp-20260101-000000", "mlp-20260101-000000-2", "mlp-20260101-000000-3"]


def test_output_paths_are_checked_before_the_data_is_loaded(tmp_path, monkeypatch, capsys):
    from glyphnet import data, rundir
    monkeypatch.setattr(data, "load_from_config", lambda *a: pytest.fail("data was loaded"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "--out", str(blocker / "run")]) == 1
    assert f"{blocker} is a file in the way" in capsys.readouterr().err
    assert main(["train", "--out", str(blocker)]) == 1
    assert "is a file, not a directory" in capsys.readouterr().err

    def read_only(*a, **k):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(rundir.tempfile, "mkstemp", read_only)
    assert main(["train", "--out", str(tmp_path / "ro")]) == 1
    assert f"cannot write the run directory {tmp_path / 'ro'}" in capsys.readouterr().err
    monkeypatch.undo()
    monkeypatch.setattr(data, "load_from_config", lambda *a: pytest.fail("data was loaded"))
    monkeypatch.setattr(rundir.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000})())
    assert main(["train", "--out", str(tmp_path / "full")]) == 1
    assert "MiB free on its disk" in capsys.readouterr().err


def test_leftover_tmp_files_are_removed_by_the_next_write(tmp_path):
    from glyphnet.fileio import write_atomic
    (tmp_path / ".model.npz.abc123.tmp").write_bytes(b"half a file")
    (tmp_path / ".other.txt.x.tmp").write_bytes(b"not ours to judge")
    write_atomic(tmp_path / "model.npz", b"whole")
    assert sorted(os.listdir(tmp_path)) == [".other.txt.x.tmp", "model.npz"]


# ---------------------------------------------------------------------------- a real Ctrl+C

@pytest.mark.slow
def test_ctrl_c_in_a_real_process_then_resume(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\ndataset = "mnist"\ntrain_limit = 1000\ntest_limit = 100\n'
                   '[model]\nlayers = [{type = "dense", units = 16}, {type = "relu"}, '
                   '{type = "dropout", rate = 0.2}, {type = "dense", units = 10}, '
                   '{type = "softmax"}]\n[training]\nepochs = 120\nbatch_size = 50\n'
                   '[augment]\nshift = 1\n')
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "glyphnet.cli", "train", str(cfg), "--out",
                             str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    for line in proc.stdout:
        if line.startswith("epoch 3/"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].endswith(f"glyphnet train --resume {run}")
    assert json.loads((run / "metrics.json").read_text())["interrupted"] is True
    done = subprocess.run([sys.executable, "-m", "glyphnet.cli", "train", "--resume", str(run)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    alone = tmp_path / "alone"
    runs.train(config.load_config(str(cfg)), str(alone), verbose=False)
    assert same_weights(str(run), str(alone))


def test_a_full_disk_while_writing_is_one_clear_error(tmp_path, monkeypatch):
    import errno
    from glyphnet import fileio

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")
    real = os.fdopen
    monkeypatch.setattr(fileio.os, "fdopen", lambda fd, mode: Full(real(fd, mode)))
    with pytest.raises(GlyphnetError, match=f"cannot write {tmp_path / 'm.npz'}: No space"):
        fileio.write_atomic(tmp_path / "m.npz", b"data")
    assert os.listdir(tmp_path) == []


def test_a_finished_run_has_nothing_to_resume(toy, tmp_path):
    run = str(tmp_path / "run")
    runs.train(toy_config(epochs=1), run, verbose=False, dataset=toy)
    with pytest.raises(GlyphnetError, match="already finished its 1 epochs"):
        runs.resume(run, verbose=False, dataset=toy)


def test_a_checkpoint_with_a_bad_generator_state_is_damaged(toy, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        runs.train(toy_config(), str(run), verbose=False, dataset=toy, callbacks=[SignalAt(3)])
    with np.load(run / "checkpoint.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    meta["aug_rng"] = {"bit_generator": "PCG64", "state": "zero"}
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(run / "checkpoint.npz", **arrays)
    with pytest.raises(GlyphnetError, match="damaged checkpoint"):
        runs.resume(str(run), verbose=False, dataset=toy)


def test_a_second_interrupt_stops_at_once(toy, tmp_path, capsys):
    class Twice(Callback):
        def on_batch_end(self, model, step, loss):
            if step == 3:
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt) as info:
        runs.train(toy_config(), str(tmp_path / "run"), verbose=False, dataset=toy,
                   callbacks=[Twice()])
    assert type(info.value) is KeyboardInterrupt and signal.getsignal(signal.SIGINT) == before
    assert "interrupt again to stop at once" in capsys.readouterr().err


def test_resuming_on_changed_data_is_refused(toy, tmp_path):
    run = str(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        runs.train(toy_config(), run, verbose=False, dataset=toy, callbacks=[SignalAt(3)])
    fewer = Dataset("toy", toy.x_train[:200], toy.y_train[:200], toy.x_test, toy.y_test,
                    toy.classes)
    with pytest.raises(GlyphnetError, match="written for 240 training samples but the data "
                                            "set now has 200"):
        runs.resume(run, verbose=False, dataset=fewer)


def test_max_steps_is_kept_across_a_resume(toy, tmp_path):
    alone, run = alone_and_resumed(toy_config(max_steps=13), toy, tmp_path)
    assert same_weights(run, alone)
    assert len(open(os.path.join(run, "batch_losses.csv")).readlines()) == 13
    with pytest.raises(GlyphnetError, match="already finished its 13 steps"):
        runs.resume(run, verbose=False, dataset=toy)
    last = str(tmp_path / "last")   # interrupted at the very last step: it just finishes
    metrics = runs.train(toy_config(max_steps=13), last, verbose=False, dataset=toy,
                         callbacks=[SignalAt(13)])
    assert "interrupted" not in metrics and same_weights(last, alone)


@pytest.mark.parametrize("options", [{"batch_order": "balanced", "batch_size": 30},
                                     {"freeze": [0], "shrink": 1e-3},
                                     {"batch_size": 0, "epochs": 4}])
def test_resume_with_other_training_options(toy, tmp_path, options):
    alone, run = str(tmp_path / "alone"), str(tmp_path / "run")
    runs.train(toy_config(**options), alone, verbose=False, dataset=toy)
    with pytest.raises(KeyboardInterrupt):
        runs.train(toy_config(**options), run, verbose=False, dataset=toy,
                   callbacks=[SignalAt(2)])
    runs.resume(run, verbose=False, dataset=toy)
    assert same_weights(run, alone)


def test_a_program_with_its_own_handler_is_never_stopped_mid_batch(toy, tmp_path):
    class Twice(Callback):
        def on_batch_end(self, model, step, loss):
            if step == 3:
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
    own = signal.signal(signal.SIGINT, lambda *a: None)   # as the web lab's child does
    try:
        with pytest.raises(checkpoint.TrainingInterrupted):
            runs.train(toy_config(), str(tmp_path / "run"), verbose=False, dataset=toy,
                       callbacks=[Twice()])
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, own)
