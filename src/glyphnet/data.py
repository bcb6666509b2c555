"""Data sets: IDX and CSV readers with validation, the bundled MNIST, and input scaling.

Every loader returns images as float32 arrays of shape (N, H, W, C) with values in [0, 1] (ink
high) and labels as int64 class indices.
"""
import gzip
import os
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from .errors import DataError

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class Dataset:
    """Train and test splits of one data set."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list = field(default_factory=list)

    @property
    def input_shape(self):
        return self.x_train.shape[1:]

    @property
    def num_classes(self):
        return len(self.classes)


def _open(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: file not found")
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def read_idx(path):
    """Read an IDX file (optionally gzip-compressed) into an array, validating its header.

    IDX: two zero bytes, a type code, the number of dimensions, then each size as a big-endian
    uint32, then the data. MNIST images have magic 2051 (ubyte, 3 dims), labels 2049 (1 dim).
    """
    try:
        with _open(path) as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: header says shape {shape} ({expected} bytes of data) but the "
                        f"file holds {len(raw) - header} bytes; the file is truncated or corrupt")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def _check_labels(path, labels, num_classes=None):
    if labels.ndim != 1:
        raise DataError(f"{path}: labels must be one-dimensional, got shape {labels.shape}")
    if len(labels) and labels.min() < 0:
        raise DataError(f"{path}: negative label {int(labels.min())}")
    if num_classes is not None and len(labels) and labels.max() >= num_classes:
        raise DataError(f"{path}: label {int(labels.max())} is out of range; expected labels "
                        f"0..{num_classes - 1}")
    return labels.astype(np.int64)


def _to_float_images(path, images):
    """(N, H, W) or (N, H, W, C) integers 0..255 -> float32 NHWC in [0, 1]."""
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise DataError(f"{path}: expected images of shape (N, H, W), got {images.shape}")
    images = images.astype(np.float32)
    if images.size and (images.min() < 0 or images.max() > 255):
        raise DataError(f"{path}: pixel values must lie in 0..255, found "
                        f"{images.min():g}..{images.max():g}")
    return images / 255.0


def load_idx_pair(images_path, labels_path, num_classes=None):
    """Images and labels from two IDX files, checked against each other."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim not in (3, 4):
        raise DataError(f"{images_path}: expected an image file (3 dimensions), got shape "
                        f"{images.shape}")
    labels = _check_labels(labels_path, labels, num_classes)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                        f"{len(labels)} labels")
    return _to_float_images(images_path, images), labels


def load_csv(path, image_shape=(28, 28), num_classes=None):
    """MNIST-style CSV: one image per row, the label first, then the pixels (0..255) row-major.
    A header line is skipped if its first field is not a number."""
    pixels = int(np.prod(image_shape))
    try:
        with _open(path) as f:
            text = f.read().decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and not lines[0].split(",")[0].strip().lstrip("-").isdigit():
        lines = lines[1:]
    rows = []
    for number, line in enumerate(lines, 1):
        fields = line.split(",")
        if len(fields) != pixels + 1:
            raise DataError(f"{path}: row {number} has {len(fields)} fields; expected "
                            f"{pixels + 1} (a label and {pixels} pixels for {image_shape} images)")
        rows.append(fields)
    if not rows:
        raise DataError(f"{path}: no data rows")
    try:
        table = np.array(rows, dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"{path}: non-numeric value ({exc})") from None
    labels = table[:, 0]
    if np.any(labels != np.round(labels)):
        raise DataError(f"{path}: labels must be integers")
    labels = _check_labels(path, labels.astype(np.int64), num_classes)
    images = table[:, 1:].reshape((len(table),) + tuple(image_shape))
    return _to_float_images(path, images), labels


def load_files(train, test, classes=None, fmt=None, image_shape=(28, 28), name="custom"):
    """A Dataset from user files: ``train``/``test`` are a CSV path or an (images, labels) pair
    of IDX paths."""
    num_classes = None if classes is None else len(classes)

    def one(spec):
        if isinstance(spec, (list, tuple)):
            return load_idx_pair(spec[0], spec[1], num_classes)
        kind = fmt or ("csv" if ".csv" in os.path.basename(spec) else "idx")
        if kind != "csv":
            raise DataError(f"{spec}: IDX data needs an [images, labels] pair of files")
        return load_csv(spec, image_shape, num_classes)

    x_train, y_train = one(train)
    x_test, y_test = one(test)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"train images are {x_train.shape[1:3]} but test images are "
                        f"{x_test.shape[1:3]}")
    if classes is None:
        classes = [str(i) for i in range(int(max(y_train.max(), y_test.max())) + 1)]
    return Dataset(name, x_train, y_train, x_test, y_test, list(classes))


def bundled_mnist_dir():
    return resources.files("glyphnet") / "bundled" / "mnist"


def load_mnist(directory=None):
    """MNIST from ``directory`` (default: the copy bundled with glyphnet)."""
    d = bundled_mnist_dir() if directory is None else directory
    p = lambda name: os.path.join(os.fspath(d), name)  # noqa: E731
    x_train, y_train = load_idx_pair(p("train-images-idx3-ubyte.gz"),
                                     p("train-labels-idx1-ubyte.gz"), 10)
    x_test, y_test = load_idx_pair(p("t10k-images-idx3-ubyte.gz"),
                                   p("t10k-labels-idx1-ubyte.gz"), 10)
    return Dataset("mnist", x_train, y_train, x_test, y_test, [str(i) for i in range(10)])


class Scaler:
    """Maps [0, 1] images to the network's input range. Modes:

    unit: x (values in [0, 1]);  offset: 0.01 + 0.99 x (values in [0.01, 1]);
    standardize: (x - mean) / std per pixel, fitted on the training set;
    standardize_global: the same with one mean and std for all pixels.
    """

    MODES = ("unit", "offset", "standardize", "standardize_global")

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


# ---------------------------------------------------------------------------- configs
DATA_DEFAULTS = {"dataset": "mnist", "scale": "unit", "train": "", "test": "", "format": "",
                 "classes": [], "train_limit": 0, "test_limit": 0}
DATASETS = ("mnist", "files")


def check_config(section, problems):
    """Validate the [data] section, appending 'key: message' strings to ``problems``."""
    out = dict(DATA_DEFAULTS)
    for key, value in section.items():
        if key not in DATA_DEFAULTS:
            problems.append(f"data.{key}: unknown key (expected one of "
                            f"{', '.join(DATA_DEFAULTS)})")
            continue
        out[key] = value
    if out["dataset"] not in DATASETS:
        problems.append(f"data.dataset: unknown data set {out['dataset']!r}; expected one of "
                        f"{', '.join(DATASETS)}")
    if out["scale"] not in Scaler.MODES:
        problems.append(f"data.scale: expected one of {', '.join(Scaler.MODES)}, "
                        f"got {out['scale']!r}")
    for key in ("train_limit", "test_limit"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            problems.append(f"data.{key}: expected an integer >= 0 (0 = all), got {v!r}")
    if out["format"] not in ("", "idx", "csv"):
        problems.append(f"data.format: expected 'idx' or 'csv', got {out['format']!r}")
    if not isinstance(out["classes"], list) or not all(isinstance(c, str) for c in out["classes"]):
        problems.append(f"data.classes: expected a list of class names, got {out['classes']!r}")
    if out["dataset"] == "files":
        for key in ("train", "test"):
            v = out[key]
            ok = (isinstance(v, str) and v) or (
                isinstance(v, list) and len(v) == 2 and all(isinstance(p, str) for p in v))
            if not ok:
                problems.append(f"data.{key}: expected a CSV path or an [images, labels] pair of "
                                f"IDX paths, got {v!r}")
    return out


def load_from_config(section):
    """The Dataset a resolved [data] section describes, with limits applied."""
    if section["dataset"] == "mnist":
        ds = load_mnist()
    else:
        ds = load_files(section["train"], section["test"], section["classes"] or None,
                        section["format"] or None)
    if section["train_limit"]:
        ds.x_train, ds.y_train = ds.x_train[:section["train_limit"]], ds.y_train[:section["train_limit"]]
    if section["test_limit"]:
        ds.x_test, ds.y_test = ds.x_test[:section["test_limit"]], ds.y_test[:section["test_limit"]]
    return ds
