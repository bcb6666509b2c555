"""The networks: layers, convolution, normalisation, losses, optimisers, initialisers, the
Sequential model and its training loop, gradient checks. Written against NumPy; every CPU
trick lives in backend.py."""
from .conv import AvgPool2D, Conv2D, DepthwiseConv2D, MaxPool2D, SeparableConv2D
from .layers import Dense, Dropout, Flatten, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .losses import CrossEntropy, SumOfSquares
from .model import Sequential
from .normalization import BatchNorm
from .optimizers import SGD, Adam
from .scaling import Scaler
