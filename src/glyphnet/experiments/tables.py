"""Results of an experiment: one row per run, one summary row per run name (mean and sample
standard deviation over its seeds), written as results.json, results.csv and results.md."""
import csv
import io
import math
import statistics

from .plan import METRICS

# Fields that depend on when and where a run trained, not on what it computed: leaving them out
# (comparable()) makes results.json identical across backends and machines.
RUN_TIMING_FIELDS = ("seconds", "node", "hostname")
SUMMARY_TIMING_FIELDS = ("seconds_mean", "seconds_std")


def mean_std(values):
    """(mean, sample standard deviation (n - 1 in the denominator)) of ``values``; the std is
    None for fewer than two values and both are None for none."""
    values = [float(v) for v in values]
    if not values:
        return None, None
    mean = math.fsum(values) / len(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def best_epoch(history_text):
    """The epoch (1-based, the first on ties) with the best validation accuracy in a
    history.csv text, else the best test accuracy; None without either."""
    rows = list(csv.DictReader(io.StringIO(history_text)))
    for column in ("val_accuracy", "test_accuracy"):
        scored = [(float(r[column]), int(float(r["epoch"]))) for r in rows if r.get(column)]
        if scored:
            best = max(s for s, _ in scored)
            return next(e for s, e in scored if s == best)
    return None


def run_row(run, status, metrics=None, history_text="", error=None, node=None, hostname=None):
    """The results row of one run (``metrics``: its metrics.json, None if it did not train)."""
    metrics = metrics or {}
    row = {"run": run.name, "group": run.group, "seed": run.cfg["seed"], "status": status,
           "epochs": metrics.get("epochs")}
    for m in METRICS:
        row[m] = best_epoch(history_text) if m == "best_epoch" else metrics.get(m)
    row.update(error=error, node=node, hostname=hostname)
    return row


def _note(epochs, reported_epochs, counts, n_seeds):
    notes = []
    if reported_epochs is not None and epochs != reported_epochs:
        notes.append(f"{epochs} of {reported_epochs} epochs")
    for status in ("diverged", "failed", "missing"):
        if counts.get(status):
            notes.append(f"{counts[status]} of {n_seeds} {status}")
    return "; ".join(notes)


def summarize(plan, rows):
    """One row per run name (in plan order): mean and std over its seeds of every metric (runs
    that trained, diverged ones included: their metrics are of the last good model), what the
    original reported, and a note on settings that differ from the report's and on runs that
    failed or are missing."""
    by_name = {r["run"]: r for r in rows}
    groups = {}
    for run in plan:
        groups.setdefault(run.group, []).append(run)
    summary = []
    for group, members in groups.items():
        mine = [by_name[r.name] for r in members]
        trained = [r for r in mine if r["status"] in ("done", "diverged")]
        counts = {s: sum(r["status"] == s for r in mine) for s in ("diverged", "failed",
                                                                    "missing")}
        first = members[0]
        epochs = first.cfg["training"]["epochs"]
        row = {"run": group, "seeds": [r["seed"] for r in mine], "trained": len(trained),
               "epochs": epochs}
        for m in METRICS:
            row[f"{m}_mean"], row[f"{m}_std"] = mean_std(
                [r[m] for r in trained if r[m] is not None])
        row.update(reported=first.reported, reported_epochs=first.reported_epochs,
                   note=_note(epochs, first.reported_epochs, counts, len(mine)))
        summary.append(row)
    return summary


def comparable(results):
    """results.json without the timing and node fields, for comparing two executions."""
    return {**results,
            "runs": [{k: v for k, v in r.items() if k not in RUN_TIMING_FIELDS}
                     for r in results["runs"]],
            "summary": [{k: v for k, v in r.items() if k not in SUMMARY_TIMING_FIELDS}
                        for r in results["summary"]]}


def csv_text(summary):
    """The summary as CSV: mean and std columns per metric, one reported_<metric> column per
    metric any run reports."""
    reported = _reported_metrics(summary)
    fields = ["run", "seeds", "trained", "epochs"]
    fields += [f"{m}_{s}" for m in METRICS for s in ("mean", "std")]
    fields += [f"reported_{m}" for m in reported] + ["reported_epochs", "note"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in summary:
        writer.writerow({**row, "seeds": " ".join(map(str, row["seeds"])),
                         **{f"reported_{m}": row["reported"].get(m) for m in reported}})
    return buf.getvalue()


def _reported_metrics(summary):
    return [m for m in METRICS if any(m in r["reported"] for r in summary)]


def _fmt(metric, mean, std):
    if mean is None:
        return ""
    if metric.endswith("accuracy"):
        return f"{100 * mean:.2f}%" + (f" ± {100 * std:.2f}" if std is not None else "")
    if metric in ("best_epoch", "seconds"):
        text = f"{mean:.0f}" if std is None and mean == int(mean) else f"{mean:.1f}"
        return text + (f" ± {std:.1f}" if std is not None else "")
    return f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else "")


def markdown(summary):
    """The summary as a Markdown table: mean ± std over seeds, each reported number beside
    ours; columns no run has (e.g. validation without a validation split) are left out."""
    reported = _reported_metrics(summary)
    order = ["test_accuracy", "val_accuracy", "train_accuracy", "test_loss", "val_loss",
             "train_loss", "best_epoch", "seconds"]
    shown = [m for m in order if any(r[f"{m}_mean"] is not None for r in summary)
             or m in reported]
    head = ["run", "trained"]
    for m in shown:
        head.append(m.replace("_", " "))
        if m in reported:
            head.append(f"reported {m.replace('_', ' ')}")
    head += ["epochs", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary:
        cells = [r["run"], f"{r['trained']}/{len(r['seeds'])}"]
        for m in shown:
            cells.append(_fmt(m, r[f"{m}_mean"], r[f"{m}_std"]))
            if m in reported:
                cells.append(_fmt(m, r["reported"].get(m), None))
        cells += [str(r["epochs"]), r["note"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
