"""glyphnet train: train a model from a TOML config into a run directory."""
import os
import sys
import time

from ..errors import TrainingDiverged
from .args import add_data_dir, non_negative_int, positive_int


def add_parser(sub):
    p = sub.add_parser("train", help="train a model from a TOML config (default: MLP on MNIST)")
    p.add_argument("config", nargs="?", help="TOML config (default: the built-in MLP)")
    p.add_argument("--out", help="run directory (default: runs/NAME-TIMESTAMP)")
    p.add_argument("--epochs", type=positive_int, help="override training.epochs")
    p.add_argument("--seed", type=non_negative_int, help="override the seed")
    add_data_dir(p)
    p.add_argument("--report", action="store_true", help="write RUN_DIR/report.html at the end")
    p.add_argument("--tensorboard", action="store_true",
                   help="write TensorBoard event files in RUN_DIR/tensorboard/")
    return p


def _stem(path):
    return "default" if path is None else os.path.splitext(os.path.basename(path))[0]


def run(args):
    from .. import runs
    from ..config import load_config
    overrides = {}
    if args.epochs is not None:
        overrides["training.epochs"] = args.epochs
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.tensorboard:
        overrides["training.tensorboard"] = True
    cfg = load_config(args.config, overrides)
    out = args.out or os.path.join(
        "runs", f"{_stem(args.config)}-{time.strftime('%Y%m%d-%H%M%S')}")
    print(f"run directory: {out}")
    try:
        metrics = runs.train(cfg, out, data_dir=args.data_dir)
    except TrainingDiverged as exc:
        print(f"glyphnet: error: {exc}\nThe last good model is in {out}/model.npz",
              file=sys.stderr)
        return 1
    print(f"test accuracy {metrics['test_accuracy']:.4f}, test loss {metrics['test_loss']:.4f}, "
          f"train accuracy {metrics['train_accuracy']:.4f} ({metrics['seconds']:.1f}s)")
    print(f"wrote {out}/model.npz, config.toml, history.csv, metrics.json")
    if args.report:
        from ..inspection.report import write_report
        print(f"wrote {write_report(out, data_dir=args.data_dir)}")
    return 0
