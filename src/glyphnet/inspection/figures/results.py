"""Results on the test set: the confusion matrix, per-class accuracy and galleries of
(mis)classified images."""
import numpy as np

from ..metrics import per_class_accuracy as class_accuracy
from .common import figure, finish, tiles


def confusion(cm, classes, path=None):
    """The confusion matrix ``cm`` (metrics.confusion_matrix: row = true class, column =
    predicted) as counts (left) and row-normalised (right: each true class sums
    to 1). Cells are annotated when there are at most 20 classes."""
    cm = np.asarray(cm)
    n = len(classes)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4.5, min(0.45 * n + 1.5, 8.5))
    wide = n <= 20      # side by side; one above the other for many classes
    fig = figure(2 * size + 1, size) if wide else figure(size + 1, 2 * size)
    axes = fig.subplots(1, 2) if wide else fig.subplots(2, 1)
    for ax, data, title, fmt in ((axes[0], cm, "counts", "d"),
                                 (axes[1], norm, "row-normalised", ".2f")):
        im = ax.imshow(data, cmap="Blues", vmin=0, interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_title(f"confusion matrix ({title})", fontsize=10)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ticks = np.arange(n)
        fontsize = 8 if n <= 20 else 6
        ax.set_xticks(ticks, classes, fontsize=fontsize)
        ax.set_yticks(ticks, classes, fontsize=fontsize)
        if n <= 20:
            high = data.max() / 2 if data.size else 0
            for (r, c), v in np.ndenumerate(data):
                if v >= (1 if fmt == "d" else 0.005):
                    ax.text(c, r, format(v, fmt).lstrip("0") if fmt != "d" else str(v),
                            ha="center", va="center", fontsize=6 if n > 12 else 7,
                            color="white" if v > high else "black")
    return finish(fig, path)


def per_class_accuracy(cm, classes, path=None):
    """Accuracy on the test images of each class, with the overall accuracy as a line."""
    cm = np.asarray(cm)
    acc = class_accuracy(cm)
    overall = np.trace(cm) / max(cm.sum(), 1)
    fig = figure(max(5, 0.22 * len(classes) + 2), 3.4)
    ax = fig.subplots()
    ax.bar(np.arange(len(classes)), acc, color="tab:blue")
    ax.axhline(overall, color="tab:red", lw=1, ls="--", label=f"overall {overall:.3f}")
    ax.set_xticks(np.arange(len(classes)), classes, fontsize=8 if len(classes) <= 20 else 7)
    low = np.floor(10 * (acc.min() - 0.05)) / 10 if len(acc) else 0   # zoom in on the bars
    ax.set_ylim(max(0.0, low), 1.005)
    ax.set_xlabel("true class")
    ax.set_ylabel("accuracy")
    ax.set_title("per-class accuracy")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    return finish(fig, path)


def _gallery(images, titles, suptitle, path, max_cols=10):
    if len(images) == 0:
        fig = figure(5, 0.8)
        fig.text(0.5, 0.5, f"{suptitle}: none", ha="center", va="center")
        return finish(fig, path)
    return finish(tiles(images, titles, max_cols=max_cols, suptitle=suptitle, tile=1.05), path)


def misclassified(images, labels, predicted, classes, path=None, n=30):
    """The first ``n`` misclassified images, each titled 'true -> predicted'."""
    idx = np.flatnonzero(np.asarray(labels) != np.asarray(predicted))[:n]
    titles = [f"{classes[labels[i]]} -> {classes[predicted[i]]}" for i in idx]
    return _gallery(images[idx], titles, "misclassified test images (true -> predicted)", path)


def correct(images, labels, predicted, classes, path=None, n=20):
    """The first ``n`` correctly classified images, titled with their class."""
    idx = np.flatnonzero(np.asarray(labels) == np.asarray(predicted))[:n]
    return _gallery(images[idx], [classes[labels[i]] for i in idx],
                    "correctly classified test images", path)


def confident_mistakes(images, labels, proba, classes, path=None, n=20):
    """The ``n`` mistakes made with the highest predicted probability, titled
    'true -> predicted (probability)'."""
    proba = np.asarray(proba)
    predicted = proba.argmax(axis=1)
    wrong = np.flatnonzero(np.asarray(labels) != predicted)
    idx = wrong[np.argsort(-proba[wrong, predicted[wrong]], kind="stable")][:n]
    titles = [f"{classes[labels[i]]} -> {classes[predicted[i]]} ({proba[i, predicted[i]]:.2f})"
              for i in idx]
    return _gallery(images[idx], titles, "most confident mistakes (true -> predicted (p))", path)
