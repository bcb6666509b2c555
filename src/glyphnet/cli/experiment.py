"""glyphnet experiment: a declarative sweep of configs, trained in parallel and tabulated."""
import os
import sys

from .args import positive_int


def add_parser(sub):
    p = sub.add_parser("experiment", help="run a declarative sweep of configs in parallel")
    p.add_argument("experiment", help="experiment TOML file (see configs/experiments/)")
    p.add_argument("--out", help="output folder (default: runs/NAME)")
    p.add_argument("--jobs", type=positive_int,
                   help="parallel processes (default: the file's jobs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key in every run, e.g. --set training.epochs=20")
    p.add_argument("--dry-run", action="store_true", help="validate and list the runs only")
    return p


def run(args):
    from ..experiments import load_experiment, markdown_table, parse_assignment, run_experiment
    out = args.out or os.path.join(
        "runs", os.path.splitext(os.path.basename(args.experiment))[0])
    extra = dict(parse_assignment(a) for a in args.set)
    if args.dry_run:
        _, planned = load_experiment(args.experiment, extra)
        for name, cfg, reported in planned:
            print(f"{name}: {cfg['training']['epochs']} epochs"
                  + (f", reported {reported}" if reported is not None else ""))
        return 0
    rows = run_experiment(args.experiment, out, args.jobs, extra)
    sys.stdout.write("\n" + markdown_table(rows))
    print(f"\nwrote {out}/results.csv, results.md and one run directory per run")
    return 1 if any(r["diverged"] for r in rows) else 0
