"""glyphnet evaluate: accuracy, per-class accuracy and the confusion matrix of a model."""
import json
import os

from ..errors import GlyphnetError
from .args import add_data_dir


def add_parser(sub):
    p = sub.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix")
    p.add_argument("model", help="model.npz written by glyphnet train")
    p.add_argument("--data", help="data set to test on (default: the model's own)")
    add_data_dir(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _model_data(model_path, data_name, data_dir):
    """The test split the model should be evaluated on: ``data_name`` or the model's own."""
    from .. import data
    from ..config import load_config
    run_config = os.path.join(os.path.dirname(os.path.abspath(model_path)), "config.toml")
    if data_name is None and os.path.exists(run_config):
        return data.load_from_config(load_config(run_config)["data"], data_dir)
    section = load_config(None, {"data.dataset": data_name or "mnist"})["data"]
    return data.load_from_config(section, data_dir)


def run(args):
    from ..inspection.metrics import confusion_matrix, per_class_accuracy
    from ..nn.model import Sequential
    model = Sequential.load(args.model)
    ds = _model_data(args.model, args.data, args.data_dir)
    if tuple(ds.input_shape) != tuple(model.input_shape):
        raise GlyphnetError(f"{args.model} expects inputs of shape {tuple(model.input_shape)} "
                            f"but data set {ds.name!r} has {tuple(ds.input_shape)}")
    x = model.scaler.transform(ds.x_test) if model.scaler else ds.x_test
    ev = model.evaluate(x, ds.y_test)
    classes = model.class_names
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
