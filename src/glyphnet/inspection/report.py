"""RUN_DIR/report.html: one self-contained page (images embedded as base64 PNG, no external
references) with a run's config, metrics and every registered picture (report_figures.FIGURES)
that applies to its model."""
import base64
import html
import io
import json
import os
import sys
import time

import numpy as np

from ..errors import GlyphnetError
from .metrics import confusion_matrix
from .report_figures import FIGURES, report_figure  # noqa: F401  (the figure registry)
from .roles import first_conv, is_sigmoid_net

REQUIRED = ("model.npz", "config.toml", "metrics.json", "history.csv")
MAX_ROWS = 10  # classes shown in the per-class image rows (saliency, deconvolution)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1150px; padding: 1em 2em;
       color: #222; }
h1 { font-size: 1.6em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
figure { margin: 1.2em 0; } figcaption { color: #555; font-size: .9em; margin-top: .3em; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: .9em; } td, th { border: 1px solid #ccc;
        padding: .25em .6em; text-align: right; } th { background: #f3f3f3; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: .85em; }
nav a { margin-right: 1em; } .note { color: #666; font-style: italic; }
"""


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


class _Page:
    """Sections of figures and HTML fragments, rendered at the end."""

    def __init__(self, log):
        self.sections, self.log = [], log

    def section(self, title):
        self.sections.append((title, []))
        self.log(f"report: {title.lower()}")

    def html(self, fragment):
        self.sections[-1][1].append(fragment)

    def figure(self, name, fig, caption):
        """An embedded picture; ``name`` is its alt text and the id of its figure element."""
        self.html(f'<figure id="{name}"><img alt="{name}" '
                  f'src="data:image/png;base64,{_png(fig)}">'
                  f'<figcaption>{html.escape(caption)}</figcaption></figure>')

    def render(self, title):
        ids = [f"s{k}" for k in range(len(self.sections))]
        nav = " ".join(f'<a href="#{i}">{html.escape(t)}</a>'
                       for i, (t, _) in zip(ids, self.sections))
        body = "\n".join(f'<h2 id="{i}">{html.escape(t)}</h2>\n' + "\n".join(parts)
                         for i, (t, parts) in zip(ids, self.sections))
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
                f"<h1>{html.escape(title)}</h1>\n<nav>{nav}</nav>\n{body}\n</body></html>\n")


def _table(rows, columns):
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in columns)
                   + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _load_run(run_dir):
    from ..config import load_config
    from ..nn.model import Sequential
    if not os.path.isdir(run_dir):
        raise GlyphnetError(f"{run_dir}: no such run directory")
    missing = [f for f in REQUIRED if not os.path.exists(os.path.join(run_dir, f))]
    if missing:
        raise GlyphnetError(f"{run_dir}: not a complete run directory, missing "
                            f"{', '.join(missing)} (glyphnet train --out {run_dir} writes them)")
    model = Sequential.load(os.path.join(run_dir, "model.npz"))
    cfg = load_config(os.path.join(run_dir, "config.toml"))
    with open(os.path.join(run_dir, "config.toml")) as f:
        config_text = f.read()
    try:
        with open(os.path.join(run_dir, "metrics.json")) as f:
            metrics = json.load(f)
    except (OSError, ValueError) as exc:
        raise GlyphnetError(f"{run_dir}/metrics.json: cannot read ({exc})") from None
    return model, cfg, config_text, metrics


class RunContext:
    """What report figures draw from, loaded once: the run's files (``run_dir``, ``cfg``,
    ``config_text``, ``metrics``, ``history``, ``dynamics`` or None), its model, its test set
    ``ds`` with ``x`` (the test images in the model's input space), ``proba``
    (model.probabilities), ``predicted``, ``classes``, ``cm`` (confusion matrix) and ``log``."""

    def __init__(self, run_dir, log, data_dir=None):
        from .. import data
        from .figures import read_history
        from .monitor import load_dynamics
        self.run_dir, self.log, self._memo = run_dir, log, {}
        self.model, self.cfg, self.config_text, self.metrics = _load_run(run_dir)
        self.history = read_history(run_dir)
        path = os.path.join(run_dir, "dynamics.npz")
        self.dynamics = None
        if os.path.exists(path):
            try:
                self.dynamics = load_dynamics(path)
            except GlyphnetError as exc:   # optional: the report is written without it
                log(f"warning: {exc}; the training-dynamics figures are left out")
        log("report: loading the test set")
        self.ds = data.load_from_config(self.cfg["data"], data_dir)
        model = self.model
        if tuple(self.ds.input_shape) != tuple(model.input_shape):
            raise GlyphnetError(f"{run_dir}: the model expects inputs of shape "
                                f"{tuple(model.input_shape)} but its data set has "
                                f"{tuple(self.ds.input_shape)}")
        self.x = model.scaler.transform(self.ds.x_test) if model.scaler else self.ds.x_test
        self.proba = model.probabilities(self.x)
        self.predicted = self.proba.argmax(axis=1)
        self.classes = model.class_names
        self.cm = confusion_matrix(self.ds.y_test, self.predicted, len(self.classes))
        self.is_conv = first_conv(model) is not None
        y = self.ds.y_test
        self.one_per_class = [int(np.flatnonzero(y == c)[0]) for c in range(len(self.classes))
                              if np.any(y == c)][:MAX_ROWS]   # test images, one per class
        self.row_titles = [self.classes[y[i]] for i in self.one_per_class]

    def has_file(self, name):
        return os.path.exists(os.path.join(self.run_dir, name))

    def memo(self, key, compute):
        """compute() once per report: for work a figure and its caption share."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


def _summary(page, ctx):
    model = ctx.model
    kind = ("convolutional" if ctx.is_conv else "sigmoid MLP" if is_sigmoid_net(model)
            else "MLP")
    page.section("Summary")
    page.html(f"<p>{kind} with {model.count_params():,} parameters, data set "
              f"{html.escape(ctx.ds.name)}: {len(ctx.ds.x_train)} training and {len(ctx.x)} "
              f"test images of shape {tuple(ctx.ds.input_shape)}, {len(ctx.classes)} classes. "
              f"Test accuracy recomputed now: {np.trace(ctx.cm) / max(len(ctx.x), 1):.4f}.</p>")
    page.html(_table([ctx.metrics], list(ctx.metrics)))
    page.html("<h3>Per epoch</h3>" + _table(ctx.history, ["epoch", "train_loss",
                                                          "train_accuracy", "test_loss",
                                                          "test_accuracy", "seconds"]))
    page.html(f"<pre>{html.escape(model.summary())}</pre>")
    page.section("Configuration")
    page.html(f"<pre>{html.escape(ctx.config_text)}</pre>")


def write_report(run_dir, log=None, data_dir=None):
    """Write RUN_DIR/report.html and return its path: the summary and configuration, then
    every registered figure (FIGURES) that applies to the run, section by section. Progress
    goes to ``log`` (stderr lines by default). The command line imports this module (and so
    matplotlib) only when it writes a report."""
    from ..fileio import write_atomic
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    start = time.perf_counter()
    run_dir = os.fspath(run_dir)
    ctx = RunContext(run_dir, log, data_dir)
    page = _Page(log)
    _summary(page, ctx)
    sections = list(dict.fromkeys(entry.section for entry in FIGURES.values()))
    for section in sections:
        entries = [e for e in FIGURES.values() if e.section == section and e.applies(ctx)]
        if entries:
            page.section(section)
        for entry in entries:
            fig = entry.draw(ctx)
            page.figure(entry.id, fig, entry.caption_for(ctx))
    path = os.path.join(run_dir, "report.html")
    write_atomic(path, page.render(f"glyphnet run {os.path.basename(os.path.abspath(run_dir))}"))
    log(f"report: done in {time.perf_counter() - start:.1f}s")
    return path
