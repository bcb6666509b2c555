"""TOML run configs: defaults, whole-config validation (every problem reported at once, with its
key), writing the resolved config back, and building the model a config describes."""
import copy
import re
import tomllib

from .errors import ConfigError, GlyphnetError
from .schema import _check_object, _check_type
from .nn.layers import LAYERS, layer_from_config
from .nn.losses import LOSSES, loss_from_config
from .nn.optimizers import OPTIMIZERS, optimizer_from_config
from .nn.schedule import BATCH_ORDERS
from .nn.transfer import layer_indices

DEFAULT_LAYERS = [
    {"type": "dense", "units": 256, "init": "he_normal"},
    {"type": "relu"},
    {"type": "dense", "units": 256, "init": "he_normal"},
    {"type": "relu"},
    {"type": "dense", "units": 10, "init": "glorot_uniform"},
    {"type": "softmax"},
]

DEFAULTS = {
    "seed": 0,
    "data": {"dataset": "mnist"},
    "model": {"layers": DEFAULT_LAYERS},
    "training": {
        "epochs": 10, "batch_size": 128, "shuffle": True, "l1": 0.0, "l2": 0.0, "shrink": 0.0,
        "lr_decay": 1.0,
        "tensorboard": False,
        "batch_order": "shuffled", "max_steps": 0, "shrink_biases": False,
        "shrink_when": "after", "eval_every": 0, "eval_subset": 1000, "freeze": [],
        "gradcheck": {}, "threads": 2,
    },
    "loss": {"type": "cross_entropy"},
    "optimizer": {"type": "adam"},
    "augment": {},
}

# What `glyphnet train` runs without a config (the same as configs/mlp.toml): the defaults
# above plus a faster learning rate that decays every epoch.
DEFAULT_RUN = {"model": {"layers": DEFAULT_LAYERS}, "training": {"lr_decay": 0.7},
               "optimizer": {"type": "adam", "lr": 2e-3}}

SECTIONS = ("data", "model", "training", "loss", "optimizer", "augment")
# training.gradcheck: the gradient-angle checks made while training (inspection/monitor.py);
# every = 0 checks at steps 1, 8, 64, 512, ...
GRADCHECK_DEFAULTS = {"method": "central", "h": 1e-6, "entries": 3, "every": 0, "images": 4}
# Older configs name the loss in [training]: loss = "mse", targets = [low, high].
LEGACY_LOSS_KEYS = ("loss", "targets")


def _merge(defaults, raw, prefix, problems):
    """Overlay raw on defaults, flagging unknown keys and wrong types."""
    out = copy.deepcopy(defaults)
    for key, value in raw.items():
        if key not in defaults:
            problems.append(f"{prefix}{key}: unknown key (expected one of "
                            f"{', '.join(sorted(defaults))})")
        elif _check_type(prefix + key, value, defaults[key], problems):
            out[key] = value
    return out


def resolve(raw, source=None):
    """Validate a parsed config against the defaults; returns the full resolved config or
    raises ConfigError listing every problem."""
    from .data import augment
    from . import data
    problems = []
    if not isinstance(raw, dict):
        raise ConfigError(["the config must be a TOML table"], source)
    cfg = copy.deepcopy(DEFAULTS)
    for key, value in raw.items():
        if key == "seed":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                problems.append(f"seed: expected a non-negative integer, got {value!r}")
            else:
                cfg["seed"] = value
        elif key not in SECTIONS:
            problems.append(f"{key}: unknown section (expected seed, {', '.join(SECTIONS)})")
        elif not isinstance(value, dict):
            problems.append(f"{key}: expected a table, got {value!r}")
    sec = {name: raw.get(name, {}) for name in SECTIONS}
    sec = {k: v if isinstance(v, dict) else {} for k, v in sec.items()}

    cfg["data"] = data.check_config(sec["data"], problems)
    cfg["augment"] = augment.check_config(sec["augment"], problems)

    training = dict(sec["training"])
    freeze = training.pop("freeze", [])
    legacy = {k: training.pop(k) for k in LEGACY_LOSS_KEYS if k in training}
    if legacy and sec["loss"]:
        problems.append("training.loss: the loss is given twice, in [loss] and in [training]; "
                        "keep the [loss] table")
    loss = dict(sec["loss"]) if sec["loss"] else dict(DEFAULTS["loss"])
    if legacy and not sec["loss"]:
        loss = {"type": legacy.get("loss", "cross_entropy")}
        if loss["type"] == "mse" and "targets" in legacy:
            loss["targets"] = legacy["targets"]
    cfg["loss"] = _check_object("loss", LOSSES, loss, problems, "loss")
    t = cfg["training"] = _merge(DEFAULTS["training"], training, "training.", problems)
    if isinstance(t["epochs"], int) and t["epochs"] < 1:
        problems.append(f"training.epochs: expected an integer >= 1, got {t['epochs']}")
    if isinstance(t["batch_size"], int) and t["batch_size"] < 0:
        problems.append(f"training.batch_size: expected 0 (full batch) or a positive integer, "
                        f"got {t['batch_size']}")
    for name in ("l1", "l2", "shrink"):
        if isinstance(t[name], (int, float)) and t[name] < 0:
            problems.append(f"training.{name}: expected a number >= 0, got {t[name]}")
    if isinstance(t["lr_decay"], (int, float)) and not 0 < t["lr_decay"] <= 1:
        problems.append(f"training.lr_decay: expected a number in (0, 1], got {t['lr_decay']}")
    _check_training(t, training, problems)

    opt = {"type": "adam", **sec["optimizer"]} if sec["optimizer"] else dict(DEFAULTS["optimizer"])
    cfg["optimizer"] = _check_object("optimizer", OPTIMIZERS, opt, problems, "optimizer")

    model = sec["model"]
    for key in model:
        if key not in ("layers", "init_from"):
            problems.append(f"model.{key}: unknown key (expected layers, init_from)")
    layers = model.get("layers", DEFAULT_LAYERS)
    if not isinstance(layers, list) or not layers:
        problems.append("model.layers: expected a non-empty list of layer tables")
        layers = []
    cfg["model"] = {"layers": [_check_object(f"model.layers[{i}]", LAYERS, spec, problems, "layer")
                               for i, spec in enumerate(layers)]}
    if "init_from" in model:
        cfg["model"]["init_from"] = _check_init_from(model["init_from"], len(layers), problems)
    try:
        t["freeze"] = layer_indices(freeze, len(layers), "training.freeze") if freeze else []
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError(problems, source)
    return cfg


def _check_training(t, given, problems):
    """The [training] keys of batch order, shrinkage, per-step evaluation and gradient checks
    (``given``: the keys as written, to tell an explicit batch_order from the default)."""
    if t["batch_order"] not in BATCH_ORDERS:
        problems.append(f"training.batch_order: expected one of {', '.join(BATCH_ORDERS)}, "
                        f"got {t['batch_order']!r}")
    elif "batch_order" not in given:
        t["batch_order"] = "shuffled" if t["shuffle"] is not False else "fixed"
    elif "shuffle" not in given:
        t["shuffle"] = t["batch_order"] != "fixed"
    elif given["shuffle"] != (t["batch_order"] != "fixed"):
        problems.append(f"training.shuffle: contradicts training.batch_order = "
                        f"{t['batch_order']!r}; keep batch_order alone")
    if t["shrink_when"] not in ("after", "before"):
        problems.append(f"training.shrink_when: expected \"after\" or \"before\" (the update), "
                        f"got {t['shrink_when']!r}")
    if isinstance(t["threads"], int) and t["threads"] < 1:
        problems.append(f"training.threads: expected an integer >= 1 (1 = every batch whole), "
                        f"got {t['threads']}")
    for name in ("max_steps", "eval_every", "eval_subset"):
        if isinstance(t[name], int) and t[name] < 0:
            problems.append(f"training.{name}: expected an integer >= 0 (0 = "
                            f"{'the whole test set' if name == 'eval_subset' else 'off'}), "
                            f"got {t[name]}")
    gc = dict(GRADCHECK_DEFAULTS)
    for key, value in t["gradcheck"].items():
        if key not in gc:
            problems.append(f"training.gradcheck.{key}: unknown option (expected "
                            f"{', '.join(GRADCHECK_DEFAULTS)})")
        elif _check_type(f"training.gradcheck.{key}", value, gc[key], problems):
            gc[key] = value
    if gc["method"] not in ("central", "forward"):
        problems.append(f"training.gradcheck.method: expected \"central\" or \"forward\" "
                        f"differences, got {gc['method']!r}")
    if isinstance(gc["h"], (int, float)) and not gc["h"] > 0:
        problems.append(f"training.gradcheck.h: expected a step > 0, got {gc['h']!r}")
    for key, low in (("entries", 1), ("every", 0), ("images", 1)):
        if isinstance(gc[key], int) and gc[key] < low:
            problems.append(f"training.gradcheck.{key}: expected an integer >= {low}, "
                            f"got {gc[key]}")
    t["gradcheck"] = gc


def _check_balanced(t, dataset, problems):
    """Balanced batches need a batch size that is a multiple of the number of classes and that
    many images of every class."""
    import numpy as np
    if t.get("batch_order") != "balanced":
        return
    k, size = dataset.num_classes, t["batch_size"]
    if size % k:
        problems.append(f"training.batch_size: balanced batches hold as many images of each of "
                        f"the {k} classes; expected a multiple of {k} (or 0: one of each), "
                        f"got {size}")
        return
    counts = np.bincount(dataset.y_train, minlength=k)
    per = max(1, size // k)
    if counts.min() < per:
        problems.append(f"training.batch_order: balanced batches need {per} training image(s) "
                        f"of every class; class {dataset.classes[int(counts.argmin())]!r} has "
                        f"{int(counts.min())}")


def _check_init_from(value, count, problems):
    """model.init_from: a model file (all layers copied) or {path = ..., layers = "0:4"}."""
    spec = {"path": value, "layers": ""} if isinstance(value, str) else value
    if not isinstance(spec, dict) or not isinstance(spec.get("path"), str) or \
            not spec["path"] or set(spec) - {"path", "layers"}:
        problems.append(f"model.init_from: expected a model file such as \"runs/x/model.npz\" "
                        f"or {{path = \"runs/x/model.npz\", layers = \"0:4\"}}, got {value!r}")
        return value
    spec = {"path": spec["path"], "layers": spec.get("layers", "")}
    try:
        layer_indices(spec["layers"], count, "model.init_from.layers")
    except ValueError as exc:
        problems.append(str(exc))
    return spec


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path):
    steps = [m.group(1) if m.group(1) is not None else int(m.group(2))
             for m in _STEP.finditer(path)]
    if not steps or "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps) \
            .lstrip(".") != path:
        raise ValueError(f"{path!r} is not a dotted config path (e.g. training.epochs, "
                         f"model.layers[1].slope)")
    return steps


def set_path(cfg, path, value):
    """Set cfg[path] for a dotted path with optional list indices, creating tables as needed."""
    steps = _steps(path)
    node = cfg
    for step, nxt in zip(steps, steps[1:]):
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                raise ValueError(f"{path}: index [{step}] is out of range")
            node = node[step]
        else:
            if not isinstance(node, dict):
                raise ValueError(f"{path}: {step!r} is not inside a table")
            node = node.setdefault(step, [] if isinstance(nxt, int) else {})
    last = steps[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ValueError(f"{path}: index [{last}] is out of range")
    elif not isinstance(node, dict):
        raise ValueError(f"{path}: {last!r} is not inside a table")
    node[last] = copy.deepcopy(value)


def read_toml(path, what="config file"):
    """The parsed TOML file at ``path``, or a GlyphnetError naming the file and the problem."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise GlyphnetError(f"{path}: {what} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise GlyphnetError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise GlyphnetError(f"{path}: not UTF-8 text (byte {exc.start} is "
                            f"{exc.object[exc.start:exc.start + 1]!r}); TOML files must be "
                            f"UTF-8") from None
    except RecursionError:
        raise GlyphnetError(f"{path}: invalid TOML: values nested too deeply") from None
    except OSError as exc:
        raise GlyphnetError(f"{path}: cannot read {what} ({exc})") from None


def load_config(path=None, overrides=None):
    """Read and validate a TOML config (None: the default run). ``overrides`` maps dotted keys
    (e.g. "training.epochs", "model.layers[1].slope") to values applied before validation."""
    raw = copy.deepcopy(DEFAULT_RUN) if path is None else read_toml(path)
    for dotted, value in (overrides or {}).items():
        try:
            set_path(raw, dotted, value)
        except ValueError as exc:
            raise ConfigError([str(exc)], path) from None
    return resolve(raw, path)


def build_model(cfg, dataset):
    """The compiled Sequential model of ``cfg`` for ``dataset``'s inputs and classes."""
    from .data import preparation_for
    from .nn.scaling import Scaler
    from .nn.model import Sequential
    from .nn import transfer
    problems = []
    layers = [layer_from_config(s) for s in cfg["model"]["layers"]]
    model = Sequential(layers, classes=dataset.classes)
    try:
        model.build(dataset.input_shape, cfg["seed"])
    except (ValueError, TypeError) as exc:
        raise ConfigError([f"model.layers: cannot be built for inputs of shape "
                           f"{tuple(dataset.input_shape)}: {exc}"]) from None
    out = model.output_shape
    if out != (dataset.num_classes,):
        problems.append(f"model.layers: the model outputs shape {out} but the data set "
                        f"{dataset.name!r} has {dataset.num_classes} classes; make the last "
                        f"dense layer {dataset.num_classes} units")
    _check_balanced(cfg["training"], dataset, problems)
    if problems:
        raise ConfigError(problems)
    t = cfg["training"]
    model.compile(loss=loss_from_config(cfg["loss"]),
                  optimizer=optimizer_from_config(cfg["optimizer"]),
                  l1=t["l1"], l2=t["l2"], shrink=t["shrink"],
                  shrink_biases=t.get("shrink_biases", False),
                  shrink_when=t.get("shrink_when", "after"))
    init = cfg["model"].get("init_from")
    if init:
        transfer.init_from(model, init["path"], init["layers"])
    transfer.freeze(model, t.get("freeze", []))
    model.scaler = Scaler(cfg["data"].get("scale", "unit"))
    model.preparation = preparation_for(dataset, cfg["data"])
    return model


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dumps(cfg):
    """The config as TOML text (layers as an array of inline tables)."""
    lines = [f"seed = {cfg['seed']}"]
    for name in SECTIONS:
        section = cfg.get(name, {})
        lines.append(f"\n[{name}]")
        for key, value in section.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                lines.append(f"{key} = [")
                lines.extend(f"    {_toml_value(v)}," for v in value)
                lines.append("]")
            elif isinstance(value, dict):
                lines.append(f"{key} = {_toml_value(value)}")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
