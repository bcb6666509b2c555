"""A training run as files: RUN_DIR/model.npz, config.toml, history.csv, metrics.json,
dynamics.npz (training dynamics, see monitor.py), steps.csv (with training.eval_every, see
inspection/steps.py)."""
import copy
import json
import os
import time

from .data import augment as augmentation
from . import config as configuration
from . import data
from .errors import TrainingDiverged
from .fileio import write_atomic
from .inspection.monitor import Monitor
from .inspection.steps import StepEvaluator, eval_subset


def prepare(cfg, dataset=None, data_dir=None):
    """Load the data (unless given; ``data_dir`` overrides the data directory) and build the
    compiled model of a resolved config. Returns (model, dataset, x_train, x_test) with the
    inputs scaled for the model; the returned dataset's training set includes the fixed
    augmented copies of ``[augment] copies`` (a given dataset is left as it is)."""
    ds = dataset if dataset is not None else data.load_from_config(cfg["data"], data_dir)
    if cfg["augment"].get("copies"):
        ds = copy.copy(ds)
        ds.x_train, ds.y_train = augmentation.with_copies(ds.x_train, ds.y_train,
                                                          cfg["augment"]["copies"])
    model = configuration.build_model(cfg, ds)
    model.scaler.fit(ds.x_train)
    return model, ds, model.scaler.transform(ds.x_train), model.scaler.transform(ds.x_test)


def train(cfg, out_dir, verbose=True, log=print, callbacks=(), dataset=None, data_dir=None):
    """Train the model of a resolved config and write the run directory.

    Returns the metrics dict. On divergence the last good model and the history so far are
    still written, metrics.json records the failure, and TrainingDiverged is raised.
    """
    model, ds, x_train, x_test = prepare(cfg, dataset, data_dir)
    if verbose:
        log(f"data {ds.name}: {len(x_train)} train / {len(x_test)} test images of shape "
            f"{tuple(ds.input_shape)}, {ds.num_classes} classes")
        log(f"model: {len(model.layers)} layers, {model.count_params():,} parameters")
    t = cfg["training"]
    tensorboard = None
    if t["tensorboard"]:
        from .interop.tensorboard import TensorBoard
        tensorboard = TensorBoard(os.path.join(out_dir, "tensorboard"))
        callbacks = [*callbacks, tensorboard]
    os.makedirs(out_dir, exist_ok=True)
    write_atomic(os.path.join(out_dir, "config.toml"), configuration.dumps(cfg))
    steps = -(-len(x_train) // (t["batch_size"] or len(x_train))) * t["epochs"]
    if t["max_steps"]:
        steps = min(steps, t["max_steps"])
    gc = t["gradcheck"]
    monitor = Monitor(every=max(1, min(10, steps // 100)), seed=cfg["seed"],
                      check_data=(x_train[:gc["images"]], ds.y_train[:gc["images"]]),
                      check_entries=gc["entries"], check_method=gc["method"],
                      check_h=gc["h"], check_every=gc["every"])
    evaluator = None
    if t["eval_every"]:
        evaluator = StepEvaluator(t["eval_every"],
                                  eval_subset(x_test, ds.y_test, t["eval_subset"]))
        callbacks = [*callbacks, evaluator]
    val = None
    if ds.x_val is not None and len(ds.x_val):
        val = (model.scaler.transform(ds.x_val), ds.y_val)
    start = time.perf_counter()
    error = None
    try:
        history = model.fit(x_train, ds.y_train, epochs=t["epochs"], batch_size=t["batch_size"],
                            shuffle=t["shuffle"], seed=cfg["seed"],
                            validation_data=val, test_data=(x_test, ds.y_test),
                            augment=augmentation.from_config(cfg["augment"]),
                            lr_decay=t["lr_decay"], callbacks=[*callbacks, monitor],
                            verbose=verbose, log=log, batch_order=t["batch_order"],
                            max_steps=t["max_steps"])
    except TrainingDiverged as exc:
        error, history = exc, exc.history
    monitor.detach(model)
    if tensorboard is not None:
        tensorboard.close()
    seconds = time.perf_counter() - start
    final_train = model.evaluate(x_train, ds.y_train)
    final_test = model.evaluate(x_test, ds.y_test)
    metrics = {
        "test_accuracy": final_test["accuracy"], "test_loss": final_test["loss"],
        "train_accuracy": final_train["accuracy"], "train_loss": final_train["loss"],
        "epochs": len(history.epochs), "seconds": round(seconds, 3),
        "dataset": ds.name, "parameters": model.count_params(),
    }
    if val is not None:
        final_val = model.evaluate(*val)
        metrics.update(val_accuracy=final_val["accuracy"], val_loss=final_val["loss"])
    if error is not None:
        metrics["diverged"] = str(error)
    model.save(os.path.join(out_dir, "model.npz"))
    write_atomic(os.path.join(out_dir, "history.csv"), history.csv_text())
    write_atomic(os.path.join(out_dir, "batch_losses.csv"),
                 "".join(f"{v:.6g}\n" for v in history.batch_losses))
    write_atomic(os.path.join(out_dir, "metrics.json"), json.dumps(metrics, indent=2) + "\n")
    monitor.save(os.path.join(out_dir, "dynamics.npz"))
    if evaluator is not None:
        evaluator.save(os.path.join(out_dir, "steps.csv"))
    if error is not None:
        raise error
    return metrics
