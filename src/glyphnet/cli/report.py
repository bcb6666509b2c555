"""glyphnet report: RUN_DIR/report.html with every picture of a run."""
from .args import add_data_dir


def add_parser(sub):
    p = sub.add_parser("report", help="write RUN_DIR/report.html with every picture of a run")
    p.add_argument("run_dir", help="run directory written by glyphnet train")
    add_data_dir(p)
    return p


def run(args):
    from ..inspection.report import write_report
    print(f"wrote {write_report(args.run_dir, data_dir=args.data_dir)}")
    return 0
