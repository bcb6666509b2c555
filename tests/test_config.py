"""TOML configs: defaults, the shipped configs, whole-config validation, round trips."""
import pathlib
import tomllib

import numpy as np
import pytest

from glyphnet import ConfigError, GlyphnetError
from glyphnet.config import DEFAULTS, build_model, dumps, load_config, resolve
from glyphnet.data import Dataset

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"


def test_configs_mlp_toml_is_the_default():
    assert load_config(CONFIGS / "mlp.toml") == load_config(None)
    default = load_config(None)
    assert [layer["type"] for layer in default["model"]["layers"]] == \
        ["dense", "relu", "dense", "relu", "dense", "softmax"]
    assert [layer.get("units") for layer in default["model"]["layers"][::2]] == [256, 256, 10]
    assert default["optimizer"]["type"] == "adam" and default["training"]["epochs"] == 10


def test_the_shipped_985_config_is_valid():
    cfg = load_config(CONFIGS / "mlp_985.toml")
    assert cfg["model"]["layers"][1] == {"type": "dense", "units": 512, "bias": True,
                                         "init": "he_normal", "sigma": 0.01}


def test_every_problem_is_reported_at_once_with_its_key():
    raw = {
        "seed": -3,
        "colour": "red",
        "training": {"epochs": 0, "batch_size": "big", "lr_decay": 1.5, "l2": -1.0,
                     "momentum": 0.9},
        "optimizer": {"type": "adam", "lr": -0.1},
        "model": {"layers": [{"type": "dense", "units": 0}, {"type": "relu", "slope": 2},
                             {"type": "convolution"}, {"type": "dense"},
                             {"type": "sigmoid", "slope": "steep"}]},
        "data": {"scale": "minmax"},
    }
    with pytest.raises(ConfigError) as info:
        resolve(raw, "bad.toml")
    problems = info.value.problems
    expected_keys = [
        "seed:", "colour:", "training.epochs:", "training.batch_size:", "training.lr_decay:",
        "training.l2:", "training.momentum:", "optimizer:",
        "model.layers[0]:", "model.layers[1].slope:", "model.layers[2].type:",
        "model.layers[3].units:", "model.layers[4].slope:", "data.scale:",
    ]
    for key in expected_keys:
        assert any(p.startswith(key) for p in problems), (key, problems)
    text = str(info.value)
    assert "in bad.toml" in text and f"{len(problems)} problem(s)" in text
    assert "units must be a positive integer, got 0" in text
    assert "unknown layer 'convolution'" in text
    assert "model.layers[3].units: required for layer 'dense'" in text
    assert "model.layers[4].slope: expected a number, got 'steep'" in text
    assert "optimizer: lr must be a positive number, got -0.1" in text
    with pytest.raises(ConfigError, match=r"optimizer.betas: unknown option for optimizer "
                                          r"'adam' \(expected lr, beta1, beta2, eps\)"):
        resolve({"optimizer": {"betas": [0.9, 0.99]}})


def test_dumps_round_trips_and_overrides(tmp_path):
    cfg = load_config(CONFIGS / "mlp_985.toml", {"training.epochs": 3, "seed": 9})
    assert cfg["training"]["epochs"] == 3 and cfg["seed"] == 9
    path = tmp_path / "written.toml"
    path.write_text(dumps(cfg))
    assert load_config(path) == cfg
    assert tomllib.loads(dumps(cfg))["optimizer"]["lr"] == cfg["optimizer"]["lr"]


def test_sgd_optimizer_section_keeps_its_own_defaults():
    cfg = resolve({"optimizer": {"type": "sgd", "momentum": 0.9}})
    assert cfg["optimizer"] == {"type": "sgd", "lr": 0.1, "momentum": 0.9}


def test_file_errors(tmp_path):
    with pytest.raises(GlyphnetError, match="missing.toml: config file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[training\nepochs = 3\n")
    with pytest.raises(GlyphnetError, match="bad.toml: invalid TOML"):
        load_config(bad)


def test_build_model_checks_the_output_size():
    ds = Dataset("toy", np.zeros((4, 28, 28, 1), np.float32), np.arange(4),
                 np.zeros((2, 28, 28, 1), np.float32), np.arange(2), list("abcd"))
    cfg = resolve({"model": {"layers": [{"type": "dense", "units": 5}, {"type": "softmax"}]}})
    with pytest.raises(ConfigError, match="has 4 classes; make the last dense layer 4 units"):
        build_model(cfg, ds)
    cfg = resolve({"model": {"layers": [{"type": "dense", "units": 4}, {"type": "softmax"}]},
                   "training": {"loss": "mse", "targets": [0.01, 0.99], "l2": 1e-4},
                   "data": {"scale": "offset"}})
    model = build_model(cfg, ds)
    assert model.loss.targets == (0.01, 0.99) and model.regularization["l2"] == 1e-4
    assert model.scaler.mode == "offset" and model.classes == list("abcd")


def test_defaults_are_not_mutated_by_resolving():
    before = dumps({"seed": DEFAULTS["seed"], **{k: DEFAULTS[k] for k in DEFAULTS if k != "seed"}})
    resolve({"training": {"epochs": 2}, "model": {"layers": [{"type": "dense", "units": 10}]}})
    after = dumps({"seed": DEFAULTS["seed"], **{k: DEFAULTS[k] for k in DEFAULTS if k != "seed"}})
    assert before == after


def test_overrides_reach_into_layer_lists_and_bad_paths_are_config_errors():
    cfg = load_config(None, {"model.layers[1]": {"type": "tanh", "slope": 0.5},
                             "training.epochs": 3})
    assert cfg["model"]["layers"][1] == {"type": "tanh", "slope": 0.5}
    assert cfg["training"]["epochs"] == 3
    with pytest.raises(ConfigError, match=r"index \[9\] is out of range"):
        load_config(None, {"model.layers[9].slope": 1.0})
