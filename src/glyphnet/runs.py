"""A training run as files: RUN_DIR/model.npz, config.toml, history.csv, metrics.json."""
import json
import os
import tempfile
import time

from . import augment as augmentation
from . import config as configuration
from . import data
from .errors import TrainingDiverged


def write_atomic(path, text):
    """Write text to path via a temporary file, so a crash never leaves half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def prepare(cfg, dataset=None):
    """Load the data (unless given) and build the compiled model of a resolved config.
    Returns (model, dataset, x_train, x_test) with the inputs scaled for the model."""
    ds = dataset if dataset is not None else data.load_from_config(cfg["data"])
    model = configuration.build_model(cfg, ds)
    model.scaler.fit(ds.x_train)
    return model, ds, model.scaler.transform(ds.x_train), model.scaler.transform(ds.x_test)


def train(cfg, out_dir, verbose=True, log=print, callbacks=(), dataset=None):
    """Train the model of a resolved config and write the run directory.

    Returns the metrics dict. On divergence the last good model and the history so far are
    still written, metrics.json records the failure, and TrainingDiverged is raised.
    """
    model, ds, x_train, x_test = prepare(cfg, dataset)
    if verbose:
        log(f"data {ds.name}: {len(x_train)} train / {len(x_test)} test images of shape "
            f"{tuple(ds.input_shape)}, {ds.num_classes} classes")
        log(f"model: {len(model.layers)} layers, {model.count_params():,} parameters")
    t = cfg["training"]
    os.makedirs(out_dir, exist_ok=True)
    write_atomic(os.path.join(out_dir, "config.toml"), configuration.dumps(cfg))
    start = time.perf_counter()
    error = None
    try:
        history = model.fit(x_train, ds.y_train, epochs=t["epochs"], batch_size=t["batch_size"],
                            shuffle=t["shuffle"], seed=cfg["seed"],
                            validation_data=(x_test, ds.y_test),
                            augment=augmentation.from_config(cfg["augment"]),
                            lr_decay=t["lr_decay"], callbacks=callbacks, verbose=verbose, log=log)
    except TrainingDiverged as exc:
        error, history = exc, exc.history
    seconds = time.perf_counter() - start
    final_train = model.evaluate(x_train, ds.y_train)
    final_test = model.evaluate(x_test, ds.y_test)
    metrics = {
        "test_accuracy": final_test["accuracy"], "test_loss": final_test["loss"],
        "train_accuracy": final_train["accuracy"], "train_loss": final_train["loss"],
        "epochs": len(history.epochs), "seconds": round(seconds, 3),
        "dataset": ds.name, "parameters": model.count_params(),
    }
    if error is not None:
        metrics["diverged"] = str(error)
    model.save(os.path.join(out_dir, "model.npz"))
    write_atomic(os.path.join(out_dir, "history.csv"), history.csv_text())
    write_atomic(os.path.join(out_dir, "batch_losses.csv"),
                 "".join(f"{v:.6g}\n" for v in history.batch_losses))
    write_atomic(os.path.join(out_dir, "metrics.json"), json.dumps(metrics, indent=2) + "\n")
    if error is not None:
        raise error
    return metrics
