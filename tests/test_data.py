"""Data loading: EMNIST layout (transposed IDX and CSV), USPS and faces files, the data
directory, subsets and splits, and the [data] config section."""
import gzip
import os
import tomllib

import numpy as np
import pytest

from glyphnet import config, data
from glyphnet.errors import ConfigError, DataError


def write_idx(path, array):
    """An IDX file (gzip when the name ends in .gz) holding a uint8 array."""
    array = np.ascontiguousarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def glyph(label):
    """A 28x28 upright test picture that is not symmetric under transposition: a horizontal
    bar at a row that depends on the label, plus a dot at the top left."""
    img = np.zeros((28, 28), np.uint8)
    img[3 + label % 20, 4:24] = 255
    img[1, 1] = 100
    return img


def emnist_dir(tmp_path, labels_train=(0, 10, 36, 46, 5), labels_test=(46, 1), csv=False):
    d = tmp_path / "emnist"
    d.mkdir()
    for part, labels in (("train", labels_train), ("test", labels_test)):
        upright = np.stack([glyph(k) for k in labels])
        stored = upright.transpose(0, 2, 1)  # the EMNIST files hold transposed pictures
        if csv:
            rows = np.concatenate([np.array(labels)[:, None], stored.reshape(len(labels), -1)], 1)
            np.savetxt(d / f"emnist-balanced-{part}.csv", rows, fmt="%d", delimiter=",")
        else:
            write_idx(d / f"emnist-balanced-{part}-images-idx3-ubyte.gz", stored)
            write_idx(d / f"emnist-balanced-{part}-labels-idx1-ubyte.gz", np.array(labels))
    return d


@pytest.mark.parametrize("csv", [False, True])
def test_emnist_loader_turns_pictures_upright_and_maps_characters(tmp_path, monkeypatch, csv):
    emnist_dir(tmp_path, csv=csv)
    monkeypatch.setenv("GLYPHNET_DATA", str(tmp_path))
    ds = data.load_from_config(data.check_config({"dataset": "emnist-balanced"}, []))
    assert ds.x_train.shape == (5, 28, 28, 1) and ds.x_test.shape == (2, 28, 28, 1)
    for img, label in zip(ds.x_train, ds.y_train):
        assert np.array_equal(np.round(img[..., 0] * 255), glyph(int(label)))
    assert [ds.classes[k] for k in ds.y_train] == ["0", "A", "a", "t", "5"]
    assert len(ds.classes) == 47 and ds.classes[38] == "d"


def test_emnist_rejects_out_of_range_labels(tmp_path, monkeypatch):
    emnist_dir(tmp_path, labels_train=(0, 47))
    monkeypatch.setenv("GLYPHNET_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"label 47 is out of range; expected labels 0..46"):
        data.load_emnist()


def test_missing_sets_say_where_they_looked_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPHNET_DATA", str(tmp_path))
    with pytest.raises(DataError) as err:
        data.load_named("emnist-balanced")
    msg = str(err.value)
    assert str(tmp_path / "emnist" / "emnist-balanced-train-images-idx3-ubyte.gz") in msg
    assert "GLYPHNET_DATA" in msg and "--data-dir" in msg
    assert "glyphnet data fetch emnist-balanced" in msg
    with pytest.raises(DataError, match=r"usps.*usps\.npz.*--data-dir"):
        data.load_named("usps")
    rows = {name: where for name, where, _ in data.known_datasets()}
    assert rows["usps"] is None and rows["faces"] is None and rows["mnist"]


def test_data_dir_defaults_to_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("GLYPHNET_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data.data_dir() == str(tmp_path / ".glyphnet" / "data")


def fake_usps(root, n_train=30, n_test=10):
    rng = np.random.default_rng(0)
    (root / "usps").mkdir()
    np.savez(root / "usps" / "usps.npz",
             X_train=rng.random((n_train, 256), dtype=np.float32),
             y_train=(np.arange(n_train) % 10).astype(np.uint8),
             X_test=rng.random((n_test, 256), dtype=np.float32),
             y_test=(np.arange(n_test) % 10).astype(np.uint8))


def fake_faces_npz(root, people=3, per_person=10):
    (root / "att_faces").mkdir()
    images = np.zeros((people * per_person, 12, 10), np.uint8)
    labels = np.repeat(np.arange(people), per_person).astype(np.uint8)
    index = np.tile(np.arange(1, per_person + 1), people).astype(np.uint8)
    images[:, 0, 0] = labels * 10 + index  # identifies each picture
    np.savez(root / "att_faces" / "att_faces.npz", images=images, labels=labels,
             image_index=index)


def test_usps_loader(tmp_path, monkeypatch):
    fake_usps(tmp_path)
    monkeypatch.setenv("GLYPHNET_DATA", str(tmp_path))
    ds = data.load_usps()
    assert ds.x_train.shape == (30, 16, 16, 1) and ds.x_test.shape == (10, 16, 16, 1)
    assert ds.x_train.dtype == np.float32 and ds.classes == [str(i) for i in range(10)]
    with np.load(tmp_path / "usps" / "usps.npz") as z:
        assert np.array_equal(ds.x_train[3, :, :, 0], z["X_train"][3].reshape(16, 16))


def test_faces_split_five_and_five_in_order_or_shuffled(tmp_path, monkeypatch):
    fake_faces_npz(tmp_path)
    monkeypatch.setenv("GLYPHNET_DATA", str(tmp_path))
    ds = data.load_from_config(data.check_config({"dataset": "faces"}, []))
    ids = lambda x: np.round(x[:, 0, 0, 0] * 255).astype(int)  # noqa: E731
    assert ds.classes == ["s1", "s2", "s3"] and ds.input_shape == (12, 10, 1)
    assert list(ids(ds.x_train)[:5]) == [1, 2, 3, 4, 5]
    assert list(ids(ds.x_test)[:5]) == [6, 7, 8, 9, 10]
    assert np.bincount(ds.y_train).tolist() == [5, 5, 5] == np.bincount(ds.y_test).tolist()
    cfg = {"dataset": "faces", "test_per_class": 3, "shuffle_split": True, "split_seed": 4}
    a = data.load_from_config(data.check_config(cfg, []))
    b = data.load_from_config(data.check_config(cfg, []))
    assert np.array_equal(ids(a.x_test), ids(b.x_test))
    assert np.bincount(a.y_test).tolist() == [3, 3, 3]
    assert set(ids(a.x_test)).isdisjoint(ids(a.x_train))
    assert list(ids(a.x_test)) != [8, 9, 10, 18, 19, 20, 28, 29, 30]
    resized = data.load_from_config(data.check_config({"dataset": "faces",
                                                       "image_size": [6, 5]}, []))
    assert resized.input_shape == (6, 5, 1)


def test_faces_from_the_pgm_tree(tmp_path, monkeypatch):
    from PIL import Image
    for person in (1, 2, 10):
        folder = tmp_path / "att_faces" / "att_faces" / f"s{person}"
        folder.mkdir(parents=True)
        for m in range(1, 11):
            pixels = np.full((6, 4), person * 20 + m, np.uint8)
            Image.fromarray(pixels).save(folder / f"{m}.pgm")
    monkeypatch.setenv("GLYPHNET_DATA", str(tmp_path))
    ds = data.load_faces()
    assert ds.classes == ["s1", "s2", "s10"]  # natural order, as the labels of the npz
    assert ds.x_train.shape == (15, 6, 4, 1)
    assert np.round(ds.x_train[:5, 0, 0, 0] * 255).tolist() == [21, 22, 23, 24, 25]
    assert np.round(ds.x_test[-1, 0, 0, 0] * 255) == 210


def test_subsets_and_validation_split():
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 2, 0, 2])
    assert data.first_per_class(labels, 2).tolist() == [0, 1, 2, 3, 7, 9]
    train, test = data.split_per_class(labels, 1)
    assert test.tolist() == [5, 8, 9] and len(train) == 7
    train, val = data.validation_split(labels, 0.4)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(10))
    assert np.bincount(labels[val]).tolist() == [2, 1, 1]
    with pytest.raises(DataError, match="class 2 has 2 samples"):
        data.split_per_class(labels, 2)
    a, _ = data.split_per_class(labels, 1, shuffle=True, seed=1)
    b, _ = data.split_per_class(labels, 1, shuffle=True, seed=1)
    assert np.array_equal(a, b)


def test_mnist_subsets_from_config(mnist):
    cfg = data.check_config({"train_per_class": 30, "validation": 0.1, "test_limit": 50}, [])
    ds = data.load_from_config(cfg)
    assert np.bincount(ds.y_train).tolist() == [27] * 10
    assert np.bincount(ds.y_val).tolist() == [3] * 10
    assert len(ds.x_test) == 50
    first = data.first_per_class(mnist.y_train, 30)
    assert np.array_equal(np.sort(np.concatenate([ds.y_train, ds.y_val])),
                          np.sort(mnist.y_train[first]))


def test_check_config_reports_every_problem_at_once():
    problems = []
    data.check_config({"dataset": "folder", "image_size": [28], "invert": "yes",
                       "validation": 1.0, "train_per_class": -1, "shuffle_split": "no",
                       "colour": 1}, problems)
    text = "\n".join(problems)
    for key in ("data.image_size", "data.invert", "data.validation", "data.train_per_class",
                "data.shuffle_split", "data.colour", "data.path: required"):
        assert key in text
    problems = []
    data.check_config({"dataset": "usps", "crop": False, "test_per_class": 2}, problems)
    assert problems == [
        "data.crop: only used with dataset = \"folder\" (the data set is 'usps')",
        "data.test_per_class: only for sets without an official test split (faces, folder), "
        "not 'usps'"]


def test_resolved_data_section_round_trips_through_toml():
    raw = {"data": {"dataset": "folder", "path": "my/chars", "image_size": [20, 16],
                    "invert": True, "contrast": False, "reject_class": "junk",
                    "test_per_class": 5, "validation": 0.2, "shuffle_split": True,
                    "split_seed": 7}}
    cfg = config.resolve(raw)
    again = config.resolve(tomllib.loads(config.dumps(cfg)))
    assert again["data"] == cfg["data"]
    with pytest.raises(ConfigError, match="data.image_size"):
        config.resolve({"data": {"image_size": -3}})


def test_csv_errors_name_the_row(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("1,0,255,3,4\n0,1,2,3\n")
    with pytest.raises(DataError, match="row 2 has 4 fields; expected 5"):
        data.load_csv(p, (2, 2))
    p.write_text("")
    with pytest.raises(DataError, match="no data rows"):
        data.load_csv(p, (2, 2))
    p.write_text("label,a,b,c,d\n3,0,255,0,0\n")
    x, y = data.load_csv(p, (2, 2))
    assert y.tolist() == [3] and x[0, 0, 1, 0] == 1.0


def test_usps_file_with_wrong_shape_is_rejected(tmp_path, monkeypatch):
    (tmp_path / "usps").mkdir()
    np.savez(tmp_path / "usps" / "usps.npz", X_train=np.zeros((3, 255), np.float32),
             y_train=np.zeros(3), X_test=np.zeros((1, 256), np.float32), y_test=np.zeros(1))
    monkeypatch.setenv("GLYPHNET_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"X_train must be \(N, 256\)"):
        data.load_usps()
    assert os.path.exists(tmp_path / "usps" / "usps.npz")


SHIPPED = {"mnist_mlp_elastic": ((28, 28, 1), 10), "usps_cnn": ((16, 16, 1), 10),
           "faces_cnn": ((28, 23, 1), 40), "faces_tanh": ((112, 92, 1), 40),
           "emnist_cnn": ((28, 28, 1), 47), "emnist_mlp": ((28, 28, 1), 47)}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_configs_resolve_and_build(name):
    path = os.path.join(os.path.dirname(__file__), "..", "configs", f"{name}.toml")
    cfg = config.load_config(path)
    shape, classes = SHIPPED[name]
    x = np.zeros((2,) + shape, np.float32)
    ds = data.Dataset("fake", x, np.array([0, 1]), x, np.array([0, 1]),
                      [str(i) for i in range(classes)])
    model = config.build_model(cfg, ds)
    assert model.output_shape == (classes,)
    assert config.resolve(tomllib.loads(config.dumps(cfg))) == cfg


def test_cli_data_list_reports_missing_sets(tmp_path, capsys, monkeypatch):
    from glyphnet import cli
    monkeypatch.setenv("GLYPHNET_DATA", "unused")  # --data-dir sets it; restored afterwards
    assert cli.main(["data", "--data-dir", str(tmp_path), "list"]) == 0
    out = capsys.readouterr().out
    assert f"data directory: {tmp_path}" in out
    assert "mnist            found:" in out and "usps             missing:" in out
    assert cli.main(["data", "--data-dir", str(tmp_path), "show", "faces"]) == 1
    assert "att_faces.npz" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["emnist_cnn", "emnist_mlp"])
def test_emnist_configs_train_end_to_end_on_a_tiny_copy(name, tmp_path, monkeypatch, capsys):
    from glyphnet import cli
    emnist_dir(tmp_path, labels_train=(0, 10, 36, 46), labels_test=(46, 10))
    monkeypatch.setenv("GLYPHNET_DATA", str(tmp_path))
    path = os.path.join(os.path.dirname(__file__), "..", "configs", f"{name}.toml")
    run = tmp_path / "run"
    assert cli.main(["train", path, "--epochs", "1", "--out", str(run)]) == 0
    assert cli.main(["evaluate", str(run / "model.npz")]) == 0
    out = capsys.readouterr().out
    assert "emnist-balanced test (2 images)" in out
    assert "\n    t  " in out and "\n    A  " in out  # per-class rows named by character
