"""glyphnet robustness: accuracy against noise, rotation, shift and stroke thickness, and
accuracy against coverage for the "not sure" threshold (robustness.png + robustness.csv)."""
import os

from .args import add_data_dir, positive_int


def add_parser(sub):
    p = sub.add_parser("robustness", help="accuracy under noise, rotation, shift, thickness",
                       description="Measure how a model's test accuracy falls as the test "
                                   "images get noisier, rotated, shifted, thinner or thicker, "
                                   "and how many answers the 'not sure' threshold keeps against "
                                   "their accuracy. Writes robustness.png and robustness.csv.")
    p.add_argument("model", help="model.npz written by glyphnet train")
    p.add_argument("--data", help="data set to test on (default: the model's own)")
    add_data_dir(p)
    p.add_argument("--limit", type=positive_int, default=2000,
                   help="test images used (the first N; default 2000)")
    p.add_argument("--out", metavar="DIR",
                   help="folder for the PNG and CSV (default: the model's folder)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    return p


def run(args):
    from ..inspection import robustness
    from ..nn.model import Sequential
    model = Sequential.load(args.model)
    x, y = robustness.evaluation_set(model, args.model, args.data, args.data_dir)
    x, y = x[:args.limit], y[:args.limit]
    result = robustness.robustness(model, x, y, seed=args.seed)
    out = args.out or os.path.dirname(os.path.abspath(args.model))
    png, table = robustness.write(result, out, title=f"{args.model} ({len(x)} test images)")
    for kind, levels in robustness.LEVELS.items():
        pairs = ", ".join(f"{v:g}: {100 * a:.1f}%" for v, a in
                          zip(levels, result[kind]["accuracy"]))
        print(f"{kind} ({robustness.UNITS[kind]}): {pairs}")
    cov = result["coverage"]
    for t in (0.5, 0.9):
        i = int(abs(cov["threshold"] - t).argmin())
        print(f"threshold {t:g}: answers {100 * cov['coverage'][i]:.1f}% of the images, "
              f"{100 * cov['accuracy'][i]:.1f}% of them right")
    print(f"wrote {png} and {table}")
    return 0
