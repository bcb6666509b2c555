"""Experiment files: a declarative TOML file that varies a base config over a grid or a list of
runs, each optionally repeated over several seeds.

    name = "learning-rate"
    base = "../arch_b.toml"            # relative to this file
    jobs = 2                           # parallel processes (local backend)
    seeds = [0, 1, 2]                  # repeat every run with each seed (runs NAME-seedK)
    reported_epochs = 200              # the epochs the original experiment trained
    [set]                              # applied to every run
    "training.epochs" = 20
    [grid]                             # every combination
    "optimizer.lr" = [0.1, 0.01, 0.001]
    [[runs]]                           # or named runs (combined with the grid if both exist)
    name = "tanh"
    "model.layers[1]" = {type = "tanh", slope = 0.5}
    reported = 0.948                   # the original test accuracy, or a table of metrics:
    # reported = {test_accuracy = 0.948, test_loss = 0.02, epochs = 200}

Keys are dotted paths into the config; "[i]" indexes a list (model.layers[1].slope).
"""
import copy
import dataclasses
import itertools
import os
import re
import tomllib

from ..checks import is_number, is_positive_int
from ..config import read_toml, resolve, set_path
from ..errors import ConfigError, GlyphnetError

TOP_KEYS = {"name", "description", "base", "jobs", "seeds", "reported_epochs", "set", "grid",
            "runs"}
# The metrics tabulated per run (and averaged over seeds); `reported` may name any of them.
METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
           "test_accuracy", "best_epoch", "seconds")


@dataclasses.dataclass
class Run:
    """One planned run: ``group`` is its name without the seed suffix (the row of the table
    its seeds are averaged into)."""
    name: str
    group: str
    seed: int | None
    cfg: dict
    reported: dict
    reported_epochs: int | None


def _label(value):
    if isinstance(value, dict):
        return value.get("type", "table")
    return str(value)


def _reported(value, where, problems):
    """`reported` as {metric: number} plus the epochs it names (or None)."""
    if value is None:
        return {}, None
    if is_number(value):
        return {"test_accuracy": float(value)}, None
    if not isinstance(value, dict):
        problems.append(f"{where}: expected a number (test accuracy) or a table of metrics, "
                        f"got {value!r}")
        return {}, None
    table, epochs = {}, value.get("epochs")
    if epochs is not None and not is_positive_int(epochs):
        problems.append(f"{where}.epochs: expected a positive integer, got {epochs!r}")
        epochs = None
    for key, v in value.items():
        if key == "epochs":
            continue
        if key not in METRICS:
            problems.append(f"{where}.{key}: unknown metric (expected epochs or one of "
                            f"{', '.join(METRICS)})")
        elif not is_number(v):
            problems.append(f"{where}.{key}: expected a finite number, got {v!r}")
        else:
            table[key] = float(v)
    return table, epochs


def parse_assignment(text):
    """'training.epochs=20' -> ("training.epochs", 20); the value is read as TOML (strings
    may be left unquoted)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise GlyphnetError(f"--set {text!r}: expected KEY=VALUE, e.g. training.epochs=20")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key.strip(), parsed


def load_experiment(path, extra=None):
    """Parse and validate an experiment file; returns (spec, [Run]). ``extra`` maps dotted
    keys to values applied to every run last. Every run's config is validated before anything
    trains, and every problem is reported at once."""
    spec = read_toml(path, "experiment file")
    problems = [f"{k}: unknown key (expected one of {', '.join(sorted(TOP_KEYS))})"
                for k in spec if k not in TOP_KEYS]
    base = {}
    if "base" in spec:
        base_path = os.path.join(os.path.dirname(os.path.abspath(path)), str(spec["base"]))
        try:
            base = read_toml(base_path, "base config")
        except GlyphnetError as exc:
            problems.append(f"base: {exc}")
    jobs = spec.get("jobs", 1)
    if not is_positive_int(jobs):
        problems.append(f"jobs: expected a positive integer, got {jobs!r}")
    seeds = spec.get("seeds")
    if seeds is not None and not (isinstance(seeds, list) and seeds and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
            and len(set(seeds)) == len(seeds)):
        problems.append(f"seeds: expected a non-empty list of distinct integers >= 0, "
                        f"got {seeds!r}")
        seeds = None
    if seeds is not None and "seed" in (extra or {}):
        problems.append("seed: cannot be set when the experiment lists seeds")
    default_epochs = spec.get("reported_epochs")
    if default_epochs is not None and not is_positive_int(default_epochs):
        problems.append(f"reported_epochs: expected a positive integer, got {default_epochs!r}")
        default_epochs = None
    grid = spec.get("grid", {})
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        problems.append("grid: expected a table of non-empty lists")
        grid = {}
    runs = spec.get("runs", [{}] if "runs" not in spec else [])
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        problems.append("runs: expected an array of tables ([[runs]])")
        runs = []

    planned = []
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    for r_index, run in enumerate(runs):
        run = dict(run)
        run_name = str(run.pop("name", f"run{r_index}" if len(runs) > 1 else ""))
        where = f"runs[{r_index}]"
        reported, epochs = _reported(run.pop("reported", None), f"{where}.reported", problems)
        run_epochs = run.pop("reported_epochs", None)
        if run_epochs is not None and not is_positive_int(run_epochs):
            problems.append(f"{where}.reported_epochs: expected a positive integer, "
                            f"got {run_epochs!r}")
            run_epochs = None
        epochs = epochs or run_epochs or default_epochs
        for combo in combos:
            group = "-".join([run_name] * bool(run_name) +
                             [f"{k.split('.')[-1]}={_label(v)}" for k, v in combo.items()])
            group = re.sub(r"[^A-Za-z0-9_.=+-]", "_", group or "run")
            raw = copy.deepcopy(base)
            for source in (spec.get("set", {}), run, combo, extra or {}):
                for key, value in source.items():
                    try:
                        set_path(raw, key, value)
                    except ValueError as exc:
                        problems.append(f"{group}: {exc}")
            for seed in seeds or [None]:
                name = group if seed is None else f"{group}-seed{seed}"
                cfg = copy.deepcopy(raw)
                if seed is not None:
                    cfg["seed"] = seed
                try:
                    cfg = resolve(cfg, f"{path} [{group}]")
                except ConfigError as exc:
                    problems.extend(f"{group}: {p}" for p in exc.problems)
                    continue
                planned.append(Run(name, group, seed, cfg, reported, epochs))
    names = [r.name for r in planned]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"runs: names must be unique, repeated: {', '.join(duplicates)}")
    if problems:
        # A config problem shared by every seed is listed once.
        raise ConfigError(list(dict.fromkeys(problems)), path)
    return spec, planned
