"""The command line: train/evaluate/predict/gradcheck through glyphnet.cli.main, user errors,
and one run of the installed `glyphnet` entry point."""
import csv
import gzip
import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from glyphnet import Sequential
from glyphnet.cli import main
from glyphnet.config import build_model, load_config
from glyphnet.data import load_from_config

LAYERS = """layers = [
    {type = "dense", units = 64},
    {type = "relu"},
    {type = "dense", units = 10, init = "glorot_uniform"},
    {type = "softmax"},
]"""


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())
    return str(path)


@pytest.fixture(scope="module")
def data_section(tmp_path_factory, mnist):
    """A [data] section pointing at IDX copies of the first 3000/500 MNIST images (small
    files, so each command reads its data quickly)."""
    d = tmp_path_factory.mktemp("mnist_small")
    paths = []
    for name, x, y in (("train", mnist.x_train[:3000], mnist.y_train[:3000]),
                       ("test", mnist.x_test[:500], mnist.y_test[:500])):
        images = np.rint(x[..., 0] * 255)
        paths.append((write_idx(d / f"{name}-images.gz", images),
                      write_idx(d / f"{name}-labels.gz", y)))
    (train_img, train_lab), (test_img, test_lab) = paths
    return (f'[data]\ndataset = "files"\ntrain = ["{train_img}", "{train_lab}"]\n'
            f'test = ["{test_img}", "{test_lab}"]\n')


def write_config(path, data_section, training="epochs = 2\nbatch_size = 32",
                 optimizer='type = "adam"\nlr = 0.002', layers=LAYERS):
    path.write_text(f"seed = 0\n\n{data_section}\n[model]\n{layers}\n\n[training]\n{training}\n"
                    f"\n[optimizer]\n{optimizer}\n")
    return str(path)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_section):
    d = tmp_path_factory.mktemp("run")
    config = write_config(d / "small.toml", data_section, training="epochs = 1\nbatch_size = 32")
    run = d / "run"
    assert main(["train", config, "--out", str(run)]) == 0
    return run


def test_train_writes_the_run_directory(trained_run):
    assert {"model.npz", "config.toml", "history.csv", "metrics.json"} <= \
        {p.name for p in trained_run.iterdir()}
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert {"test_accuracy", "test_loss", "train_accuracy", "epochs", "seconds"} <= set(metrics)
    assert metrics["epochs"] == 1 and metrics["seconds"] > 0
    assert metrics["test_accuracy"] > 0.85 and metrics["train_accuracy"] > 0.85
    with open(trained_run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1]
    assert set(rows[0]) >= {"train_loss", "train_accuracy", "test_loss", "test_accuracy",
                            "seconds"}
    assert float(rows[0]["test_accuracy"]) == pytest.approx(metrics["test_accuracy"], abs=1e-5)


def test_train_prints_each_epoch_and_epochs_override(tmp_path, data_section, capsys):
    config = write_config(tmp_path / "c.toml", data_section, training="epochs = 1")
    assert main(["train", config, "--out", str(tmp_path / "run"), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/2: train loss" in out and "epoch 2/2: train loss" in out
    assert "| test loss" in out and "test accuracy" in out
    assert "wrote" in out and str(tmp_path / "run") in out
    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])


@pytest.mark.slow
def test_the_written_config_reproduces_the_run(trained_run, tmp_path):
    rerun = tmp_path / "rerun"
    assert main(["train", str(trained_run / "config.toml"), "--out", str(rerun)]) == 0
    a, b = Sequential.load(trained_run / "model.npz"), Sequential.load(rerun / "model.npz")
    for (_, _, pa, _), (_, _, pb, _) in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa, pb)
    ma = json.loads((trained_run / "metrics.json").read_text())
    mb = json.loads((rerun / "metrics.json").read_text())
    assert ma["test_accuracy"] == mb["test_accuracy"] and ma["test_loss"] == mb["test_loss"]


def test_evaluate_json_matches_model_evaluate(trained_run, capsys):
    assert main(["evaluate", str(trained_run / "model.npz"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    model = Sequential.load(trained_run / "model.npz")
    ds = load_from_config(load_config(trained_run / "config.toml")["data"])
    expected = model.evaluate(model.scaler.transform(ds.x_test), ds.y_test)
    assert report["accuracy"] == expected["accuracy"]
    assert report["loss"] == pytest.approx(expected["loss"], rel=1e-6)
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == report["samples"] == 500
    assert np.trace(cm) / 500 == pytest.approx(report["accuracy"])
    for c, acc in report["per_class_accuracy"].items():
        assert acc == pytest.approx(cm[int(c), int(c)] / cm[int(c)].sum())

    assert main(["evaluate", str(trained_run / "model.npz")]) == 0
    text = capsys.readouterr().out
    assert f"accuracy {expected['accuracy']:.4f}" in text and "confusion matrix" in text


def test_predict_on_a_png_of_a_real_digit(trained_run, mnist, tmp_path, capsys):
    """A test digit the model is sure about, drawn dark on light and scaled up 5x, as a user's
    scan would be: predict must undo that and find the same class."""
    model = Sequential.load(trained_run / "model.npz")
    x, y = mnist.x_test[500:600], mnist.y_test[500:600]    # not in the training data
    p = model.predict_proba(x)
    sure = np.flatnonzero((p.argmax(axis=1) == y) & (p.max(axis=1) > 0.99))
    assert len(sure) >= 5
    paths, labels = [], []
    for i in sure[:5]:
        grey = 255 - np.rint(x[i, ..., 0] * 255).astype(np.uint8)          # dark ink on white
        big = Image.fromarray(grey).resize((140, 140), Image.Resampling.BICUBIC)
        canvas = Image.new("L", (200, 180), 255)
        canvas.paste(big, (40, 20))
        path = tmp_path / f"digit{i}.png"
        canvas.save(path)
        paths.append(str(path))
        labels.append(str(y[i]))
    assert main(["predict", str(trained_run / "model.npz"), *paths, "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["class"] for r in results] == labels
    for r in results:
        assert sum(r["probabilities"].values()) <= 1 + 1e-6
        assert max(r["probabilities"], key=r["probabilities"].get) == r["class"]
    assert main(["predict", str(trained_run / "model.npz"), paths[0], "--top", "2"]) == 0
    assert capsys.readouterr().out.startswith(f"{paths[0]}: {labels[0]}  ({labels[0]}: ")


def test_gradcheck_passes_on_the_configured_model(tmp_path, data_section, capsys):
    config = write_config(tmp_path / "g.toml", data_section, layers=LAYERS.replace("64", "12"))
    assert main(["gradcheck", config, "--samples", "3", "--entries", "10"]) == 0
    out = capsys.readouterr().out
    assert "layer0.W" in out and "layer2.b" in out and "input" in out
    assert "all gradients agree (relative error <= 1e-05)" in out


def test_divergence_exits_non_zero_and_keeps_the_last_good_model(tmp_path, data_section,
                                                                  capsys):
    config = write_config(tmp_path / "hot.toml", data_section, training="epochs = 2",
                          optimizer='type = "sgd"\nlr = 1e7')
    run = tmp_path / "run"
    assert main(["train", config, "--out", str(run)]) == 1
    err = capsys.readouterr().err
    assert "glyphnet: error: training diverged at epoch 1, batch" in err
    assert "Try a lower learning rate (it is 1e+07)" in err
    assert f"{run}/model.npz" in err and "Traceback" not in err
    # Diverged in epoch 1: the last good weights are the initial ones.
    cfg = load_config(config)
    fresh = build_model(cfg, load_from_config(cfg["data"]))
    saved = Sequential.load(run / "model.npz")
    for (_, _, a, _), (_, _, b, _) in zip(fresh.parameters(), saved.parameters()):
        np.testing.assert_array_equal(a, b)
    metrics = json.loads((run / "metrics.json").read_text())
    assert "diverged" in metrics and metrics["epochs"] == 0


@pytest.mark.parametrize("argv,message", [
    (["train", "{tmp}/missing.toml"], "missing.toml: config file not found"),
    (["train", "{tmp}/broken.toml"], "broken.toml: invalid TOML"),
    (["train", "{tmp}/invalid.toml"], "2 problem(s) in"),
    (["evaluate", "{tmp}/missing.npz"], "missing.npz: no such model file"),
    (["predict", "{tmp}/missing.npz", "x.png"], "missing.npz: no such model file"),
])
def test_user_errors_give_one_clear_line(tmp_path, capsys, argv, message):
    (tmp_path / "broken.toml").write_text("[training\n")
    (tmp_path / "invalid.toml").write_text("[training]\nepochs = 0\nbatch_size = -1\n")
    code = main([a.format(tmp=tmp_path) for a in argv])
    captured = capsys.readouterr()
    assert code != 0
    assert captured.err.startswith("glyphnet: error: ") and message in captured.err
    assert "Traceback" not in captured.err + captured.out
    if "invalid" not in argv[1]:
        assert captured.err.count("\n") == 1


def test_predict_rejects_a_file_that_is_not_an_image(trained_run, tmp_path, capsys):
    bogus = tmp_path / "notes.png"
    bogus.write_text("not an image")
    assert main(["predict", str(trained_run / "model.npz"), str(bogus)]) == 1
    assert "notes.png: not a readable image" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["train", "--epochs", "0"], "expected a positive integer, got '0'"),
    (["train", "--seed", "abc"], "expected an integer >= 0, got 'abc'"),
    (["fly"], "invalid choice: 'fly'"),
])
def test_bad_arguments_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_installed_entry_point(trained_run):
    exe = shutil.which("glyphnet")
    assert exe, "the glyphnet command is not installed (pip install -e .)"
    proc = subprocess.run([exe, "evaluate", str(trained_run / "model.npz"), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert report["accuracy"] == pytest.approx(metrics["test_accuracy"])
