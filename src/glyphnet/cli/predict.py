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
    """Classify each image; an unreadable one is reported and the others still answered (the
    exit status is then 1), a blank one is answered "blank"."""
    import sys
    from ..data.images import is_blank, prepare_as, preparation_of, read_image
    from ..errors import DataError
    from ..nn.model import Sequential
    model = Sequential.load(args.model)
    if len(model.input_shape) != 3 or model.input_shape[-1] != 1:
        raise GlyphnetError(f"{args.model}: predict needs a model of greyscale images, shaped "
                            f"(H, W, 1); this one expects {tuple(model.input_shape)}")
    classes = model.class_names
    results, failed = [], 0
    for path in args.images:
        try:
            grey = read_image(path)
        except DataError as exc:
            print(f"glyphnet: error: {exc}", file=sys.stderr)
            results.append({"image": path, "error": str(exc)})
            failed += 1
            continue
        if is_blank(grey):
            results.append({"image": path, "class": None, "blank": True, "probabilities": {}})
            continue
        x = prepare_as(grey, preparation_of(model))[None, ..., None]
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
            if "error" in r:
                continue
            if r.get("blank"):
                print(f"{r['image']}: blank (the image has no ink to classify)")
                continue
            probs = ", ".join(f"{c}: {v:.3f}" for c, v in r["probabilities"].items())
            print(f"{r['image']}: {r['class']}  ({probs})")
    if failed:
        print(f"glyphnet: {failed} of {len(args.images)} image(s) could not be read",
              file=sys.stderr)
        return 1
    return 0
