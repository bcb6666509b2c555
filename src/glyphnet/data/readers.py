"""Readers for data files: IDX (optionally gzip-compressed) and MNIST-style CSV, each checked
while it is read. Images come back as float32 NHWC arrays in [0, 1] (ink high), labels as int64."""
import gzip
import math
import os
import zlib

import numpy as np

from .. import memory
from ..errors import DataError

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: file not found")
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def read_idx(path):
    """Read an IDX file (optionally gzip-compressed) into an array, validating its header.

    IDX: two zero bytes, a type code, the number of dimensions, then each size as a big-endian
    uint32, then the data. MNIST images have magic 2051 (ubyte, 3 dims), labels 2049 (1 dim).
    The header's sizes are checked before the data is read: a compressed file is inflated only
    up to the declared size (plus one byte, to tell a file with more data).
    """
    try:
        with _open(path) as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES:
                raise DataError(f"{path}: not an IDX file (bad magic number "
                                f"{head[:4].hex() or 'empty'})")
            ndim = head[3]
            dims = f.read(4 * ndim)
            if ndim == 0 or len(dims) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX header")
            shape = tuple(int.from_bytes(dims[4 * i: 4 + 4 * i], "big") for i in range(ndim))
            dtype = np.dtype(IDX_TYPES[head[2]])
            if math.prod(d for d in shape if d) * dtype.itemsize >= 2**62:
                raise DataError(f"{path}: header says shape {shape}, too large for any "
                                f"array; the file is corrupt")
            expected = math.prod(shape) * dtype.itemsize
            if not path.endswith(".gz"):
                held = os.path.getsize(path) - 4 - 4 * ndim
                if held != expected:
                    raise DataError(_size_mismatch(path, shape, expected, held))
            elif expected > memory.available():
                raise DataError(f"{path}: header says shape {shape} ({expected} bytes of "
                                f"data), more than the memory available; the file is corrupt")
            raw = f.read(expected + 1)
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(raw) != expected:
        raise DataError(_size_mismatch(path, shape, expected, len(raw) if len(raw) < expected
                                       else f"more than {expected}"))
    return np.frombuffer(raw, dtype).reshape(shape)


def _size_mismatch(path, shape, expected, held):
    return (f"{path}: header says shape {shape} ({expected} bytes of data) but the file holds "
            f"{held} bytes; the file is truncated or corrupt")


def check_labels(path, labels, num_classes=None):
    if labels.ndim != 1:
        raise DataError(f"{path}: labels must be one-dimensional, got shape {labels.shape}")
    if labels.dtype.kind == "f" and len(labels):
        bad = np.flatnonzero(~np.isfinite(labels) | (labels != np.round(labels)))
        if bad.size:
            raise DataError(f"{path}: label {labels[bad[0]]!r} (label {bad[0] + 1}) is not a "
                            f"whole number")
        if np.abs(labels).max() >= 2**31:
            raise DataError(f"{path}: label {labels[np.abs(labels).argmax()]:.17g} is out of "
                            f"range; labels are class numbers 0, 1, 2, ...")
    if len(labels) and labels.min() < 0:
        raise DataError(f"{path}: negative label {int(labels.min())}")
    if num_classes is not None and len(labels) and labels.max() >= num_classes:
        raise DataError(f"{path}: label {int(labels.max())} is out of range; expected labels "
                        f"0..{num_classes - 1}")
    return labels.astype(np.int64)


def to_float_images(path, images):
    """(N, H, W) or (N, H, W, C) values 0..255 -> float32 NHWC in [0, 1]. Float images (an
    IDX file of floats) whose values all lie in [0, 1] are taken as already scaled."""
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise DataError(f"{path}: expected images of shape (N, H, W), got {images.shape}")
    floats = images.dtype.kind == "f"
    images = images.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(images.reshape(len(images), -1)).all(axis=1))
    if bad.size:
        raise DataError(f"{path}: image {bad[0] + 1} holds NaN or infinite pixel values")
    if floats and images.size and images.min() >= 0 and images.max() <= 1:
        return images
    if images.size and (images.min() < 0 or images.max() > 255):
        raise DataError(f"{path}: pixel values must lie in 0..255, found "
                        f"{images.min():g}..{images.max():g}")
    return images / 255.0


def load_idx_pair(images_path, labels_path, num_classes=None):
    """Images and labels from two IDX files, checked against each other."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim not in (3, 4):
        raise DataError(f"{images_path}: expected an image file (3 dimensions), got shape "
                        f"{images.shape}")
    labels = check_labels(labels_path, labels, num_classes)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                        f"{len(labels)} labels")
    return to_float_images(images_path, images), labels


def _read_text(path):
    """The text of a (possibly gzip-compressed) UTF-8 file, a byte-order mark dropped."""
    try:
        with _open(path) as f:
            return f.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None


def load_csv(path, image_shape=(28, 28), num_classes=None):
    """MNIST-style CSV: one image per row, the label first, then the pixels (0..255) row-major.
    A header line is skipped if its first field is not a number; a UTF-8 byte-order mark is
    ignored; pixels that all lie in [0, 1] are taken as already scaled. A bad value is
    reported with its row (data rows are numbered from 1) as written in the file."""
    pixels = int(np.prod(image_shape))
    text = _read_text(path)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"{path}: no data rows")
    header = _is_header(lines[0])
    rows = lines[1:] if header else lines
    if not rows:
        raise DataError(f"{path}: no data rows")
    try:
        table = np.loadtxt(rows, delimiter=",", dtype=np.float32, ndmin=2)
    except ValueError:
        table = _parse_csv_slowly(path, rows, pixels, image_shape)
    if table.shape[0] == 0:
        raise DataError(f"{path}: no data rows")
    if table.shape[1] != pixels + 1:
        raise DataError(f"{path}: rows have {table.shape[1]} fields; expected {pixels + 1} "
                        f"(a label and {pixels} pixels for {image_shape} images)")
    labels, values = table[:, 0], table[:, 1:]
    bad = np.flatnonzero(~np.isfinite(labels) | (labels != np.round(labels)))
    huge = np.flatnonzero(np.abs(labels) >= 2**31)
    for which, what in ((bad, "labels must be integers"),
                        (huge, "it is out of range; labels are class numbers 0, 1, 2, ...")):
        if which.size:
            raise DataError(f"{path}: row {which[0] + 1}: label "
                            f"{rows[which[0]].split(',')[0].strip()!r}: {what}")
    bad = np.flatnonzero(~((values >= 0) & (values <= 255)).all(axis=1))
    if bad.size:
        fields = rows[bad[0]].split(",")[1:]
        column = int(np.flatnonzero(~((values[bad[0]] >= 0) & (values[bad[0]] <= 255)))[0])
        raise DataError(f"{path}: row {bad[0] + 1}: pixel {column + 1} is "
                        f"{fields[column].strip()!r}; pixel values must lie in 0..255")
    labels = check_labels(path, labels.astype(np.int64), num_classes)
    images = values.reshape((len(table),) + tuple(image_shape))
    return to_float_images(path, images), labels


def _is_header(line):
    """A first line whose first field is not a number names the columns."""
    try:
        float(line.split(",")[0])
    except ValueError:
        return True
    return False


def _parse_csv_slowly(path, rows, pixels, image_shape):
    """Row-by-row parsing, to name the first bad row when the fast reader fails."""
    out = []
    for number, line in enumerate(rows, 1):
        fields = line.split(",")
        if len(fields) != pixels + 1:
            raise DataError(f"{path}: row {number} has {len(fields)} fields; expected "
                            f"{pixels + 1} (a label and {pixels} pixels for {image_shape} images)")
        try:
            out.append(np.array(fields, dtype=np.float32))
        except ValueError:
            bad = next(f for f in fields if not _is_number(f))
            raise DataError(f"{path}: row {number}: non-numeric value {bad.strip()!r}") from None
    return np.array(out, dtype=np.float32)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True
