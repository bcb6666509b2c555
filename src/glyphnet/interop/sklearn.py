"""GlyphnetClassifier: a glyphnet network as a scikit-learn classifier, for Pipeline,
GridSearchCV, cross_val_score and the rest (needs scikit-learn >= 1.6)."""
import copy
import os

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import (check_array, check_is_fitted, column_or_1d,
                                          validate_data)
except ImportError:
    raise ImportError("glyphnet.sklearn needs scikit-learn >= 1.6: pip install "
                      "'glyphnet[sklearn]'") from None

from .. import config as configuration
from ..data import augment as augmentation
from ..errors import ConfigError
from ..nn.conv import ConvLayer, Pool2D
from ..nn.layers import LAYERS


class _Data:
    """What build_model reads from a data set: the input shape and the classes."""

    name = "y"

    def __init__(self, input_shape, classes):
        self.input_shape, self.classes = input_shape, [str(c) for c in classes]
        self.num_classes = len(self.classes)


class GlyphnetClassifier(ClassifierMixin, BaseEstimator):
    """A glyphnet Sequential network trained by ``fit`` on (X, y).

    layers: None (the default MLP, dense 256 - 256 with ReLU and a softmax output), a list of
        layer tables as in a config's ``model.layers`` (e.g. ``[{"type": "dense", "units": 64},
        {"type": "relu"}, {"type": "dense", "units": 10}, {"type": "softmax"}]``), or a whole
        config, as a TOML path or a dict, whose layers, loss, optimiser, penalties, learning-rate
        decay, augmentation and ``data.scale`` are used. The last dense layer gets one unit per
        class, so a config written for MNIST's 10 digits fits any labels.
    epochs, batch_size: as in ``[training]`` (batch_size 0 trains full batch).
    optimizer: "adam", "sgd", "momentum"... (None: the config's, else Adam); lr: its learning
        rate (None: the config's, else the optimiser's default).
    input_shape: the shape of one sample, e.g. (28, 28, 1), for flat (n, 784) inputs to a
        network with convolutions or pooling. Otherwise (n, features) inputs are used flat,
        (n, height, width) as one-channel images and (n, height, width, channels) as given.
    seed: initialisation and shuffling seed; verbose: print each epoch.

    Labels may be any values (strings too): ``classes_`` holds them sorted and the network
    learns their indices. Fitted: ``model_`` (the Sequential, with its Scaler), ``classes_``,
    ``n_features_in_``, ``history_``.
    """

    def __init__(self, layers=None, epochs=10, batch_size=128, optimizer=None, lr=None,
                 input_shape=None, seed=0, verbose=False):
        self.layers = layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.input_shape = input_shape
        self.seed = seed
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True      # images of shape (n, height, width[, c])
        return tags

    # ------------------------------------------------------------------ configuration
    def _raw_config(self):
        """The config these parameters describe, before validation."""
        if self.layers is None:
            raw = {"model": {"layers": copy.deepcopy(configuration.DEFAULT_LAYERS)}}
        elif isinstance(self.layers, (str, os.PathLike)):
            raw = configuration.read_toml(self.layers)
        elif isinstance(self.layers, dict):
            raw = copy.deepcopy(self.layers)
        elif isinstance(self.layers, (list, tuple)):
            raw = {"model": {"layers": copy.deepcopy(list(self.layers))}}
        else:
            raise ValueError(f"layers must be None, a list of layer tables, a config dict or "
                             f"a TOML path, got {type(self.layers).__name__}")
        raw["data"] = {"scale": raw.get("data", {}).get("scale", "unit")}
        raw["seed"] = self.seed
        training = raw.setdefault("training", {})
        training.update(epochs=self.epochs, batch_size=self.batch_size)
        if self.optimizer is not None:
            raw["optimizer"] = {"type": self.optimizer}
        if self.lr is not None:
            raw.setdefault("optimizer", {"type": "adam"})["lr"] = self.lr
        return raw

    def _build(self, sample_shape, n_classes, flat):
        cfg = configuration.resolve(self._raw_config(), "GlyphnetClassifier")
        dense = [s for s in cfg["model"]["layers"] if s.get("type") == "dense"]
        if dense:
            dense[-1]["units"] = n_classes
        spatial = any(issubclass(LAYERS[s["type"]], (ConvLayer, Pool2D))
                      for s in cfg["model"]["layers"])
        if flat and spatial and self.input_shape is None:
            raise ValueError(f"X holds flat samples of {sample_shape[0]} features but the "
                             f"network has convolution or pooling layers: pass input_shape, "
                             f"e.g. input_shape=(28, 28, 1), or X of shape (n, height, width)")
        try:
            model = configuration.build_model(cfg, _Data(sample_shape, range(n_classes)))
        except ConfigError as exc:
            raise ValueError(f"the network cannot be built for samples of shape "
                             f"{sample_shape} and {n_classes} classes: "
                             f"{'; '.join(exc.problems)}") from None
        return model, cfg

    def _inputs(self, X, y=None, reset=False):
        """(X, y, whether X was flat), validated; X as float32 samples of one shape:
        (n, height, width) gains a channel axis and ``input_shape`` reshapes flat samples.
        ``n_features_in_`` counts the values of one sample."""
        X = check_array(X, allow_nd=True, dtype=np.float32)
        was_flat = X.ndim == 2
        shape = X.shape[1:] + ((1,) if X.ndim == 3 else ())
        flat = X.reshape(len(X), -1)
        if y is None:
            flat = validate_data(self, flat, reset=reset)
        else:
            flat, y = validate_data(self, flat, y, reset=reset)
            y = column_or_1d(y, warn=True)
        if self.input_shape is not None:
            shape = tuple(int(v) for v in self.input_shape)
            if int(np.prod(shape)) != flat.shape[1]:
                raise ValueError(f"X has samples of {flat.shape[1]} values, which do not "
                                 f"make input_shape={shape}")
        return flat.reshape((len(flat),) + shape), y, was_flat

    # ------------------------------------------------------------------ estimator API
    def fit(self, X, y):
        """Train a new network on X and labels y; returns self."""
        X, y, flat = self._inputs(X, y, reset=True)
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        model, cfg = self._build(X.shape[1:], len(self.classes_), flat)
        augment = augmentation.from_config(cfg["augment"])
        if augment is not None and X.ndim != 4:
            raise ValueError("the config's [augment] section distorts images, but X holds flat "
                             "samples: pass input_shape, e.g. input_shape=(28, 28, 1)")
        model.scaler.fit(X)
        t = cfg["training"]
        self.history_ = model.fit(model.scaler.transform(X), labels, epochs=t["epochs"],
                                  batch_size=t["batch_size"], shuffle=t["shuffle"],
                                  seed=cfg["seed"], lr_decay=t["lr_decay"], augment=augment,
                                  verbose=bool(self.verbose))
        self.model_ = model
        return self

    def predict_proba(self, X):
        """Class probabilities, one column per entry of ``classes_``."""
        check_is_fitted(self)
        X = self._inputs(X)[0]
        if X.shape[1:] != self.model_.input_shape:
            raise ValueError(f"X has samples of shape {X.shape[1:]}, but {type(self).__name__} "
                             f"was fitted on samples of shape {self.model_.input_shape}")
        return self.model_.probabilities(self.model_.scaler.transform(X)).astype(np.float64)

    def predict(self, X):
        """The most probable label of each sample (one of ``classes_``)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
