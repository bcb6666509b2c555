"""Running an experiment: plan it, keep the runs an earlier execution into the same folder
finished with the same config, train the others on a backend while printing progress lines, and
write the results tables (also when interrupted, with the runs still missing marked so) and
out_dir/report.html, the runs overlaid per swept key (inspection/compare.py)."""
import json
import os
import time

from ..errors import GlyphnetError
from ..fileio import write_atomic
from .rundirs import Job, read_files, read_metrics, remove, state
from .tables import csv_text, markdown, run_row, summarize
from .backends import LocalBackend
from .plan import load_experiment


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """Printed progress lines (not a terminal bar): runs done / total, the running runs'
    epochs and an estimate of the time left from the epochs completed so far per second.
    A line is printed when a run ends and, while runs go on, at most every ``every`` seconds."""

    def __init__(self, jobs, total, kept, log, every=30.0, clock=time.monotonic):
        self.epochs = {j.name: j.cfg["training"]["epochs"] for j in jobs}
        self.completed = {}
        self.finished = set()
        self.total, self.kept, self.log, self.every, self.clock = total, kept, log, every, clock
        self.start = self.last = clock()

    def on_epoch(self, name, epochs):
        if name in self.finished:
            return
        self.completed[name] = epochs
        if self.clock() - self.last >= self.every:
            self.print()

    def on_done(self, name, summary):
        self.finished.add(name)
        self.completed[name] = self.epochs[name]
        self.log(f"  {name}: {summary}")
        self.print()

    def line(self):
        done = self.kept + len(self.finished)
        text = f"progress: {done}/{self.total} runs done"
        running = [f"{n} {e}/{self.epochs[n]}" for n, e in self.completed.items()
                   if n not in self.finished]
        if running:
            text += f"; epochs of running runs: {', '.join(running)}"
        total = sum(self.epochs.values())
        completed = sum(self.completed.values())
        elapsed = self.clock() - self.start
        if completed >= total:
            return text
        if completed and elapsed > 0:
            text += f"; about {_duration((total - completed) * elapsed / completed)} left"
        else:
            text += "; time left not known yet"
        return text

    def print(self):
        self.last = self.clock()
        self.log(self.line())


def _summary(outcome, metrics):
    if outcome["status"] == "failed":
        return f"failed: {outcome['error']}"
    text = f"test accuracy {metrics['test_accuracy']:.4f} ({metrics['seconds']:.0f}s)"
    return text + (" (diverged)" if outcome["status"] == "diverged" else "")


def _history(run_dir):
    try:
        with open(os.path.join(run_dir, "history.csv"), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def _previous_rows(out_dir):
    """The rows of an earlier results.json in out_dir by run name (for kept runs' nodes)."""
    try:
        with open(os.path.join(out_dir, "results.json"), encoding="utf-8") as f:
            return {r["run"]: r for r in json.load(f)["runs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def select_groups(spec, plan, groups, path):
    """(spec, the runs of ``plan`` in ``groups``); all of them for None. An unknown group
    name is a GlyphnetError naming the groups there are."""
    if groups is None:
        return spec, plan
    known = list(dict.fromkeys(run.group for run in plan))
    unknown = [g for g in groups if g not in known]
    if unknown:
        raise GlyphnetError(f"{path}: no runs named {', '.join(map(repr, unknown))} (its runs: "
                            f"{', '.join(known)})")
    return spec, [run for run in plan if run.group in groups]


def run_experiment(path, out_dir, jobs=None, extra=None, log=print, backend=None,
                   progress_every=30.0, groups=None):
    """Train every run of the experiment at ``path`` into out_dir/<run>/ on ``backend``
    (default: local processes, ``jobs`` at a time, else the file's jobs) and write
    out_dir/results.json, results.csv and results.md. Runs that an earlier execution into
    out_dir finished with the same resolved config are kept; interrupted ones are resumed from
    their checkpoints. ``groups``: train only the runs of these groups (the names in the
    file's table, without the seed), e.g. the cheap ones of a long study. Returns the results
    (as in results.json)."""
    spec, plan = select_groups(*load_experiment(path, extra), groups, path)
    backend = backend or LocalBackend(jobs or spec.get("jobs", 1))
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    previous = _previous_rows(out_dir)
    outcomes, todo = {}, []
    for run in plan:
        run_dir = os.path.join(out_dir, run.name)
        st = state(run_dir, run.cfg)
        if st == "finished":
            metrics = read_metrics(run_dir)
            old = previous.get(run.name, {})
            outcomes[run.name] = {"status": "diverged" if "diverged" in metrics else "done",
                                  "error": metrics.get("diverged"), "node": old.get("node"),
                                  "hostname": old.get("hostname")}
            continue
        resume = st == "resumable"
        if st != "new" and not resume:
            remove(run_dir)
        files = read_files(run_dir) if resume and backend.name != "local" else {}
        todo.append(Job(run.name, run.cfg, run_dir, resume, files))
    kept = len(plan) - len(todo)
    log(f"experiment {spec.get('name', os.path.basename(path))}: {len(plan)} run(s), "
        f"{kept} kept from an earlier execution, {len(todo)} to train on the {backend.name} "
        f"backend" + (f" ({sum(j.resume for j in todo)} resumed)" if any(
            j.resume for j in todo) else ""))
    progress = Progress(todo, len(plan), kept, log, progress_every)

    def on_done(job, outcome):
        metrics = read_metrics(job.run_dir)
        if metrics is None and outcome["status"] != "failed":
            outcome = {**outcome, "status": "failed", "error": "the run wrote no metrics.json"}
        outcomes[job.name] = outcome
        progress.on_done(job.name, _summary(outcome, metrics))

    try:
        if todo:
            backend.run(todo, progress.on_epoch, on_done)
    except KeyboardInterrupt:
        missing = len(plan) - len(outcomes)
        log(f"interrupted: {len(outcomes)} run(s) kept in {out_dir}; run the same command "
            f"again to train the {missing} missing")
        raise
    finally:
        results = _write_results(spec, plan, outcomes, out_dir, path)
    from ..inspection.compare import experiment_report   # matplotlib only when needed
    experiment_report(out_dir)
    return results


def _write_results(spec, plan, outcomes, out_dir, path):
    rows = []
    for run in plan:
        outcome = outcomes.get(run.name, {"status": "missing", "error": None})
        run_dir = os.path.join(out_dir, run.name)
        trained = outcome["status"] in ("done", "diverged")
        rows.append(run_row(
            run, outcome["status"], read_metrics(run_dir) if trained else None,
            _history(run_dir) if trained else "", outcome["error"], outcome.get("node"),
            outcome.get("hostname")))
    summary = summarize(plan, rows)
    results = {"experiment": spec.get("name", os.path.basename(path)), "runs": rows,
               "summary": summary}
    write_atomic(os.path.join(out_dir, "results.json"), json.dumps(results, indent=2) + "\n")
    write_atomic(os.path.join(out_dir, "results.csv"), csv_text(summary))
    write_atomic(os.path.join(out_dir, "results.md"), markdown(summary))
    return results
