"""A labelled grid of a data set's images (``glyphnet data grid``), drawn with Pillow."""
import numpy as np


def sample_grid(images, labels, classes, per_class=8, scale=2, max_classes=0):
    """A greyscale uint8 picture: one row per class, its label at the left, then up to
    ``per_class`` of its images (the first ones, in data order), each enlarged ``scale`` times."""
    from PIL import Image, ImageDraw, ImageFont
    shown = list(range(len(classes)))[:max_classes or None]
    h, w = images.shape[1] * scale, images.shape[2] * scale
    font = ImageFont.load_default()
    margin = 8 + max(int(ImageDraw.Draw(Image.new("L", (1, 1))).textlength(classes[c], font))
                     for c in shown)
    gap = 2
    grid = Image.new("L", (margin + per_class * (w + gap), len(shown) * (h + gap)), 255)
    draw = ImageDraw.Draw(grid)
    for row, c in enumerate(shown):
        top = row * (h + gap)
        draw.text((4, top + h // 2 - 5), classes[c], fill=0, font=font)
        for col, i in enumerate(np.flatnonzero(labels == c)[:per_class]):
            pixels = np.clip(images[i, :, :, 0] * 255 + 0.5, 0, 255).astype(np.uint8)
            cell = Image.fromarray(pixels, "L").resize((w, h), Image.Resampling.NEAREST)
            grid.paste(cell, (margin + col * (w + gap), top))
    return grid
