"""TensorBoard event files written while ``fit`` runs, through tensorboardX (``pip install
'glyphnet[tensorboard]'``), so ``tensorboard --logdir runs`` shows glyphnet runs next to others.

Written, with the epoch as the step: every metric of the epoch's history row (loss/train,
accuracy/train, loss/val, accuracy/test, ...; epoch/seconds), the learning rate the epoch
trained with, a histogram of every weight array and of its gradient on the epoch's last batch
(weights/3_dense/W, gradients/3_dense/W), and the first layer's filters as images (a dense
first layer shows each unit's weights in the shape of the input images). With the step as the
step: the loss of every batch (loss/batch).
"""
import numpy as np

from ..errors import GlyphnetError
from ..nn.training import Callback

INSTALL = "pip install 'glyphnet[tensorboard]'"


def _writer_class():
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise GlyphnetError(f"TensorBoard logging (training.tensorboard, --tensorboard) needs "
                            f"tensorboardX: {INSTALL}") from None
    return SummaryWriter


def first_layer_filters(model, limit=64):
    """The first weighted layer's filters as (count, height, width) images (the first input
    channel), or None when it has none with a picture: conv kernels, depthwise kernels, or a
    dense layer's weights of each unit over image inputs."""
    layer = next((layer for layer in model.layers if layer.params), None)
    if layer is None:
        return None
    kind = layer.kind
    if kind == "conv2d":
        w = layer.params["W"][:, :, 0].transpose(2, 0, 1)           # (F, KH, KW)
    elif kind in ("depthwise_conv2d", "separable_conv2d"):
        w = layer.params["W" if kind == "depthwise_conv2d" else "W_depthwise"]
        w = w.transpose(2, 0, 1)                                    # (C, KH, KW)
    elif kind == "dense" and len(model.input_shape) == 3:
        h, wd, c = model.input_shape
        w = layer.params["W"].reshape(h, wd, c, -1)[:, :, 0].transpose(2, 0, 1)
    else:
        return None
    return w[:limit]


def _as_pictures(filters, size=28):
    """(count, h, w) weights -> (count, H, W, 1) values in [0, 1], 0.5 for a zero weight,
    each filter scaled by its largest magnitude and enlarged to about ``size`` pixels."""
    scale = np.abs(filters).max(axis=(1, 2), keepdims=True)
    pictures = 0.5 + 0.5 * filters / np.where(scale > 0, scale, 1)
    factor = max(1, size // max(filters.shape[1:]))
    pictures = pictures.repeat(factor, axis=1).repeat(factor, axis=2)
    return pictures[..., None].astype(np.float32)


class TensorBoard(Callback):
    """Writes TensorBoard event files into ``log_dir`` (see the module docstring).
    ``histograms`` and ``images`` switch those off. tensorboardX writes from a background
    thread: call ``close`` when training ends, which waits for the last events."""

    def __init__(self, log_dir, histograms=True, images=True):
        self.log_dir, self.histograms, self.images = log_dir, histograms, images
        self.writer = _writer_class()(log_dir)
        self.lr = None

    def on_epoch_begin(self, model, epoch):
        self.lr = getattr(model.optimizer, "lr", None)     # fit may decay it after the epoch

    def on_batch_end(self, model, step, loss):
        self.writer.add_scalar("loss/batch", float(loss), step)

    def on_epoch_end(self, model, epoch, metrics):
        w = self.writer
        for key, value in metrics.items():
            if key == "epoch" or value is None:
                continue
            split, _, name = key.partition("_")
            w.add_scalar(f"{name}/{split}" if name else f"epoch/{key}", float(value), epoch)
        if self.lr is not None:
            w.add_scalar("learning_rate", float(self.lr), epoch)
        if self.histograms:
            for i, name, value, grad in model.parameters():
                tag = f"{i}_{model.layers[i].kind}/{name}"
                w.add_histogram(f"weights/{tag}", value.astype(np.float64), epoch)
                w.add_histogram(f"gradients/{tag}", grad.astype(np.float64), epoch)
        filters = first_layer_filters(model) if self.images else None
        if filters is not None:
            w.add_images("filters/first_layer", _as_pictures(filters), epoch, dataformats="NHWC")
        w.flush()

    def close(self):
        self.writer.close()
