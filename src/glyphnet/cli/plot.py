"""glyphnet plot: teaching pictures (activation functions and their derivatives)."""
from .args import number, positive_float

leak = number(float, 0, 1, what="a leak in [0, 1]")


def add_parser(sub):
    p = sub.add_parser("plot", help="draw teaching pictures as PNG files")
    what = p.add_subparsers(dest="picture", metavar="PICTURE")
    what.required = True
    a = what.add_parser("activations", help="activation functions and their derivatives")
    a.add_argument("--slopes", type=positive_float, nargs="+", default=[1.0], metavar="S",
                   help="slopes of sigmoid and tanh (default: 1)")
    a.add_argument("--leaks", type=leak, nargs="+", default=[0.01], metavar="A",
                   help="negative slopes of leaky ReLU (default: 0.01)")
    a.add_argument("--out", default="activations.png", metavar="FILE.png",
                   help="the picture to write (default: activations.png)")
    return p


def run(args):
    from ..fileio import atomic_open
    from ..inspection.figures.teaching import activations
    fig = activations(args.slopes, args.leaks)
    with atomic_open(args.out) as f:
        fig.savefig(f, format="png")
    print(f"wrote {args.out}")
    return 0
