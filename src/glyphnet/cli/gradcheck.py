"""glyphnet gradcheck: every gradient of a config's model against central differences."""
import sys

import numpy as np

from ..errors import GlyphnetError
from .args import add_data_dir, non_negative_int, number, positive_int


def add_parser(sub):
    p = sub.add_parser("gradcheck", help="check every gradient against finite differences")
    p.add_argument("config", nargs="?", help="TOML config (default: the built-in MLP)")
    p.add_argument("--samples", type=positive_int, default=4)
    p.add_argument("--entries", type=positive_int, default=30,
                   help="entries checked per parameter array (default 30)")
    p.add_argument("--eps", type=number(float, 0, 0.1, low_open=True), default=1e-6,
                   help="finite-difference step (default 1e-6)")
    p.add_argument("--tolerance", type=number(float, 0, low_open=True), default=1e-5,
                   help="largest relative error accepted (default 1e-5)")
    p.add_argument("--jitter", type=number(float, 0), default=1e-2,
                   help="uniform noise added to break ties in flat image regions (0 = none)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    add_data_dir(p)
    return p


def run(args):
    from .. import runs
    from ..config import load_config
    from ..nn.gradcheck import check_model
    cfg = load_config(args.config)
    model, ds, x_train, _ = runs.prepare(cfg, data_dir=args.data_dir)
    if args.samples > len(x_train):
        raise GlyphnetError(f"--samples {args.samples}: the training set of {ds.name} holds only "
                            f"{len(x_train)} images")
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
