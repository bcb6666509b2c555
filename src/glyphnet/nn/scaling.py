"""Input scaling: the map from [0, 1] images to the range a network was trained on. A model
carries its Scaler, so predictions see inputs prepared as in training."""
import numpy as np


class Scaler:
    """Maps [0, 1] images to the network's input range. Modes:

    unit: x (values in [0, 1]);  offset: 0.01 + 0.99 x (values in [0.01, 1]);
    symmetric: 2 x - 1 (values in [-1, 1]);
    standardize: (x - mean) / std per pixel, fitted on the training set;
    standardize_global: the same with one mean and std for all pixels.
    """

    MODES = ("unit", "offset", "symmetric", "standardize", "standardize_global")

    def __init__(self, mode="unit"):
        if mode not in self.MODES:
            raise ValueError(f"unknown scaling {mode!r}; expected one of {', '.join(self.MODES)}")
        self.mode = mode
        self.mean = self.std = None

    def fit(self, x):
        if self.mode == "standardize":
            self.mean = x.mean(axis=0).astype(np.float32)
            self.std = np.maximum(x.std(axis=0), 1e-2).astype(np.float32)
        elif self.mode == "standardize_global":
            self.mean = np.float32(x.mean()).reshape(1)
            self.std = np.float32(max(x.std(), 1e-2)).reshape(1)
        return self

    def transform(self, x):
        if self.mode == "unit":
            return np.asarray(x, np.float32)
        if self.mode == "offset":
            return (0.01 + 0.99 * np.asarray(x, np.float32)).astype(np.float32)
        if self.mode == "symmetric":
            return (2 * np.asarray(x, np.float32) - 1).astype(np.float32)
        if self.mean is None:
            raise RuntimeError("Scaler.fit must be called before transform for standardisation")
        return ((x - self.mean) / self.std).astype(np.float32)

    def get_config(self):
        return {"mode": self.mode}

    def arrays(self):
        return {} if self.mean is None else {"mean": self.mean, "std": self.std}

    @classmethod
    def from_config(cls, config, arrays):
        s = cls(config["mode"])
        s.mean, s.std = arrays.get("mean"), arrays.get("std")
        return s
