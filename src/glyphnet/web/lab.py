"""The training lab of ``glyphnet serve``: validated configs trained in a separate process while
the page watches.

Each training is a child process (multiprocessing, spawn) running ``runs.train`` into
RUNS_DIR/NAME with a callback that sends small events through a queue: the loss every few
steps, the metrics of every epoch, now and then the first layer's weights. A thread in the
server collects them; the page reads them as server-sent events. Stopping sends SIGINT to the
child; the run directory keeps whatever the training wrote.
"""
import copy
import multiprocessing
import os
import queue as queues
import re
import signal
import threading
import time
import tomllib

import numpy as np

from ..errors import ConfigError, GlyphnetError
from ..nn.training import Callback

RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
MAX_CONFIG_CHARS = 20000
STEP_EVENTS = 200          # about this many loss points per training
WEIGHT_SECONDS = 1.0       # the first layer's weights at most this often
MAX_FILTERS = 32           # first-layer units or filters sent


def first_layer_weights(model, limit=MAX_FILTERS):
    """The incoming weights of the first layer with a weight matrix, as a list of 2D arrays
    (one per unit or filter, first input channel), rounded for sending; None if there is none."""
    for layer in model.layers:
        w = layer.params.get("W")
        if w is None:
            continue
        if w.ndim == 4:                        # conv filters (kh, kw, in, out)
            maps = np.moveaxis(w[:, :, 0, :limit], -1, 0)
        elif w.ndim == 2 and len(layer.input_shape) == 3:   # dense on an image
            h, wd, c = layer.input_shape
            maps = w[:, :limit].T.reshape(-1, h, wd, c)[..., 0]
        else:
            return None
        return np.round(maps.astype(np.float64), 4).tolist()
    return None


class LabCallback(Callback):
    """Sends training progress to ``queue`` (in the child process). After :meth:`interrupt`
    the next batch or epoch end raises KeyboardInterrupt: at that point, not in the middle of
    a queue operation, whose lock an interrupted put would leave held."""

    def __init__(self, queue, total_steps):
        self.queue, self.total = queue, total_steps
        self.every = max(1, total_steps // STEP_EVENTS)
        self.start = time.perf_counter()
        self.last_weights = -np.inf
        self.interrupted = False

    def interrupt(self, *_):
        self.interrupted = True

    def _send(self, kind, **fields):
        self.queue.put({"type": kind, "elapsed": round(time.perf_counter() - self.start, 3),
                        **fields})

    def _weights(self, model, step):
        now = time.perf_counter()
        if now - self.last_weights >= WEIGHT_SECONDS:
            self.last_weights = now
            self._send("weights", step=step, maps=first_layer_weights(model))

    def on_batch_end(self, model, step, loss):
        if self.interrupted:
            raise KeyboardInterrupt
        if step % self.every == 0 or step == self.total:
            self._send("step", step=step, total=self.total, loss=float(loss))
            self._weights(model, step)

    def on_epoch_end(self, model, epoch, metrics):
        if self.interrupted:
            raise KeyboardInterrupt
        self._send("epoch", step=None, metrics={k: float(v) for k, v in metrics.items()
                                                if isinstance(v, (int, float))})


def _child(cfg, out_dir, queue):
    """The training process: load the data, train, report the end (runs in the child)."""
    from .. import data, runs
    try:
        ds = data.load_from_config(cfg["data"])
        batch = cfg["training"]["batch_size"] or len(ds.x_train)
        total = -(-len(ds.x_train) // batch) * cfg["training"]["epochs"]
        callback = LabCallback(queue, total)
        signal.signal(signal.SIGINT, callback.interrupt)   # Stop: end at the next batch
        queue.put({"type": "started", "total": total, "train": len(ds.x_train),
                   "test": len(ds.x_test), "dataset": ds.name})
        metrics = runs.train(cfg, out_dir, verbose=False, dataset=ds, callbacks=[callback])
    except KeyboardInterrupt:
        queue.put({"type": "stopped"})
    except GlyphnetError as exc:
        queue.put({"type": "failed", "message": str(exc)})
    except Exception as exc:   # report any failure to the page instead of dying silently
        queue.put({"type": "failed", "message": f"{type(exc).__name__}: {exc}"})
    else:
        kind = "stopped" if metrics.get("interrupted") else "finished"
        queue.put({"type": kind, "metrics": {k: v for k, v in metrics.items()
                                             if isinstance(v, (int, float, str))}})


def parse_config(text, epochs=None, lr=None):
    """The resolved config of TOML ``text`` with the page's epochs and learning rate; raises
    ConfigError listing every problem."""
    from ..config import resolve, set_path
    if not isinstance(text, str):
        raise ConfigError(["the config must be TOML text"])
    if len(text) > MAX_CONFIG_CHARS:
        raise ConfigError([f"the config is {len(text)} characters; at most "
                           f"{MAX_CONFIG_CHARS} are accepted"])
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"invalid TOML: {exc}"]) from None
    problems = []
    for path, value, rule, low, high in (("training.epochs", epochs, "an integer", 1, 1000),
                                          ("optimizer.lr", lr, "a number", 1e-8, 10)):
        kind = int if path == "training.epochs" else (int, float)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
            problems.append(f"{path}: expected {rule} in [{low:g}, {high:g}], got {value!r}")
            continue
        try:
            set_path(raw, path, value)
        except ValueError as exc:
            problems.append(str(exc))
    try:
        cfg = resolve(raw)
    except ConfigError as exc:
        problems += exc.problems
        cfg = None
    if problems:
        raise ConfigError(problems)
    return cfg


class Session:
    """One training: the child process, its events and its state."""

    def __init__(self, sid, name, out_dir, cfg, process, queue, on_finished):
        self.id, self.name, self.out_dir, self.cfg = sid, name, out_dir, cfg
        self.process, self.queue, self.on_finished = process, queue, on_finished
        self.events, self.state, self.model = [], "starting", None
        self.last_weights = None   # index of the newest weights event
        self.changed = threading.Condition()
        self.relay = threading.Thread(target=self._relay, daemon=True)
        self.relay.start()

    def _add(self, event):
        with self.changed:
            event["id"] = len(self.events)
            if event["type"] == "weights":   # only the newest weights are kept in memory
                if self.last_weights is not None:
                    self.events[self.last_weights]["maps"] = None
                self.last_weights = event["id"]
            self.events.append(event)
            if event["type"] in ("started", "finished", "stopped", "failed"):
                self.state = "running" if event["type"] == "started" else event["type"]
            self.changed.notify_all()

    def _relay(self):
        ended = None
        while True:
            try:
                event = self.queue.get(timeout=0.2)
            except queues.Empty:
                if not self.process.is_alive():
                    break
                continue
            if event["type"] in ("finished", "stopped", "failed"):
                ended = event
            else:
                self._add(event)
        self.process.join()
        if ended is None:   # killed, or ended before it could say so
            ended = {"type": "stopped" if self.process.exitcode in (-signal.SIGINT, 130)
                     else "failed", "message": f"the training process ended (exit code "
                                               f"{self.process.exitcode})"}
        model_path = os.path.join(self.out_dir, "model.npz")
        if os.path.exists(model_path):
            ended["model"] = self.model = self.on_finished(self.name, model_path)
        self._add(ended)

    def stop(self):
        if self.process.is_alive():
            os.kill(self.process.pid, signal.SIGINT)

    @property
    def done(self):
        return self.state in ("finished", "stopped", "failed")

    def wait(self, since, timeout):
        """Events from index ``since`` on, waiting up to ``timeout`` seconds for one."""
        with self.changed:
            if len(self.events) <= since and not self.done:
                self.changed.wait(timeout)
            return self.events[since:]

    def describe(self):
        return {"id": self.id, "name": self.name, "state": self.state, "model": self.model,
                "events": len(self.events)}


class Lab:
    """Trainings started from the page, each writing RUNS_DIR/NAME."""

    def __init__(self, runs_dir, configs_dir=None, on_finished=None):
        self.runs_dir, self.configs_dir = runs_dir, configs_dir
        self.on_finished = on_finished or (lambda name, path: None)
        self.sessions = {}
        self.lock = threading.Lock()
        self.context = multiprocessing.get_context("spawn")

    def configs(self):
        """{name: TOML text} of the shipped configs (CONFIGS_DIR/*.toml)."""
        if not self.configs_dir or not os.path.isdir(self.configs_dir):
            return {}
        out = {}
        for name in sorted(os.listdir(self.configs_dir)):
            path = os.path.join(self.configs_dir, name)
            if name.endswith(".toml") and os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    out[name[:-5]] = f.read()
        return out

    def run_dir(self, name):
        """RUNS_DIR/NAME for a new run: a safe folder name that does not exist yet."""
        if not isinstance(name, str) or not RUN_NAME.match(name):
            raise ConfigError([f"run name {str(name)[:70]!r}: use 1 to 64 ASCII letters, "
                               "digits, '_' or '-', starting with a letter or digit"])
        root = os.path.realpath(self.runs_dir)
        path = os.path.join(root, name)
        if os.path.lexists(path):
            raise ConfigError([f"run name {name!r}: {path} already exists; choose another"])
        return path

    def start(self, cfg, name):
        """Train the resolved ``cfg`` into RUNS_DIR/NAME in a new process; returns the Session."""
        out_dir = self.run_dir(name)
        os.makedirs(self.runs_dir, exist_ok=True)
        os.makedirs(out_dir)   # fails if another request took the name meanwhile
        q = self.context.Queue()
        process = self.context.Process(target=_child, args=(copy.deepcopy(cfg), out_dir, q),
                                       daemon=True, name=f"glyphnet-train-{name}")
        process.start()
        with self.lock:
            sid = str(len(self.sessions) + 1)
            self.sessions[sid] = Session(sid, name, out_dir, cfg, process, q, self.on_finished)
            return self.sessions[sid]

    def get(self, sid):
        return self.sessions.get(sid)

    def running(self):
        """The sessions that have not ended."""
        return [s for s in list(self.sessions.values()) if not s.done]

    def stop_all(self, timeout=10):
        """Interrupt every running training and wait for it to end (server shutdown, tests)."""
        for s in list(self.sessions.values()):
            s.stop()
        for s in list(self.sessions.values()):
            s.process.join(timeout)
            s.relay.join(timeout)
