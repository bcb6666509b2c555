"""Draw the comparison pictures of docs/reproductions.md from experiment output folders.

    python docs/images/reproductions.py runs/repro/ground_up_mlp [...] --out docs/images
    python docs/images/reproductions.py runs/repro/toeplitz_activations --deltas relu-A relu-B
    python docs/images/reproductions.py runs/repro/toeplitz_activations --deconvolution relu-B-seed0
    python docs/images/reproductions.py runs/repro/regulariser_grid --histograms RUN RUN ...
    python docs/images/reproductions.py runs/repro/input_noise --pixel-weights no-noise noise-0.1
    python docs/images/reproductions.py runs/repro/digits_batch_modes_epoch1 --weights RUN RUN
    python docs/images/reproductions.py runs/repro/batch_lr --batch-losses GROUP GROUP

For each folder (written by `glyphnet experiment FILE --out DIR`): left, the test accuracy
after every epoch, the mean over the seeds with the band from the lowest to the highest seed;
right, the final test accuracy of each run (mean, with the sample std as the error bar) beside
the report's number (hatched) where the report gave one. Writes OUT/repro_<folder>.png.
--deltas GROUP...: the per-sample conv-delta magnitudes of those groups' runs over the steps
(mean and range over seeds), OUT/repro_<folder>_deltas.png. --deconvolution RUN: the first conv
layer's maps of one test image per class projected back onto the image,
OUT/repro_<folder>_deconvolution.png. --histograms RUN...: histograms of the final weights of
each weight layer (one panel per layer) of those runs, OUT/repro_<folder>_histograms.png.
--pixel-weights GROUP GROUP: for each group, the mean |first-layer weight| of every input pixel
over the hidden units and seeds, and the second minus the first, OUT/repro_<folder>_pixels.png.
--weights RUN...: the first layer's weights into each of the first 10 units (the classes of a
single-layer model) as images, one row per run, OUT/repro_<folder>_weights.png.
--batch-losses GROUP...: the training loss of every batch (mean and range over seeds),
OUT/repro_<folder>_batches.png.
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
        colours[group] = band(left, epochs, acc, group, 1.4).get_color()
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


def group_runs(out_dir, group):
    """The folders of the finished runs of ``group`` (all its seeds) in an experiment folder."""
    with open(os.path.join(out_dir, "results.json")) as f:
        runs = json.load(f)["runs"]
    found = [os.path.join(out_dir, r["run"]) for r in runs
             if r["group"] == group and r["status"] == "done"]
    if not found:
        raise SystemExit(f"{out_dir}: no finished runs of group {group!r}")
    return found


def band(ax, steps, rows, label, lw=1.2):
    """The mean of ``rows`` (one per seed, cut to the shortest) with the range as a band."""
    n = min(len(r) for r in rows)
    values = np.array([r[:n] for r in rows])
    line, = ax.plot(steps[:n], values.mean(axis=0), label=label, lw=lw)
    if len(values) > 1:
        ax.fill_between(steps[:n], values.min(axis=0), values.max(axis=0), alpha=0.2, lw=0,
                        color=line.get_color())
    return line


def per_step(out_dir, groups, path, series, xlabel, ylabel, title, lw):
    """One log-scale panel: for each group, series(run folder) = (steps, values) per seed."""
    fig = figure(7, 3.6)
    ax = fig.subplots()
    for group in groups:
        runs = [series(run) for run in group_runs(out_dir, group)]
        band(ax, runs[0][0], [v for _, v in runs], group, lw)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return finish(fig, path)


def draw_batch_losses(out_dir, groups, path):
    """The loss of every training batch of each group's seeds."""
    def losses(run):
        v = np.loadtxt(os.path.join(run, "batch_losses.csv"), ndmin=1)
        return np.arange(1, len(v) + 1), v
    return per_step(out_dir, groups, path, losses, "batch", "training loss of the batch",
                    "loss per batch, mean and range over seeds", 0.9)


def draw_deltas(out_dir, groups, path):
    """Conv-delta magnitude per step of each group's seeds (dynamics.npz)."""
    def deltas(run):
        d = np.load(os.path.join(run, "dynamics.npz"))
        return d["delta_steps"], d["conv_deltas"]
    return per_step(out_dir, groups, path, deltas, "step (one image per step)",
                    "mean |dL_i/d(conv output)|",
                    "conv-delta magnitudes, mean and range over seeds", 1.2)


def draw_deconvolution(run_dir, path):
    from glyphnet.config import load_config
    from glyphnet.data import load_from_config
    from glyphnet.inspection import explain, figures as viz
    from glyphnet.nn.model import Sequential
    model = Sequential.load(os.path.join(run_dir, "model.npz"))
    ds = load_from_config(load_config(os.path.join(run_dir, "config.toml"))["data"])
    picks = [int(np.flatnonzero(ds.y_test == c)[0]) for c in range(ds.num_classes)
             if np.any(ds.y_test == c)]
    x = ds.x_test[picks] if model.scaler is None else model.scaler.transform(ds.x_test[picks])
    proj = explain.deconvolution(model, x)
    return viz.deconvolution_grid(proj, [f"class {ds.classes[ds.y_test[i]]}" for i in picks],
                                  path)


def draw_histograms(out_dir, runs, path):
    """The final weights of each weight layer of ``runs``, overlaid per layer."""
    from glyphnet.nn.model import Sequential
    models = [(run, Sequential.load(os.path.join(out_dir, run, "model.npz"))) for run in runs]
    layers = [i for i, layer in enumerate(models[0][1].layers) if "W" in layer.params]
    fig = figure(3.2 * len(layers), 3.2)
    axes = np.atleast_1d(fig.subplots(1, len(layers)))
    for ax, i in zip(axes, layers):
        weights = [m.layers[i].params["W"].ravel() for _, m in models]
        edges = np.histogram_bin_edges(np.concatenate(weights), 60)
        for (run, _), w in zip(models, weights):
            ax.hist(w, edges, histtype="step", density=True, label=run, lw=1.1)
        shape = "x".join(str(d) for d in models[0][1].layers[i].params["W"].shape)
        ax.set_title(f"layer {i} weights ({shape})", fontsize=8)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("density")
    axes[-1].legend(fontsize=6)
    return finish(fig, path)


def draw_pixel_weights(out_dir, groups, path):
    """Mean |W| of the first dense layer per input pixel for each group, and their difference."""
    from glyphnet.nn.model import Sequential
    maps = []
    for group in groups:
        models = [Sequential.load(os.path.join(run, "model.npz"))
                  for run in group_runs(out_dir, group)]
        shape = models[0].input_shape[:2]
        maps.append(np.mean([np.abs(m.layers[0].params["W"]).mean(axis=1).reshape(shape)
                             for m in models], axis=0))
    fig = figure(10, 3.4)
    axes = fig.subplots(1, 3)
    lo, hi = min(m.min() for m in maps), max(m.max() for m in maps)
    for ax, group, m in zip(axes, groups, maps):
        im = ax.imshow(m, cmap="viridis", vmin=lo, vmax=hi)
        ax.set_title(f"{group}: mean |w| per pixel", fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046)
    diff = maps[1] - maps[0]
    v = np.abs(diff).max()
    im = axes[2].imshow(diff, cmap="RdBu_r", vmin=-v, vmax=v)
    axes[2].set_title(f"{groups[1]} minus {groups[0]}", fontsize=8)
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return finish(fig, path)


def draw_weights(out_dir, runs, path):
    """First-layer weight images, one row per run, each row on its own symmetric scale."""
    from glyphnet.nn.model import Sequential
    models = [Sequential.load(os.path.join(out_dir, run, "model.npz")) for run in runs]
    units = min(10, models[0].layers[0].params["W"].shape[1])
    fig = figure(1.1 * units + 1.5, 1.25 * len(runs) + 0.4)
    axes = np.atleast_2d(fig.subplots(len(runs), units))
    for row, (run, model) in enumerate(zip(runs, models)):
        W = model.layers[0].params["W"]
        v = np.abs(W[:, :units]).max()
        for j in range(units):
            ax = axes[row, j]
            ax.imshow(W[:, j].reshape(model.input_shape[:2]), cmap="RdBu_r", vmin=-v, vmax=v)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(model.class_names[j] if units == model.output_shape[-1]
                             else f"unit {j}", fontsize=8)
        axes[row, 0].set_ylabel(run, fontsize=7, rotation=0, ha="right", va="center")
    return finish(fig, path)


# option: (file name suffix, drawing function of (experiment folder, option's values, path))
KINDS = {
    "deltas": ("_deltas", draw_deltas),
    "batch_losses": ("_batches", draw_batch_losses),
    "weights": ("_weights", draw_weights),
    "pixel_weights": ("_pixels", draw_pixel_weights),
    "histograms": ("_histograms", draw_histograms),
    "deconvolution": ("_deconvolution",
                      lambda d, run, path: draw_deconvolution(os.path.join(d, run), path)),
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dirs", nargs="+")
    p.add_argument("--out", default="docs/images")
    p.add_argument("--deltas", nargs="+", metavar="GROUP")
    p.add_argument("--batch-losses", nargs="+", metavar="GROUP")
    p.add_argument("--weights", nargs="+", metavar="RUN")
    p.add_argument("--pixel-weights", nargs=2, metavar="GROUP")
    p.add_argument("--histograms", nargs="+", metavar="RUN")
    p.add_argument("--deconvolution", metavar="RUN")
    args = p.parse_args()
    kind = next((k for k in KINDS if getattr(args, k)), None)
    suffix, drawing = KINDS[kind] if kind else ("", lambda d, _, path: draw(d, path))
    for d in args.dirs:
        path = os.path.join(args.out, f"repro_{os.path.basename(os.path.normpath(d))}"
                                      f"{suffix}.png")
        drawing(d, getattr(args, kind) if kind else None, path)
        print("wrote", path)


if __name__ == "__main__":
    main()
