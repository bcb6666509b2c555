"""glyphnet: neural networks written from scratch in NumPy for handwritten characters.

The package is laid out by concern: ``glyphnet.nn`` (the networks and their training),
``glyphnet.data`` (data sets and images), ``glyphnet.inspection`` (metrics, pictures, reports),
``glyphnet.experiments`` (sweeps), ``glyphnet.web`` (the browser app) and ``glyphnet.cli``
(the command line, a thin shell over the rest). See docs/architecture.md.
"""
from .data import Dataset, load_mnist
from .errors import ConfigError, DataError, GlyphnetError, TrainingDiverged
from .nn import (SGD, Adam, AvgPool2D, BatchNorm, Conv2D, CrossEntropy, Dense,
                 DepthwiseConv2D, Dropout, Flatten, LeakyReLU, MaxPool2D, ReLU, Scaler,
                 SeparableConv2D, Sequential, Sigmoid, Softmax, SumOfSquares, Tanh)

__version__ = "0.1.0"

__all__ = [
    "Adam", "AvgPool2D", "BatchNorm", "Conv2D", "DepthwiseConv2D", "MaxPool2D", "SeparableConv2D",
    "ConfigError", "CrossEntropy", "DataError", "Dataset", "Dense", "Dropout", "Flatten",
    "GlyphnetError", "LeakyReLU", "ReLU", "SGD", "Scaler", "Sequential", "Sigmoid", "Softmax",
    "SumOfSquares", "Tanh", "TrainingDiverged", "load_mnist",
]
