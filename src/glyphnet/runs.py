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
from . import memory, rundir
from .nn import checkpoint as checkpoints
from .errors import ConfigError, GlyphnetError, TrainingDiverged
from .fileio import write_atomic
from .inspection.monitor import Monitor
from .inspection.steps import StepEvaluator, eval_subset

# Skipped files (unreadable images, duplicates) named one per line before training.
MAX_SKIPPED_SHOWN = 10


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


def train(cfg, out_dir, verbose=True, log=print, callbacks=(), dataset=None, data_dir=None,
          from_checkpoint=None):
    """Train the model of a resolved config and write the run directory.

    Returns the metrics dict. On divergence the last good model and the history so far are
    still written, metrics.json records the failure, and TrainingDiverged is raised.
    RUN_DIR/checkpoint.npz is written at every epoch end. On SIGINT/SIGTERM (in the main
    thread) the current batch is finished, the checkpoint and what the run has so far are
    written (metrics.json with "interrupted": true) and TrainingInterrupted (a
    KeyboardInterrupt) is raised; ``resume`` continues such a run. ``from_checkpoint``: a
    loaded Checkpoint to continue from (see ``resume``).
    """
    rundir.check_writable(out_dir)
    model, ds, x_train, x_test = prepare(cfg, dataset, data_dir)
    t = cfg["training"]
    need, free = model.training_bytes(t["batch_size"] or len(x_train)), memory.available()
    if need > free:
        raise ConfigError([f"training.batch_size: a step on {t['batch_size'] or len(x_train)} "
                           f"samples needs about {need / 2**30:.3g} GiB (an estimate), more than "
                           f"the {free / 2**30:.3g} GiB of memory available; use a smaller "
                           f"batch size"])
    if verbose:
        log(f"data {ds.name}: {len(x_train)} train / {len(x_test)} test images of shape "
            f"{tuple(ds.input_shape)}, {ds.num_classes} classes")
        log(f"model: {len(model.layers)} layers, {model.count_params():,} parameters")
        for line in (ds.skipped or [])[:MAX_SKIPPED_SHOWN]:
            log(f"warning: skipped {line}")
        if len(ds.skipped or []) > MAX_SKIPPED_SHOWN:
            log(f"warning: and {len(ds.skipped) - MAX_SKIPPED_SHOWN} more file(s) skipped")
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
    recorders = {"monitor": monitor, **({"steps": evaluator} if evaluator else {})}
    stopper = checkpoints.Checkpointer(os.path.join(out_dir, "checkpoint.npz"), recorders,
                                       len(x_train))
    loop = None if from_checkpoint is None else \
        from_checkpoint.restore(model, recorders, len(x_train))
    interrupted = None
    val = None
    if ds.x_val is not None and len(ds.x_val):
        val = (model.scaler.transform(ds.x_val), ds.y_val)
    start = time.perf_counter()
    error = None
    stopper.catch_signals()
    try:
        history = model.fit(x_train, ds.y_train, epochs=t["epochs"], batch_size=t["batch_size"],
                            shuffle=t["shuffle"], seed=cfg["seed"],
                            validation_data=val, test_data=(x_test, ds.y_test),
                            augment=augmentation.from_config(cfg["augment"]),
                            lr_decay=t["lr_decay"], callbacks=[*callbacks, monitor],
                            verbose=verbose, log=log, checkpoint=stopper, resume=loop,
                            batch_order=t["batch_order"], max_steps=t["max_steps"],
                            threads=t["threads"])
    except TrainingDiverged as exc:
        error, history = exc, exc.history
    except checkpoints.TrainingInterrupted as exc:
        interrupted, history = exc, exc.state.history
        stopper.save(model, exc.state)
    finally:
        stopper.release_signals()
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
    if interrupted is not None:
        metrics["interrupted"] = True
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
    if interrupted is not None:
        raise interrupted
    return metrics


def resume(run_dir, verbose=True, log=print, callbacks=(), dataset=None, data_dir=None):
    """Continue the run in ``run_dir`` from its checkpoint.npz with its own config.toml;
    the finished run is the same, bit for bit, as one never interrupted. Returns the
    metrics dict like ``train``."""
    ckpt = checkpoints.load(os.path.join(run_dir, "checkpoint.npz"))
    cfg = configuration.load_config(os.path.join(run_dir, "config.toml"))
    t = cfg["training"]
    done = ckpt.meta["epoch"] > t["epochs"] or bool(t["max_steps"]) and \
        ckpt.meta["step"] >= t["max_steps"]
    if done and _finished(run_dir):
        raise GlyphnetError(f"{run_dir}: the run already finished"
                            + (f" its {t['max_steps']} steps" if t["max_steps"] else
                               f" its {t['epochs']} epochs") + "; nothing to resume")
    return train(cfg, run_dir, verbose, log, callbacks, dataset, data_dir, from_checkpoint=ckpt)


def _finished(run_dir):
    """Whether run_dir holds the metrics of a run that completed (not interrupted)."""
    try:
        with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(metrics, dict) and "test_accuracy" in metrics and \
        not metrics.get("interrupted")
