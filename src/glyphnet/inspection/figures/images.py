"""Images and maps over images: plain grids (e.g. activation maximisation) and saliency maps."""
import numpy as np

from .common import DIVERGING, INK, Grid, finish, symmetric_limit, tiles


def image_grid(images, titles=None, path=None, suptitle=None, diverging=False, max_cols=10):
    """A plain grid of images: [0, 1] ink images, or signed maps on the diverging scale."""
    images = np.asarray(images)
    if diverging:
        v = symmetric_limit(images, 100)
        return finish(tiles(images, titles, DIVERGING, -v, v, max_cols=max_cols,
                              suptitle=suptitle, colorbar="value"), path)
    return finish(tiles(images, titles, max_cols=max_cols, suptitle=suptitle), path)


def saliency_maps(images, maps, titles, path=None):
    """Each image (top row) above its saliency map (|d score / d input|, own scale)."""
    n = len(images)
    grid = Grid(2, n, 0.95, 0.2, top=0.35, right=max(0.1, 5.0 - 1.03 * n), gap=0.08)
    for k in range(n):
        grid.show(0, k, images[k], INK, 0, 1)
        grid.text(0, k, titles[k])
        grid.show(1, k, maps[k], "hot")
    grid.suptitle("saliency: |d class score / d pixel| for the predicted class")
    return finish(grid.render(), path)
