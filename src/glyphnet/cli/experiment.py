"""glyphnet experiment: a declarative sweep of configs, trained in parallel and tabulated."""
import os
import signal
import sys

from .args import positive_int


def add_parser(sub):
    p = sub.add_parser("experiment", help="run a declarative sweep of configs in parallel")
    p.add_argument("experiment", help="experiment TOML file (see configs/experiments/)")
    p.add_argument("--out", help="output folder (default: runs/NAME); rerunning into the same "
                                 "folder keeps the runs already finished")
    p.add_argument("--jobs", type=positive_int,
                   help="parallel processes of the local backend (default: the file's jobs)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local processes (default) or the tasks of a Ray cluster")
    p.add_argument("--address", metavar="ADDR",
                   help="with --backend ray: join the cluster at ADDR ('auto': RAY_ADDRESS); "
                        "default: start a Ray on this machine")
    p.add_argument("--cpus-per-run", type=positive_int, default=1, metavar="K",
                   help="with --backend ray: CPUs (and BLAS threads) per run (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key in every run, e.g. --set training.epochs=20")
    p.add_argument("--runs", nargs="+", metavar="NAME",
                   help="only these runs of the file (their names without the seed, as in "
                        "--dry-run), all their seeds")
    p.add_argument("--dry-run", action="store_true", help="validate and list the runs only")
    return p


def run(args):
    from ..errors import GlyphnetError
    from ..experiments import (RayBackend, load_experiment, markdown, parse_assignment,
                               run_experiment)
    from ..experiments.sweep import select_groups
    from ..experiments.backends import Terminated
    out = args.out or os.path.join(
        "runs", os.path.splitext(os.path.basename(args.experiment))[0])
    extra = dict(parse_assignment(a) for a in args.set)
    if args.backend == "local" and (args.address or args.cpus_per_run != 1):
        raise GlyphnetError("--address and --cpus-per-run need --backend ray")
    if args.dry_run:
        _, planned = select_groups(*load_experiment(args.experiment, extra), args.runs,
                                   args.experiment)
        for run in planned:
            reported = ", ".join(f"{k} {v:g}" for k, v in run.reported.items())
            epochs = f" (of {run.reported_epochs})" if run.reported_epochs else ""
            print(f"{run.name}: {run.cfg['training']['epochs']} epochs{epochs}"
                  + (f", reported {reported}" if reported else ""))
        return 0
    backend = RayBackend(args.address, args.cpus_per_run) if args.backend == "ray" else None

    def terminated(signum, frame):
        raise Terminated()
    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        results = run_experiment(args.experiment, out, args.jobs, extra, backend=backend,
                                 groups=args.runs)
    except Terminated:
        print("glyphnet: terminated; run the same command again to continue", file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    sys.stdout.write("\n" + markdown(results["summary"]))
    print(f"\nwrote {out}/results.json, results.csv, results.md, report.html (the runs overlaid "
          f"per swept key) and one run directory per run")
    return 1 if any(r["status"] != "done" for r in results["runs"]) else 0
