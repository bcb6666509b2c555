"""``glyphnet data``: list the known data sets, show counts per class, save a grid of samples,
export images as an image folder, fetch EMNIST."""
import os
import sys

import numpy as np

from .. import data
from ..errors import GlyphnetError
from ..fileio import atomic_open
from .args import add_data_dir, positive_int


def _dataset(spec, root=None):
    """A Dataset from a named set, an image folder, or a TOML config's [data] section."""
    if spec in data.DATASETS:
        return data.load_named(spec, root=root)
    if spec.endswith(".toml"):
        from ..config import load_config
        return data.load_from_config(load_config(spec)["data"], root)
    if os.path.isdir(spec):
        if all(os.path.isdir(os.path.join(spec, p)) for p in ("train", "test")):
            return data.load_folder(spec)
        # No split on disk: every image counts as training data here.
        from ..data import images
        classes = images.class_folders(spec)
        x, y, _, skipped = images.read_class_folders(spec, classes)
        return data.Dataset(os.path.basename(os.path.normpath(spec)), x, y, x[:0], y[:0],
                            classes, source=spec, skipped=skipped)
    raise GlyphnetError(f"{spec!r} is not a known data set ({data.DATASETS.choices()}), an "
                        f"image folder or a .toml config")


def cmd_list(args):
    d, how = data.data_dir_source(args.data_dir)
    print(f"data directory: {d} ({how})")
    for name, where, about in data.known_datasets(args.data_dir):
        if where:
            print(f"  {name:<16} found: {where}\n  {'':<16} {about}")
        else:
            print(f"  {name:<16} missing: {about}")
    return 0


def cmd_show(args):
    ds = _dataset(args.name, args.data_dir)
    print(f"{ds.name}: images of shape {tuple(ds.input_shape)}, {ds.num_classes} classes"
          + (f", from {ds.source}" if ds.source else ""))
    parts = [("train", ds.y_train), ("test", ds.y_test)]
    if ds.y_val is not None:
        parts.insert(1, ("validation", ds.y_val))
    counts = {p: np.bincount(y, minlength=ds.num_classes) for p, y in parts}
    width = max(5, max(len(c) for c in ds.classes))
    print(f"  {'class':<{width}}" + "".join(f"{p:>12}" for p, _ in parts))
    for i, c in enumerate(ds.classes):
        print(f"  {c:<{width}}" + "".join(f"{counts[p][i]:>12}" for p, _ in parts))
    print(f"  {'total':<{width}}" + "".join(f"{len(y):>12}" for _, y in parts))
    _report_skipped(ds)
    return 0


def _report_skipped(ds):
    if ds.skipped:
        print(f"skipped {len(ds.skipped)} file(s):")
        for line in ds.skipped:
            print(f"  {line}")


def cmd_grid(args):
    from PIL import Image
    ds = _dataset(args.name, args.data_dir)
    x, y = (ds.x_train, ds.y_train) if args.split == "train" else (ds.x_test, ds.y_test)
    from ..inspection.samples import sample_grid
    picture = sample_grid(x, y, ds.classes, args.per_class, args.scale, args.classes)
    ext = os.path.splitext(args.out)[1].lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None:
        raise GlyphnetError(f"{args.out}: unknown image type {ext or '(none)'}; use .png")
    with atomic_open(args.out) as f:
        picture.save(f, format=fmt)
    rows = min(len(ds.classes), args.classes) if args.classes else len(ds.classes)
    print(f"wrote {args.out}: {ds.name} {args.split} samples, {rows} classes x up to "
          f"{args.per_class}")
    _report_skipped(ds)
    return 0


def cmd_export(args):
    from ..data.images import write_class_folders
    from ..data.splits import first_per_class
    ds = _dataset(args.name, args.data_dir)
    x, y = (ds.x_train, ds.y_train) if args.split == "train" else (ds.x_test, ds.y_test)
    if args.per_class:
        keep = first_per_class(y, args.per_class)
        x, y = x[keep], y[keep]
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    groups = [(args.as_class, x)] if args.as_class else \
        [(name, x[y == i]) for i, name in enumerate(ds.classes)]
    total = write_class_folders(groups, args.out, args.size)
    print(f"wrote {total} images of {ds.name} ({args.split}) into {len(groups)} class "
          f"folder(s) under {args.out}")
    return 0


def cmd_fetch(args):
    from ..data.fetch import fetch
    paths = fetch(args.name, dest=args.dest, url=args.url, keep_archive=args.keep_archive,
                  stream=sys.stderr, root=args.data_dir)
    print(f"{args.name}: {len(paths)} verified file(s) in {os.path.dirname(paths[0])}")
    expected = os.path.join(data.data_dir(args.data_dir), data.DATASETS[args.name].folder)
    if os.path.abspath(os.path.dirname(paths[0])) != os.path.abspath(expected):
        print(f"note: the {args.name} loader reads {expected}; move the files there or set "
              f"{data.DATA_ENV} to the folder that holds a "
              f"{data.DATASETS[args.name].folder!r} folder with them")
    return 0


def add_parser(sub):
    p = sub.add_parser("data", help="list, inspect and fetch data sets")
    add_data_dir(p)
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.required = True
    what = (f"a named set ({data.DATASETS.choices()}), an image folder (one sub-folder per "
            f"class) or a .toml config")

    q = dsub.add_parser("list", help="known data sets and where they were found")
    q.set_defaults(action=cmd_list)

    q = dsub.add_parser("show", help="counts per class")
    q.add_argument("name", help=what)
    q.set_defaults(action=cmd_show)

    q = dsub.add_parser("grid", help="save a grid image of samples labelled with their class")
    q.add_argument("name", help=what)
    q.add_argument("--out", required=True, help="image file to write (.png)")
    q.add_argument("--split", choices=("train", "test"), default="train")
    q.add_argument("--per-class", type=positive_int, default=8,
                   help="samples per class (default 8)")
    q.add_argument("--scale", type=positive_int, default=2, help="enlargement (default 2)")
    q.add_argument("--classes", type=positive_int, default=0,
                   help="show only the first N classes (default all)")
    q.set_defaults(action=cmd_grid)

    q = dsub.add_parser("export", help="write images as an image folder, one sub-folder per "
                                       "class (PNG files)")
    q.add_argument("name", help=what)
    q.add_argument("--out", required=True, help="folder to write the class folders into")
    q.add_argument("--split", choices=("train", "test"), default="train")
    q.add_argument("--per-class", type=positive_int, default=0,
                   help="the first N images of each class (default all)")
    q.add_argument("--limit", type=positive_int, default=0,
                   help="at most N images in all (default all)")
    q.add_argument("--size", type=positive_int, default=0,
                   help="resize to N x N pixels (default: as they are)")
    q.add_argument("--as", dest="as_class", default="",
                   help="put every image into one class folder of this name (e.g. "
                        "not_a_character)")
    q.set_defaults(action=cmd_export)

    q = dsub.add_parser("fetch", help="download a data set (emnist-balanced) and verify it")
    q.add_argument("name", choices=[n for n, entry in data.DATASETS.items() if entry.fetch])
    q.add_argument("--dest", help="folder to write (default: $GLYPHNET_DATA/emnist)")
    q.add_argument("--url", help="a .zip archive or a base URL of the .gz files (default: the "
                                 "official NIST archive)")
    q.add_argument("--keep-archive", action="store_true",
                   help="keep the downloaded .zip archive")
    q.set_defaults(action=cmd_fetch)
    return p


def run(args):
    return args.action(args)
