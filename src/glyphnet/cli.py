"""The ``glyphnet`` command line. User mistakes end in one 'glyphnet: error: ...' message and a
non-zero exit code, never a traceback."""
import argparse
import json
import os
import sys
import time

import numpy as np

from .errors import ConfigError, GlyphnetError, TrainingDiverged


def _int_at_least(low, what):
    """An argparse type: an integer >= low, else a message naming ``what`` was expected."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")


# ------------------------------------------------------------------------------ train
def cmd_train(args):
    from . import runs
    from .config import load_config
    overrides = {}
    if args.epochs is not None:
        overrides["training.epochs"] = args.epochs
    if args.seed is not None:
        overrides["seed"] = args.seed
    cfg = load_config(args.config, overrides)
    if args.data_dir:
        os.environ["GLYPHNET_DATA"] = args.data_dir
    out = args.out or os.path.join(
        "runs", f"{_stem(args.config)}-{time.strftime('%Y%m%d-%H%M%S')}")
    print(f"run directory: {out}")
    try:
        metrics = runs.train(cfg, out)
    except TrainingDiverged as exc:
        print(f"glyphnet: error: {exc}\nThe last good model is in {out}/model.npz",
              file=sys.stderr)
        return 1
    print(f"test accuracy {metrics['test_accuracy']:.4f}, test loss {metrics['test_loss']:.4f}, "
          f"train accuracy {metrics['train_accuracy']:.4f} ({metrics['seconds']:.1f}s)")
    print(f"wrote {out}/model.npz, config.toml, history.csv, metrics.json")
    if args.report:
        from .report import write_report
        path = write_report(out)
        print(f"wrote {path}")
    return 0


def _stem(path):
    return "default" if path is None else os.path.splitext(os.path.basename(path))[0]


# ------------------------------------------------------------------------------ evaluate
def _load_model(path):
    from .model import Sequential
    return Sequential.load(path)


def _model_data(model_path, data_name):
    """The test split the model should be evaluated on: ``data_name`` or the model's own."""
    from . import data
    from .config import load_config
    run_config = os.path.join(os.path.dirname(os.path.abspath(model_path)), "config.toml")
    if data_name is None and os.path.exists(run_config):
        return data.load_from_config(load_config(run_config)["data"])
    return data.load_from_config(load_config(None, {"data.dataset": data_name or "mnist"})["data"])


def confusion_matrix(labels, predicted, num_classes):
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (labels, predicted), 1)
    return cm


def cmd_evaluate(args):
    if args.data_dir:
        os.environ["GLYPHNET_DATA"] = args.data_dir
    model = _load_model(args.model)
    ds = _model_data(args.model, args.data)
    if tuple(ds.input_shape) != tuple(model.input_shape):
        raise GlyphnetError(f"{args.model} expects inputs of shape {tuple(model.input_shape)} "
                            f"but data set {ds.name!r} has {tuple(ds.input_shape)}")
    x = model.scaler.transform(ds.x_test) if model.scaler else ds.x_test
    ev = model.evaluate(x, ds.y_test)
    predicted = model.predict(x)
    classes = model.classes or [str(i) for i in range(model.output_shape[0])]
    cm = confusion_matrix(ds.y_test, predicted, len(classes))
    per_class = (np.diag(cm) / np.maximum(cm.sum(axis=1), 1)).tolist()
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


# ------------------------------------------------------------------------------ predict
def cmd_predict(args):
    from .images import load_for_model
    model = _load_model(args.model)
    h, w = model.input_shape[:2]
    if h != w:
        raise GlyphnetError(f"{args.model}: predict supports square inputs, model expects {h}x{w}")
    classes = model.classes or [str(i) for i in range(model.output_shape[0])]
    results = []
    for path in args.images:
        x = load_for_model(path, h)[None]
        if model.input_shape[-1] != 1:
            raise GlyphnetError(f"{args.model} expects {model.input_shape[-1]} channels")
        if model.scaler:
            x = model.scaler.transform(x)
        p = _probabilities(model, x)[0]
        top = np.argsort(p)[::-1][:args.top]
        results.append({"image": path, "class": classes[top[0]],
                        "probabilities": {classes[i]: float(p[i]) for i in top}})
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            probs = ", ".join(f"{c}: {v:.3f}" for c, v in r["probabilities"].items())
            print(f"{r['image']}: {r['class']}  ({probs})")
    return 0


def _probabilities(model, x):
    """Softmax of the outputs unless the model already ends in a softmax."""
    from .layers import Softmax, softmax
    out = model.predict_proba(x)
    return out if isinstance(model.layers[-1], Softmax) else softmax(out)


# ------------------------------------------------------------------------------ gradcheck
def cmd_gradcheck(args):
    from . import runs
    from .config import load_config
    from .gradcheck import check_model
    cfg = load_config(args.config)
    model, ds, x_train, _ = runs.prepare(cfg)
    rng = np.random.default_rng(args.seed)
    idx = rng.choice(len(x_train), args.samples, replace=False)
    x = x_train[idx].astype(np.float64)
    if args.jitter:
        # Real images have flat regions where max pooling ties and ReLU sits on its kink;
        # finite differences are undefined there, so break exact ties with noise (1e-3 still
        # leaves first-layer ReLUs of blank regions within eps of their kink: a CNN's bias fails).
        x = x + rng.uniform(-args.jitter, args.jitter, x.shape)
    results = check_model(model, x, ds.y_train[idx], eps=args.eps, max_entries=args.entries,
                          seed=args.seed, input_grad=True)
    print(f"gradient check on {args.samples} samples of {ds.name}, float64, central differences "
          f"(eps {args.eps:g}), up to {args.entries} entries per parameter")
    print(f"{'parameter':<16}{'shape':<18}{'checked':>8}{'rel. error':>14}{'angle (deg)':>14}")
    failed = []
    for r in results:
        bad = r["rel_error"] > args.tolerance
        if bad:
            failed.append(r["name"])
        print(f"{r['name']:<16}{str(r['shape']):<18}{r['checked']:>8}{r['rel_error']:>14.3e}"
              f"{r['angle']:>14.3e}{'  FAIL' if bad else ''}")
    if failed:
        print(f"glyphnet: error: {len(failed)} gradient(s) exceed the tolerance "
              f"{args.tolerance:g}: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all gradients agree (relative error <= {args.tolerance:g})")
    return 0


# ------------------------------------------------------------------------------ main
def build_parser():
    parser = argparse.ArgumentParser(
        prog="glyphnet", description="Neural networks from scratch in NumPy for handwritten "
                                     "characters.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("train", help="train a model from a TOML config (default: MLP on MNIST)")
    p.add_argument("config", nargs="?", help="TOML config (default: the built-in MLP)")
    p.add_argument("--out", help="run directory (default: runs/NAME-TIMESTAMP)")
    p.add_argument("--epochs", type=_positive_int, help="override training.epochs")
    p.add_argument("--seed", type=_non_negative_int, help="override the seed")
    p.add_argument("--data-dir", help="where named data sets live (sets GLYPHNET_DATA)")
    p.add_argument("--report", action="store_true", help="write RUN_DIR/report.html at the end")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix")
    p.add_argument("model", help="model.npz written by glyphnet train")
    p.add_argument("--data", help="data set to test on (default: the model's own)")
    p.add_argument("--data-dir", help="where named data sets live (sets GLYPHNET_DATA)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify PNG/JPEG images")
    p.add_argument("model", help="model.npz written by glyphnet train")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--top", type=_positive_int, default=3, help="classes to show (default 3)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("gradcheck", help="check every gradient against finite differences")
    p.add_argument("config", nargs="?", help="TOML config (default: the built-in MLP)")
    p.add_argument("--samples", type=_positive_int, default=4)
    p.add_argument("--entries", type=_positive_int, default=30,
                   help="entries checked per parameter array (default 30)")
    p.add_argument("--eps", type=float, default=1e-6)
    p.add_argument("--tolerance", type=float, default=1e-5)
    p.add_argument("--jitter", type=float, default=1e-2,
                   help="uniform noise added to break ties in flat image regions (0 = none)")
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.set_defaults(func=cmd_gradcheck)

    for register in _plugins():
        register(sub)
    return parser


def _plugins():
    """Sub-commands defined next to the code they drive."""
    from . import commands
    return commands.REGISTER


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"glyphnet: error: {exc}", file=sys.stderr)
        return 2
    except GlyphnetError as exc:
        print(f"glyphnet: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("glyphnet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
