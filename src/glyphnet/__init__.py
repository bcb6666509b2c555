"""glyphnet: neural networks written from scratch in NumPy for handwritten characters."""
from .conv import AvgPool2D, Conv2D, DepthwiseConv2D, MaxPool2D, SeparableConv2D
from .data import Dataset, Scaler, load_mnist
from .errors import ConfigError, DataError, GlyphnetError, TrainingDiverged
from .layers import Dense, Dropout, Flatten, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .losses import CrossEntropy, SumOfSquares
from .model import Sequential
from .normalization import BatchNorm
from .optimizers import SGD, Adam

__version__ = "0.1.0"

__all__ = [
    "Adam", "AvgPool2D", "BatchNorm", "Conv2D", "DepthwiseConv2D", "MaxPool2D", "SeparableConv2D",
    "ConfigError", "CrossEntropy", "DataError", "Dataset", "Dense", "Dropout", "Flatten",
    "GlyphnetError", "LeakyReLU", "ReLU", "SGD", "Scaler", "Sequential", "Sigmoid", "Softmax",
    "SumOfSquares", "Tanh", "TrainingDiverged", "load_mnist",
]
