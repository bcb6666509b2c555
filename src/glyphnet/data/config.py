"""The [data] section of a config: its keys and defaults, their validation, and the Dataset it
describes (the set, then resizing, subsets and splits)."""
import numpy as np

from ..nn.scaling import Scaler
from .datasets import DATASETS, load_files, load_folder, load_named, resize_images
from .splits import first_per_class, validation_split

DATA_DEFAULTS = {
    "dataset": "mnist", "scale": "unit", "train": "", "test": "", "format": "", "classes": [],
    "train_limit": 0, "test_limit": 0, "classes_subset": [],
    # named sets and image folders
    "path": "", "image_size": 0, "invert": "auto", "contrast": True, "crop": True,
    "center": True, "reject_class": "",
    # subsets and splits
    "train_per_class": 0, "test_per_class": 0, "validation": 0.0, "shuffle_split": False,
    "split_seed": 0,
}
USER_SOURCES = ("files", "folder")   # the user's own data; every other name is registered
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
    known = (*DATASETS, *USER_SOURCES)
    if out["dataset"] not in known:
        problems.append(f"data.dataset: unknown data set {out['dataset']!r}; expected one of "
                        f"{', '.join(known)}")
    if out["scale"] not in Scaler.MODES:
        problems.append(f"data.scale: expected one of {', '.join(Scaler.MODES)}, "
                        f"got {out['scale']!r}")
    for key in ("train_limit", "test_limit", "train_per_class", "test_per_class", "split_seed"):
        v = out[key]
        if not _is_int(v) or v < 0:
            problems.append(f"data.{key}: expected an integer >= 0 (0 = all), got {v!r}"
                            if key.endswith("limit") or key == "train_per_class" else
                            f"data.{key}: expected an integer >= 0, got {v!r}")
    sub = out["classes_subset"]
    if not (isinstance(sub, list) and all(_is_int(c) and c >= 0 for c in sub)
            and len(set(sub)) == len(sub) and len(sub) != 1):
        problems.append(f"data.classes_subset: expected a list of two or more distinct class "
                        f"indices such as [1, 3] ([] = all classes), got {sub!r}")
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
    if out["dataset"] in known and out["dataset"] != "folder":
        for key in FOLDER_ONLY:
            if key in section and section[key] != DATA_DEFAULTS[key]:
                problems.append(f"data.{key}: only used with dataset = \"folder\" (the data set "
                                f"is {out['dataset']!r})")
    own_split = [n for n, entry in DATASETS.items() if entry.own_test_split] + ["files"]
    if out["test_per_class"] and out["dataset"] in own_split:
        without = [n for n in known if n not in own_split]
        problems.append(f"data.test_per_class: only for sets without an official test split "
                        f"({', '.join(without)}), not {out['dataset']!r}")
    return out


def preparation_for(dataset, section):
    """How the images of ``dataset`` (a Dataset loaded from the [data] ``section``) were
    prepared, the record a model keeps (Sequential.preparation) so that predict and the drawing
    pad prepare a user's image the same way: the registered set's ``prepare`` ("digits" or
    "plain"), an image folder's own options, MNIST-style digits for user files."""
    from .images import preparation
    s = {**DATA_DEFAULTS, **section}
    name, size = s["dataset"], dataset.input_shape[:2]
    if name == "folder":
        return preparation(name, "digits" if s["crop"] else "plain", size,
                           **{k: s[k] for k in ("invert", "contrast", "crop", "center")})
    return preparation(name, DATASETS[name].prepare if name in DATASETS else "digits", size)


def _size(value, default=None):
    if isinstance(value, list):
        return tuple(value)
    return (value, value) if value else default


def _keep_classes(ds, subset):
    """Keep only the classes ``subset`` (indices) of ``ds``, relabelled 0, 1, ... in the
    subset's order; the class names stay (classes_subset = [1, 3] of MNIST: "1", "3")."""
    from ..errors import DataError
    bad = [c for c in subset if c >= ds.num_classes]
    if bad:
        raise DataError(f"data.classes_subset: class index {bad[0]} is out of range; the data "
                        f"set {ds.name!r} has {ds.num_classes} classes (0 to "
                        f"{ds.num_classes - 1})")
    relabel = np.full(ds.num_classes, -1, np.int64)
    relabel[subset] = np.arange(len(subset))
    for part in ("train", "test", "val"):
        y = getattr(ds, f"y_{part}")
        if y is not None:
            keep = relabel[y] >= 0
            setattr(ds, f"x_{part}", getattr(ds, f"x_{part}")[keep])
            setattr(ds, f"y_{part}", relabel[y[keep]].astype(y.dtype))
    ds.classes = [ds.classes[c] for c in subset]


def load_from_config(section, root=None):
    """The Dataset a resolved [data] section describes, with subsets and splits applied;
    ``root`` overrides the data directory of named sets."""
    s = {**DATA_DEFAULTS, **section}
    name = s["dataset"]
    if name == "files":
        ds = load_files(s["train"], s["test"], s["classes"] or None, s["format"] or None)
    elif name == "folder":
        ds = load_folder(s["path"], _size(s["image_size"], (28, 28)), s["invert"], s["contrast"],
                         s["crop"], s["center"], s["reject_class"], s["test_per_class"],
                         s["shuffle_split"], s["split_seed"])
    else:
        ds = load_named(name, s["test_per_class"], s["shuffle_split"], s["split_seed"], root)
    if s["classes_subset"]:
        _keep_classes(ds, s["classes_subset"])
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
