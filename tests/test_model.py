import numpy as np
import pytest
import torch

from mnist_logreg import LogisticRegression, SoftmaxRegression

sklearn = pytest.importorskip("sklearn")
from sklearn.linear_model import LogisticRegression as SkLogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402


@pytest.fixture(scope="module")
def digits(mnist):
    """1,500 real MNIST digits, pixels in [0, 1]."""
    x = mnist.train_images[:1500].reshape(1500, -1).double().numpy() / 255
    return x, mnist.train_labels[:1500].numpy()


def test_model_returns_logits():
    m = SoftmaxRegression(784, 10)
    out = m(torch.rand(5, 784))
    assert out.shape == (5, 10) and not torch.allclose(out.softmax(1).sum(1), out.sum(1))


def test_parity_with_scikit_learn(digits):
    x, y = digits
    ours = LogisticRegression(C=0.1, max_iter=500).fit(x, y)
    ref = SkLogisticRegression(C=0.1, tol=1e-8, max_iter=5000).fit(x, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=2e-3)
    np.testing.assert_allclose(ours.predict_proba(x), ref.predict_proba(x), atol=2e-4)
    assert (ours.predict(x) == ref.predict(x)).mean() > 0.995
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    assert ours.n_iter_[0] > 0 and ours.intercept_.shape == (10,)


def test_probabilities_and_predictions_agree(digits):
    x, y = digits
    clf = LogisticRegression(C=1.0, max_iter=100).fit(x, y)
    p = clf.predict_proba(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.classes_[p.argmax(axis=1)], clf.predict(x))
    assert clf.score(x, y) > 0.95


def test_string_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4))
    y = np.where(x[:, 0] > 0, "pos", "neg")
    clf = LogisticRegression().fit(x, y)
    assert set(clf.predict(x)) <= {"pos", "neg"} and clf.score(x, y) > 0.9


def test_grid_search_and_cross_val(digits):
    x, y = digits
    search = GridSearchCV(LogisticRegression(max_iter=50), {"C": [0.01, 1.0]}, cv=3).fit(x, y)
    assert search.best_params_["C"] in (0.01, 1.0)
    assert len(search.cv_results_["mean_test_score"]) == 2
    scores = cross_val_score(LogisticRegression(solver="sgd", max_iter=5), x, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.8


def test_bad_parameters():
    with pytest.raises(ValueError, match="C must be a positive number"):
        LogisticRegression(C=-1).fit(np.zeros((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="solver must be one of"):
        LogisticRegression(solver="newton").fit(np.zeros((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="not fitted"):
        LogisticRegression().predict(np.zeros((1, 2)))


# scikit-learn's own estimator checks, every one of them: no check is exempt. A short
# max_iter keeps the 55 checks to a few seconds; the checks' data are small and easy.
@parametrize_with_checks([LogisticRegression(max_iter=20)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
