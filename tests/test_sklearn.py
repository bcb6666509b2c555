"""GlyphnetClassifier as a scikit-learn estimator: the estimator checks, Pipeline and
GridSearchCV, arbitrary labels, flat and image-shaped inputs, configs."""
import os
import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from glyphnet.sklearn import GlyphnetClassifier  # noqa: E402

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs")
MLP = [{"type": "dense", "units": 32}, {"type": "relu"}, {"type": "dense", "units": 10},
       {"type": "softmax"}]
CNN = [{"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "relu"},
       {"type": "max_pool2d", "pool_size": 2}, {"type": "dense", "units": 10},
       {"type": "softmax"}]

# Every check of scikit-learn 1.9 passes (none is marked as an expected failure). Two skip, by
# scikit-learn's own decision: the array API check (runs only with SCIPY_ARRAY_API=1) and the
# pandas-input check (runs only when pandas is installed).
@parametrize_with_checks([GlyphnetClassifier(layers=MLP, epochs=20, batch_size=32, lr=0.01)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits(mnist):
    """(x_train, y_train, x_test, y_test): 600 training and 300 test MNIST images, flat."""
    return (mnist.x_train[:600].reshape(600, -1), mnist.y_train[:600],
            mnist.x_test[:300].reshape(300, -1), mnist.y_test[:300])


def test_fit_predict_score_with_string_labels(digits):
    x, y, xt, yt = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    clf = GlyphnetClassifier(layers=MLP, epochs=8, batch_size=32).fit(x, names[y])
    assert list(clf.classes_) == sorted(names) and clf.n_features_in_ == 784
    pred = clf.predict(xt)
    assert set(pred) <= set(names)
    proba = clf.predict_proba(xt)
    assert proba.shape == (300, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert np.array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(xt, names[yt]) == np.mean(pred == names[yt]) > 0.75


def test_images_flat_with_input_shape_equal_image_shaped(digits):
    x, y, xt, _ = digits
    images = GlyphnetClassifier(layers=CNN, epochs=1, batch_size=64).fit(
        x.reshape(-1, 28, 28), y)
    flat = GlyphnetClassifier(layers=CNN, epochs=1, batch_size=64, input_shape=(28, 28, 1)) \
        .fit(x, y)
    assert images.model_.input_shape == flat.model_.input_shape == (28, 28, 1)
    np.testing.assert_array_equal(images.predict_proba(xt.reshape(-1, 28, 28, 1)),
                                  flat.predict_proba(xt))
    with pytest.raises(ValueError, match="input_shape"):
        GlyphnetClassifier(layers=CNN, epochs=1).fit(x, y)
    with pytest.raises(ValueError, match=r"fitted on samples of shape \(28, 28, 1\)"):
        images.predict(xt.reshape(-1, 56, 14))          # as many values, another shape
    with pytest.raises(ValueError, match="X has 400 features, but GlyphnetClassifier is "
                                         "expecting 784"):
        images.predict(xt[:, :400].reshape(-1, 20, 20))


def test_pipeline_and_grid_search(digits):
    x, y, xt, yt = digits
    pipe = make_pipeline(StandardScaler(), GlyphnetClassifier(layers=MLP, epochs=4,
                                                              batch_size=32))
    grid = GridSearchCV(pipe, {"glyphnetclassifier__lr": [1e-5, 3e-3]}, cv=2).fit(x, y)
    scores = grid.cv_results_["mean_test_score"]
    assert len(scores) == 2 and scores[1] > scores[0] + 0.2     # lr 1e-5 barely moves
    assert grid.best_params_ == {"glyphnetclassifier__lr": 3e-3}
    assert grid.score(xt, yt) > 0.75
    assert grid.best_estimator_[-1].get_params()["lr"] == 3e-3


@pytest.mark.slow
def test_config_path_and_dict(digits):
    x, y, xt, yt = digits
    path = os.path.join(CONFIGS, "arch_b.toml")    # tanh outputs, sum of squares, SGD
    clf = GlyphnetClassifier(layers=path, epochs=2, batch_size=16, lr=0.05,
                             input_shape=(28, 28, 1))
    clf.fit(x, y % 3)                              # 3 classes: the last dense layer follows
    model = clf.model_
    assert model.output_shape == (3,) and model.loss.kind == "mse"
    assert model.scaler.mode == "standardize_global" and type(model.optimizer).__name__ == "SGD"
    assert model.optimizer.lr == 0.05
    assert clf.score(xt, yt % 3) > 0.5
    as_dict = GlyphnetClassifier(layers={"model": {"layers": MLP}}, epochs=1).fit(x, y)
    assert as_dict.model_.output_shape == (10,) and as_dict.model_.scaler.mode == "unit"
    # The config's augmentation is used: the same seed trains differently without it.
    shifted = {"model": {"layers": MLP}, "augment": {"shift": 2}}
    with pytest.raises(ValueError, match="input_shape"):
        GlyphnetClassifier(layers=shifted, epochs=1).fit(x, y)
    augmented = GlyphnetClassifier(layers=shifted, epochs=1, input_shape=(28, 28, 1)).fit(x, y)
    plain = GlyphnetClassifier(layers=MLP, epochs=1, input_shape=(28, 28, 1)).fit(x, y)
    assert not np.allclose(augmented.predict_proba(xt), plain.predict_proba(xt))


def test_params_clone_and_pickle(digits):
    x, y, xt, _ = digits
    clf = GlyphnetClassifier(layers=MLP, epochs=1, seed=3)
    assert clf.get_params()["seed"] == 3
    clf.set_params(epochs=2, batch_size=50)
    assert (clf.epochs, clf.batch_size) == (2, 50)
    clone(clf).fit(x, y)
    fitted = clf.fit(x, y)
    assert len(fitted.history_.epochs) == 2
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(xt), fitted.predict_proba(xt))
    same_seed = GlyphnetClassifier(layers=MLP, epochs=2, batch_size=50, seed=3).fit(x, y)
    np.testing.assert_array_equal(same_seed.predict_proba(xt), fitted.predict_proba(xt))
