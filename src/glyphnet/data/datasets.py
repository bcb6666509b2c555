"""Data sets: the container, the bundled MNIST and the named sets found in the data directory
(USPS, AT&T faces, EMNIST balanced), user files and image folders.

Every loader returns images as float32 arrays of shape (N, H, W, C) with values in [0, 1] (ink
high) and labels as int64 class indices.
"""
import os
import re
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from ..errors import DataError
from ..registry import Registry
from .readers import check_labels, load_csv, load_idx_pair, to_float_images
from .splits import split_per_class


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
        unseen = np.setdiff1d(y_test, y_train)
        if unseen.size:
            test_file, train_file = (spec[1] if isinstance(spec, (list, tuple)) else spec
                                     for spec in (test, train))
            raise DataError(f"{test_file}: label {int(unseen[0])} is in the test file but never "
                            f"in the training file {train_file}; a model cannot learn a class "
                            f"it never sees (list every class in [data] classes to allow it)")
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


def data_dir(override=None):
    """Where the named data sets live: ``override`` (``--data-dir``), else $GLYPHNET_DATA, else
    ~/.glyphnet/data."""
    return override or os.environ.get(DATA_ENV) or \
        os.path.join(os.path.expanduser("~"), ".glyphnet", "data")


def data_dir_source(override=None):
    """(the data directory, how it was chosen) for messages."""
    d = data_dir(override)
    how = ("--data-dir" if override else f"{DATA_ENV}={d}" if os.environ.get(DATA_ENV)
           else f"the default {d}, {DATA_ENV} unset")
    return d, how


def _missing(name, looked, extra="", root=None):
    d, how = data_dir_source(root)
    places = "; ".join(looked)
    return DataError(f"data set {name!r} not found in the data directory {d} ({how}); looked "
                     f"for {places}. Set {DATA_ENV} or pass --data-dir DIR (the folder that "
                     f"holds {os.path.basename(os.path.dirname(looked[0]))}/).{extra}")


def load_usps(directory=None):
    """USPS digits, 16x16, 7291 train / 2007 test, from DATA/usps/usps.npz."""
    path = os.path.join(directory or os.path.join(data_dir(), "usps"), "usps.npz")
    if not os.path.exists(path):
        raise _missing("usps", [path], root=os.path.dirname(os.path.dirname(path)))
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
                  check_labels(f"{path} y_{part}", y.astype(np.int64), 10)]
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
        labels = check_labels(npz, labels)
        people, source = [f"s{k + 1}" for k in range(int(labels.max()) + 1)], npz
    else:
        tree = next((t for t in trees if os.path.isdir(os.path.join(t, "s1"))), None)
        if tree is None:
            raise _missing("faces", [npz] + [os.path.join(t, "s1", "1.pgm") for t in trees],
                           root=os.path.dirname(root))
        images, labels, people = _faces_tree(tree)
        source = tree
    x = to_float_images(source, images)
    train, test = split_per_class(labels, test_per_class, shuffle, seed)
    return Dataset("faces", x[train], labels[train], x[test], labels[test], people,
                   source=source)


EMNIST_URL = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
EMNIST_DOWNLOADS = {    # file: (size in bytes, SHA-256)
    "emnist-balanced-train-images-idx3-ubyte.gz": (
        28207740, "74295e75e4e9fa2c102147460ee7eb763653d5132d883a84fb88932bfb8d2db4"),
    "emnist-balanced-train-labels-idx1-ubyte.gz": (
        80618, "b46d41e5156a0a8aaaa4d18979fdd1588850fa8571018acffd5d93b325a7d6ed"),
    "emnist-balanced-test-images-idx3-ubyte.gz": (
        4714707, "117fc12b015e37ea98bfb2cbba3f77c3782c056cdbd219b87abfc8661d7135db"),
    "emnist-balanced-test-labels-idx1-ubyte.gz": (
        13504, "a67cac948379b67270b9a4d0a01c8ec661598accf2f2b1964340b7c83cb175cd"),
}
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
                       f"MB of the 561 MB NIST archive are kept), run: {EMNIST_FETCH}",
                       root=os.path.dirname(d))
    (xtr, ytr, src), (xte, yte, _) = parts["train"], parts["test"]
    return Dataset("emnist-balanced", xtr, ytr, xte, yte, list(EMNIST_BALANCED_CLASSES),
                   source=os.path.dirname(src))


def load_folder(path, size=28, invert="auto", contrast=True, crop=True, center=True,
                reject_class="", test_per_class=0, shuffle=False, seed=0):
    """A Dataset from image folders: PATH/CLASS/*.png|jpg|pgm, or PATH/train/CLASS/... and
    PATH/test/CLASS/... . Without train/test folders the last ``test_per_class`` images of each
    class are the test set. Unreadable files and exact duplicates are skipped and listed in
    ``Dataset.skipped``."""
    from .images import class_folders, read_class_folders
    kw = dict(size=size, invert=invert, contrast=contrast, crop=crop, center=center)
    seen = {}
    train_dir, test_dir = os.path.join(path, "train"), os.path.join(path, "test")
    if os.path.isdir(train_dir) and os.path.isdir(test_dir):
        classes = class_folders(train_dir, reject_class)
        xtr, ytr, _, skipped = read_class_folders(train_dir, classes, seen=seen, **kw)
        xte, yte, _, more = read_class_folders(test_dir, classes, seen=seen, **kw)
        skipped += more
    else:
        classes = class_folders(path, reject_class)
        if not test_per_class:
            raise DataError(f"{path}: no train/ and test/ sub-folders, so the test images must "
                            f"be held out: set data.test_per_class (e.g. 5)")
        x, y, _, skipped = read_class_folders(path, classes, seen=seen, **kw)
        train, test = split_per_class(y, test_per_class, shuffle, seed)
        xtr, ytr, xte, yte = x[train], y[train], x[test], y[test]
    if len(xtr) == 0:
        raise DataError(f"{path}: no readable training images")
    if len(xte) == 0:
        raise DataError(f"{path}: no readable test images")
    return Dataset(os.path.basename(os.path.normpath(path)) or "folder", xtr, ytr, xte, yte,
                   classes, source=path, skipped=skipped)


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


# ---------------------------------------------------------------------------- the registry
@dataclass
class NamedSet:
    """A data set known by name. ``folder``: its folder in the data directory (None: bundled).
    ``load(directory, test_per_class, shuffle, seed)`` reads it; ``own_test_split``: whether it
    comes with an official test split (else data.test_per_class holds images out);
    ``prepare``: how a user's own image is made to look like its images, "digits" (MNIST-style
    crop to the ink and centre by mass) or "plain" (resized whole); ``fetch``: the download
    source of ``glyphnet data fetch`` ({"url", "files": {name: (size, sha256)}}) or None."""

    name: str
    about: str
    folder: str
    load: object
    locate: object
    classes: list
    own_test_split: bool = True
    prepare: str = "digits"
    fetch: dict = None


DATASETS = Registry("data set")


def _in(root, folder):
    return os.path.join(data_dir(root), folder) if folder else None


def load_named(name, test_per_class=0, shuffle=False, seed=0, root=None):
    """A named data set (see ``DATASETS``); ``root`` overrides the data directory."""
    try:
        entry = DATASETS.get_entry(name)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    return entry.load(_in(root, entry.folder), test_per_class, shuffle, seed)


def locate(name, root=None):
    """Where a named set would be loaded from, without reading it (DataError when missing)."""
    entry = DATASETS.get_entry(name)
    return entry.locate(_in(root, entry.folder))


def known_datasets(root=None):
    """[(name, where it was found or None, description or the reason it is missing)]."""
    rows = []
    for name, entry in DATASETS.items():
        try:
            rows.append((name, locate(name, root), entry.about))
        except DataError as exc:
            rows.append((name, None, str(exc)))
    return rows


def _locate_usps(d):
    path = os.path.join(d, "usps.npz")
    if os.path.exists(path):
        return path
    raise _missing("usps", [path], root=os.path.dirname(d))


def _locate_faces(d):
    candidates = [os.path.join(d, "att_faces.npz"), os.path.join(d, "s1"),
                  os.path.join(d, "att_faces", "s1")]
    for c in candidates:
        if os.path.exists(c):
            return c if c.endswith(".npz") else os.path.dirname(c)
    raise _missing("faces", candidates, root=os.path.dirname(d))


def _locate_emnist(d):
    if all(_emnist_paths(d, part) for part in ("train", "test")):
        return d
    return load_emnist(d)  # raises the full message


def _emnist_paths(root, part):
    images_name, labels_name, csv_name = EMNIST_FILES[part]
    for suffix in (".gz", ""):
        if all(os.path.exists(os.path.join(root, n + suffix)) for n in (images_name, labels_name)):
            return True
    return any(os.path.exists(os.path.join(root, csv_name + s)) for s in ("", ".gz"))


DIGITS = [str(i) for i in range(10)]
DATASETS.register("mnist", NamedSet(
    "mnist", "bundled: 60000 train / 10000 test, 28x28, digits 0-9", None,
    lambda d, *split: load_mnist(), lambda d: os.fspath(bundled_mnist_dir()), DIGITS))
DATASETS.register("usps", NamedSet(
    "usps", "16x16 digits 0-9, 7291 train / 2007 test", "usps",
    lambda d, *split: load_usps(d), _locate_usps, DIGITS))
DATASETS.register("faces", NamedSet(
    "faces", "AT&T/ORL faces, 40 people x 10 images of 112x92", "att_faces",
    lambda d, test_per_class, shuffle, seed: load_faces(d, test_per_class or 5, shuffle, seed),
    _locate_faces, [f"s{k}" for k in range(1, 41)], own_test_split=False, prepare="plain"))
DATASETS.register("emnist-balanced", NamedSet(
    "emnist-balanced", "28x28, 47 characters, 112800 train / 18800 test", "emnist",
    lambda d, *split: load_emnist(d), _locate_emnist, EMNIST_BALANCED_CLASSES,
    fetch={"url": EMNIST_URL, "files": EMNIST_DOWNLOADS}))
