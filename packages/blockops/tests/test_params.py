import numpy as np
import pytest
from blockops import ClassifierMixin, NotFittedError, ParamsMixin, check_is_fitted, clone


class Nearest(ClassifierMixin, ParamsMixin):
    def __init__(self, shift=0.0, inner=None):
        self.shift = shift
        self.inner = inner

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        self.classes_ = np.unique(y)
        self.means_ = np.stack([X[np.asarray(y) == c].mean(0) for c in self.classes_]) + self.shift
        return self

    def predict(self, X):
        check_is_fitted(self)
        d = ((np.asarray(X, dtype=float)[:, None] - self.means_[None]) ** 2).sum(-1)
        return self.classes_[d.argmin(1)]


def test_get_set_params_and_nested():
    est = Nearest(shift=1.0, inner=Nearest(shift=2.0))
    params = est.get_params()
    assert params["shift"] == 1.0 and params["inner__shift"] == 2.0
    est.set_params(shift=3.0, inner__shift=4.0)
    assert est.shift == 3.0 and est.inner.shift == 4.0
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        est.set_params(nope=1)


def test_set_params_changes_behaviour():
    X, y = np.array([[0.0], [1.0], [10.0], [11.0]]), np.array([0, 0, 1, 1])
    est = Nearest().fit(X, y)
    assert est.predict([[8.0]]).tolist() == [1]
    est.set_params(shift=5.0).fit(X, y)
    assert est.predict([[8.0]]).tolist() == [0]


def test_clone_is_unfitted_copy():
    est = Nearest(shift=2.0).fit([[0.0], [1.0]], [0, 1])
    new = clone(est)
    assert new.shift == 2.0 and not hasattr(new, "means_")
    with pytest.raises(NotFittedError, match="not fitted"):
        new.predict([[0.0]])


def test_not_fitted_error_is_value_and_attribute_error():
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    with pytest.raises(NotFittedError):
        check_is_fitted(Nearest(), ["means_"])


def test_not_fitted_error_is_sklearns_when_loaded():
    exceptions = pytest.importorskip("sklearn.exceptions", reason="scikit-learn is a test dep")
    with pytest.raises(exceptions.NotFittedError) as info:
        check_is_fitted(Nearest(), ["means_"])
    assert isinstance(info.value, NotFittedError)
    assert type(info.value).__name__ == "NotFittedError"


def test_repr_shows_non_defaults():
    assert repr(Nearest(shift=1.5)) == "Nearest(shift=1.5)"


def test_score_and_sklearn_interop():
    sklearn = pytest.importorskip("sklearn", reason="scikit-learn is a test dependency")
    from sklearn.base import clone as sk_clone
    from sklearn.base import is_classifier
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (30, 2)), rng.normal(4, 1, (30, 2))])
    y = np.array(["a"] * 30 + ["b"] * 30)
    est = Nearest()
    assert is_classifier(est)
    assert sk_clone(Nearest(shift=0.5)).shift == 0.5
    scores = cross_val_score(make_pipeline(StandardScaler(), est), X, y, cv=3)
    assert scores.mean() > 0.9
    assert est.fit(X, y).score(X, y, sample_weight=np.ones(60)) == est.score(X, y)
    assert sklearn.__version__


@pytest.mark.parametrize(
    "weights,match",
    [
        (np.zeros(4), "sums to 0"),
        (np.ones(3), "shape"),
        (np.array([1.0, np.nan, 1.0, 1.0]), "NaN or infinite"),
        (np.array(["a", "b", "c", "d"]), "must hold numbers"),
    ],
)
def test_weighted_accuracy_refuses_bad_sample_weight(weights, match):
    hits = np.array([True, False, True, True])
    with pytest.raises(ValueError, match=f"sample_weight.*{match}|{match}"):
        ClassifierMixin._weighted_accuracy(hits, weights)
    assert ClassifierMixin._weighted_accuracy(hits, np.array([1.0, 3.0, 0.0, 0.0])) == 0.25


@pytest.mark.cuda
def test_score_accepts_cuda_sample_weight():
    import torch

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (10, 2)), rng.normal(4, 1, (10, 2))])
    y = np.array([0] * 10 + [1] * 10)
    est = Nearest().fit(X, y)
    w = torch.ones(20, device="cuda")
    assert est.score(X, torch.as_tensor(y).cuda(), sample_weight=w) == est.score(X, y)
