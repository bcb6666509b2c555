"""What every figure module shares: the Agg-rendered Figure, the image grid painted as one
picture, colour scales and the optional PNG file."""
import os

import matplotlib
import matplotlib.cm
import matplotlib.colors
import numpy as np
from matplotlib.figure import Figure

DIVERGING = "RdBu_r"
INK = "gray_r"
DPI = 100


def figure(width, height):
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


class Grid:
    """rows x cols image cells painted into one RGB picture, with titles and labels as figure
    text: no Axes per cell, so grids of hundreds of small images draw in a fraction of a
    second. Sizes are given in inches."""

    def __init__(self, rows, cols, cell=1.0, title=0.0, left=0.1, right=0.1, top=0.1,
                 bottom=0.1, gap=0.1):
        def px(inches):
            return int(round(inches * DPI))
        self.cell, self.title, self.gap, self.left, self.top = \
            px(cell), px(title), px(gap), px(left), px(top)
        self.right = px(right)
        self.width = self.left + cols * self.cell + (cols - 1) * self.gap + self.right
        self.height = self.top + rows * (self.cell + self.title) + (rows - 1) * self.gap + \
            px(bottom)
        self.canvas = np.ones((self.height, self.width, 3))
        self.fig = Figure(figsize=(self.width / DPI, self.height / DPI), dpi=DPI)

    def _corner(self, r, c):
        """Pixel row and column of the top-left corner of cell (r, c)'s image area."""
        return (self.top + r * (self.cell + self.title + self.gap) + self.title,
                self.left + c * (self.cell + self.gap))

    def show(self, r, c, image, cmap, vmin=None, vmax=None, frame=False):
        """Paint ``image`` into cell (r, c), enlarged by an integer factor (nearest pixel);
        vmin/vmax None: the image's own range."""
        image = np.asarray(plain(image), float)
        step = int(np.ceil(max(image.shape) / self.cell))
        image = image[::step, ::step]
        k = max(1, self.cell // max(image.shape))
        big = np.repeat(np.repeat(image, k, 0), k, 1)
        lo = big.min() if vmin is None else vmin
        hi = big.max() if vmax is None else vmax
        scaled = (big - lo) / (hi - lo) if hi > lo else np.zeros_like(big)
        rgb = matplotlib.colormaps[cmap](np.clip(scaled, 0, 1))[..., :3]
        y, x = self._corner(r, c)
        y += (self.cell - big.shape[0]) // 2
        x += (self.cell - big.shape[1]) // 2
        self.canvas[y:y + big.shape[0], x:x + big.shape[1]] = rgb
        if frame:
            grey = 0.6
            self.canvas[y - 1:y + big.shape[0] + 1, [x - 1, x + big.shape[1]]] = grey
            self.canvas[[y - 1, y + big.shape[0]], x - 1:x + big.shape[1] + 1] = grey

    def _frac(self, y, x):
        return x / self.width, 1 - y / self.height

    def text(self, r, c, text, fontsize=8):
        """A title centred above cell (r, c)."""
        y, x = self._corner(r, c)
        self.fig.text(*self._frac(y - 2, x + self.cell / 2), text, fontsize=fontsize,
                      ha="center", va="bottom")

    def label(self, r, text, fontsize=8):
        """A vertical label left of row r."""
        y, x = self._corner(r, 0)
        self.fig.text(*self._frac(y + self.cell / 2, x - 4), text, fontsize=fontsize,
                      rotation=90, ha="right", va="center")

    def heading(self, r, text, fontsize=8):
        """A left-aligned heading above row r."""
        y, x = self._corner(r, 0)
        self.fig.text(*self._frac(y - 2, x), text, fontsize=fontsize, va="bottom")

    def suptitle(self, text, fontsize=10):
        self.fig.text(0.5, 1 - 4 / self.height, text, fontsize=fontsize, ha="center",
                      va="top")

    def colorbar(self, cmap, vmin, vmax, label):
        """A colour bar in the right margin."""
        w = self.width
        cax = self.fig.add_axes(((w - self.right + 15) / w, 0.15, 12 / w, 0.7))
        mappable = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(vmin, vmax), cmap)
        self.fig.colorbar(mappable, cax=cax, label=label)

    def render(self):
        self.fig.figimage(self.canvas, 0, 0, origin="upper", zorder=-1)
        return self.fig


def finish(fig, path):
    if path is not None:
        fig.savefig(os.fspath(path), dpi=DPI)
    return fig


def plain(image):
    """(H, W) from (H, W), (H, W, 1) or (H, W, C) (channels averaged)."""
    image = np.asarray(image)
    return image if image.ndim == 2 else image.mean(axis=-1)


def symmetric_limit(values, percentile=99.5):
    """A colour limit v for the range [-v, v] that ignores a few extreme values."""
    v = float(np.percentile(np.abs(values), percentile)) if np.size(values) else 0.0
    return v if v > 0 else 1.0


def grid_shape(n, max_cols):
    cols = max(1, min(n, max_cols))
    return cols, int(np.ceil(n / cols))


def tiles(images, titles=None, cmap=INK, vmin=0.0, vmax=1.0, max_cols=10, tile=1.0,
           suptitle=None, colorbar=None, fontsize=8):
    """A figure with one small image per entry of ``images`` (each (H, W) or (H, W, C))."""
    n = len(images)
    cols, rows = grid_shape(n, max_cols)
    grid = Grid(rows, cols, tile, 0.2 if titles is not None else 0.0,
                 right=1.0 if colorbar else max(0.1, 3.0 - (tile + 0.08) * cols),
                 top=0.35 if suptitle else 0.1, gap=0.08)
    for k in range(n):
        r, c = divmod(k, cols)
        grid.show(r, c, images[k], cmap, vmin, vmax, frame=cmap != INK)
        if titles is not None:
            grid.text(r, c, titles[k], fontsize)
    if suptitle:
        grid.suptitle(suptitle, 11)
    if colorbar:
        grid.colorbar(cmap, vmin, vmax, colorbar)
    return grid.render()


def plot_on_log(ax, x, y, logx=False, logy=False, **style):
    """Plot y against x where log axes cannot show values <= 0: those points are left out of
    the line (it breaks there, and stays in the legend) and drawn as open triangles on the
    axis edge, so a series that is exactly 0 (a gradient angle of 0) is still seen. Returns
    the line."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    bad = (logx & (x <= 0)) | (logy & (y <= 0))
    line, = ax.plot(np.where(bad, np.nan, x), np.where(bad, np.nan, y), **style)
    if logy and np.any(y <= 0):
        ax.plot(x[y <= 0], np.zeros(int(np.sum(y <= 0))), "v", mfc="none",
                color=line.get_color(), markersize=6, clip_on=False,
                transform=ax.get_xaxis_transform())
    if logy:
        ys = [ln.get_ydata() for ln in ax.lines if ln.get_transform() == ax.transData]
        if any(np.any(np.asarray(v, float) > 0) for v in ys):
            ax.set_autoscaley_on(True)
        else:   # nothing to place yet: a range, so the log axis can still be drawn
            ax.set_ylim(1e-12, 1)
    return line
