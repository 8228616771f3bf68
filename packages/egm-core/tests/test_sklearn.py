import pytest
from egm_core import PyEGM

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is a test dependency")
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def test_get_set_params_and_clone():
    m = PyEGM(preset="fscil", path_k=7, platform="cpu", random_state=1)
    params = m.get_params()
    assert params["preset"] == "fscil" and params["path_k"] == 7 and params["num_points"] is None
    m.set_params(num_points=5)
    c = clone(m)
    assert c is not m and c.get_params() == m.get_params()
    assert "path_k=7" in repr(m)
    with pytest.raises(ValueError, match="Invalid parameter"):
        m.set_params(bogus=1)


def test_clone_of_a_fitted_model_is_unfitted(blobs):
    X, y, _, _ = blobs
    m = PyEGM(platform="cpu", random_state=0).fit(X, y)
    c = clone(m)
    assert not hasattr(c, "bank_X_")


def test_cross_val_score_and_pipeline(digits):
    X, y, _, _ = digits
    X, y = X[:300], y[:300]
    scores = cross_val_score(PyEGM(platform="cpu", random_state=0), X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85
    pipe = make_pipeline(StandardScaler(), PyEGM(platform="cpu", random_state=0))
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.9
    assert pipe.predict_proba(X[:4]).shape == (4, 10)
    assert cross_val_score(pipe, X, y, cv=3).mean() > 0.8


def test_is_a_classifier_for_sklearn():
    from sklearn.base import is_classifier

    assert is_classifier(PyEGM())


def test_check_estimator():
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(
            PyEGM(platform="cpu", random_state=0, num_points=4, num_iters=1), on_fail=None
        )
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    assert not failed, failed
    passed = [r for r in results if r["status"] == "passed"]
    assert len(passed) >= 45


def test_predict_log_proba_matches_log_of_predict_proba(blobs):
    import numpy as np

    X, y, Xte, _ = blobs
    m = PyEGM(platform="cpu", random_state=0).fit(X, y)
    proba = m.predict_proba(Xte)
    log_proba = m.predict_log_proba(Xte)
    assert log_proba.shape == proba.shape and log_proba.dtype == np.float64
    np.testing.assert_allclose(np.exp(log_proba), proba, atol=1e-12)
    assert (proba == 0).any() and np.isneginf(log_proba[proba == 0]).all()
    assert np.isfinite(log_proba[proba > 0]).all()
