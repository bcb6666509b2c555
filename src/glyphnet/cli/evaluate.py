"""glyphnet evaluate: accuracy, per-class accuracy and the confusion matrix of a model."""
import json
import os
import sys

from ..errors import GlyphnetError
from .args import add_data_dir


def add_parser(sub):
    p = sub.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix")
    p.add_argument("model", help="model.npz written by glyphnet train")
    p.add_argument("--data", help="data set to test on (default: the model's own)")
    add_data_dir(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _model_data(model, model_path, data_name, data_dir):
    """The data set to evaluate on, and where that choice came from: ``data_name``, else the
    run directory's config.toml beside the model, else the data set recorded in the model."""
    from .. import data
    from ..config import load_config
    run_config = os.path.join(os.path.dirname(os.path.abspath(model_path)), "config.toml")
    if data_name is None and os.path.exists(run_config):
        return (data.load_from_config(load_config(run_config)["data"], data_dir),
                f"as in {run_config}")
    how = "--data"
    if data_name is None:
        recorded = (model.preparation or {}).get("dataset")
        if recorded is None:
            raise GlyphnetError(f"{model_path}: no config.toml beside it and the model does not "
                                f"record its data set; pass --data NAME "
                                f"({data.DATASETS.choices()})")
        if recorded not in data.DATASETS:
            raise GlyphnetError(f"{model_path}: trained on {recorded!r} data, which only its run "
                                f"directory's config.toml describes; keep the model beside it "
                                f"or pass --data NAME ({data.DATASETS.choices()})")
        data_name, how = recorded, "the data set recorded in the model"
    overrides = {"data.dataset": data_name}
    if model.preparation and data_name == model.preparation["dataset"]:
        overrides["data.image_size"] = model.preparation["size"]
    section = load_config(None, overrides)["data"]
    return data.load_from_config(section, data_dir), how


def _few(names, n=6):
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def run(args):
    from ..inspection.metrics import confusion_matrix, per_class_accuracy
    from ..nn.model import Sequential
    model = Sequential.load(args.model)
    ds, how = _model_data(model, args.model, args.data, args.data_dir)
    print(f"evaluating on the {ds.name} test set ({how})", file=sys.stderr)
    if tuple(ds.input_shape) != tuple(model.input_shape):
        raise GlyphnetError(f"{args.model} expects inputs of shape {tuple(model.input_shape)} "
                            f"but data set {ds.name!r} has {tuple(ds.input_shape)}")
    classes = model.class_names
    labels_seen = int(ds.y_test.max()) + 1 if len(ds.y_test) else 0
    if max(ds.num_classes, labels_seen) > len(classes):
        raise GlyphnetError(f"{args.model} tells {len(classes)} classes apart but data set "
                            f"{ds.name!r} has {max(ds.num_classes, labels_seen)}; evaluate it "
                            f"on data with the model's classes (--data NAME)")
    if list(ds.classes) != classes:
        print(f"warning: the model's classes ({_few(classes)}) differ from the data set's "
              f"({_few(ds.classes)}); labels are compared by index", file=sys.stderr)
    x = model.scaler.transform(ds.x_test) if model.scaler else ds.x_test
    ev = model.evaluate(x, ds.y_test)
    cm = confusion_matrix(ds.y_test, model.predict(x), len(classes))
    per_class = per_class_accuracy(cm).tolist()
    if args.json:
        print(json.dumps({"model": args.model, "dataset": ds.name, "samples": len(x),
                          "accuracy": ev["accuracy"], "loss": ev["loss"], "classes": classes,
                          "per_class_accuracy": dict(zip(classes, per_class)),
                          "confusion_matrix": cm.tolist()}, indent=2))
        return 0
    print(f"{args.model} on {ds.name} test ({len(x)} images): accuracy {ev['accuracy']:.4f}, "
          f"loss {ev['loss']:.4f}")
    print("\nper-class accuracy:")
    for c, acc, n in zip(classes, per_class, cm.sum(axis=1)):
        print(f"  {c:>3}  {acc:.4f}  ({n} images)")
    print("\nconfusion matrix (rows: true class, columns: predicted):")
    width = max(4, len(str(cm.max())) + 1)
    print("     " + "".join(f"{c:>{width}}" for c in classes))
    for c, row in zip(classes, cm):
        print(f"  {c:>3}" + "".join(f"{v:>{width}}" for v in row))
    return 0
