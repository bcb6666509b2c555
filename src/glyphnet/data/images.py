"""Reading images and preparing them the way MNIST digits were prepared: greyscale, ink high,
cropped to the ink, scaled into a 20x20 box and centred by centre of mass in 28x28 (or any
canvas), or resized whole; the record of that preparation a model keeps, so a user's image is
prepared like its training images; and loading folders of images, one sub-folder per class,
reporting what was skipped."""
import hashlib
import os

import numpy as np
from PIL import Image

from ..errors import DataError


# The largest image side read (the server's limit too), checked before any pixel is decoded.
MAX_IMAGE_SIDE = 2048


def _grey(im):
    """Pixels of an opened image as float32 greyscale in [0, 1]: 8-bit images divided by 255,
    16-bit ones by 65535 and 32-bit integer ones by their type's range, float ones kept when
    they lie in [0, 1] and else stretched from their minimum to their maximum (scaled, never
    clipped)."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Transparent pixels count as white paper.
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    if im.mode.startswith("I;16"):
        return np.asarray(im, np.float32) / 65535.0
    if im.mode == "I":
        values = np.asarray(im, np.float64)
        top = 255.0 if values.max(initial=0) <= 255 and values.min(initial=0) >= 0 else \
            65535.0 if values.max(initial=0) <= 65535 and values.min(initial=0) >= 0 else None
        if top is None:
            values = values - values.min()
            top = max(values.max(), 1.0)
        return (values / top).astype(np.float32)
    if im.mode == "F":
        values = np.asarray(im, np.float32)
        if not np.isfinite(values).all():
            raise ValueError("the image holds NaN or infinite pixel values")
        lo, hi = float(values.min(initial=0)), float(values.max(initial=0))
        if lo >= 0 and hi <= 1:
            return values
        return ((values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)).astype(
            np.float32)
    return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def read_image(path):
    """A greyscale image file (PNG, JPEG, PGM, TIFF, ...) as float32 in [0, 1], shape (H, W).
    Images over MAX_IMAGE_SIDE pixels a side (decompression bombs included) are refused
    before decoding; 16-bit and float images are scaled into [0, 1] (see ``_grey``)."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE):
                raise DataError(f"{path}: the image is {width}x{height} pixels; at most "
                                f"{MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} are read")
            im.load()
            grey = _grey(im)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: refused as a decompression bomb ({exc})") from None
    except Exception as exc:   # any failure to decode a file's bytes is the file's problem
        raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None
    if grey.size == 0:
        raise DataError(f"{path}: empty image")
    return grey


def is_blank(grey):
    """Whether an image has no ink at all (every pixel the same, as the server judges)."""
    return float(np.ptp(grey)) < 1e-3


def ink_high(grey):
    """Invert if the background (judged by the border pixels) is light."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return 1.0 - grey if np.median(border) > 0.5 else grey


def stretch_contrast(grey):
    lo, hi = float(grey.min()), float(grey.max())
    return (grey - lo) / (hi - lo) if hi > lo else np.zeros_like(grey)


def crop_to_ink(grey, threshold=0.1):
    """The smallest box holding every pixel above ``threshold`` (the whole image if none is)."""
    rows = np.flatnonzero((grey > threshold).any(axis=1))
    cols = np.flatnonzero((grey > threshold).any(axis=0))
    if rows.size == 0:
        return grey
    return grey[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def resize(grey, height, width):
    """Resample with antialiasing (Pillow's Lanczos filter), values kept in [0, 1]."""
    im = Image.fromarray(grey.astype(np.float32), mode="F")
    out = np.asarray(im.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)
    return np.clip(out, 0.0, 1.0)


def center_by_mass(box, size):
    """Place ``box`` in a canvas of ``size`` (an int for a square, or (height, width)) with its
    centre of mass at the canvas centre."""
    ch, cw = (size, size) if isinstance(size, int) else size
    canvas = np.zeros((ch, cw), np.float32)
    h, w = box.shape
    total = box.sum()
    if total <= 0:
        cy, cx = (h - 1) / 2, (w - 1) / 2
    else:
        ys, xs = np.indices(box.shape)
        cy, cx = (ys * box).sum() / total, (xs * box).sum() / total
    top = int(round((ch - 1) / 2 - cy))
    left = int(round((cw - 1) / 2 - cx))
    top = min(max(top, 0), ch - h)
    left = min(max(left, 0), cw - w)
    canvas[top:top + h, left:left + w] = box
    return canvas


def mnist_like(grey, size=28, box=None, invert="auto", contrast=True, crop=True, center=True):
    """Prepare a greyscale [0, 1] image like MNIST: ink high, contrast stretched, cropped to the
    ink, scaled (keeping the aspect ratio) to fit a box of ``box`` pixels (20 for 28), and
    centred by centre of mass in a size x size canvas."""
    return prepare(grey, size, box, invert, contrast, crop, center)


def prepare(grey, size=28, box=None, invert="auto", contrast=True, crop=True, center=True):
    """``mnist_like`` for any canvas: ``size`` is an int (square) or (height, width), ``box`` an
    int or (height, width) (default: 20/28 of the canvas). Without cropping the whole image is
    resized to the canvas (right for faces)."""
    height, width = (size, size) if isinstance(size, int) else size
    grey = np.asarray(grey, np.float32)
    if invert == "auto":
        grey = ink_high(grey)
    elif invert:
        grey = 1.0 - grey
    if contrast:
        grey = stretch_contrast(grey)
    if not crop:
        return resize(grey, height, width)
    grey = crop_to_ink(grey)
    if box is None:
        box = (max(1, int(round(height * 20 / 28))), max(1, int(round(width * 20 / 28))))
    bh, bw = (box, box) if isinstance(box, int) else box
    h, w = grey.shape
    scale = min(bh / h, bw / w)
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    small = resize(grey, nh, nw)
    if center:
        return center_by_mass(small, (height, width))
    canvas = np.zeros((height, width), np.float32)
    top, left = (height - nh) // 2, (width - nw) // 2
    canvas[top:top + nh, left:left + nw] = small
    return canvas


# How a user's own image is made to look like a data set's images: the options of ``prepare``
# for each DATASETS entry's ``prepare``. "digits": MNIST-style crop to the ink and centre by
# mass; "plain": the whole image resized, polarity and contrast kept (e.g. faces).
PREPARATIONS = {
    "digits": {"invert": "auto", "contrast": True, "crop": True, "center": True},
    "plain": {"invert": False, "contrast": False, "crop": False, "center": False},
}


def preparation(dataset, prepare, size, **options):
    """The record a model keeps of how its training images were prepared (Sequential.
    preparation): the data set, "digits" or "plain", the image size [height, width] and the
    options of :func:`prepare` (the entry of PREPARATIONS, overridden by ``options``)."""
    return {"dataset": dataset, "prepare": prepare, "size": [int(v) for v in size],
            **PREPARATIONS[prepare], **options}


def preparation_of(model):
    """The model's record, or MNIST-style digits at its input size for models saved before
    glyphnet recorded one."""
    return model.preparation or preparation(None, "digits", model.input_shape[:2])


def prepare_as(grey, record):
    """A greyscale [0, 1] image of any size prepared as ``record`` (see :func:`preparation`)
    says the training images were, shape (height, width)."""
    return prepare(grey, tuple(record["size"]), None, record["invert"], record["contrast"],
                   record["crop"], record["center"])


def load_for_model(path, model):
    """An image file prepared the way ``model``'s training images were, as an (H, W, 1)
    float32 array in [0, 1]."""
    return prepare_as(read_image(path), preparation_of(model))[..., None]


# ---------------------------------------------------------------------------- image folders
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pgm", ".pnm", ".bmp", ".gif", ".tif", ".tiff")


def class_folders(root, reject_class=""):
    """Sorted class sub-folders of ``root``; the reject ("not a character") folder, if any, last."""
    if not os.path.isdir(root):
        raise DataError(f"{root}: image folder not found (expected one sub-folder per class)")
    names = sorted(d for d in os.listdir(root)
                   if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    if reject_class:
        if reject_class not in names:
            raise DataError(f"{root}: the reject class folder {reject_class!r} does not exist "
                            f"(folders: {', '.join(names) or 'none'})")
        names = [n for n in names if n != reject_class] + [reject_class]
    if not names:
        raise DataError(f"{root}: no class sub-folders (expected e.g. {root}/0/*.png, "
                        f"{root}/1/*.png, ...)")
    return names


def read_class_folders(root, classes, size=28, invert="auto", contrast=True, crop=True,
                       center=True, seen=None):
    """Images under root/CLASS/ for each name in ``classes`` (its index is the label), prepared
    with ``prepare``. Returns (images NHWC float32, labels int64, paths, skipped), where skipped
    lists "path: reason" for every unreadable image and every exact duplicate (same SHA-256 of
    the file bytes as an earlier file; ``seen`` maps digests to paths and may be shared between
    calls so duplicates across train and test folders are caught too)."""
    seen = {} if seen is None else seen
    height, width = (size, size) if isinstance(size, int) else size
    images, labels, paths, skipped = [], [], [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            skipped.append(f"{folder}: class folder missing")
            continue
        for file in sorted(os.listdir(folder)):
            path = os.path.join(folder, file)
            if file.startswith(".") or not os.path.isfile(path):
                continue
            if not file.lower().endswith(IMAGE_SUFFIXES):
                skipped.append(f"{path}: not an image file name (expected "
                               f"{', '.join(IMAGE_SUFFIXES)})")
                continue
            try:
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            except OSError as exc:
                skipped.append(f"{path}: cannot read ({exc})")
                continue
            if digest in seen:
                skipped.append(f"{path}: duplicate of {seen[digest]}")
                continue
            try:
                grey = read_image(path)
            except DataError as exc:
                skipped.append(str(exc))
                continue
            seen[digest] = path
            images.append(prepare(grey, (height, width), None, invert, contrast, crop, center))
            labels.append(label)
            paths.append(path)
    x = (np.stack(images)[..., None] if images
         else np.zeros((0, height, width, 1), np.float32))
    return x.astype(np.float32), np.array(labels, np.int64), paths, skipped


def write_class_folders(groups, root, size=None):
    """Write each (class name, images) of ``groups`` (images N, H, W, 1 floats in [0, 1]) as
    8-bit PNG files 0000.png, 0001.png, ... into the new folder root/NAME, resized to
    size x size when given. Every class is written under root/NAME.tmp first and the folders
    are renamed only when all are complete, so a failure (a full disk, a file where a folder
    should be) leaves nothing half-written: one DataError naming the problem. Existing class
    folders are refused before anything is written. Returns the number of images."""
    bad = [name for name, _ in groups if name in ("", ".", "..") or "/" in name or
           os.sep in name or name.endswith(".tmp")]
    if bad:
        raise DataError(f"class folder name(s) {', '.join(map(repr, bad))}: expected plain "
                        f"folder names")
    folders = [os.path.join(root, name) for name, _ in groups]
    taken = [f for f in folders if os.path.exists(f)]
    if taken:
        raise DataError(f"{', '.join(taken)}: already exist(s); export into new class "
                        f"folders")
    tmps = [f + ".tmp" for f in folders]
    try:
        for (_, images), tmp in zip(groups, tmps):
            _remove_folder(tmp)
            os.makedirs(tmp)
            for i, image in enumerate(images):
                grey = np.clip(image[..., 0], 0, 1)
                if size:
                    grey = resize(grey, size, size)
                Image.fromarray(np.round(grey * 255).astype(np.uint8)).save(
                    os.path.join(tmp, f"{i:04d}.png"))
    except OSError as exc:
        for tmp in tmps:
            _remove_folder(tmp)
        raise DataError(f"{root}: cannot write the image folder "
                        f"({exc.strerror or exc}: {exc.filename or root})") from None
    for tmp, folder in zip(tmps, folders):
        os.rename(tmp, folder)
    return sum(len(images) for _, images in groups)


def _remove_folder(path):
    """Delete a folder of files written by write_class_folders (if it is there)."""
    if os.path.isdir(path):
        for name in os.listdir(path):
            os.remove(os.path.join(path, name))
        os.rmdir(path)
