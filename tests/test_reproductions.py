"""The reports' studies (configs/experiments/<report>/*.toml): every file validates, names the
command that runs it, and trains at a tiny size (1 epoch, 150 training / 100 test images, at
most 30 steps). Files on USPS or the AT&T faces need $GLYPHNET_DATA and are skipped, with the
reason, without it; the EMNIST file is skipped when EMNIST is not there."""
import glob
import json
import os

import numpy as np
import pytest

from glyphnet import runs
from glyphnet.errors import DataError
from glyphnet.experiments import load_experiment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = sorted(glob.glob(os.path.join(ROOT, "configs", "experiments", "*", "*.toml")))
REPORTS = ("character_recognition", "ground_up", "sigmoid_mse", "digits_faces", "toeplitz_cnn")
TINY = {"training.epochs": 1, "data.train_limit": 150, "data.test_limit": 100,
        "training.max_steps": 30}
# Files whose first run takes over a second or two even at the tiny size (big networks).
SLOW = {"faces_regularisation", "faces_person_units", "faces_batch_size", "dwsep_batchnorm",
        "mnist_mlp_elastic", "emnist_mlp_elastic", "batch_lr"}


def rel(path):
    return os.path.relpath(path, ROOT)


def test_one_folder_per_report():
    folders = {os.path.basename(os.path.dirname(p)) for p in EXPERIMENTS}
    assert folders == set(REPORTS)
    assert not glob.glob(os.path.join(ROOT, "configs", "experiments", "*.toml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=rel)
def test_validates_with_three_seeds_and_names_its_command(path):
    spec, plan = load_experiment(path, TINY)
    assert spec["seeds"] == [0, 1, 2]
    assert {r.seed for r in plan} == {0, 1, 2}
    assert all(r.cfg["training"]["epochs"] == 1 for r in plan)
    for run in plan:
        assert all(0 <= v <= 1 for k, v in run.reported.items() if k.endswith("accuracy"))
    with open(path) as f:
        header = [line for line in f.read().splitlines() if line.startswith("#")]
    # The one-line command that runs the study at full length, with this file's real path.
    assert any(f"glyphnet experiment {rel(path)}" in line for line in header), header


def _usps_folder(root):
    """An image folder like a user's own drawings: 16x16 USPS digits, 6 per class, plus a
    not_a_character class of random blobs."""
    from PIL import Image
    from glyphnet.data.datasets import load_named
    ds = load_named("usps")
    rng = np.random.default_rng(0)
    for c in range(10):
        os.makedirs(os.path.join(root, str(c)))
        for i, k in enumerate(np.flatnonzero(ds.y_train == c)[:6]):
            img = (255 * ds.x_train[k, :, :, 0]).astype(np.uint8)
            Image.fromarray(img).save(os.path.join(root, str(c), f"{i}.png"))
    os.makedirs(os.path.join(root, "not_a_character"))
    for i in range(6):
        img = np.zeros((16, 16), np.uint8)
        y, x = rng.integers(2, 10, size=2)
        img[y:y + 5, x:x + 5] = 255
        Image.fromarray(img).save(os.path.join(root, "not_a_character", f"{i}.png"))


def _needs(dataset):
    if dataset in ("usps", "faces") and not os.environ.get("GLYPHNET_DATA"):
        pytest.skip(f"{dataset} needs GLYPHNET_DATA (the shared data directory)")


def _train_tiny(path, tmp_path, groups=1):
    extra = dict(TINY)
    name = os.path.splitext(os.path.basename(path))[0]
    if name == "not_a_character":
        _needs("usps")
        _usps_folder(tmp_path / "drawings")
        extra["data.path"] = str(tmp_path / "drawings")
    _, plan = load_experiment(path, extra)
    firsts = [r for r in plan if r.seed == 0][:groups]
    for run in firsts:
        cfg = run.cfg
        dataset = cfg["data"]["dataset"]
        _needs(dataset)
        if "init_from" in cfg["model"]:
            # The pretrained CNN the file names, trained here at the same tiny size.
            from glyphnet.config import load_config
            base = load_config(os.path.join(ROOT, "configs", "faces_cnn.toml"), TINY)
            runs.train(base, str(tmp_path / "pretrained"), verbose=False)
            cfg["model"]["init_from"]["path"] = str(tmp_path / "pretrained" / "model.npz")
        try:
            metrics = runs.train(cfg, str(tmp_path / run.name), verbose=False)
        except DataError as exc:
            if dataset == "emnist-balanced":
                pytest.skip(str(exc))
            raise
        assert 0 <= metrics["test_accuracy"] <= 1 and metrics["epochs"] == 1
        with open(tmp_path / run.name / "metrics.json") as f:
            assert json.load(f)["test_accuracy"] == metrics["test_accuracy"]
        if cfg["training"]["eval_every"]:
            assert (tmp_path / run.name / "steps.csv").exists()


def _param(path):
    name = os.path.splitext(os.path.basename(path))[0]
    marks = (pytest.mark.slow,) if name in SLOW else ()
    return pytest.param(path, id=rel(path), marks=marks)


@pytest.mark.parametrize("path", [_param(p) for p in EXPERIMENTS])
def test_first_run_trains_at_a_tiny_size(path, tmp_path):
    _train_tiny(path, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("path", EXPERIMENTS, ids=rel)
def test_every_run_trains_at_a_tiny_size(path, tmp_path):
    _train_tiny(path, tmp_path, groups=None)


def _tiny_experiment(tmp_path, name, layers):
    """A two-group, two-seed experiment on 128 MNIST images, run into tmp_path/name."""
    from glyphnet.experiments import run_experiment
    path = tmp_path / f"{name}.toml"
    path.write_text(f'''name = "{name}"
seeds = [0, 1]
[set]
"model.layers" = {layers}
"training.epochs" = 2
"training.batch_size" = 32
"data.train_limit" = 128
"data.test_limit" = 64
[[runs]]
name = "sgd"
"optimizer" = {{type = "sgd", lr = 0.05}}
[[runs]]
name = "adam"
reported = {{test_accuracy = 0.9}}
''')
    run_experiment(str(path), tmp_path / name, jobs=1, log=lambda *a: None)
    return str(tmp_path / name)


def test_the_reproduction_pictures_draw_from_experiment_folders(tmp_path):
    """docs/images/reproductions.py: every kind of picture it draws, from real runs."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "reproductions", os.path.join(ROOT, "docs", "images", "reproductions.py"))
    pictures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pictures)
    mlp = _tiny_experiment(tmp_path, "mlp", '[{type = "dense", units = 16}, {type = "relu"}, '
                                            '{type = "dense", units = 10}, {type = "softmax"}]')
    cnn = _tiny_experiment(tmp_path, "cnn", '[{type = "conv2d", filters = 4, kernel_size = 5}, '
                                            '{type = "relu"}, {type = "max_pool2d"}, '
                                            '{type = "dense", units = 10}, {type = "softmax"}]')
    out = tmp_path / "pictures"
    out.mkdir()
    drawn = [
        pictures.draw(mlp, str(out / "a.png")),
        pictures.draw_batch_losses(mlp, ["sgd", "adam"], str(out / "b.png")),
        pictures.draw_histograms(mlp, ["sgd-seed0", "adam-seed0"], str(out / "c.png")),
        pictures.draw_weights(mlp, ["sgd-seed0", "adam-seed1"], str(out / "d.png")),
        pictures.draw_pixel_weights(mlp, ["sgd", "adam"], str(out / "e.png")),
        pictures.draw_deltas(cnn, ["sgd", "adam"], str(out / "f.png")),
        pictures.draw_deconvolution(os.path.join(cnn, "adam-seed0"), str(out / "g.png")),
    ]
    assert len(drawn) == 7
    for name in "abcdefg":
        with open(out / f"{name}.png", "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", name
    with pytest.raises(SystemExit, match="no finished runs of group 'nope'"):
        pictures.draw_batch_losses(mlp, ["nope"], str(out / "h.png"))
