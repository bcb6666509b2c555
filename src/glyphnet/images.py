"""Reading images and preparing them the way MNIST digits were prepared: greyscale, ink high,
cropped to the ink, scaled into a 20x20 box and centred by centre of mass in 28x28."""
import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DataError


def read_image(path):
    """A greyscale image file (PNG, JPEG, PGM, ...) as float32 in [0, 1], shape (H, W)."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                # Transparent pixels count as white paper.
                im = im.convert("RGBA")
                background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(background, im)
            grey = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None
    if grey.size == 0:
        raise DataError(f"{path}: empty image")
    return grey


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
    """Place ``box`` in a size x size canvas with its centre of mass at the canvas centre."""
    canvas = np.zeros((size, size), np.float32)
    h, w = box.shape
    total = box.sum()
    if total <= 0:
        cy, cx = (h - 1) / 2, (w - 1) / 2
    else:
        ys, xs = np.indices(box.shape)
        cy, cx = (ys * box).sum() / total, (xs * box).sum() / total
    top = int(round((size - 1) / 2 - cy))
    left = int(round((size - 1) / 2 - cx))
    top = min(max(top, 0), size - h)
    left = min(max(left, 0), size - w)
    canvas[top:top + h, left:left + w] = box
    return canvas


def mnist_like(grey, size=28, box=None, invert="auto", contrast=True, crop=True, center=True):
    """Prepare a greyscale [0, 1] image like MNIST: ink high, contrast stretched, cropped to the
    ink, scaled (keeping the aspect ratio) to fit a box of ``box`` pixels (20 for 28), and
    centred by centre of mass in a size x size canvas."""
    grey = np.asarray(grey, np.float32)
    if invert == "auto":
        grey = ink_high(grey)
    elif invert:
        grey = 1.0 - grey
    if contrast:
        grey = stretch_contrast(grey)
    if not crop:
        return resize(grey, size, size)
    grey = crop_to_ink(grey)
    box = box or max(1, int(round(size * 20 / 28)))
    h, w = grey.shape
    scale = box / max(h, w)
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    small = resize(grey, nh, nw)
    if center:
        return center_by_mass(small, size)
    canvas = np.zeros((size, size), np.float32)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top:top + nh, left:left + nw] = small
    return canvas


def load_for_model(path, size=28):
    """An image file prepared like MNIST, as a (size, size, 1) float32 array in [0, 1]."""
    return mnist_like(read_image(path), size)[..., None]
