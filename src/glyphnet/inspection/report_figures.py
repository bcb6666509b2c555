"""The pictures of RUN_DIR/report.html, one registered entry each.

A report figure is an id (the alt text and HTML id of its picture), the section it appears
in, when it applies to a run, how it is drawn and its caption; ``applies``, ``draw`` and a
callable caption take the run's :class:`~glyphnet.inspection.report.RunContext`. Sections
appear in the order their first figure was registered. A new picture is one more entry:

    @report_figure("ink-per-class", "Results on the test set",
                   caption="Mean ink of the test images of each class.")
    def _ink(ctx):
        return my_matplotlib_figure(ctx.ds.x_test, ctx.ds.y_test)
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..registry import Registry
from . import explain
from . import figures as viz
from .roles import all_dense, first_dense_on_images, is_sigmoid_net, weighted_layers

FIGURES = Registry("report figure")


def _always(ctx):
    return True


@dataclass(frozen=True)
class ReportFigure:
    id: str
    section: str
    draw: Callable        # draw(ctx) -> matplotlib Figure
    caption: object       # a string, or caption(ctx) -> string (called after draw)
    applies: Callable = _always

    def caption_for(self, ctx):
        return self.caption(ctx) if callable(self.caption) else self.caption


def report_figure(id, section, caption, applies=None):
    """Decorator: register ``draw(ctx)`` as the report figure ``id`` of ``section``."""
    def add(draw):
        FIGURES.register(id, ReportFigure(id, section, draw, caption, applies or _always))
        return draw
    return add


def _has_dynamics(ctx):
    return ctx.dynamics is not None and len(ctx.dynamics["steps"]) > 0


def _is_conv(ctx):
    return ctx.is_conv


def _dense_on_images(ctx):
    return first_dense_on_images(ctx.model) is not None


# ------------------------------------------------------------------------------ curves
@report_figure("learning-curves", "Learning curves",
               "Loss and accuracy on the training and test sets after each epoch (training "
               "figures are averages over the epoch).")
def _learning_curves(ctx):
    return viz.learning_curves(ctx.history)


@report_figure("batch-losses", "Learning curves",
               "Training loss of every batch and its moving average.",
               applies=lambda ctx: ctx.has_file("batch_losses.csv"))
def _batch_losses(ctx):
    return viz.batch_losses(viz.read_batch_losses(ctx.run_dir))


@report_figure("step-curves", "Learning curves",
               "Every training.eval_every steps: loss and accuracy of the training batch "
               "(dashed) and of a fixed evaluation subset of the test set (solid).",
               applies=lambda ctx: ctx.has_file("steps.csv"))
def _step_curves(ctx):
    from .compare import load_run, split_curves
    run = load_run(ctx.run_dir)
    run.label = "this run"
    return split_curves([run], per_iteration=True)[0]


# ------------------------------------------------------------------------------ weights
def _initial(ctx):
    return ctx.dynamics["initial"] if ctx.dynamics else None


@report_figure("weight-histograms", "Weights",
               lambda ctx: "Distribution of each weight array after training"
               + (", over its initial distribution (outline)." if _initial(ctx) else "."))
def _weight_histograms(ctx):
    return viz.weight_histograms(ctx.model, _initial(ctx))


@report_figure("first-layer-weights", "Weights",
               "First-layer weights drawn as images (blue negative, red positive, one scale "
               "for all tiles).", applies=_dense_on_images)
def _first_layer_weights(ctx):
    return viz.first_layer_weights(ctx.model)


@report_figure("class-unit-weights", "Weights",
               "For each class, the input weights of the hidden unit most strongly connected "
               "to it.",
               applies=lambda ctx: _dense_on_images(ctx) and all_dense(ctx.model)
               and len(weighted_layers(ctx.model)) >= 2)
def _class_unit_weights(ctx):
    return viz.class_unit_weights(ctx.model)


def _filters(ctx):
    """The first conv layer's kernels over training (at most 5 epochs), or the model's."""
    filters = ctx.dynamics["filters"] if ctx.dynamics and ctx.dynamics["filters"] else ctx.model
    if isinstance(filters, dict) and len(filters) > 5:
        keys = list(filters)
        pick = sorted({keys[round(k * (len(keys) - 1) / 4)] for k in range(5)})
        filters = {k: filters[k] for k in pick}
    return filters


@report_figure("conv-filters", "Weights",
               lambda ctx: "Kernels of the first convolutional layer"
               + (" at initialisation and after some epochs." if isinstance(_filters(ctx), dict)
                  else "."), applies=_is_conv)
def _conv_filters(ctx):
    return viz.conv_filters(_filters(ctx))


# ------------------------------------------------------------------------------ dynamics
@report_figure("training-dynamics", "Training dynamics",
               "Recorded every few steps while training (dynamics.npz).", applies=_has_dynamics)
def _training_dynamics(ctx):
    return viz.training_dynamics(ctx.dynamics)


@report_figure("gradient-angle", "Training dynamics",
               "Gradient check in float64 on a few training images at steps 1, 8, 64, ...: the "
               "angle between the finite-difference and the analytic gradient of each parameter "
               "array.", applies=lambda ctx: _has_dynamics(ctx) and len(ctx.dynamics["check_cost"]))
def _gradient_angle(ctx):
    return viz.gradient_angle(ctx.dynamics)


# ------------------------------------------------------------------------------ convolution
@report_figure("feature-maps", "Inside the convolutional layers",
               lambda ctx: f"Feature maps of the first test image (class "
               f"{ctx.classes[ctx.ds.y_test[0]]}) after each convolution and pooling stage.",
               applies=_is_conv)
def _feature_maps(ctx):
    return viz.feature_maps(ctx.model, ctx.x[0])


@report_figure("deconvolution", "Inside the convolutional layers",
               "Deconvolution view: for one test image of each class, the activation map of each "
               "first-layer filter projected back onto the image.", applies=_is_conv)
def _deconvolution(ctx):
    ctx.log("report: deconvolution")
    proj = explain.deconvolution(ctx.model, ctx.x[ctx.one_per_class])
    return viz.deconvolution_grid(proj, ctx.row_titles)


# ------------------------------------------------------------------------------ results
@report_figure("confusion-matrix", "Results on the test set",
               lambda ctx: f"Confusion matrix of the {len(ctx.x)} test images.")
def _confusion(ctx):
    return viz.confusion(ctx.cm, ctx.classes)


@report_figure("per-class-accuracy", "Results on the test set", "Accuracy per true class.")
def _per_class_accuracy(ctx):
    return viz.per_class_accuracy(ctx.cm, ctx.classes)


@report_figure("misclassified", "Results on the test set",
               "Misclassified test images, in test-set order.")
def _misclassified(ctx):
    return viz.misclassified(ctx.ds.x_test, ctx.ds.y_test, ctx.predicted, ctx.classes)


@report_figure("confident-mistakes", "Results on the test set",
               "The mistakes made with the highest probability.")
def _confident_mistakes(ctx):
    return viz.confident_mistakes(ctx.ds.x_test, ctx.ds.y_test, ctx.proba, ctx.classes)


@report_figure("correct", "Results on the test set",
               "Correctly classified test images, in test-set order.")
def _correct(ctx):
    return viz.correct(ctx.ds.x_test, ctx.ds.y_test, ctx.predicted, ctx.classes)


# ------------------------------------------------------------------------------ explanations
def _to_unit(model, x):
    """Model-space inputs back to the [0, 1] image range for display."""
    lo, hi = explain.input_range(model)
    return np.clip((x - lo) / np.where(hi > lo, hi - lo, 1), 0, 1)


@report_figure("saliency", "What the network looks at and imagines",
               "Input gradients of the predicted class score for one test image per class "
               "(titled with the true class).")
def _saliency(ctx):
    sal = explain.saliency(ctx.model, ctx.x[ctx.one_per_class])
    return viz.saliency_maps(ctx.ds.x_test[ctx.one_per_class], sal, ctx.row_titles)


def _dream(ctx):
    def compute():
        ctx.log("report: activation maximisation")
        return explain.activation_maximisation(ctx.model, np.arange(len(ctx.classes)))
    return ctx.memo("activation-maximisation", compute)


def _dream_caption(ctx):
    _, scores = _dream(ctx)
    return (f"Gradient ascent on the input from a grey image ({len(scores) - 1} steps); the "
            f"class scores rose from {scores[0].mean():.2f} to {scores[-1].mean():.2f} on "
            f"average.")


@report_figure("activation-maximisation", "What the network looks at and imagines",
               _dream_caption)
def _activation_maximisation(ctx):
    dream, _ = _dream(ctx)
    return viz.image_grid(_to_unit(ctx.model, dream), ctx.classes,
                          suptitle="activation maximisation: inputs that maximise each class "
                                   "score")


@report_figure("backwards-query", "What the network looks at and imagines",
               "Backwards query of the sigmoid network (report 002): a one-hot target pushed "
               "back through the inverse sigmoid (logit) and the transposed weights.",
               applies=lambda ctx: is_sigmoid_net(ctx.model))
def _backwards_query(ctx):
    queries = np.stack([explain.backwards_query(ctx.model, c) for c in range(len(ctx.classes))])
    return viz.image_grid(_to_unit(ctx.model, queries), ctx.classes,
                          suptitle="backwards query: the image each class output asks for")


# ------------------------------------------------------------------------------ teaching
def _activation_options(ctx):
    """(slopes of sigmoid/tanh layers, leaks of leaky ReLU layers) of the model."""
    from ..nn.layers import LeakyReLU, Sigmoid, Tanh
    layers = ctx.model.layers
    slopes = sorted({lay.slope for lay in layers if isinstance(lay, (Sigmoid, Tanh))})
    leaks = sorted({lay.negative_slope for lay in layers if isinstance(lay, LeakyReLU)})
    return slopes, leaks


@report_figure("activation-functions", "How the layers work",
               "The activation functions of this model's kind (for the slopes and leaks it "
               "uses) and their derivatives, computed by the layers themselves.",
               applies=lambda ctx: any(_activation_options(ctx)))
def _activation_functions(ctx):
    from .figures.teaching import activations
    slopes, leaks = _activation_options(ctx)
    return activations(slopes or (1.0,), leaks)


def _has_batchnorm(ctx):
    from ..nn.normalization import BatchNorm
    return any(isinstance(layer, BatchNorm) for layer in ctx.model.layers)


@report_figure("batchnorm-batch", "How the layers work",
               "What batch normalisation does to a batch of 256 test images: each batch-norm "
               "layer's inputs and outputs, normalised with the batch's own statistics.",
               applies=lambda ctx: _has_batchnorm(ctx))
def _batchnorm_batch(ctx):
    from .figures.teaching import batchnorm
    return batchnorm(ctx.model, ctx.x[:256])
