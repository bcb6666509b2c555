"""glyphnet predict: classify image files with a trained model, each prepared the way the
model's training images were (the preparation recorded in the model)."""
import json

import numpy as np

from ..errors import GlyphnetError
from .args import positive_int


def add_parser(sub):
    p = sub.add_parser("predict", help="classify PNG/JPEG images")
    p.add_argument("model", help="model.npz written by glyphnet train")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--top", type=positive_int, default=3, help="classes to show (default 3)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def run(args):
    from ..data.images import load_for_model
    from ..nn.model import Sequential
    model = Sequential.load(args.model)
    if len(model.input_shape) != 3 or model.input_shape[-1] != 1:
        raise GlyphnetError(f"{args.model}: predict needs a model of greyscale images, shaped "
                            f"(H, W, 1); this one expects {tuple(model.input_shape)}")
    classes = model.class_names
    results = []
    for path in args.images:
        x = load_for_model(path, model)[None]
        if model.scaler:
            x = model.scaler.transform(x)
        p = model.probabilities(x)[0]
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
