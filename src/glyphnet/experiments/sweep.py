"""Experiments: a declarative TOML file that varies a base config over a grid or a list of
runs, trains every run (in parallel processes) and tabulates the results.

    name = "learning-rate"
    base = "../arch_b.toml"            # relative to this file
    jobs = 2                           # parallel processes (each uses one BLAS thread)
    [set]                              # applied to every run
    "training.epochs" = 20
    [grid]                             # every combination
    "optimizer.lr" = [0.1, 0.01, 0.001]
    "training.shuffle" = [true, false]
    [[runs]]                           # or named runs (combined with the grid if both exist)
    name = "tanh"
    "model.layers[1]" = {type = "tanh", slope = 0.5}
    reported = 0.948                   # the number the original experiment got, for comparison

Keys are dotted paths into the config; "[i]" indexes a list (model.layers[1].slope).
"""
import copy
import csv
import io
import itertools
import json
import os
import re
import tomllib

from ..config import read_toml, resolve, set_path
from ..errors import ConfigError, GlyphnetError, TrainingDiverged

TOP_KEYS = {"name", "description", "base", "jobs", "set", "grid", "runs"}


def _label(value):
    if isinstance(value, dict):
        return value.get("type", "table")
    return str(value)


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
    """Parse and validate an experiment file; returns (spec, [(run name, resolved config,
    reported or None)]). ``extra`` maps dotted keys to values applied to every run last.
    Every run's config is validated before anything trains."""
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
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        problems.append(f"jobs: expected a positive integer, got {jobs!r}")
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
        reported = run.pop("reported", None)
        for combo in combos:
            cfg = copy.deepcopy(base)
            name = "-".join([run_name] * bool(run_name) +
                            [f"{k.split('.')[-1]}={_label(v)}" for k, v in combo.items()]) or "run"
            name = re.sub(r"[^A-Za-z0-9_.=+-]", "_", name)
            for source in (spec.get("set", {}), run, combo, extra or {}):
                for key, value in source.items():
                    try:
                        set_path(cfg, key, value)
                    except ValueError as exc:
                        problems.append(f"{name}: {exc}")
            try:
                planned.append((name, resolve(cfg, f"{path} [{name}]"), reported))
            except ConfigError as exc:
                problems.extend(f"{name}: {p}" for p in exc.problems)
    names = [n for n, _, _ in planned]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"runs: names must be unique, repeated: {', '.join(duplicates)}")
    if problems:
        raise ConfigError(problems, path)
    return spec, planned


def _run_one(job):
    """Train one run in a worker process (one BLAS thread, since the runs share the cores)."""
    name, cfg, out_dir, threads = job
    from threadpoolctl import threadpool_limits

    from ..runs import train
    with threadpool_limits(threads):
        try:
            metrics = train(cfg, out_dir, verbose=False)
        except TrainingDiverged as exc:
            return name, {"diverged": str(exc)}
    return name, metrics


def run_experiment(path, out_dir, jobs=None, extra=None, log=print):
    """Train every run of the experiment at ``path`` into out_dir/<run name>/ and write
    out_dir/results.csv and results.md. Returns the list of result rows."""
    spec, planned = load_experiment(path, extra)
    jobs = jobs or spec.get("jobs", 1)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    work = [(name, cfg, os.path.join(out_dir, name), threads) for name, cfg, _ in planned]
    reported = {name: rep for name, _, rep in planned}
    log(f"experiment {spec.get('name', os.path.basename(path))}: {len(work)} run(s), "
        f"{jobs} in parallel")
    results = {}
    if jobs == 1:
        for job in work:
            name, metrics = _run_one(job)
            results[name] = metrics
            log(f"  {name}: {_summary(metrics)}")
    else:
        import multiprocessing
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            for name, metrics in pool.imap_unordered(_run_one, work):
                results[name] = metrics
                log(f"  {name}: {_summary(metrics)}")
    rows = []
    for name, _, _ in planned:
        m = results[name]
        rows.append({"run": name, "test_accuracy": m.get("test_accuracy"),
                     "train_accuracy": m.get("train_accuracy"), "test_loss": m.get("test_loss"),
                     "epochs": m.get("epochs"), "seconds": m.get("seconds"),
                     "reported": reported[name], "diverged": m.get("diverged", "")})
    from ..fileio import write_atomic
    write_atomic(os.path.join(out_dir, "results.csv"), _csv(rows))
    write_atomic(os.path.join(out_dir, "results.md"), markdown_table(rows))
    write_atomic(os.path.join(out_dir, "results.json"), json.dumps(rows, indent=2) + "\n")
    return rows


def _summary(m):
    if "diverged" in m and "test_accuracy" not in m:
        return "diverged"
    return f"test accuracy {m['test_accuracy']:.4f} ({m['seconds']:.0f}s)"


def _csv(rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["run"])
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def markdown_table(rows):
    def pct(v):
        return "" if v is None else f"{100 * v:.2f}%"
    lines = ["| run | test accuracy | train accuracy | reported | epochs | seconds |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        note = " (diverged)" if r["diverged"] else ""
        lines.append(f"| {r['run']}{note} | {pct(r['test_accuracy'])} | "
                     f"{pct(r['train_accuracy'])} | {pct(r['reported'])} | {r['epochs'] or ''} | "
                     f"{'' if r['seconds'] is None else round(r['seconds'])} |")
    return "\n".join(lines) + "\n"
