"""2-D maps of what a layer computes: the activations of one layer for many images, laid out by
PCA (NumPy's SVD) or t-SNE (scikit-learn), so that images the network treats alike lie close."""
import numpy as np

from ..errors import GlyphnetError

METHODS = ("pca", "tsne")


def activations(model, x, layer, batch_size=500):
    """The outputs of ``model.layers[layer]`` for the (already scaled) inputs ``x``, one
    flattened row per image, float64."""
    if not 0 <= layer < len(model.layers):
        raise ValueError(f"layer must be in [0, {len(model.layers) - 1}], got {layer!r}")
    x = np.asarray(x, model.dtype)
    rows = []
    for i in range(0, len(x), batch_size):
        out = model.forward(x[i:i + batch_size], False, layer + 1)
        rows.append(out.reshape(len(out), -1))
    return np.concatenate(rows).astype(np.float64)


def pca(a, components=2):
    """Principal components of the rows of ``a`` by SVD. Returns (coords, mean, axes): coords
    (n, components) = (a - mean) @ axes.T, axes (components, d) orthonormal, largest variance
    first, each signed so that its largest-magnitude entry is positive (a stable orientation)."""
    a = np.asarray(a, np.float64)
    mean = a.mean(axis=0)
    _, _, vt = np.linalg.svd(a - mean, full_matrices=False)
    axes = vt[:components]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    axes = axes * np.where(signs == 0, 1, signs)[:, None]
    if len(axes) < components:   # fewer dimensions than asked: pad with zero axes
        axes = np.vstack([axes, np.zeros((components - len(axes), a.shape[1]))])
    return (a - mean) @ axes.T, mean, axes


def tsne(a, seed=0, perplexity=30.0):
    """A t-SNE layout (n, 2) of the rows of ``a``; above 50 dimensions they are first reduced
    to 50 principal components, the usual practice, which also makes it faster."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise GlyphnetError('the t-SNE map needs scikit-learn: pip install "glyphnet[sklearn]" '
                            '(from a checkout: pip install ".[sklearn]")') from None
    a = np.asarray(a, np.float64)
    if a.shape[1] > 50:
        a = pca(a, 50)[0]
    perplexity = min(perplexity, (len(a) - 1) / 3)
    return TSNE(2, perplexity=perplexity, init="pca", learning_rate="auto",
                random_state=seed).fit_transform(a)


class Embedding:
    """A 2-D map of activations: ``coords`` (n, 2) for the rows of ``a``; :meth:`place` puts new
    activations on it (exactly for PCA; at the nearest mapped neighbour for t-SNE, which has
    no mapping for new points)."""

    def __init__(self, a, method="pca", seed=0):
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        self.method, self.a = method, np.asarray(a, np.float64)
        coords, self.mean, self.axes = pca(self.a, 2)
        self.coords = coords if method == "pca" else tsne(self.a, seed)

    def place(self, b):
        b = np.atleast_2d(np.asarray(b, np.float64))
        if self.method == "pca":
            return (b - self.mean) @ self.axes.T
        d = ((b ** 2).sum(axis=1)[:, None] - 2 * b @ self.a.T + (self.a ** 2).sum(axis=1)[None])
        return self.coords[d.argmin(axis=1)]
