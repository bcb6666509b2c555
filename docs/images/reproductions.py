"""Draw the comparison pictures of docs/reproductions.md from experiment output folders.

    python docs/images/reproductions.py runs/repro/ground_up_mlp [...] --out docs/images

For each folder (written by `glyphnet experiment FILE --out DIR`): left, the test accuracy
after every epoch, the mean over the seeds with the band from the lowest to the highest seed;
right, the final test accuracy of each run (mean, with the sample std as the error bar) beside
the report's number (hatched) where the report gave one. Writes OUT/repro_<folder>.png.
"""
import argparse
import json
import os

import numpy as np

from glyphnet.inspection.figures.common import figure, finish
from glyphnet.inspection.figures.curves import read_history


def curves(out_dir, runs):
    """{group: (epochs, [test accuracy per epoch of each seed])}, for runs that trained."""
    groups = {}
    for run in runs:
        if run["status"] not in ("done", "diverged"):
            continue
        rows = read_history(os.path.join(out_dir, run["run"]))
        pts = [(r["epoch"], r["test_accuracy"]) for r in rows if "test_accuracy" in r]
        if pts:
            groups.setdefault(run["group"], []).append(pts)
    out = {}
    for group, seeds in groups.items():
        n = min(len(p) for p in seeds)
        epochs = np.array([e for e, _ in seeds[0][:n]])
        out[group] = (epochs, np.array([[a for _, a in p[:n]] for p in seeds]))
    return out


def draw(out_dir, path):
    with open(os.path.join(out_dir, "results.json")) as f:
        results = json.load(f)
    summary = results["summary"]
    series = curves(out_dir, results["runs"])
    fig = figure(11, 3.8)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
    colours = {}
    for group, (epochs, acc) in series.items():
        line, = left.plot(epochs, acc.mean(axis=0), label=group, lw=1.4)
        colours[group] = line.get_color()
        if len(acc) > 1:
            left.fill_between(epochs, acc.min(axis=0), acc.max(axis=0), alpha=0.2,
                              color=line.get_color(), lw=0)
    last = max((e[-1] for e, _ in series.values()), default=1)
    for row in summary:
        rep = row.get("reported", {}).get("test_accuracy")
        if rep is not None and row["run"] in colours:
            at = row.get("reported_epochs") or last
            left.plot([min(at, last)], [rep], marker="*" if at <= last else ">",
                      color=colours[row["run"]], markersize=10, markeredgecolor="k", lw=0)
    if last >= 100:
        left.set_xscale("log")
    left.set_xlabel("epoch")
    left.set_ylabel("test accuracy")
    reported = any(row.get("reported", {}).get("test_accuracy") is not None for row in summary)
    left.set_title("glyphnet: mean and range over seeds" + (
        "\nthe report: star at its epoch, triangle at the right edge if it trained longer"
        if reported else ""), fontsize=8)
    left.grid(alpha=0.3)
    if len(series) <= 12:
        left.legend(fontsize=7)
    names = [row["run"] for row in summary if row.get("test_accuracy_mean") is not None]
    rows = {row["run"]: row for row in summary}
    x = np.arange(len(names))
    ours = [rows[n]["test_accuracy_mean"] for n in names]
    err = [rows[n]["test_accuracy_std"] or 0 for n in names]
    rep = [rows[n].get("reported", {}).get("test_accuracy", np.nan) for n in names]
    right.bar(x - 0.2, ours, 0.4, yerr=err, capsize=3, label="glyphnet",
              color=[colours.get(n, "C0") for n in names])
    if not np.all(np.isnan(rep)):
        right.bar(x + 0.2, rep, 0.4, label="report", color="white", edgecolor="k", hatch="//")
    right.set_xticks(x)
    right.set_xticklabels(names, rotation=30 if len(names) > 3 else 0, ha="right"
                          if len(names) > 3 else "center", fontsize=7)
    low = min([v for v in ours + rep if v == v] + [1.0])
    right.set_ylim(max(0.0, low - 0.1), 1.0)
    right.set_ylabel("final test accuracy")
    right.set_title(results["experiment"], fontsize=9)
    right.grid(alpha=0.3, axis="y")
    right.legend(fontsize=7)
    return finish(fig, path)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dirs", nargs="+")
    p.add_argument("--out", default="docs/images")
    args = p.parse_args()
    for d in args.dirs:
        path = os.path.join(args.out, f"repro_{os.path.basename(os.path.normpath(d))}.png")
        draw(d, path)
        print("wrote", path)


if __name__ == "__main__":
    main()
