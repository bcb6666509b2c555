"""Image folders: one sub-folder per class, preprocessing, skipped files reported, CLI."""
import shutil

import numpy as np
import pytest
from PIL import Image

from glyphnet import cli, data
from glyphnet.data import images
from glyphnet.errors import DataError


def drawing(kind, size=(40, 30), dark_on_light=True, offset=0):
    """A character-like picture: a vertical stroke ('1') or a box ('0') drawn in black on
    white paper (or white on black)."""
    h, w = size
    ink = np.zeros(size, np.float32)
    if kind == "1":
        ink[5 + offset:h - 5, w // 2 - 2:w // 2 + 2] = 1
    else:
        ink[6:h - 6, 5 + offset:w - 5] = 1
        ink[10:h - 10, 9 + offset:w - 9] = 0
    pixels = (1 - ink) if dark_on_light else ink
    return Image.fromarray(np.round(pixels * 255).astype(np.uint8))


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "chars"
    for cls in ("1", "0", "junk"):
        (root / cls).mkdir(parents=True)
    for k in range(4):
        drawing("1", offset=k).save(root / "1" / f"a{k}.png")
        drawing("0", offset=k).convert("RGB").save(root / "0" / f"b{k}.jpg", quality=95)
    drawing("0", offset=1).save(root / "0" / "c.pgm")
    Image.fromarray(np.full((30, 30), 128, np.uint8)).save(root / "junk" / "blank.png")
    Image.fromarray(np.eye(30, dtype=np.uint8) * 255).save(root / "junk" / "line.png")
    shutil.copy(root / "1" / "a0.png", root / "1" / "copy_of_a0.png")  # exact duplicate
    (root / "0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "1" / "notes.txt").write_text("not an image")
    return root


def test_folder_classes_preprocessing_and_skipped_files(folder):
    ds = data.load_folder(str(folder), size=28, reject_class="junk", test_per_class=1)
    assert ds.classes == ["0", "1", "junk"]  # sorted, the reject class last
    assert np.bincount(ds.y_train).tolist() == [4, 3, 1]
    assert np.bincount(ds.y_test).tolist() == [1, 1, 1]
    assert ds.input_shape == (28, 28, 1)
    skipped = "\n".join(ds.skipped)
    assert "copy_of_a0.png: duplicate of" in skipped and "a0.png" in skipped
    assert "broken.png: not a readable image" in skipped
    assert "notes.txt: not an image file name" in skipped
    assert len(ds.skipped) == 3
    # Dark-on-light drawings are inverted (ink high), cropped, centred: border is background.
    ones = ds.x_train[ds.y_train == 1]
    assert ones[:, :3].max() < 0.05 and ones[:, 10:18, 12:16].mean() > 0.5


def test_folder_without_test_count_or_classes_is_an_error(folder, tmp_path):
    with pytest.raises(DataError, match="set data.test_per_class"):
        data.load_folder(str(folder))
    with pytest.raises(DataError, match="reject class folder 'nope' does not exist"):
        data.load_folder(str(folder), reject_class="nope", test_per_class=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        data.load_folder(str(tmp_path / "empty"), test_per_class=1)
    with pytest.raises(DataError, match="image folder not found"):
        data.load_folder(str(tmp_path / "missing"), test_per_class=1)


def test_train_and_test_folders_catch_duplicates_across_them(tmp_path):
    for part in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / part / cls).mkdir(parents=True)
    for k in range(3):
        drawing("1", offset=k).save(tmp_path / "train" / "a" / f"{k}.png")
        drawing("0", offset=k).save(tmp_path / "train" / "b" / f"{k}.png")
    drawing("1", offset=3).save(tmp_path / "test" / "a" / "x.png")
    shutil.copy(tmp_path / "train" / "b" / "0.png", tmp_path / "test" / "b" / "leak.png")
    drawing("0", offset=4).save(tmp_path / "test" / "b" / "y.png")
    ds = data.load_folder(str(tmp_path), size=16)
    assert ds.input_shape == (16, 16, 1)
    assert len(ds.x_train) == 6 and np.bincount(ds.y_test).tolist() == [1, 1]
    assert len(ds.skipped) == 1 and "leak.png: duplicate of" in ds.skipped[0]


def test_non_square_canvas_without_cropping_keeps_the_whole_picture(tmp_path):
    face = np.tile(np.linspace(0, 1, 92, dtype=np.float32), (112, 1))
    out = images.prepare(face, (56, 46), invert=False, contrast=False, crop=False)
    assert out.shape == (56, 46)
    assert out[:, 0].mean() < 0.05 and out[:, -1].mean() > 0.95
    box = images.prepare(np.asarray(drawing("1"), np.float32) / 255, (20, 40))
    assert box.shape == (20, 40) and box[:, :5].max() < 0.05
    # mnist_like is prepare on a square canvas
    grey = np.asarray(drawing("0"), np.float32) / 255
    assert np.array_equal(images.mnist_like(grey, 28), images.prepare(grey, 28))


def test_folder_config_and_cli(folder, capsys, tmp_path):
    cfg = data.check_config({"dataset": "folder", "path": str(folder), "image_size": 16,
                             "reject_class": "junk", "test_per_class": 1}, [])
    ds = data.load_from_config(cfg)
    assert ds.input_shape == (16, 16, 1) and ds.classes[-1] == "junk"
    assert cli.main(["data", "show", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "skipped 3 file(s)" in out and "duplicate of" in out
    grid = tmp_path / "grid.png"
    assert cli.main(["data", "grid", str(folder), "--out", str(grid), "--per-class", "2",
                     "--scale", "1"]) == 0
    with Image.open(grid) as im:
        assert im.height == 3 * (28 + 2) and im.width > 2 * 28
    assert cli.main(["data", "grid", str(folder), "--out", str(tmp_path / "g.xyz")]) == 1
    assert "unknown image type .xyz" in capsys.readouterr().err
    assert not (tmp_path / "g.xyz").exists()


def test_data_export_writes_an_image_folder_that_reads_back(tmp_path, capsys):
    out = tmp_path / "digits"
    assert cli.main(["data", "export", "mnist", "--out", str(out), "--per-class", "3"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [str(d) for d in range(10)]
    assert all(len(list((out / str(d)).iterdir())) == 3 for d in range(10))
    mnist = data.load_mnist()
    first_zero = mnist.x_train[mnist.y_train == 0][0, ..., 0]
    with Image.open(out / "0" / "0000.png") as im:
        np.testing.assert_allclose(np.asarray(im) / 255, first_zero, atol=0.5 / 255 + 1e-6)
    # a class of other pictures, resized, and the folder reads back as 11 classes
    assert cli.main(["data", "export", "mnist", "--out", str(out), "--split", "test",
                     "--limit", "5", "--size", "16", "--as", "not_a_character"]) == 0
    with Image.open(out / "not_a_character" / "0004.png") as im:
        assert im.size == (16, 16)
    ds = data.load_from_config(data.check_config(
        {"dataset": "folder", "path": str(out), "image_size": 16,
         "reject_class": "not_a_character", "test_per_class": 1}, []))
    assert ds.classes[-1] == "not_a_character" and len(ds.y_train) == 10 * 2 + 4
    # an existing class folder is refused, and nothing is written
    capsys.readouterr()
    assert cli.main(["data", "export", "mnist", "--out", str(out), "--per-class", "1"]) == 1
    assert "already exist" in capsys.readouterr().err
    assert len(list((out / "0").iterdir())) == 3
    assert not list(out.glob("*.tmp"))


def test_data_export_failures_are_one_message_and_leave_nothing(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    assert cli.main(["data", "export", "mnist", "--out", str(tmp_path / "file" / "x"),
                     "--per-class", "1"]) == 1
    assert "cannot write the image folder" in capsys.readouterr().err
    assert cli.main(["data", "export", "mnist", "--out", str(tmp_path / "d"), "--limit", "2",
                     "--as", "../up"]) == 1
    assert "expected plain folder names" in capsys.readouterr().err
    assert not (tmp_path / "up").exists() and not (tmp_path / "d").exists()
    # a class that cannot be written: the classes written before it are removed too
    out = tmp_path / "partial"
    out.mkdir()
    (out / "3.tmp").write_text("a file where a temporary folder goes")
    assert cli.main(["data", "export", "mnist", "--out", str(out), "--per-class", "1"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["3.tmp"]
