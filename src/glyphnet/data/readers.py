"""Readers for data files: IDX (optionally gzip-compressed) and MNIST-style CSV, each checked
while it is read. Images come back as float32 NHWC arrays in [0, 1] (ink high), labels as int64."""
import gzip
import os

import numpy as np

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
    """
    try:
        with _open(path) as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: header says shape {shape} ({expected} bytes of data) but the "
                        f"file holds {len(raw) - header} bytes; the file is truncated or corrupt")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def check_labels(path, labels, num_classes=None):
    if labels.ndim != 1:
        raise DataError(f"{path}: labels must be one-dimensional, got shape {labels.shape}")
    if len(labels) and labels.min() < 0:
        raise DataError(f"{path}: negative label {int(labels.min())}")
    if num_classes is not None and len(labels) and labels.max() >= num_classes:
        raise DataError(f"{path}: label {int(labels.max())} is out of range; expected labels "
                        f"0..{num_classes - 1}")
    return labels.astype(np.int64)


def to_float_images(path, images):
    """(N, H, W) or (N, H, W, C) integers 0..255 -> float32 NHWC in [0, 1]."""
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise DataError(f"{path}: expected images of shape (N, H, W), got {images.shape}")
    images = images.astype(np.float32)
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


def load_csv(path, image_shape=(28, 28), num_classes=None):
    """MNIST-style CSV: one image per row, the label first, then the pixels (0..255) row-major.
    A header line is skipped if its first field is not a number."""
    pixels = int(np.prod(image_shape))
    try:
        with _open(path) as f:
            first = f.readline().decode("utf-8", "replace")
            if not first.strip():
                raise DataError(f"{path}: no data rows")
            header = _is_header(first)
            f.seek(0)
            table = np.loadtxt(f, delimiter=",", dtype=np.float32, skiprows=int(header),
                               ndmin=2)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    except ValueError:
        table = _parse_csv_slowly(path, pixels, image_shape)
    if table.shape[0] == 0:
        raise DataError(f"{path}: no data rows")
    if table.shape[1] != pixels + 1:
        raise DataError(f"{path}: rows have {table.shape[1]} fields; expected {pixels + 1} "
                        f"(a label and {pixels} pixels for {image_shape} images)")
    labels = table[:, 0]
    if np.any(labels != np.round(labels)):
        raise DataError(f"{path}: labels must be integers")
    labels = check_labels(path, labels.astype(np.int64), num_classes)
    images = table[:, 1:].reshape((len(table),) + tuple(image_shape))
    return to_float_images(path, images), labels


def _is_header(line):
    """A first line whose first field is not a number names the columns."""
    try:
        float(line.split(",")[0])
    except ValueError:
        return True
    return False


def _parse_csv_slowly(path, pixels, image_shape):
    """Row-by-row parsing, to name the first bad row when the fast reader fails."""
    try:
        with _open(path) as f:
            text = f.read().decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and _is_header(lines[0]):
        lines = lines[1:]
    rows = []
    for number, line in enumerate(lines, 1):
        fields = line.split(",")
        if len(fields) != pixels + 1:
            raise DataError(f"{path}: row {number} has {len(fields)} fields; expected "
                            f"{pixels + 1} (a label and {pixels} pixels for {image_shape} images)")
        rows.append(fields)
    if not rows:
        raise DataError(f"{path}: no data rows")
    try:
        return np.array(rows, dtype=np.float32)
    except ValueError as exc:
        raise DataError(f"{path}: non-numeric value ({exc})") from None
