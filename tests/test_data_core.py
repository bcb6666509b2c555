"""IDX and CSV loaders: valid files load, damaged ones get a clear DataError; input scaling."""
import gzip
import re

import numpy as np
import pytest

from glyphnet import DataError, Scaler
from glyphnet.data import load_csv, load_files, load_idx_pair, read_idx


def idx_bytes(array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def write(path, data, gz=False):
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return str(path)


@pytest.fixture
def digits():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), np.array([0, 3, 9, 1, 3], np.uint8)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_idx_pair_loads(tmp_path, digits, gz):
    images, labels = digits
    suffix = ".gz" if gz else ""
    x, y = load_idx_pair(write(tmp_path / f"img{suffix}", idx_bytes(images), gz),
                         write(tmp_path / f"lab{suffix}", idx_bytes(labels), gz), 10)
    assert x.shape == (5, 28, 28, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[..., 0], images / 255.0, rtol=1e-6)
    assert y.dtype == np.int64 and y.tolist() == [0, 3, 9, 1, 3]


def test_read_idx_other_types(tmp_path):
    a = np.arange(6, dtype=">i4").reshape(2, 3)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "a", idx_bytes(a, 0x0C))), a)


def test_idx_bad_magic(tmp_path, digits):
    data = bytearray(idx_bytes(digits[0]))
    data[0] = 0x1F
    path = write(tmp_path / "img", bytes(data))
    with pytest.raises(DataError, match=r"img: not an IDX file \(bad magic number 1f"):
        read_idx(path)
    text = write(tmp_path / "notes.txt", b"hello world")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(text)


def test_idx_truncated(tmp_path, digits):
    data = idx_bytes(digits[0])
    path = write(tmp_path / "img.gz", data[:-100], gz=True)
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert "img.gz" in message and "(5, 28, 28)" in message and "truncated" in message
    with pytest.raises(DataError, match="truncated IDX header"):
        read_idx(write(tmp_path / "short", data[:9]))


def test_idx_not_gzip_despite_the_name(tmp_path, digits):
    path = write(tmp_path / "img.gz", idx_bytes(digits[0]))
    with pytest.raises(DataError, match="img.gz: cannot read"):
        read_idx(path)


def test_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.idx: file not found"):
        read_idx(str(tmp_path / "nope.idx"))


def test_idx_count_mismatch(tmp_path, digits):
    images, labels = digits
    with pytest.raises(DataError, match="holds 5 images but .*lab holds 4 labels"):
        load_idx_pair(write(tmp_path / "img", idx_bytes(images)),
                      write(tmp_path / "lab", idx_bytes(labels[:4])), 10)


def test_idx_label_out_of_range(tmp_path, digits):
    images, labels = digits
    labels = labels.copy()
    labels[2] = 12
    with pytest.raises(DataError, match="lab: label 12 is out of range; expected labels 0..9"):
        load_idx_pair(write(tmp_path / "img", idx_bytes(images)),
                      write(tmp_path / "lab", idx_bytes(labels)), 10)


def test_idx_images_and_labels_swapped(tmp_path, digits):
    images, labels = digits
    with pytest.raises(DataError, match="expected an image file"):
        load_idx_pair(write(tmp_path / "lab", idx_bytes(labels)),
                      write(tmp_path / "img", idx_bytes(images)), 10)


# ------------------------------------------------------------------------------ CSV
def csv_text(images, labels, header=False):
    rows = [",".join(["label"] + [f"p{i}" for i in range(images[0].size)])] if header else []
    rows += [",".join(map(str, [int(lab)] + img.reshape(-1).tolist()))
             for img, lab in zip(images, labels)]
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("header", [False, True])
def test_csv_loads(tmp_path, digits, header):
    images, labels = digits
    path = tmp_path / "train.csv"
    path.write_text(csv_text(images, labels, header))
    x, y = load_csv(str(path), num_classes=10)
    assert x.shape == (5, 28, 28, 1)
    np.testing.assert_allclose(x[..., 0], images / 255.0, rtol=1e-6)
    assert y.tolist() == labels.tolist()


def test_csv_files_make_a_dataset(tmp_path, digits):
    images, labels = digits
    (tmp_path / "train.csv").write_text(csv_text(images, labels))
    (tmp_path / "test.csv").write_text(csv_text(images[:2], labels[:2]))
    ds = load_files(str(tmp_path / "train.csv"), str(tmp_path / "test.csv"))
    assert ds.classes == [str(i) for i in range(10)]
    assert len(ds.x_train) == 5 and len(ds.x_test) == 2 and ds.input_shape == (28, 28, 1)


@pytest.mark.parametrize("mutate,message", [
    (lambda rows: rows[:2] + [rows[2].rsplit(",", 1)[0]] + rows[3:],
     r"row 3 has 784 fields; expected 785"),
    (lambda rows: rows[:1] + [rows[1].replace(",", ",x", 1)] + rows[2:], "non-numeric value"),
    (lambda rows: rows[:1] + ["2.5" + rows[1][1:]] + rows[2:], "labels must be integers"),
    (lambda rows: ["11" + rows[0][1:]] + rows[1:], "label 11 is out of range"),
    (lambda rows: ["-1" + rows[0][1:]] + rows[1:], "negative label -1"),
    (lambda rows: ["0,300," + rows[0].split(",", 2)[2]] + rows[1:],
     "pixel values must lie in 0..255"),
    (lambda rows: [], "no data rows"),
], ids=["short-row", "non-numeric", "fractional-label", "label-range", "negative-label",
        "pixel-range", "empty"])
def test_csv_validation(tmp_path, digits, mutate, message):
    images, labels = digits
    rows = csv_text(images, labels).splitlines()
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(mutate(rows)) + "\n")
    with pytest.raises(DataError) as info:
        load_csv(str(path), num_classes=10)
    assert str(path) in str(info.value)
    assert re.search(message, str(info.value)), str(info.value)


# ------------------------------------------------------------------------------ scaling
def test_scaling_modes(mnist_small):
    x = mnist_small[0][:500]
    unit = Scaler("unit").fit(x).transform(x)
    np.testing.assert_array_equal(unit, x)
    offset = Scaler("offset").fit(x).transform(x)
    assert offset.dtype == np.float32
    assert offset.min() == pytest.approx(0.01) and offset.max() == pytest.approx(1.0)
    per_pixel = Scaler("standardize").fit(x)
    z = per_pixel.transform(x)
    busy = x.std(axis=0) > 0.1                      # pixels the digits actually use
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=0)[busy], 1, rtol=1e-3)
    assert per_pixel.mean.shape == (28, 28, 1)
    glob = Scaler("standardize_global").fit(x)
    g = glob.transform(x)
    assert g.mean() == pytest.approx(0, abs=1e-4) and g.std() == pytest.approx(1, rel=1e-3)
    assert glob.mean.shape == (1,)
    with pytest.raises(ValueError, match="unknown scaling 'minmax'"):
        Scaler("minmax")
