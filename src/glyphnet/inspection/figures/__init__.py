"""Pictures of a training run (matplotlib, headless: figures are drawn with the Agg renderer and
never touch pyplot's global state), one module per subject: curves (history and training
dynamics), weights, convolution, results (test set) and images (grids and saliency).

Every function returns a ``matplotlib.figure.Figure`` and, given ``path``, also writes it there
as a PNG. Images are NHWC arrays with values in [0, 1], ink high; they are drawn dark on light.
Weights are drawn on a diverging scale: blue negative, white 0, red positive.
"""
from .convolution import conv_filters, deconvolution_grid, feature_maps
from .curves import (batch_losses, compare_runs, gradient_angle, learning_curves,
                     read_batch_losses, read_history, training_dynamics, weight_trajectories)
from .images import image_grid, saliency_maps
from .results import confident_mistakes, confusion, correct, misclassified, per_class_accuracy
from .weights import class_unit_weights, first_layer_weights, strongest_units, weight_histograms

__all__ = [
    "batch_losses", "class_unit_weights", "compare_runs", "conv_filters", "confident_mistakes",
    "confusion", "correct", "deconvolution_grid", "feature_maps", "first_layer_weights",
    "gradient_angle", "image_grid", "learning_curves", "misclassified", "per_class_accuracy",
    "read_batch_losses", "read_history", "saliency_maps", "strongest_units", "training_dynamics",
    "weight_histograms", "weight_trajectories",
]
