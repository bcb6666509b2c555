"""glyphnet train: train a model from a TOML config into a run directory, or continue an
interrupted run (--resume)."""
import os
import sys

from ..errors import GlyphnetError, TrainingDiverged
from .args import add_data_dir, non_negative_int, positive_int


def add_parser(sub):
    p = sub.add_parser("train", help="train a model from a TOML config (default: MLP on MNIST)")
    p.add_argument("config", nargs="?", help="TOML config (default: the built-in MLP)")
    p.add_argument("--out", help="run directory (default: runs/NAME-TIMESTAMP); an existing "
                                 "non-empty one needs --resume or --force")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the interrupted run in RUN_DIR from its checkpoint.npz, with "
                        "its own config.toml")
    p.add_argument("--force", action="store_true",
                   help="replace the run already in --out (its files are removed first)")
    p.add_argument("--epochs", type=positive_int, help="override training.epochs")
    p.add_argument("--seed", type=non_negative_int, help="override the seed")
    add_data_dir(p)
    p.add_argument("--report", action="store_true", help="write RUN_DIR/report.html at the end")
    p.add_argument("--tensorboard", action="store_true",
                   help="write TensorBoard event files in RUN_DIR/tensorboard/")
    return p


def _stem(path):
    return "default" if path is None else os.path.splitext(os.path.basename(path))[0]


def _interrupted(exc, out):
    print(f"glyphnet: interrupted (signal {exc.signum}); wrote {out}/checkpoint.npz, model.npz, "
          f"history.csv, metrics.json; continue with: glyphnet train --resume {out}",
          file=sys.stderr)
    return 128 + exc.signum


def run(args):
    from .. import rundir, runs
    from ..config import load_config
    from ..nn.checkpoint import TrainingInterrupted
    if args.resume:
        given = [name for name, v in (("CONFIG", args.config), ("--out", args.out),
                                      ("--epochs", args.epochs), ("--seed", args.seed),
                                      ("--force", args.force or None),
                                      ("--tensorboard", args.tensorboard or None))
                 if v is not None]
        if given:
            raise GlyphnetError(f"--resume continues the run with its own config.toml; drop "
                                f"{', '.join(given)}")
        out = rundir.prepare(args.resume, resume=True)
        print(f"resuming the run in {out}")
        try:
            metrics = runs.resume(out, data_dir=args.data_dir)
        except TrainingInterrupted as exc:
            return _interrupted(exc, out)
        except TrainingDiverged as exc:
            print(f"glyphnet: error: {exc}\nThe last good model is in {out}/model.npz",
                  file=sys.stderr)
            return 1
        return _finish(args, out, metrics)
    overrides = {}
    if args.epochs is not None:
        overrides["training.epochs"] = args.epochs
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.tensorboard:
        overrides["training.tensorboard"] = True
    cfg = load_config(args.config, overrides)
    created = not args.out or not os.path.exists(args.out)
    if args.out:
        out = rundir.prepare(args.out, force=args.force)
    else:
        out = rundir.new_name(_stem(args.config))
    print(f"run directory: {out}")
    try:
        metrics = runs.train(cfg, out, data_dir=args.data_dir)
    except TrainingInterrupted as exc:
        return _interrupted(exc, out)
    except TrainingDiverged as exc:
        print(f"glyphnet: error: {exc}\nThe last good model is in {out}/model.npz",
              file=sys.stderr)
        return 1
    except GlyphnetError:
        if created and os.path.isdir(out) and not os.listdir(out):
            os.rmdir(out)   # nothing was written (e.g. the data could not be read)
        raise
    return _finish(args, out, metrics)


def _finish(args, out, metrics):
    print(f"test accuracy {metrics['test_accuracy']:.4f}, test loss {metrics['test_loss']:.4f}, "
          f"train accuracy {metrics['train_accuracy']:.4f} ({metrics['seconds']:.1f}s)")
    print(f"wrote {out}/model.npz, config.toml, history.csv, metrics.json")
    if args.report:
        from ..inspection.report import write_report
        print(f"wrote {write_report(out, data_dir=args.data_dir)}")
    return 0
