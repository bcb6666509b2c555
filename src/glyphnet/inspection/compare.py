"""Runs compared in pictures: one self-contained HTML page (images embedded as base64 PNG)
overlaying several run directories, and an experiment's report.html with one panel per swept
key (the other keys fixed).

Runs are named by what differs between their config.toml files ("optimizer.type=sgd"). Every
overlay is drawn from series (label, x, y); the functions that build them return them, so the
numbers behind each picture can be checked against the runs' files.
"""
import base64
import copy
import html
import io
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from ..errors import GlyphnetError
from ..fileio import write_atomic
from .figures.common import figure, plot_on_log

SPLITS = (("train", "--"), ("val", ":"), ("test", "-"))


# ---------------------------------------------------------------------------- finding runs
def is_run_dir(path):
    return all(os.path.isfile(os.path.join(path, f)) for f in ("config.toml", "history.csv"))


def find_runs(paths):
    """The run directories named by ``paths``: each a run directory (config.toml and
    history.csv) or an experiment directory (a folder of run directories, taken in name
    order)."""
    out = []
    for p in map(os.fspath, paths):
        if is_run_dir(p):
            out.append(p)
        elif os.path.isdir(p):
            subs = sorted(os.path.join(p, d) for d in os.listdir(p)
                          if is_run_dir(os.path.join(p, d)))
            if not subs:
                raise GlyphnetError(f"{p}: neither a run directory (config.toml and history.csv)"
                                    f" nor a folder of run directories")
            out.extend(subs)
        else:
            raise GlyphnetError(f"{p}: no such directory")
    seen, unique = set(), []
    for p in out:
        if os.path.realpath(p) not in seen:
            seen.add(os.path.realpath(p))
            unique.append(p)
    return unique


def flatten(cfg, prefix=""):
    """A config as {dotted key: value}: tables recurse ("optimizer.lr"), lists of tables
    index ("model.layers[1].type"), other values stay whole."""
    out = {}
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else k))
    elif isinstance(cfg, list) and cfg and all(isinstance(v, dict) for v in cfg):
        for i, v in enumerate(cfg):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = cfg
    return out


def run_flats(cfgs):
    """The flattened configs that labels and panels compare: when the runs' layer stacks
    differ in their layer types, all model.layers keys become one, "model.layers", valued
    by the stack ("dense-relu-dense-softmax")."""
    flats = [flatten(c) for c in cfgs]
    stacks = ["-".join(str(layer.get("type")) for layer in c.get("model", {}).get("layers", []))
              for c in cfgs]
    if len(set(stacks)) > 1:
        flats = [{**{k: v for k, v in f.items() if not k.startswith("model.layers[")},
                  "model.layers": stack} for f, stack in zip(flats, stacks)]
    return flats


def differing_keys(flats):
    """The dotted keys whose value is not the same in every flattened config (a missing key
    counts as None), in first-seen order; an option that only some runs have because their
    table's type differs (optimizer.beta1 beside optimizer.type) is left to the type."""
    keys = list(dict.fromkeys(k for f in flats for k in f))

    def differs(k):
        return len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1

    def implied(k):
        parent = k.rsplit(".", 1)[0] if "." in k else None
        return parent is not None and not k.endswith(".type") and \
            any(k not in f for f in flats) and differs(f"{parent}.type")
    return [k for k in keys if differs(k) and not implied(k)]


def _value(v):
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def run_labels(flats, names):
    """A legend label per run: 'key=value' for every key that differs between the runs (keys
    absent from a run left out of its label); the directory name when nothing differs or
    when two labels would be the same."""
    keys = differing_keys(flats)
    labels = []
    for f, name in zip(flats, names):
        parts = [f"{k}={_value(f[k])}" for k in keys if f.get(k) is not None]
        labels.append(", ".join(parts) or name)
    if len(set(labels)) < len(labels):
        labels = [f"{label} ({name})" if label != name else name
                  for label, name in zip(labels, names)]
    return labels


# ---------------------------------------------------------------------------- run files
@dataclass
class RunData:
    """A run directory's files: ``history`` (per-epoch dicts), ``metrics`` (metrics.json or
    {}), ``batch_losses`` and ``steps`` (steps.csv columns) and ``dynamics`` or None."""
    run_dir: str
    name: str
    cfg: dict
    history: list
    metrics: dict
    batch_losses: object = None
    steps: object = None
    dynamics: object = None
    label: str = ""
    _model: object = field(default=None, repr=False)

    def model(self):
        from ..nn.model import Sequential
        if self._model is None:
            self._model = Sequential.load(os.path.join(self.run_dir, "model.npz"))
        return self._model

    @property
    def has_model(self):
        return os.path.isfile(os.path.join(self.run_dir, "model.npz"))


def load_run(run_dir):
    """The files of one run directory as a RunData (label not set)."""
    from ..config import load_config
    from .figures import read_batch_losses, read_history
    from .monitor import load_dynamics
    from .steps import load_steps

    def path(name):
        p = os.path.join(run_dir, name)
        return p if os.path.isfile(p) else None
    metrics = {}
    if path("metrics.json"):
        try:
            with open(path("metrics.json")) as f:
                metrics = json.load(f)
        except (OSError, ValueError) as exc:
            raise GlyphnetError(f"{path('metrics.json')}: cannot read ({exc})") from None
    return RunData(
        run_dir, os.path.basename(os.path.abspath(run_dir)),
        load_config(os.path.join(run_dir, "config.toml")), read_history(run_dir), metrics,
        read_batch_losses(run_dir) if path("batch_losses.csv") else None,
        load_steps(path("steps.csv")) if path("steps.csv") else None,
        load_dynamics(path("dynamics.npz")) if path("dynamics.npz") else None)


def load_runs(paths):
    """RunData of every run ``paths`` name (see find_runs), labelled by their differences."""
    runs = [load_run(p) for p in find_runs(paths)]
    flats = run_flats([r.cfg for r in runs])
    for run, label in zip(runs, run_labels(flats, [r.name for r in runs])):
        run.label = label
    return runs


# ---------------------------------------------------------------------------- series
def epoch_series(runs, metric):
    """[(label, epochs, values)] of a history.csv column, for the runs that have it."""
    out = []
    for r in runs:
        pts = [(row["epoch"], row[metric]) for row in r.history if metric in row]
        if pts:
            x, y = map(np.asarray, zip(*pts))
            out.append((r.label, x, y))
    return out


def step_series(runs, column):
    """[(label, steps, values)] of a steps.csv column, for the runs that have steps.csv."""
    return [(r.label, r.steps["step"], r.steps[column]) for r in runs if r.steps is not None]


def batch_loss_series(runs):
    """[(label, steps 1..n, loss of every batch)] from batch_losses.csv."""
    return [(r.label, np.arange(1, len(r.batch_losses) + 1), np.asarray(r.batch_losses))
            for r in runs if r.batch_losses is not None and len(r.batch_losses)]


def dynamics_series(runs, key, steps_key="steps", column=None):
    """[(label, steps, values)] of a dynamics.npz record (one ``column`` of a 2-D one)."""
    out = []
    for r in runs:
        d = r.dynamics
        if d is None or len(d.get(key, ())) == 0:
            continue
        y = d[key] if column is None else d[key][:, column]
        out.append((r.label, d[steps_key], y))
    return out


def layer_series(runs, key, names_key, steps_key="steps"):
    """{array name: [(label, steps, values)]} of a per-array dynamics record (grad_std over
    'names', check_angle over 'check_names')."""
    out = defaultdict(list)
    for r in runs:
        d = r.dynamics
        if d is None or len(d.get(key, ())) == 0:
            continue
        for j, name in enumerate(d[names_key]):
            out[str(name)].append((r.label, d[steps_key], d[key][:, j]))
    return dict(out)


# ---------------------------------------------------------------------------- drawing
def colours(labels):
    """One colour per distinct label, in order."""
    return {label: f"C{k % 10}" for k, label in enumerate(dict.fromkeys(labels))}


LEGEND_CHARS = 15       # characters per inch of legend text at font size 8
LEGEND_LINE = 0.17      # inches per line of legend text


def _legend_layout(labels, width):
    """(columns, labels wrapped to fit, lines of text) of a legend under a figure ``width``
    inches wide: three columns when every label fits a third of the width, else one."""
    chars = int(width * LEGEND_CHARS)
    ncol = min(len(labels), 3) if all(len(lab) <= chars // 3 - 5 for lab in labels) else 1
    wrapped = [_wrap(lab, chars // max(ncol, 1) - 5) for lab in labels]
    rows = [max(w.count("\n") + 1 for w in wrapped[i::ncol]) for i in range(ncol)] \
        if ncol > 1 else [w.count("\n") + 1 for w in wrapped]
    lines = max(rows) if ncol > 1 else sum(rows)
    return ncol, wrapped, lines


def _legend_height(labels, width):
    return 0.3 + LEGEND_LINE * _legend_layout(labels, width)[2]


def _legend(fig, entries):
    """One legend below the panels for the whole figure: entries are (label, colour, style)."""
    ncol, wrapped, _ = _legend_layout([e[0] for e in entries], fig.get_figwidth())
    handles = [Line2D([], [], color=c, ls=s, lw=1.6, label=w)
               for (_, c, s), w in zip(entries, wrapped)]
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize=8,
               frameon=False)


def overlay(panels, xlabel="step", logx=False, logy=False, per_row=3, width=4.2,
            height=3.0, style="-", marker=None, colour=None, invert_x=False):
    """Panels of overlaid series: ``panels`` is a list of (title, ylabel, series) with series
    [(label, x, y)]; each label keeps its colour in every panel; one shared legend. Log axes
    skip values <= 0 and mark them on the axis edge (see figures.common.plot_on_log).
    ``colour`` maps labels to colours (default: :func:`colours` of the labels drawn)."""
    panels = [p for p in panels if p[2]]
    drawn = list(dict.fromkeys(s[0] for p in panels for s in p[2]))
    colour = {lab: (colour or colours(drawn))[lab] for lab in drawn}
    cols = min(per_row, len(panels))
    rows = -(-len(panels) // cols)
    fig = figure(width * cols, height * rows + _legend_height(list(colour), width * cols))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    for ax, (title, ylabel, series) in zip(axes, panels):
        for label, x, y in series:
            plot_on_log(ax, x, y, logx, logy, color=colour[label], ls=style, lw=1.3,
                        marker=marker, markersize=3)
        if logx:
            _log_ticks(ax.xaxis)
        if logy:
            ax.set_yscale("log")
        if invert_x:
            ax.invert_xaxis()
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3, which="both")
    _legend(fig, [(lab, c, "-") for lab, c in colour.items()])
    return fig


def _log_ticks(axis):
    """A log scale on the x ``axis`` with ticks at 1, 2 and 5 times the powers of ten, written
    plainly, so that a range of less than a decade still has labelled ticks."""
    axis.axes.set_xscale("log")
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def split_curves(runs, per_iteration=False, loglog=False, colour=None):
    """Loss and accuracy per epoch (or per iteration from steps.csv), one colour per run and
    one line style per split (train dashed, validation dotted, test solid). Returns (figure,
    {(metric, split): series})."""
    data = {}
    for metric in ("loss", "accuracy"):
        for split, _ in SPLITS:
            if per_iteration:
                column = {"train": "batch", "test": "eval"}.get(split)
                series = step_series(runs, f"{column}_{metric}") if column else []
            else:
                series = epoch_series(runs, f"{split}_{metric}")
            if series:
                data[(metric, split)] = series
    colour = colour or colours(r.label for r in runs)
    names = {"train": "train (batch)" if per_iteration else "train", "val": "validation",
             "test": "eval subset of test" if per_iteration else "test"}
    splits = [(s, ls) for s, ls in SPLITS if any(k[1] == s for k in data)]
    entries = [(lab, c, "-") for lab, c in colour.items()] + \
        [(names[s], "0.3", ls) for s, ls in splits]
    fig = figure(10, 3.4 + _legend_height([e[0] for e in entries], 10))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for split, ls in SPLITS:
            for label, x, y in data.get((metric, split), []):
                log = loglog and metric == "loss"
                plot_on_log(ax, x, y, log, log, color=colour[label], ls=ls, lw=1.3,
                            marker=None if per_iteration else "o", markersize=3)
        if loglog and metric == "loss":
            _log_ticks(ax.xaxis)
            ax.set_yscale("log")
        what = "iteration (step)" if per_iteration else "epoch"
        if not per_iteration:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(what, fontsize=9)
        ax.set_ylabel(metric, fontsize=9)
        ax.set_title(f"{metric} per {what.split()[0]}", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    _legend(fig, entries)
    return fig, data


def smoothed(series, window=None):
    """Each series' moving average over ``window`` steps (default: a 50th of its length)."""
    out = []
    for label, x, y in series:
        w = window or max(1, len(y) // 50)
        if w > 1 and len(y) >= w:
            y = np.convolve(y, np.ones(w) / w, mode="valid")
            x = x[w - 1:]
        out.append((label, x, y))
    return out


def confusion_grid(cms, classes, labels):
    """Row-normalised confusion matrices side by side, one colour scale (0 to 1)."""
    n = len(cms)
    cols = min(n, 3)
    rows = -(-n // cols)
    size = 3.6 if len(classes) <= 12 else 4.6
    fig = figure(size * cols, size * rows + 0.3)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_axis_off()
    im = None
    for ax, cm, label in zip(axes, cms, labels):
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
        ticks = np.arange(len(classes))
        fs = 7 if len(classes) <= 12 else 5
        ax.set_xticks(ticks, classes, fontsize=fs)
        ax.set_yticks(ticks, classes, fontsize=fs)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        ax.set_title(_wrap(label), fontsize=9)
        if len(classes) <= 12:
            for (r, c), v in np.ndenumerate(norm):
                if v >= 0.005:
                    ax.text(c, r, f"{v:.2f}".lstrip("0"), ha="center", va="center",
                            fontsize=6, color="white" if v > 0.5 else "black")
    fig.colorbar(im, ax=list(axes[:n]), shrink=0.6, label="fraction of the true class")
    return fig


def _wrap(text, width=40):
    """``text`` broken into lines of at most ``width`` characters, after ", " where it can,
    else after "-" (layer stacks), else anywhere."""
    lines = [""]
    for part in re.split(r"(?<=, )|(?<=-)", text):
        for piece in [part[i:i + width] for i in range(0, len(part), width)]:
            if lines[-1] and len(lines[-1]) + len(piece.rstrip()) > width:
                lines.append(piece)
            else:
                lines[-1] += piece
    return "\n".join(line.rstrip() for line in lines)


# ---------------------------------------------------------------------------- the page
STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1250px; padding: 1em 2em;
       color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em;
margin-top: 2em; } h3 { font-size: 1.05em; margin-top: 1.5em; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: .9em; margin-top: .3em; }
img { max-width: 100%; height: auto; }
.side { display: flex; flex-wrap: wrap; gap: 1em; } .side figure { flex: 1 1 45%; margin: 0; }
table { border-collapse: collapse; font-size: .85em; } td, th { border: 1px solid #ccc;
        padding: .25em .5em; text-align: right; } th { background: #f3f3f3; }
td:first-child { text-align: left; } .note { color: #666; font-style: italic; }
"""


def png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


class Page:
    """HTML fragments of one self-contained page."""

    def __init__(self, title):
        self.title, self.parts = title, []

    def heading(self, text, level=2):
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def figure(self, name, fig, caption=""):
        self.parts.append(self._figure(name, fig, caption))

    @staticmethod
    def _figure(name, fig, caption):
        return (f'<figure id="{html.escape(name)}"><img alt="{html.escape(name)}" '
                f'src="data:image/png;base64,{png(fig)}"><figcaption>{html.escape(caption)}'
                f"</figcaption></figure>")

    def side_by_side(self, name, figs):
        """Figures next to each other: figs is [(caption, figure)]."""
        self.parts.append('<div class="side">' + "".join(
            self._figure(f"{name}-{k}", fig, caption) for k, (caption, fig) in
            enumerate(figs)) + "</div>")

    def html(self, fragment):
        self.parts.append(fragment)

    def render(self):
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head><body>"
                f"\n<h1>{html.escape(self.title)}</h1>\n" + "\n".join(self.parts)
                + "\n</body></html>\n")


def _fmt(v):
    if v is None:
        return ""
    return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))


def metrics_rows(runs):
    """Per run: final metrics (metrics.json) and the best of its history."""
    rows = []
    for r in runs:
        row = {"run": r.label, "directory": r.name,
               "epochs": r.metrics.get("epochs", len(r.history))}
        for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
                  "test_accuracy"):
            row[f"final {k}"] = r.metrics.get(k)
        for split in ("val", "test"):
            pts = [(row_["epoch"], row_[f"{split}_accuracy"]) for row_ in r.history
                   if f"{split}_accuracy" in row_]
            if pts:
                epoch, best = max(pts, key=lambda p: p[1])
                row[f"best {split}_accuracy"] = best
                row[f"best {split} epoch"] = int(epoch)
            losses = [row_[f"{split}_loss"] for row_ in r.history if f"{split}_loss" in row_]
            if losses:
                row[f"best {split}_loss"] = min(losses)
        row["seconds"] = r.metrics.get("seconds")
        rows.append(row)
    return rows


def _table(rows):
    columns = [c for c in dict.fromkeys(k for r in rows for k in r)
               if any(r.get(c) is not None for r in rows)]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _test_predictions(runs, data_dir=None):
    """{run label: (confusion matrix, class names)} for the runs with a model; test sets
    are loaded once per distinct [data] section."""
    from .. import data
    from .metrics import confusion_matrix
    cache, out = {}, {}
    for r in runs:
        if not r.has_model:
            continue
        key = json.dumps(r.cfg["data"], sort_keys=True)
        if key not in cache:
            cache[key] = data.load_from_config(r.cfg["data"], data_dir)
        ds, model = cache[key], r.model()
        x = model.scaler.transform(ds.x_test) if model.scaler else ds.x_test
        predicted = model.predict(x)
        out[r.label] = (confusion_matrix(ds.y_test, predicted, len(model.class_names)),
                        model.class_names)
    return out


def _first_layer(model):
    from . import figures as viz
    from .roles import first_conv, first_dense_on_images
    if first_conv(model) is not None:
        return viz.conv_filters(model)
    if first_dense_on_images(model) is not None:
        return viz.first_layer_weights(model, max_units=32)
    return None


def compare_page(runs, title="glyphnet: runs compared", loglog=False, data_dir=None,
                 test_set=True):
    """The comparison page of ``runs`` (RunData, labelled) as HTML text."""
    from . import figures as viz
    page = Page(title)
    colour = colours(r.label for r in runs)   # one colour per run on the whole page
    page.heading("Runs")
    page.html("<p>Runs are named by the config keys that differ between them; their "
              "directories: " + ", ".join(f"<code>{html.escape(r.run_dir)}</code>"
                                          for r in runs) + ".</p>")
    page.html(_table(metrics_rows(runs)))

    page.heading("Per epoch")
    page.figure("epoch-curves", split_curves(runs, colour=colour)[0],
                "Loss and accuracy after each epoch (training figures are means over the "
                "epoch).")
    page.heading("Per iteration")
    batch = batch_loss_series(runs)
    if batch:
        page.figure("batch-loss", overlay(
            [("training loss per batch (moving average)", "loss", smoothed(batch))],
            "iteration (step)" + (" (log)" if loglog else ""), logx=loglog, logy=loglog,
            per_row=1, width=8, height=3.4, colour=colour),
            "The cost of every training batch, smoothed over a 50th of the run"
            + (" (log-log)." if loglog else "."))
    if any(r.steps is not None for r in runs):
        page.figure("step-curves", split_curves(runs, True, loglog, colour)[0],
                    "Every training.eval_every steps: the training batch (dashed) and the "
                    "fixed evaluation subset of the test set (solid).")
    elif not batch:
        page.html('<p class="note">No per-iteration records (set training.eval_every).</p>')

    if any(r.dynamics is not None for r in runs):
        page.heading("Training dynamics")
        grads = layer_series(runs, "grad_std", "names")
        if grads:
            page.figure("gradient-std", overlay(
                [(name, "std of dL/dW", s) for name, s in grads.items()], logy=True,
                colour=colour),
                "Standard deviation of each layer's weight gradients over the iterations.")
        deltas = dynamics_series(runs, "conv_deltas", "delta_steps")
        if deltas:
            page.figure("conv-deltas", overlay(
                [("first conv layer", "mean |dL_i/d(output)|", deltas)],
                logy=True, per_row=1, width=7, colour=colour),
                "Magnitude of the deltas at the first convolutional layer, per sample (not "
                "divided by the batch size, so a partial batch does not jump).")
        tracked = [(r.name, "value", [
            (r.label, r.dynamics["steps"], col) for col in r.dynamics["tracked_values"].T])
            for r in runs if r.dynamics is not None and len(r.dynamics["tracked_values"])]
        if tracked:
            page.figure("tracked-weights", overlay(tracked, colour=colour),
                "A few fixed individual weights over the iterations (the same entries in "
                "runs with the same seed and architecture).")
        angles = _angle_series(runs)
        if angles:
            page.figure("gradient-angle", overlay(
                [(name, "angle (degrees)", s) for name, s in angles.items()],
                "cost of the check images (falls during training →)", logx=True, logy=True,
                marker="o", colour=colour, invert_x=True),
                "Angle between finite-difference and analytic gradients against the cost; "
                "an angle of exactly 0 cannot sit on the log axis and is marked by an open "
                "triangle on its bottom edge.")

    with_models = [r for r in runs if r.has_model]
    if with_models:
        page.heading("Weights")
        page.side_by_side("weight-histograms", [
            (r.label, viz.weight_histograms(
                r.model(), r.dynamics["initial"] if r.dynamics else None))
            for r in with_models])
        firsts = [(r.label, _first_layer(r.model())) for r in with_models]
        firsts = [(c, f) for c, f in firsts if f is not None]
        if firsts:
            page.heading("First-layer weights", 3)
            page.side_by_side("first-layer", firsts)
        if test_set:
            preds = _test_predictions(with_models, data_dir)
            if preds:
                page.heading("Confusion matrices")
                cms = list(preds.values())
                page.figure("confusion", confusion_grid(
                    [cm for cm, _ in cms], cms[0][1], [r.name for r in with_models
                                                       if r.label in preds]),
                    "Row-normalised confusion matrices on each run's test set, titled by "
                    "run directory.")
    return page.render()


def _angle_series(runs):
    """{array name: [(label, cost, angle)]} of the gradient checks."""
    out = defaultdict(list)
    for r in runs:
        d = r.dynamics
        if d is None or len(d.get("check_cost", ())) == 0:
            continue
        for j, name in enumerate(d["check_names"]):
            out[str(name)].append((r.label, d["check_cost"], d["check_angle"][:, j]))
    return dict(out)


def write_compare(paths, out, loglog=False, data_dir=None, title=None):
    """Write the comparison page of the run and experiment directories ``paths`` to ``out``;
    returns the RunData compared."""
    runs = load_runs(paths)
    text = compare_page(runs, title or f"glyphnet: {len(runs)} runs compared", loglog,
                        data_dir)
    write_atomic(os.fspath(out), text)
    return runs


# ---------------------------------------------------------------------------- experiments
def swept_panels(runs):
    """[(swept key, [(fixed, runs)])]: for each key that varies between the runs (keys that
    always vary together, such as a layer's type and its options, count as one; the seed is
    not a swept key), the groups of runs where every other swept key is fixed and that key
    takes more than one value."""
    flats = run_flats([r.cfg for r in runs])
    keys = [k for k in differing_keys(flats) if k != "seed"]
    by_pattern = defaultdict(list)
    for k in keys:
        values = [json.dumps(f.get(k), sort_keys=True) for f in flats]
        pattern = tuple(values.index(v) for v in values)
        by_pattern[pattern].append(k)
    swept = list(by_pattern.values())
    out = []
    for group in swept:
        others = [k for g in swept if g is not group for k in g]
        fixed = defaultdict(list)
        for run, f in zip(runs, flats):
            fixed[tuple(_value(f.get(k)) for k in others)].append((run, f))
        panels = []
        for values, members in fixed.items():
            if len({tuple(_value(f.get(k)) for k in group) for _, f in members}) > 1:
                note = ", ".join(f"{k}={v}" for k, v in zip(others, values) if v != "None")
                panels.append((note, [_relabel(run, f, group) for run, f in members]))
        if panels:
            out.append((", ".join(group), panels))
    return out


def _relabel(run, flat, keys):
    """A copy of ``run`` labelled by the swept keys' values only (runs of several seeds of
    one setting share the label, so they share a colour)."""
    r = copy.copy(run)
    r.label = ", ".join(f"{k}={_value(flat[k])}" for k in keys if flat.get(k) is not None)
    return r


def experiment_report(out_dir, title=None):
    """Write out_dir/report.html for an experiment folder (one run directory per run): the
    table of every run's final and best metrics, then per swept key one panel per setting of
    the other keys, overlaying loss and accuracy per epoch and, where steps.csv exists, per
    iteration. Returns the path, or None when the folder holds no finished runs."""
    out_dir = os.fspath(out_dir)
    paths = [os.path.join(out_dir, d) for d in sorted(os.listdir(out_dir))
             if is_run_dir(os.path.join(out_dir, d))]
    if not paths:
        return None
    runs = load_runs(paths)
    page = Page(title or f"glyphnet experiment {os.path.basename(os.path.abspath(out_dir))}")
    page.heading("Runs")
    page.html(_table(metrics_rows(runs)))
    for key, panels in swept_panels(runs):
        page.heading(f"Swept: {key}")
        for k, (fixed, members) in enumerate(panels):
            page.heading(f"with {fixed}" if fixed else "all runs", 3)
            page.figure(f"{key}-{k}-epochs", split_curves(members)[0],
                        "Per epoch; runs with the same setting and other seeds share a "
                        "colour.")
            if any(r.steps is not None for r in members):
                page.figure(f"{key}-{k}-steps", split_curves(members, True)[0],
                            "Per iteration (steps.csv).")
    path = os.path.join(out_dir, "report.html")
    write_atomic(path, page.render())
    return path
