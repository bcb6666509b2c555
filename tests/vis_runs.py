"""Tiny MNIST training runs shared by test_visualize, test_explain and test_report: each is
trained once per test session (a few hundred images, one epoch or two) into a temporary run
directory."""
from glyphnet import runs
from glyphnet.config import load_config

LAYERS = {
    "mlp": [{"type": "dense", "units": 32}, {"type": "relu"},
            {"type": "dense", "units": 10}, {"type": "softmax"}],
    "cnn": [{"type": "conv2d", "filters": 4, "kernel_size": 5, "padding": "valid"},
            {"type": "relu"},
            {"type": "max_pool2d", "pool_size": 2, "stride": 2},
            {"type": "conv2d", "filters": 6, "kernel_size": 3, "padding": "valid"},
            {"type": "relu"},
            {"type": "max_pool2d", "pool_size": 2, "stride": 2},
            {"type": "dense", "units": 10}, {"type": "softmax"}],
    # Report 002's network: sigmoid everywhere, no biases, squared error, targets 0.01/0.99.
    "sigmoid": [{"type": "dense", "units": 50, "init": "lecun_normal", "bias": False},
                {"type": "sigmoid"},
                {"type": "dense", "units": 10, "init": "lecun_normal", "bias": False},
                {"type": "sigmoid"}],
}

OVERRIDES = {
    "mlp": {"data.train_limit": 600, "data.test_limit": 200, "training.epochs": 1,
            "training.batch_size": 20, "optimizer": {"type": "adam", "lr": 0.003}},
    "cnn": {"data.train_limit": 500, "data.test_limit": 100, "training.epochs": 1,
            "training.batch_size": 20, "optimizer": {"type": "adam", "lr": 0.005}},
    "sigmoid": {"data.train_limit": 2000, "data.test_limit": 200, "data.scale": "offset",
                "training.epochs": 2, "training.batch_size": 1, "training.loss": "mse",
                "training.targets": [0.01, 0.99], "optimizer": {"type": "sgd", "lr": 0.2}},
}

_done = {}


def config(kind):
    return load_config(None, {"model.layers": LAYERS[kind], **OVERRIDES[kind]})


def run_dir(kind, tmp_path_factory):
    """The run directory of a trained tiny ``kind`` model (mlp, cnn or sigmoid)."""
    if kind not in _done:
        path = tmp_path_factory.getbasetemp() / f"vis-run-{kind}"
        runs.train(config(kind), str(path), verbose=False)
        _done[kind] = path
    return _done[kind]
