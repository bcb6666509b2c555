"""The real data sets in $GLYPHNET_DATA (CI: /work/shared/data). Skipped, with the reason, when
the variable or a set is missing; nothing is downloaded."""
import os

import numpy as np
import pytest

from glyphnet import data
from glyphnet.errors import DataError

ROOT = os.environ.get("GLYPHNET_DATA")


def named(name):
    if not ROOT:
        pytest.skip("GLYPHNET_DATA is not set; point it at the data directory to test the real "
                    "data sets")
    try:
        return data.load_named(name)
    except DataError as exc:
        pytest.skip(f"{name} is not in GLYPHNET_DATA={ROOT}: {exc}")


def test_usps_has_the_standard_split():
    ds = named("usps")
    assert ds.x_train.shape == (7291, 16, 16, 1) and ds.x_test.shape == (2007, 16, 16, 1)
    assert ds.x_train.min() >= 0 and ds.x_train.max() <= 1
    # per-class counts of the ESL description of the original data (see PROVENANCE.md)
    assert np.bincount(ds.y_train).tolist() == [1194, 1005, 731, 658, 652, 556, 664, 645, 542,
                                                644]
    assert np.bincount(ds.y_test).tolist() == [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]
    # Background is 0 and ink high: the border is darker than the middle on average.
    assert ds.x_train[:, 0].mean() < ds.x_train[:, 6:10, 6:10].mean()


def test_att_faces_five_train_five_test_per_person():
    ds = named("faces")
    assert ds.input_shape == (112, 92, 1) and len(ds.classes) == 40
    assert np.bincount(ds.y_train).tolist() == [5] * 40 == np.bincount(ds.y_test).tolist()
    flat = np.concatenate([ds.x_train, ds.x_test]).reshape(400, -1)
    assert len(np.unique(flat, axis=0)) == 400  # every picture distinct, none in both splits


def test_emnist_balanced_when_present():
    ds = named("emnist-balanced")
    assert ds.x_train.shape == (112800, 28, 28, 1) and ds.x_test.shape == (18800, 28, 28, 1)
    assert np.bincount(ds.y_train).tolist() == [2400] * 47
    assert np.bincount(ds.y_test).tolist() == [400] * 47
    assert "".join(ds.classes[36:]) == "abdefghnqrt"
