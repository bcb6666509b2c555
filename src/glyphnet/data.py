"""Data sets: IDX and CSV readers with validation, the bundled MNIST, the named sets found in
the data directory (USPS, AT&T faces, EMNIST balanced), image folders, subsets and splits, and
input scaling.

Every loader returns images as float32 arrays of shape (N, H, W, C) with values in [0, 1] (ink
high) and labels as int64 class indices.
"""
import gzip
import os
import re
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
    x_val: np.ndarray = None
    y_val: np.ndarray = None
    source: str = ""
    skipped: list = field(default_factory=list)

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
            first = f.readline().decode("utf-8", "replace")
            if not first.strip():
                raise DataError(f"{path}: no data rows")
            header = _is_header(first)
            f.seek(0)
            table = np.loadtxt(f, delimiter=",", dtype=np.float32, skiprows=int(header),
                               ndmin=2)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    except ValueError:
        table = _parse_csv_slowly(path, pixels, image_shape)
    if table.shape[0] == 0:
        raise DataError(f"{path}: no data rows")
    if table.shape[1] != pixels + 1:
        raise DataError(f"{path}: rows have {table.shape[1]} fields; expected {pixels + 1} "
                        f"(a label and {pixels} pixels for {image_shape} images)")
    labels = table[:, 0]
    if np.any(labels != np.round(labels)):
        raise DataError(f"{path}: labels must be integers")
    labels = _check_labels(path, labels.astype(np.int64), num_classes)
    images = table[:, 1:].reshape((len(table),) + tuple(image_shape))
    return _to_float_images(path, images), labels


def _is_header(line):
    """A first line whose first field is not a number names the columns."""
    try:
        float(line.split(",")[0])
    except ValueError:
        return True
    return False


def _parse_csv_slowly(path, pixels, image_shape):
    """Row-by-row parsing, to name the first bad row when the fast reader fails."""
    try:
        with _open(path) as f:
            text = f.read().decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and _is_header(lines[0]):
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
        return np.array(rows, dtype=np.float32)
    except ValueError as exc:
        raise DataError(f"{path}: non-numeric value ({exc})") from None


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
    return Dataset("mnist", x_train, y_train, x_test, y_test, [str(i) for i in range(10)],
                   source=os.fspath(d))


# ---------------------------------------------------------------------------- named data sets
DATA_ENV = "GLYPHNET_DATA"
EMNIST_FETCH = "glyphnet data fetch emnist-balanced"
# emnist-balanced-mapping.txt: label -> character (digits, upper case, and the 11 lower-case
# letters whose shapes differ from their capitals).
EMNIST_BALANCED_CLASSES = list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt")


def data_dir():
    """Where the named data sets live: $GLYPHNET_DATA (set by ``--data-dir``), else
    ~/.glyphnet/data."""
    return os.environ.get(DATA_ENV) or os.path.join(os.path.expanduser("~"), ".glyphnet", "data")


def data_dir_source():
    """(the data directory, how it was chosen) for messages."""
    d = data_dir()
    how = f"{DATA_ENV}={d}" if os.environ.get(DATA_ENV) else f"the default {d}, {DATA_ENV} unset"
    return d, how


def _missing(name, looked, extra=""):
    d, how = data_dir_source()
    places = "; ".join(looked)
    return DataError(f"data set {name!r} not found in the data directory {d} ({how}); looked "
                     f"for {places}. Set {DATA_ENV} or pass --data-dir DIR (the folder that "
                     f"holds {os.path.basename(os.path.dirname(looked[0]))}/).{extra}")


def load_usps(directory=None):
    """USPS digits, 16x16, 7291 train / 2007 test, from DATA/usps/usps.npz."""
    path = os.path.join(directory or os.path.join(data_dir(), "usps"), "usps.npz")
    if not os.path.exists(path):
        raise _missing("usps", [path])
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in ("X_train", "y_train", "X_test", "y_test")}
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: cannot read USPS arrays X_train, y_train, X_test, y_test "
                        f"({exc})") from None
    split = []
    for part in ("train", "test"):
        x, y = arrays[f"X_{part}"], arrays[f"y_{part}"]
        if x.ndim != 2 or x.shape[1] != 256 or len(x) != len(y):
            raise DataError(f"{path}: X_{part} must be (N, 256) with one label each, got "
                            f"{x.shape} and {y.shape}")
        if x.size and (x.min() < 0 or x.max() > 1):
            raise DataError(f"{path}: X_{part} values must lie in [0, 1]")
        split += [x.reshape(-1, 16, 16, 1).astype(np.float32),
                  _check_labels(f"{path} y_{part}", y.astype(np.int64), 10)]
    return Dataset("usps", *split, [str(i) for i in range(10)], source=path)


def _natural_key(text):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _faces_tree(root):
    """Faces from the PGM tree root/sN/M.pgm (N = person 1..40, M = image 1..10)."""
    from .images import read_image
    people = sorted((d for d in os.listdir(root) if re.fullmatch(r"s\d+", d)), key=_natural_key)
    images, labels = [], []
    for label, person in enumerate(people):
        folder = os.path.join(root, person)
        for name in sorted((f for f in os.listdir(folder) if f.endswith(".pgm")),
                           key=_natural_key):
            images.append(np.round(read_image(os.path.join(folder, name)) * 255))
            labels.append(label)
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DataError(f"{root}: face images differ in size: {sorted(shapes)}")
    return np.array(images, np.uint8), np.array(labels, np.int64), people


def load_faces(directory=None, test_per_class=5, shuffle=False, seed=0):
    """AT&T (ORL) faces, 40 people x 10 images of 112x92, from DATA/att_faces/att_faces.npz or
    the PGM tree DATA/att_faces/[att_faces/]sN/M.pgm. No official split: the last
    ``test_per_class`` images of each person (after shuffling if asked) are the test set."""
    root = directory or os.path.join(data_dir(), "att_faces")
    npz = os.path.join(root, "att_faces.npz")
    trees = [root, os.path.join(root, "att_faces")]
    if os.path.exists(npz):
        try:
            with np.load(npz) as z:
                images, labels = z["images"], z["labels"].astype(np.int64)
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{npz}: cannot read arrays images, labels ({exc})") from None
        if images.ndim != 3 or len(images) != len(labels):
            raise DataError(f"{npz}: images must be (N, H, W) with one label each, got "
                            f"{images.shape} and {labels.shape}")
        labels = _check_labels(npz, labels)
        people, source = [f"s{k + 1}" for k in range(int(labels.max()) + 1)], npz
    else:
        tree = next((t for t in trees if os.path.isdir(os.path.join(t, "s1"))), None)
        if tree is None:
            raise _missing("faces", [npz] + [os.path.join(t, "s1", "1.pgm") for t in trees])
        images, labels, people = _faces_tree(tree)
        source = tree
    x = _to_float_images(source, images)
    train, test = split_per_class(labels, test_per_class, shuffle, seed)
    return Dataset("faces", x[train], labels[train], x[test], labels[test], people,
                   source=source)


EMNIST_FILES = {
    "train": ("emnist-balanced-train-images-idx3-ubyte", "emnist-balanced-train-labels-idx1-ubyte",
              "emnist-balanced-train.csv"),
    "test": ("emnist-balanced-test-images-idx3-ubyte", "emnist-balanced-test-labels-idx1-ubyte",
             "emnist-balanced-test.csv"),
}


def emnist_upright(images):
    """EMNIST stores each picture transposed relative to MNIST; swap rows and columns."""
    return np.ascontiguousarray(np.swapaxes(images, 1, 2))


def _emnist_part(directory, part):
    images_name, labels_name, csv_name = EMNIST_FILES[part]
    for suffix in (".gz", ""):
        ip = os.path.join(directory, images_name + suffix)
        lp = os.path.join(directory, labels_name + suffix)
        if os.path.exists(ip) and os.path.exists(lp):
            x, y = load_idx_pair(ip, lp, len(EMNIST_BALANCED_CLASSES))
            return emnist_upright(x), y, ip
    for suffix in ("", ".gz"):
        cp = os.path.join(directory, csv_name + suffix)
        if os.path.exists(cp):
            x, y = load_csv(cp, (28, 28), len(EMNIST_BALANCED_CLASSES))
            return emnist_upright(x), y, cp
    return None


def load_emnist(directory=None):
    """EMNIST balanced (47 classes, 112800 train / 18800 test, 28x28) from DATA/emnist: the
    official IDX files (gzip or not) or the common CSV copies, turned upright."""
    d = directory or os.path.join(data_dir(), "emnist")
    parts = {part: _emnist_part(d, part) for part in ("train", "test")}
    if None in parts.values():
        part = "train" if parts["train"] is None else "test"
        looked = [os.path.join(d, n + ".gz") for n in EMNIST_FILES[part][:2]]
        looked.append(os.path.join(d, EMNIST_FILES[part][2]))
        raise _missing("emnist-balanced", looked, f" To download the official files (about 33 "
                       f"MB of the 561 MB NIST archive are kept), run: {EMNIST_FETCH}")
    (xtr, ytr, src), (xte, yte, _) = parts["train"], parts["test"]
    return Dataset("emnist-balanced", xtr, ytr, xte, yte, list(EMNIST_BALANCED_CLASSES),
                   source=os.path.dirname(src))


def load_folder(path, size=28, invert="auto", contrast=True, crop=True, center=True,
                reject_class="", test_per_class=0, shuffle=False, seed=0):
    """A Dataset from image folders: PATH/CLASS/*.png|jpg|pgm, or PATH/train/CLASS/... and
    PATH/test/CLASS/... . Without train/test folders the last ``test_per_class`` images of each
    class are the test set. Unreadable files and exact duplicates are skipped and listed in
    ``Dataset.skipped``."""
    from . import images
    kw = dict(size=size, invert=invert, contrast=contrast, crop=crop, center=center)
    seen = {}
    train_dir, test_dir = os.path.join(path, "train"), os.path.join(path, "test")
    if os.path.isdir(train_dir) and os.path.isdir(test_dir):
        classes = images.class_folders(train_dir, reject_class)
        xtr, ytr, _, skipped = images.load_folder(train_dir, classes, seen=seen, **kw)
        xte, yte, _, more = images.load_folder(test_dir, classes, seen=seen, **kw)
        skipped += more
    else:
        classes = images.class_folders(path, reject_class)
        if not test_per_class:
            raise DataError(f"{path}: no train/ and test/ sub-folders, so the test images must "
                            f"be held out: set data.test_per_class (e.g. 5)")
        x, y, _, skipped = images.load_folder(path, classes, seen=seen, **kw)
        train, test = split_per_class(y, test_per_class, shuffle, seed)
        xtr, ytr, xte, yte = x[train], y[train], x[test], y[test]
    if len(xtr) == 0:
        raise DataError(f"{path}: no readable training images")
    if len(xte) == 0:
        raise DataError(f"{path}: no readable test images")
    return Dataset(os.path.basename(os.path.normpath(path)) or "folder", xtr, ytr, xte, yte,
                   classes, source=path, skipped=skipped)


# ---------------------------------------------------------------------------- subsets, splits
def _class_order(labels, shuffle, seed):
    """Indices of each class in data order, or shuffled with ``seed``."""
    rng = np.random.default_rng(seed)
    out = {}
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        out[int(c)] = rng.permutation(idx) if shuffle else idx
    return out


def split_per_class(labels, test_per_class, shuffle=False, seed=0):
    """(train, test) index arrays: the last ``test_per_class`` samples of each class (in data
    order, or shuffled with ``seed``) go to test. Indices stay in data order."""
    train, test = [], []
    for c, idx in _class_order(labels, shuffle, seed).items():
        if len(idx) <= test_per_class:
            raise DataError(f"class {c} has {len(idx)} samples; cannot hold out "
                            f"{test_per_class} for testing and keep some for training")
        train.append(idx[:len(idx) - test_per_class])
        test.append(idx[len(idx) - test_per_class:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def first_per_class(labels, n, shuffle=False, seed=0):
    """Indices (in data order) of the first ``n`` samples of each class."""
    keep = [idx[:n] for idx in _class_order(labels, shuffle, seed).values()]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def validation_split(labels, fraction, shuffle=False, seed=0):
    """(train, validation) index arrays holding out ``fraction`` of each class (at least one
    sample of every class with two or more)."""
    train, val = [], []
    for idx in _class_order(labels, shuffle, seed).values():
        k = min(max(1, int(round(fraction * len(idx)))), len(idx) - 1) if len(idx) > 1 else 0
        train.append(idx[:len(idx) - k])
        val.append(idx[len(idx) - k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def resize_images(x, size):
    """Every image of an NHWC batch resized to ``size`` = (height, width) (Lanczos)."""
    from .images import resize
    h, w = size
    if x.shape[1:3] == (h, w):
        return x
    out = np.empty((len(x), h, w, x.shape[3]), np.float32)
    for i in range(len(x)):
        for c in range(x.shape[3]):
            out[i, :, :, c] = resize(x[i, :, :, c], h, w)
    return out


def known_datasets():
    """[(name, where it was found or None, description or the reason it is missing)]."""
    rows = [("mnist", os.fspath(bundled_mnist_dir()), "bundled: 60000 train / 10000 test, 28x28, "
             "digits 0-9")]
    for name, loader, about in (
            ("usps", load_usps, "16x16 digits 0-9, 7291 train / 2007 test"),
            ("faces", load_faces, "AT&T/ORL faces, 40 people x 10 images of 112x92"),
            ("emnist-balanced", load_emnist, "28x28, 47 characters, 112800 train / 18800 test")):
        try:
            rows.append((name, _locate(name), about))
        except DataError as exc:
            rows.append((name, None, str(exc)))
    return rows


def _locate(name):
    """Where a named set would be loaded from (raises DataError when it is missing), without
    reading it all."""
    d = data_dir()
    if name == "usps":
        path = os.path.join(d, "usps", "usps.npz")
        if os.path.exists(path):
            return path
        raise _missing("usps", [path])
    if name == "faces":
        root = os.path.join(d, "att_faces")
        candidates = [os.path.join(root, "att_faces.npz"), os.path.join(root, "s1"),
                      os.path.join(root, "att_faces", "s1")]
        for c in candidates:
            if os.path.exists(c):
                return c if c.endswith(".npz") else os.path.dirname(c)
        raise _missing("faces", candidates)
    if name == "emnist-balanced":
        root = os.path.join(d, "emnist")
        found = [_emnist_paths(root, part) for part in ("train", "test")]
        if all(found):
            return root
        return load_emnist(root)  # raises the full message
    raise DataError(f"unknown data set {name!r}")


def _emnist_paths(root, part):
    images_name, labels_name, csv_name = EMNIST_FILES[part]
    for suffix in (".gz", ""):
        if all(os.path.exists(os.path.join(root, n + suffix)) for n in (images_name, labels_name)):
            return True
    return any(os.path.exists(os.path.join(root, csv_name + s)) for s in ("", ".gz"))


def load_named(name, test_per_class=0, shuffle=False, seed=0):
    """A named data set: mnist, usps, faces, emnist-balanced."""
    if name == "mnist":
        return load_mnist()
    if name == "usps":
        return load_usps()
    if name == "faces":
        return load_faces(test_per_class=test_per_class or 5, shuffle=shuffle, seed=seed)
    if name == "emnist-balanced":
        return load_emnist()
    raise DataError(f"unknown data set {name!r}; expected one of {', '.join(NAMED)}")


NAMED = ("mnist", "usps", "faces", "emnist-balanced")


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
DATA_DEFAULTS = {
    "dataset": "mnist", "scale": "unit", "train": "", "test": "", "format": "", "classes": [],
    "train_limit": 0, "test_limit": 0,
    # named sets and image folders
    "path": "", "image_size": 0, "invert": "auto", "contrast": True, "crop": True,
    "center": True, "reject_class": "",
    # subsets and splits
    "train_per_class": 0, "test_per_class": 0, "validation": 0.0, "shuffle_split": False,
    "split_seed": 0,
}
DATASETS = ("mnist", "files", "usps", "faces", "emnist-balanced", "folder")
FOLDER_ONLY = ("path", "invert", "contrast", "crop", "center", "reject_class")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


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
    for key in ("train_limit", "test_limit", "train_per_class", "test_per_class", "split_seed"):
        v = out[key]
        if not _is_int(v) or v < 0:
            problems.append(f"data.{key}: expected an integer >= 0 (0 = all), got {v!r}"
                            if key.endswith("limit") or key == "train_per_class" else
                            f"data.{key}: expected an integer >= 0, got {v!r}")
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
    size = out["image_size"]
    if not ((_is_int(size) and size >= 0) or (isinstance(size, list) and len(size) == 2 and
                                              all(_is_int(v) and v > 0 for v in size))):
        problems.append(f"data.image_size: expected 0 (the set's own size), a side length such "
                        f"as 28, or [height, width] such as [56, 46], got {size!r}")
    if out["invert"] not in ("auto", True, False):
        problems.append(f"data.invert: expected \"auto\" (invert when the background is light), "
                        f"true or false, got {out['invert']!r}")
    for key in ("contrast", "crop", "center", "shuffle_split"):
        if not isinstance(out[key], bool):
            problems.append(f"data.{key}: expected true or false, got {out[key]!r}")
    for key in ("path", "reject_class"):
        if not isinstance(out[key], str):
            problems.append(f"data.{key}: expected a string, got {out[key]!r}")
    v = out["validation"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
        problems.append(f"data.validation: expected a fraction in [0, 1) of the training set to "
                        f"hold out, got {v!r}")
    if out["dataset"] == "folder" and not out["path"]:
        problems.append("data.path: required for dataset = \"folder\" (the folder holding one "
                        "sub-folder of images per class)")
    if out["dataset"] in DATASETS and out["dataset"] != "folder":
        for key in FOLDER_ONLY:
            if key in section and section[key] != DATA_DEFAULTS[key]:
                problems.append(f"data.{key}: only used with dataset = \"folder\" (the data set "
                                f"is {out['dataset']!r})")
    if out["test_per_class"] and out["dataset"] in DATASETS and \
            out["dataset"] not in ("faces", "folder"):
        problems.append(f"data.test_per_class: only for sets without an official test split "
                        f"(faces, folder), not {out['dataset']!r}")
    return out


def _size(value, default=None):
    if isinstance(value, list):
        return tuple(value)
    return (value, value) if value else default


def load_from_config(section):
    """The Dataset a resolved [data] section describes, with subsets and splits applied."""
    s = {**DATA_DEFAULTS, **section}
    name = s["dataset"]
    if name == "files":
        ds = load_files(s["train"], s["test"], s["classes"] or None, s["format"] or None)
    elif name == "folder":
        ds = load_folder(s["path"], _size(s["image_size"], (28, 28)), s["invert"], s["contrast"],
                         s["crop"], s["center"], s["reject_class"], s["test_per_class"],
                         s["shuffle_split"], s["split_seed"])
    else:
        ds = load_named(name, s["test_per_class"], s["shuffle_split"], s["split_seed"])
    if name != "folder" and s["image_size"]:
        size = _size(s["image_size"])
        ds.x_train, ds.x_test = resize_images(ds.x_train, size), resize_images(ds.x_test, size)
    if s["train_per_class"]:
        keep = first_per_class(ds.y_train, s["train_per_class"], s["shuffle_split"],
                               s["split_seed"])
        ds.x_train, ds.y_train = ds.x_train[keep], ds.y_train[keep]
    if s["validation"]:
        train, val = validation_split(ds.y_train, s["validation"], s["shuffle_split"],
                                      s["split_seed"])
        ds.x_val, ds.y_val = ds.x_train[val], ds.y_train[val]
        ds.x_train, ds.y_train = ds.x_train[train], ds.y_train[train]
    if s["train_limit"]:
        ds.x_train, ds.y_train = ds.x_train[:s["train_limit"]], ds.y_train[:s["train_limit"]]
    if s["test_limit"]:
        ds.x_test, ds.y_test = ds.x_test[:s["test_limit"]], ds.y_test[:s["test_limit"]]
    return ds
