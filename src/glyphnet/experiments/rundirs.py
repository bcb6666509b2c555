"""One run of an experiment: training it (in whatever process a backend chooses), deciding
whether a run directory left by an earlier attempt is finished, resumable or stale, and moving a
run directory's files between machines as bytes."""
import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import tomllib

from .. import runs
from ..config import dumps
from ..errors import GlyphnetError, TrainingDiverged
from ..nn.training import Callback


@dataclasses.dataclass
class Job:
    """What a backend needs to train one run. ``resume``: continue the checkpoint in the run
    directory; ``files``: that directory's files (bytes by relative path), for backends whose
    workers cannot see it."""
    name: str
    cfg: dict
    run_dir: str
    resume: bool = False
    files: dict = dataclasses.field(default_factory=dict)


class _EpochReporter(Callback):
    """Reports the number of completed epochs to ``progress(epochs)``."""

    def __init__(self, progress):
        self.progress = progress

    def on_epoch_begin(self, model, epoch):
        self.progress(epoch - 1)

    def on_epoch_end(self, model, epoch, metrics):
        self.progress(epoch)


def execute(job, run_dir, threads, progress=None):
    """Train (or resume) ``job`` into ``run_dir`` with ``threads`` BLAS threads. Returns the
    outcome: {"status": "done" | "diverged" | "failed", "error": message or None}."""
    from threadpoolctl import threadpool_limits
    try:
        with threadpool_limits(threads):
            callbacks = [_EpochReporter(progress)] if progress else []
            if job.resume:
                runs.resume(run_dir, verbose=False, callbacks=callbacks)
            else:
                runs.train(job.cfg, run_dir, verbose=False, callbacks=callbacks)
    except TrainingDiverged as exc:
        return {"status": "diverged", "error": str(exc)}
    except GlyphnetError as exc:
        return {"status": "failed", "error": str(exc)}
    return {"status": "done", "error": None}


def read_metrics(run_dir):
    try:
        with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) else None


def _same_config(run_dir, cfg):
    try:
        with open(os.path.join(run_dir, "config.toml"), "rb") as f:
            return tomllib.load(f) == tomllib.loads(dumps(cfg))
    except (OSError, tomllib.TOMLDecodeError):
        return False


def state(run_dir, cfg):
    """"finished" (metrics.json of a completed run of this very config), "resumable" (a
    checkpoint of this config, not finished), "stale" (anything else in the way) or "new"."""
    if not os.path.exists(run_dir):
        return "new"
    if _same_config(run_dir, cfg):
        metrics = read_metrics(run_dir)
        if metrics is not None and "test_accuracy" in metrics and \
                not metrics.get("interrupted"):
            return "finished"
        if os.path.exists(os.path.join(run_dir, "checkpoint.npz")):
            return "resumable"
    return "stale"


def read_files(run_dir):
    """Every file under run_dir as {relative path: bytes}."""
    files = {}
    for root, _, names in os.walk(run_dir):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, run_dir)] = f.read()
    return files


def write_files(directory, files):
    for rel, content in files.items():
        path = os.path.join(directory, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)


def replace_run_dir(run_dir, files):
    """Make run_dir hold exactly ``files``: they are written to a hidden folder beside it that
    then takes its place, so run_dir is never a mix of two attempts nor half written."""
    parent = os.path.dirname(os.path.abspath(run_dir))
    os.makedirs(parent, exist_ok=True)
    base = os.path.basename(run_dir)
    incoming = tempfile.mkdtemp(dir=parent, prefix=f".{base}.incoming-")
    try:
        write_files(incoming, files)
        old = None
        if os.path.exists(run_dir):
            old = tempfile.mkdtemp(dir=parent, prefix=f".{base}.old-")
            os.replace(run_dir, os.path.join(old, base))
        os.replace(incoming, run_dir)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove(run_dir):
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(run_dir)
