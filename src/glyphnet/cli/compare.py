"""glyphnet compare: one HTML page overlaying several runs."""
from .args import add_data_dir


def add_parser(sub):
    p = sub.add_parser("compare", help="write one HTML page overlaying several runs")
    p.add_argument("dirs", nargs="+", metavar="DIR",
                   help="run directories, or experiment directories (folders of runs)")
    p.add_argument("--out", default="compare.html", metavar="FILE.html",
                   help="the page to write (default: compare.html)")
    p.add_argument("--loglog", action="store_true",
                   help="draw the cost against the iteration on log-log axes")
    add_data_dir(p)
    return p


def run(args):
    from ..inspection.compare import write_compare
    runs = write_compare(args.dirs, args.out, args.loglog, args.data_dir)
    print(f"wrote {args.out} ({len(runs)} runs)")
    return 0
