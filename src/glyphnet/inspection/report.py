"""RUN_DIR/report.html: one self-contained page (images embedded as base64 PNG, no external
references) with a run's config, metrics and every picture that applies to its model."""
import base64
import html
import io
import json
import os
import sys
import time

import numpy as np

from ..errors import GlyphnetError

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


def _is_sigmoid_net(model):
    layers = model.layers
    return len(layers) % 2 == 0 and all(d.kind == "dense" and s.kind == "sigmoid"
                                        for d, s in zip(layers[0::2], layers[1::2]))


def _dense_first(model):
    first = next((lay for lay in model.layers if lay.params), None)
    return first is not None and first.kind == "dense" and len(model.input_shape) == 3


def _to_unit(model, x):
    """Model-space inputs back to the [0, 1] image range for display."""
    from .explain import input_range
    lo, hi = input_range(model)
    return np.clip((x - lo) / np.where(hi > lo, hi - lo, 1), 0, 1)


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


def write_report(run_dir, log=None, data_dir=None):
    """Write RUN_DIR/report.html and return its path. Progress goes to ``log`` (stderr lines
    by default). Matplotlib is imported here, not when the command line starts."""
    from .. import data
    from . import explain
    from . import figures as viz
    from ..fileio import write_atomic
    from ..nn.layers import Softmax, softmax
    from .monitor import load_dynamics
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    start = time.perf_counter()
    run_dir = os.fspath(run_dir)
    model, cfg, config_text, metrics = _load_run(run_dir)
    history = viz.read_history(run_dir)
    dyn_path = os.path.join(run_dir, "dynamics.npz")
    dynamics = load_dynamics(dyn_path) if os.path.exists(dyn_path) else None
    log("report: loading the test set")
    ds = data.load_from_config(cfg["data"], data_dir)
    if tuple(ds.input_shape) != tuple(model.input_shape):
        raise GlyphnetError(f"{run_dir}: the model expects inputs of shape "
                            f"{tuple(model.input_shape)} but its data set has "
                            f"{tuple(ds.input_shape)}")
    x = model.scaler.transform(ds.x_test) if model.scaler else ds.x_test
    out = model.predict_proba(x)
    proba = out if isinstance(model.layers[-1], Softmax) else softmax(out)
    predicted = proba.argmax(axis=1)
    classes = viz.class_names(model)
    cm = viz.confusion_matrix(ds.y_test, predicted, len(classes))
    is_conv = viz.first_conv(model) is not None

    page = _Page(log)
    page.section("Summary")
    kind = "convolutional" if is_conv else "sigmoid MLP" if _is_sigmoid_net(model) else "MLP"
    page.html(f"<p>{kind} with {model.count_params():,} parameters, data set "
              f"{html.escape(ds.name)}: {len(ds.x_train)} training and {len(x)} test images "
              f"of shape {tuple(ds.input_shape)}, {len(classes)} classes. Test accuracy "
              f"recomputed now: {np.trace(cm) / max(len(x), 1):.4f}.</p>")
    page.html(_table([metrics], list(metrics)))
    page.html("<h3>Per epoch</h3>" + _table(history, ["epoch", "train_loss", "train_accuracy",
                                                       "test_loss", "test_accuracy", "seconds"]))
    page.html(f"<pre>{html.escape(model.summary())}</pre>")

    page.section("Configuration")
    page.html(f"<pre>{html.escape(config_text)}</pre>")

    page.section("Learning curves")
    page.figure("learning-curves", viz.learning_curves(history),
                "Loss and accuracy on the training and test sets after each epoch (training "
                "figures are averages over the epoch).")
    if os.path.exists(os.path.join(run_dir, "batch_losses.csv")):
        page.figure("batch-losses", viz.batch_losses(viz.read_batch_losses(run_dir)),
                    "Training loss of every batch and its moving average.")

    page.section("Weights")
    initial = dynamics["initial"] if dynamics else None
    page.figure("weight-histograms", viz.weight_histograms(model, initial),
                "Distribution of each weight array after training"
                + (", over its initial distribution (outline)." if initial else "."))
    if _dense_first(model):
        page.figure("first-layer-weights", viz.first_layer_weights(model),
                    "First-layer weights drawn as images (blue negative, red positive, one "
                    "scale for all tiles).")
        weighted = [lay for lay in model.layers if lay.params]
        if len(weighted) >= 2 and all(lay.kind == "dense" for lay in weighted):
            page.figure("class-unit-weights", viz.class_unit_weights(model),
                        "For each class, the input weights of the hidden unit most strongly "
                        "connected to it.")
    if is_conv:
        filters = dynamics["filters"] if dynamics and dynamics["filters"] else model
        if isinstance(filters, dict) and len(filters) > 5:
            keys = list(filters)
            pick = sorted({keys[round(k * (len(keys) - 1) / 4)] for k in range(5)})
            filters = {k: filters[k] for k in pick}
        page.figure("conv-filters", viz.conv_filters(filters),
                    "Kernels of the first convolutional layer"
                    + (" at initialisation and after some epochs." if isinstance(filters, dict)
                       else "."))

    if dynamics is not None and len(dynamics["steps"]):
        page.section("Training dynamics")
        page.figure("training-dynamics", viz.training_dynamics(dynamics),
                    "Recorded every few steps while training (dynamics.npz).")
        if len(dynamics["check_cost"]):
            page.figure("gradient-angle", viz.gradient_angle(dynamics),
                        "Gradient check in float64 on a few training images at steps 1, 8, 64, "
                        "...: the angle between the finite-difference and the analytic gradient "
                        "of each parameter array.")

    one_per_class = [int(np.flatnonzero(ds.y_test == c)[0]) for c in range(len(classes))
                     if np.any(ds.y_test == c)][:MAX_ROWS]
    row_titles = [classes[ds.y_test[i]] for i in one_per_class]
    if is_conv:
        page.section("Inside the convolutional layers")
        page.figure("feature-maps", viz.feature_maps(model, x[0]),
                    f"Feature maps of the first test image (class {classes[ds.y_test[0]]}) "
                    f"after each convolution and pooling stage.")
        log("report: deconvolution")
        proj = explain.deconvolution(model, x[one_per_class])
        page.figure("deconvolution", viz.deconvolution_grid(proj, row_titles),
                    "Deconvolution view: for one test image of each class, the activation map "
                    "of each first-layer filter projected back onto the image.")

    page.section("Results on the test set")
    page.figure("confusion-matrix", viz.confusion(cm, classes),
                f"Confusion matrix of the {len(x)} test images.")
    page.figure("per-class-accuracy", viz.per_class_accuracy(cm, classes),
                "Accuracy per true class.")
    page.figure("misclassified", viz.misclassified(ds.x_test, ds.y_test, predicted, classes),
                "Misclassified test images, in test-set order.")
    page.figure("confident-mistakes",
                viz.confident_mistakes(ds.x_test, ds.y_test, proba, classes),
                "The mistakes made with the highest probability.")
    page.figure("correct", viz.correct(ds.x_test, ds.y_test, predicted, classes),
                "Correctly classified test images, in test-set order.")

    page.section("What the network looks at and imagines")
    sal = explain.saliency(model, x[one_per_class])
    page.figure("saliency", viz.saliency_maps(ds.x_test[one_per_class], sal, row_titles),
                "Input gradients of the predicted class score for one test image per class "
                "(titled with the true class).")
    log("report: activation maximisation")
    targets = np.arange(len(classes))
    dream, scores = explain.activation_maximisation(model, targets)
    page.figure("activation-maximisation",
                viz.image_grid(_to_unit(model, dream), classes,
                               suptitle="activation maximisation: inputs that maximise each "
                                        "class score"),
                f"Gradient ascent on the input from a grey image ({len(scores) - 1} steps); the "
                f"class scores rose from {scores[0].mean():.2f} to {scores[-1].mean():.2f} on "
                f"average.")
    if _is_sigmoid_net(model):
        queries = np.stack([explain.backwards_query(model, c) for c in targets])
        page.figure("backwards-query",
                    viz.image_grid(_to_unit(model, queries), classes,
                                   suptitle="backwards query: the image each class output asks "
                                            "for"),
                    "Backwards query of the sigmoid network (report 002): a one-hot target "
                    "pushed back through the inverse sigmoid (logit) and the transposed weights.")

    path = os.path.join(run_dir, "report.html")
    write_atomic(path, page.render(f"glyphnet run {os.path.basename(os.path.abspath(run_dir))}"))
    log(f"report: done in {time.perf_counter() - start:.1f}s")
    return path
