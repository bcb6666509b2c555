"""``glyphnet.sklearn.GlyphnetClassifier``: see :mod:`glyphnet.interop.sklearn`."""
from .interop.sklearn import GlyphnetClassifier

__all__ = ["GlyphnetClassifier"]
