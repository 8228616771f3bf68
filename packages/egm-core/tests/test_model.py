import re
import sys
import types
import warnings

import numpy as np
import pytest
import torch
from blockops import NotFittedError
from egm_core import PyEGM


def fit(X, y, **kw):
    kw.setdefault("platform", "cpu")
    kw.setdefault("random_state", 0)
    return PyEGM(**kw).fit(X, y)


def test_fit_predict_proba(blobs):
    X, y, Xt, yt = blobs
    m = fit(X, y)
    assert m.score(Xt, yt) > 0.9
    proba = m.predict_proba(Xt)
    assert proba.shape == (len(Xt), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(m.classes_[proba.argmax(1)], m.predict(Xt))
    assert m.n_features_in_ == X.shape[1]


def test_string_labels(blobs):
    X, y, Xt, yt = blobs
    names = np.array(["ant", "bee", "cat"])
    m = fit(X, names[y])
    assert m.classes_.tolist() == ["ant", "bee", "cat"]
    assert set(m.predict(Xt)) <= set(names)
    assert m.score(Xt, names[yt]) > 0.9


def test_bank_contract(blobs):
    X, y, _, _ = blobs
    m = fit(X, y, num_iters=3)
    n = m.bank_X_.shape[0]
    assert m.bank_X_.shape == (n, X.shape[1]) and m.bank_X_.dtype == torch.float32
    for name, dtype in [
        ("bank_y_", torch.long),
        ("bank_is_real_", torch.bool),
        ("bank_generation_", torch.long),
        ("bank_energy_", torch.float32),
        ("bank_seed_", torch.long),
    ]:
        t = getattr(m, name)
        assert t.shape == (n,) and t.dtype == dtype, name
    real = m.bank_is_real_
    n_real = len(X)
    assert bool(real[:n_real].all()) and not bool(real[n_real:].any())  # real first
    np.testing.assert_allclose(m.bank_X_[:n_real].numpy(), X)
    assert bool((m.bank_generation_[real] == 0).all())
    assert bool((m.bank_energy_[real] == 0).all()) and bool((m.bank_seed_[real] == -1).all())
    syn = ~real
    assert set(m.bank_generation_[syn].tolist()) == {1, 2, 3}
    assert bool((m.bank_energy_[syn] > 0).all())
    seeds = m.bank_seed_[syn]
    assert bool(real[seeds].all())
    assert bool((m.bank_y_[seeds] == m.bank_y_[syn]).all())  # grown from its own class
    assert len(m.history_) == 3
    for i, entry in enumerate(m.history_, start=1):
        assert set(entry) >= {"session", "iteration", "class_counts", "radius", "energy"}
        assert entry["session"] == 0 and entry["iteration"] == i
        assert len(entry["class_counts"]) == len(entry["radius"]) == len(entry["energy"]) == 3
        assert all(isinstance(v, int) for v in entry["class_counts"])
        assert all(isinstance(v, float) for v in entry["radius"] + entry["energy"])
        gen = m.bank_generation_ == i
        counts = torch.bincount(m.bank_y_[gen], minlength=3).tolist()
        assert counts == entry["class_counts"]


def test_synthetic_points_stay_near_their_seeds(blobs):
    X, y, _, _ = blobs
    m = fit(X, y, governor=False, noise_scale=0.0)
    syn = ~m.bank_is_real_
    flight = (m.bank_X_[syn] - m.bank_X_[m.bank_seed_[syn]]).norm(dim=1)
    limit = (m.radius_[m.bank_y_[syn]] * 1.1 ** (m.bank_generation_[syn] - 1).float()) * 1.0001
    assert bool((flight <= limit).all())  # radius clip holds after the shell factor


def test_class_balanced_growth_on_imbalanced_data(make_blobs):
    X, y = make_blobs((60, 20, 6))
    m = fit(X, y, preset="imbalanced_kshot", governor=False)
    syn = torch.bincount(m.bank_y_[~m.bank_is_real_], minlength=3)
    assert syn[2] > syn[1] > syn[0]  # inv_size: the rare class gets the most


def test_trend_paths(blobs):
    X, y, Xt, _ = blobs
    m = fit(X, y)
    out = m.trend_paths(Xt[:7], path_steps=4)
    assert out["paths"].shape == (7, 3, 5, X.shape[1])
    np.testing.assert_allclose(out["paths"][:, :, 0].numpy(), np.repeat(Xt[:7, None], 3, 1))
    assert out["scores"].shape == (7, 3) and out["winner"].dtype == torch.long
    assert torch.allclose(out["scores"].max(dim=1).values, torch.ones(7))
    default = m.trend_paths(Xt)
    np.testing.assert_array_equal(m.classes_[default["winner"].numpy()], m.predict(Xt))
    # path points move monotonically toward the class target
    step = (out["paths"][:, :, 1:] - out["paths"][:, :, :-1]).norm(dim=3)
    assert bool((step[:, :, 1:] <= step[:, :, :-1] + 1e-5).all())


def test_path_k_larger_than_bank_is_clamped(blobs):
    X, y, Xt, yt = blobs
    m = fit(X[:12], y[:12], path_k=10_000, num_points=2, num_iters=1)
    assert m.predict(Xt).shape == (len(Xt),)


def test_scale_equivariance(digits):
    X, y, Xt, _ = digits
    base = fit(X, y).predict(Xt)
    for factor in (8.0, 0.25):  # powers of two: exact in float arithmetic
        np.testing.assert_array_equal(fit(X * factor, y).predict(Xt * factor), base)
    agree = (fit(X * 100.0, y).predict(Xt * 100.0) == base).mean()
    assert agree > 0.99


def test_same_seed_same_model_and_different_seed_differs(blobs):
    X, y, _, _ = blobs
    a, b, c = fit(X, y, random_state=5), fit(X, y, random_state=5), fit(X, y, random_state=6)
    assert torch.equal(a.bank_X_, b.bank_X_)
    assert not torch.equal(a.bank_X_, c.bank_X_)
    assert fit(X, y, random_state=None).get_fitted_params()["random_state"] >= 0


def test_not_fitted():
    m = PyEGM()
    for call in (
        lambda: m.predict(np.zeros((1, 2))),
        lambda: m.predict_proba(np.zeros((1, 2))),
        lambda: m.continue_fit(),
        lambda: m.save("x"),
        lambda: m.get_fitted_params(),
        lambda: m.trend_paths(np.zeros((1, 2))),
        lambda: m.score(np.zeros((1, 2)), [0]),
        lambda: m.export_fixed_yaml("never-written.yaml"),
    ):
        with pytest.raises(NotFittedError):
            call()


def test_bad_inputs(blobs):
    X, y, Xt, yt = blobs
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit(bad, y)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        fit(bad, y)
    with pytest.raises(ValueError, match="2-D"):
        fit(X[:, 0], y)
    with pytest.raises(ValueError, match="empty"):
        fit(np.zeros((0, 3)), [])
    with pytest.raises(ValueError, match="single class"):
        fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="must match"):
        fit(X, y[:-1])
    with pytest.raises(ValueError, match="target y is None"):
        fit(X, None)
    with pytest.raises(ValueError, match="n_samples=1"):
        fit(X[:1], y[:1])
    with pytest.raises(ValueError, match="Unknown label type"):
        fit(X, y + 0.5)
    scipy_sparse = pytest.importorskip("scipy.sparse", reason="scipy comes with scikit-learn")
    with pytest.raises(TypeError, match="sparse input is not supported"):
        fit(scipy_sparse.csr_matrix(X), y)
    m = fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but PyEGM is expecting 6"):
        m.predict(Xt[:, :3])
    with pytest.raises(ValueError, match="2-D"):
        m.predict(Xt[0])
    with pytest.raises(ValueError, match="NaN"):
        m.predict(np.full((2, X.shape[1]), np.nan))
    assert m.score(Xt, yt + 10) == 0.0  # unseen labels are errors, as in scikit-learn
    with pytest.raises(ValueError, match="must match"):
        m.score(Xt, yt[:-1])
    with pytest.raises(ValueError, match="NaN"):
        m.score(Xt, np.full(len(Xt), np.nan))
    with pytest.raises(ValueError, match="continuous"):
        m.score(Xt, yt + 0.5)
    with pytest.raises(ValueError, match="X has 3 features"):
        m.score(Xt[:, :3], yt)


def test_score_counts_unseen_labels_as_errors_like_sklearn(blobs):
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is a test dependency")
    X, y, Xt, yt = blobs
    m = fit(X, y)
    truth = yt.copy()
    truth[:5] = 7  # a class the model never saw
    want = metrics.accuracy_score(truth, m.predict(Xt))
    assert 0.0 < want < 1.0
    assert m.score(Xt, truth) == pytest.approx(want)
    assert m.score(Xt, truth.astype(np.float64)) == pytest.approx(want)  # 7.0, 0.0, ...
    assert m.score(Xt, truth.tolist()) == pytest.approx(want)
    w = np.linspace(0.5, 2.0, len(Xt))
    assert m.score(Xt, truth, sample_weight=w) == pytest.approx(
        metrics.accuracy_score(truth, m.predict(Xt), sample_weight=w)
    )
    names = np.array(["ant", "bee", "cat"])
    s = fit(X, names[y])
    labels = names[yt].astype(object)
    labels[:4] = "dog"
    assert s.score(Xt, labels) == pytest.approx(
        metrics.accuracy_score(labels.astype(str), s.predict(Xt))
    )
    with pytest.raises(ValueError, match="Mix of label input types"):
        s.score(Xt, yt)  # numbers for a string model, as scikit-learn refuses
    with pytest.raises(ValueError, match="Mix of label input types"):
        m.score(Xt, names[yt])
    for bad, match in [
        (np.zeros(len(Xt)), "sums to 0"),
        (np.ones(len(Xt) - 1), "shape"),
        (np.full(len(Xt), np.nan), "NaN"),
    ]:
        with pytest.raises(ValueError, match=match):
            m.score(Xt, yt, sample_weight=bad)


def test_score_after_partial_fit_with_a_new_class(make_blobs):
    X, y = make_blobs((30, 30, 30, 6), seed=2)
    base = y < 3
    m = fit(X[base], y[base], preset="fscil")
    before = m.score(X, y)  # class 3 not learned yet: its rows count as errors
    assert before <= 1.0 - 6 / len(y) + 1e-12
    m.partial_fit(X[~base][:3], y[~base][:3])
    assert 3 in m.classes_.tolist()
    assert m.score(X, y) > before


def test_partial_fit_new_classes(make_blobs):
    X, y = make_blobs((40, 40, 40, 5), seed=1)
    base = y < 3
    m = fit(X[base], y[base], preset="fscil")
    gens_before = int(m.bank_generation_.max())
    n_syn_base = torch.bincount(m.bank_y_[~m.bank_is_real_], minlength=3)
    m.partial_fit(X[~base], y[~base])
    assert m.classes_.tolist() == [0, 1, 2, 3]
    assert int(m.bank_is_real_.sum()) == len(X)  # nothing counted twice
    assert bool(m.bank_is_real_[: len(X)].all())
    new_syn = int(((~m.bank_is_real_) & (m.bank_y_ == 3)).sum())
    assert new_syn >= 0.8 * float(n_syn_base.float().mean())  # a fair share
    assert int(m.bank_generation_.max()) == gens_before + m.get_fitted_params()["num_iters"]
    assert m.history_[-1]["session"] == 1
    syn = ~m.bank_is_real_
    assert bool((m.bank_y_[m.bank_seed_[syn]] == m.bank_y_[syn]).all())
    assert (m.predict(X[~base]) == 3).mean() > 0.6
    # rivals are real centres of earlier sessions, kept in the state
    assert bool((m.class_count_ == torch.tensor([40, 40, 40, 5])).all())


@pytest.mark.parametrize("mode", ["local", "global"])
def test_radius_after_partial_fit_follows_the_mode_over_all_classes(make_blobs, mode):
    X, y = make_blobs((40, 40, 40, 30), seed=2)
    X[y == 3] *= 3.0  # a spread-out new class: its radius moves the median
    base = y < 2
    m = fit(X[base], y[base], adaptive_radius_mode=mode)
    m.partial_fit(X[y == 2], y[y == 2])
    m.partial_fit(X[y == 3], y[y == 3])
    every = fit(X, y, adaptive_radius_mode="local")  # the per-class radii of all the data
    torch.testing.assert_close(m.local_radius_, every.radius_)
    if mode == "local":
        torch.testing.assert_close(m.radius_, every.radius_)
    else:
        # the median of an even count is the mean of the middle two (numpy's), not the lower
        expected = float(np.median(every.radius_.numpy()))
        assert torch.allclose(m.radius_, torch.full((4,), expected))


def test_partial_fit_random_stream_moves_on(make_blobs):
    X, y = make_blobs((30, 30, 4), seed=2)
    m = fit(X[y < 2], y[y < 2], num_iters=1)
    m.partial_fit(X[y == 2], y[y == 2])
    first = m.bank_X_[~m.bank_is_real_ & (m.bank_y_ == 2)].clone()
    m.partial_fit(X[y == 2], y[y == 2])
    later = m.bank_X_[~m.bank_is_real_ & (m.bank_y_ == 2)]
    assert later.shape[0] > first.shape[0]
    assert not torch.allclose(later[-first.shape[0] :], first)


def test_partial_fit_on_unfitted_model_and_classes_argument(blobs):
    X, y, Xt, yt = blobs
    with pytest.warns(UserWarning, match="fewer than 2"):
        m = PyEGM(platform="cpu", random_state=0).partial_fit(X, y, classes=[0, 1, 2, 3])
    assert m.classes_.tolist() == [0, 1, 2, 3]
    assert m.predict_proba(Xt)[:, 3].max() == 0.0  # a class without rows is never predicted
    with pytest.warns(UserWarning, match="fewer than 2"):  # class 3 still has no rows
        m.partial_fit(X[:5], y[:5])
    with pytest.raises(ValueError, match="features"):
        m.partial_fit(X[:, :2], y)


def test_partial_fit_refuses_labels_missing_from_classes(make_blobs):
    # labels of y outside an explicit classes= were silently added (scikit-learn refuses them)
    X, y = make_blobs((30, 30, 8), seed=3)
    with pytest.raises(ValueError, match=r"y contains labels not in classes: \[2\]; classes"):
        PyEGM(platform="cpu", random_state=0).partial_fit(X, y, classes=[0, 1])
    m = PyEGM(platform="cpu", random_state=0).partial_fit(X[y < 2], y[y < 2], classes=[0, 1])
    before = (m.bank_X_.clone(), m.classes_.copy(), m.session_)
    with pytest.raises(ValueError, match=r"not in classes: \[2\]"):  # later calls too
        m.partial_fit(X[y == 2], y[y == 2], classes=[0, 1])
    assert torch.equal(m.bank_X_, before[0]) and m.session_ == before[2]
    np.testing.assert_array_equal(m.classes_, before[1])
    m.partial_fit(X[y == 2], y[y == 2])  # without classes= new labels are welcome
    assert m.classes_.tolist() == [0, 1, 2]
    with pytest.warns(UserWarning, match="fewer than 2"):  # 5 is registered without rows
        m.partial_fit(X[y == 2][:4], y[y == 2][:4], classes=[2, 5])
    assert m.classes_.tolist() == [0, 1, 2, 5] and m.predict_proba(X)[:, 3].max() == 0.0
    s = PyEGM(platform="cpu", random_state=0).fit(X[y < 2], np.where(y[y < 2] == 0, "a", "b"))
    with pytest.raises(ValueError, match=r"\['c'\]; classes=\['a', 'b'\]"):
        s.partial_fit(X[y == 2], ["c"] * 8, classes=["a", "b"])
    s.partial_fit(X[y == 2], ["c"] * 8, classes=["a", "b", "c"])
    assert s.classes_.tolist() == ["a", "b", "c"] and s.classes_.dtype.kind == "U"


def test_partial_fit_refuses_strings_for_numeric_classes(make_blobs):
    # "5" joined an int model as a new class: predict then mixed ints and strings, which
    # scikit-learn's metrics cannot sort
    X, y = make_blobs((30, 30, 8), seed=3)
    m = fit(X[y < 2], y[y < 2])
    n_bank = m.bank_X_.shape[0]
    with pytest.raises(ValueError, match=r"Mix of label input types .*y holds strings"):
        m.partial_fit(X[y == 2], ["2"] * 8)
    assert m.classes_.tolist() == [0, 1] and m.bank_X_.shape[0] == n_bank
    s = fit(X[y < 2], np.where(y[y < 2] == 0, "a", "b"))
    with pytest.raises(ValueError, match=r"y holds numbers, the model's classes_ are \['a', 'b'\]"):
        s.partial_fit(X[y == 2], [2] * 8)
    m.partial_fit(X[y == 2], [2] * 8)
    assert m.predict(X).dtype == y.dtype


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_new_classes_keep_the_label_dtype(make_blobs, dtype):
    X, y = make_blobs((30, 30, 5), seed=8)
    y = y.astype(dtype)
    m = fit(X[y < 2], y[y < 2])
    m.partial_fit(X[y == 2], y[y == 2])
    assert m.classes_.dtype == dtype and m.predict(X).dtype == dtype
    registered = np.arange(3).astype(dtype)
    with pytest.warns(UserWarning, match="fewer than 2"):  # class 2 has no rows yet
        first = PyEGM(platform="cpu", random_state=0).partial_fit(
            X[y < 2], y[y < 2], classes=registered
        )
    assert first.classes_.dtype == dtype


def test_integer_labels_never_become_floats(make_blobs):
    # uint64 and int64 promote to float64: uint64 labels joined by plain ints stay integers
    X, y = make_blobs((30, 30, 5), seed=8)
    y = y.astype(np.uint64)
    m = fit(X[y < 2], y[y < 2])
    m.partial_fit(X[y == 2], [2] * int((y == 2).sum()))
    assert m.classes_.dtype == np.uint64 and m.predict(X).dtype == np.uint64
    with pytest.warns(UserWarning, match="fewer than 2"):  # class 2 has no rows yet
        first = PyEGM(platform="cpu", random_state=0).partial_fit(
            X[y < 2], y[y < 2], classes=[0, 1, 2]
        )
    assert first.classes_.dtype == np.uint64
    np.testing.assert_array_equal(first.classes_, [0, 1, 2])


def test_whole_float_labels_joining_int_labels_stay_numeric(make_blobs):
    # 7.0 for an int model (and 7 for a float model) made classes_ an object array, which
    # scikit-learn's metrics refuse as an "unknown" target
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is a test dependency")
    X, y = make_blobs((30, 30, 6), seed=8)
    old = y < 2
    m = fit(X[old], y[old])
    m.partial_fit(X[~old], np.full(int((~old).sum()), 7.0))
    assert m.classes_.dtype == np.int64 and m.classes_.tolist() == [0, 1, 7]
    truth = np.where(old, y, 7)
    assert m.predict(X).dtype == np.int64
    assert metrics.accuracy_score(truth, m.predict(X)) == pytest.approx(m.score(X, truth))
    f = fit(X[old], y[old].astype(np.float32))
    f.partial_fit(X[~old], [7] * int((~old).sum()))
    assert f.classes_.dtype == np.float32 and f.classes_.tolist() == [0.0, 1.0, 7.0]
    with pytest.warns(UserWarning, match="fewer than 2"):  # class 7 has no rows yet
        first = PyEGM(platform="cpu", random_state=0).partial_fit(
            X[old], y[old], classes=[0.0, 1.0, 7.0]
        )
    assert first.classes_.dtype.kind in "iuf" and first.classes_.tolist() == [0, 1, 7]


def test_history_radius_changes_only_when_a_class_grows(make_blobs):
    # the recorded radius of a class that did not grow was one radius_growth step ahead
    # (a level never used), so it jumped at every session boundary
    X, y = make_blobs((30, 30, 6), seed=4)
    g = 1.2
    m = fit(X[y < 2], y[y < 2], num_iters=2, radius_growth=g, adaptive_radius_mode="local")
    m.partial_fit(X[y == 2], y[y == 2])
    radius = np.array([h["radius"][:2] for h in m.history_])
    np.testing.assert_allclose(radius[1:], np.repeat(radius[1:2], 3, axis=0))
    np.testing.assert_allclose(radius[1], radius[0] * g, rtol=1e-6)
    used = m.radius_[2].item() * g ** np.arange(2)  # the new class, its two clip radii
    np.testing.assert_allclose([h["radius"][2] for h in m.history_[2:]], used, rtol=1e-6)


def test_continue_fit(blobs):
    X, y, _, _ = blobs
    m = fit(X, y, num_iters=2)
    n_real, n_bank = int(m.bank_is_real_.sum()), m.bank_X_.shape[0]
    m.continue_fit(extra_iters=3)
    assert int(m.bank_is_real_.sum()) == n_real  # no duplicated data
    assert m.bank_X_.shape[0] > n_bank
    assert int(m.bank_generation_.max()) == 5
    assert [h["iteration"] for h in m.history_] == [1, 2, 3, 4, 5]
    assert m.continue_fit(extra_iters=0) is m
    with pytest.raises(ValueError, match="extra_iters"):
        m.continue_fit(extra_iters=-1)
    with pytest.raises(ValueError, match="reseed"):
        m.continue_fit(reseed=-3)


def test_continue_fit_reseed_changes_the_draw(blobs):
    X, y, _, _ = blobs

    def grown(reseed):
        m = fit(X, y)
        n = m.bank_X_.shape[0]
        m.continue_fit(extra_iters=1, reseed=reseed)
        return m.bank_X_[n:]

    a, b, c = grown(1), grown(1), grown(2)
    assert torch.equal(a, b)
    assert a.shape != c.shape or not torch.allclose(a, c)
    # zero extra iterations do nothing, reseed included: later sessions draw the same
    plain, reseeded = fit(X, y), fit(X, y)
    assert reseeded.continue_fit(extra_iters=0, reseed=7) is reseeded
    for m in (plain, reseeded):
        m.partial_fit(X[:6], y[:6])
    assert torch.equal(plain.bank_X_, reseeded.bank_X_)


def test_max_samples_eviction(make_blobs):
    X, y = make_blobs((30, 30, 5), seed=4)
    m = fit(X, y, max_samples=100, num_points=20, governor=False)
    assert m.bank_X_.shape[0] <= 100
    assert int(m.bank_is_real_.sum()) == len(X)
    syn = torch.bincount(m.bank_y_[~m.bank_is_real_], minlength=3)
    assert int(syn.max() - syn.min()) <= 1 or int(syn.sum()) == 100 - len(X)
    syn_idx = torch.nonzero(~m.bank_is_real_).squeeze(1)
    assert bool(m.bank_is_real_[m.bank_seed_[syn_idx]].all())  # seeds re-indexed correctly
    assert bool((m.bank_y_[m.bank_seed_[syn_idx]] == m.bank_y_[syn_idx]).all())
    with pytest.warns(UserWarning, match="max_samples"):
        small = fit(X, y, max_samples=40)
    assert small.bank_X_.shape[0] == 40 and bool(small.bank_is_real_.all())


def test_max_samples_below_the_class_count_names_the_lost_classes(make_blobs):
    X, y = make_blobs((10, 10, 10), seed=4)
    labels = np.array(["a", "b", "c"])[y]
    with pytest.warns(UserWarning) as caught:
        m = fit(X, labels, max_samples=2)
    lost = [str(w.message) for w in caught if "lose every row" in str(w.message)]
    assert len(lost) == 1 and re.search(r"classes \['[abc]'\] lose every row", lost[0])
    assert len(set(m.predict(X))) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fit(X, labels, max_samples=40)  # enough rows for every class: no warning


def test_governor_rejects_or_shrinks_intruders(make_blobs):
    X, y = make_blobs((30, 30), seed=5, spread=3.0)
    on = fit(X, y, governor=True, total_energy=3.0, use_radius_clip=False)
    off = fit(X, y, governor=False, total_energy=3.0, use_radius_clip=False)
    import blockops

    def intruders(m):
        real = m.bank_is_real_
        syn = ~real
        mins = blockops.label_min(m.bank_X_[syn], m.bank_X_[real], m.bank_y_[real], 2)
        own = mins.gather(1, m.bank_y_[syn][:, None]).squeeze(1)
        return int((mins.min(1).values < own).sum())

    assert intruders(on) == 0 < intruders(off)


def test_single_row_class_warns_and_works(make_blobs):
    X, y = make_blobs((20, 20, 1), seed=6)
    with pytest.warns(UserWarning, match="fewer than 2"):
        m = fit(X, y)
    assert np.isfinite(m.radius_.numpy()).all()
    assert m.get_fitted_params()["preset_resolved"] == "extreme_lowshot"


def test_fixed_radius_mode_does_not_warn_about_an_unused_fallback(make_blobs):
    X, y = make_blobs((20, 20, 1), seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the "fewer than 2 rows" fallback is not used here
        m = fit(X, y, adaptive_radius_mode="fixed", fixed_radius=0.7)
    assert m.radius_.tolist() == pytest.approx([0.7, 0.7, 0.7])
    assert torch.isnan(m.local_radius_[2])  # still measured: one row, no radius of its own


def test_large_anisotropy_grows_finite_points_that_save_and_load(blobs, tmp_path):
    X, y, Xt, _ = blobs
    m = fit(X, y, anisotropy=400.0)  # the direction weights overflowed float32: NaN points
    assert torch.isfinite(m.bank_X_).all()
    m.save(tmp_path / "m")
    np.testing.assert_array_equal(PyEGM.load(tmp_path / "m").predict(Xt), m.predict(Xt))


def test_visualize_explosion_without_egm_viz(blobs, monkeypatch):
    X, y, _, _ = blobs
    m = fit(X, y)
    monkeypatch.setitem(sys.modules, "egm_viz", None)
    with pytest.raises(ImportError, match="pip install egm-viz"):
        m.visualize_explosion()


def test_visualize_explosion_delegates(blobs, monkeypatch):
    X, y, _, _ = blobs
    m = fit(X, y)
    calls = []
    fake = types.ModuleType("egm_viz")
    fake.visualize_explosion = lambda model, X, y, **kw: calls.append((model, X, y, kw)) or "fig"
    monkeypatch.setitem(sys.modules, "egm_viz", fake)
    before = m.bank_X_.clone()
    assert m.visualize_explosion(X[:5], None, projection="pca", show=False) == "fig"
    assert calls[0][0] is m and calls[0][3] == {"projection": "pca", "show": False}
    assert torch.equal(before, m.bank_X_)


def test_no_warnings_on_clean_data(blobs):
    X, y, Xt, _ = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(X, y).predict(Xt)


def test_complex_labels_are_rejected(blobs):
    X, y, _, _ = blobs
    with pytest.raises(ValueError, match="Complex data not supported"):
        fit(X, y.astype(np.complex128))


def test_far_queries_still_give_probabilities(blobs):
    X, y, _, _ = blobs
    m = fit(X, y)
    far = np.full((3, X.shape[1]), 1e19, dtype=np.float32)  # squared distances overflow float32
    proba = m.predict_proba(far)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(m.classes_[proba.argmax(1)], m.predict(far))
    out = m.trend_paths(far, path_steps=3)  # what egm-viz draws: finite, predict's winner
    for key in ("paths", "scores", "log_scores"):
        assert not torch.isnan(out[key]).any(), key
    assert bool(torch.isfinite(out["paths"]).all())
    torch.testing.assert_close(
        out["paths"], torch.as_tensor(far)[:, None, None].expand_as(out["paths"])
    )
    np.testing.assert_array_equal(m.classes_[out["winner"].numpy()], m.predict(far))
    np.testing.assert_allclose(
        out["scores"].numpy(), proba / proba.max(1, keepdims=True), rtol=1e-6
    )


@pytest.mark.parametrize("name", ["torch_q_block", "torch_db_block"])
def test_block_sizes_set_after_fit_are_checked(blobs, name):
    X, y, Xt, _ = blobs
    m = fit(X, y)
    m.set_params(**{name: -1})  # used live by predict/partial_fit/continue_fit
    for call in (
        lambda: m.predict(Xt),
        lambda: m.predict_proba(Xt),
        lambda: m.partial_fit(X[:5], y[:5]),
        lambda: m.continue_fit(extra_iters=1),
    ):
        with pytest.raises(ValueError, match=f"{name} must be a positive int"):
            call()


def test_duplicated_rows_do_not_hide_a_class_radius():
    rng = np.random.default_rng(7)
    a = rng.normal(size=(40, 3)).astype(np.float32)
    b = (5.0 + 0.01 * rng.normal(size=(11, 3))).astype(np.float32)
    tight = np.concatenate([np.repeat(b[:1], 30, axis=0), b[1:]])  # 11 distinct rows
    X, y = np.concatenate([a, tight]), np.repeat([0, 1], 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the class has 11 distinct rows: nothing to warn about
        m = fit(X, y)
    d = np.sqrt(((b[:, None] - b[None]) ** 2).sum(-1))
    kth = np.sort(d, axis=1)[:, 5]  # local_k = 5 (self at rank 0)
    np.testing.assert_allclose(float(m.local_radius_[1]), np.median(kth), rtol=1e-4)
    assert float(m.radius_[1]) < 0.1 * float(m.radius_[0])


def test_duplicated_rows_only_still_scale_with_the_data():
    X = np.repeat(np.array([[0.0, 0.0], [3.0, 4.0]], dtype=np.float32), 10, axis=0)
    y = np.repeat([0, 1], 10)
    for factor in (1.0, 8.0):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m = fit(X * factor, y)
        messages = " ".join(str(w.message) for w in caught)
        assert "coincide" not in messages and "distinct training rows" in messages
        torch.testing.assert_close(m.radius_, torch.full((2,), 5.0 * factor))


def test_probabilities_sum_to_one_in_float64(digits):
    X, y, Xt, _ = digits
    proba = fit(X[:300], y[:300]).predict_proba(Xt)
    assert proba.dtype == np.float64
    assert np.abs(proba.sum(axis=1) - 1.0).max() < 1e-12


def test_data_whose_squared_distances_overflow_float32_is_refused(blobs):
    X, y, _, _ = blobs
    with pytest.raises(ValueError, match="X spans too large a range.*rescale X"):
        fit(X * 1e19, y)  # was a LinAlgError deep inside the growth
    big = np.float32(2.0**50)  # large but representable (and exact): fine, scale-equivariant
    m = fit(X * big, y)
    np.testing.assert_array_equal(m.predict(X * big), fit(X, y).predict(X))
    far = X[:4] + np.float32(3e19)
    with pytest.raises(ValueError, match="X spans too large a range"):
        m.partial_fit(far, y[:4])
    assert m.session_ == 0 and int(m.bank_is_real_.sum()) == len(X)


def test_random_state_may_be_a_numpy_random_state(blobs):
    X, y, _, _ = blobs
    a = fit(X, y, random_state=np.random.RandomState(3))
    b = fit(X, y, random_state=np.random.RandomState(3))
    assert torch.equal(a.bank_X_, b.bank_X_)
    assert isinstance(a.get_fitted_params()["random_state"], int)


def test_energies_beyond_float32_are_refused_and_leave_no_fitted_model(blobs):
    X, y, _, _ = blobs
    m = PyEGM(random_state=0, total_energy=1e38)
    with pytest.raises(ValueError, match=r"total_energy=1e\+38 .*float32 range"):
        m.fit(X, y)  # was a model with inf energies (NaN vote weights) that load refused
    with pytest.raises(NotFittedError):
        m.predict(X)
    with pytest.raises(ValueError, match="energy_decay=1e\\+30"):
        fit(X, y, energy_decay=1e30, num_iters=3)  # 1e60 in growth iteration 3


def test_overflowing_growth_keeps_the_model_finite_and_loadable(blobs, tmp_path):
    X, y, Xt, _ = blobs
    m = fit(X, y, energy_decay=1e5, num_iters=1)
    with pytest.raises(ValueError, match="energy_decay"):
        m.continue_fit(20)  # 1e5 ** 8 * 0.5 overflows float32 at the class's 9th iteration
    assert torch.isfinite(m.bank_energy_).all() and torch.isfinite(m.bank_X_).all()
    assert m.iteration_ == len(m.history_) == int(m.bank_generation_.max())
    m.save(tmp_path / "m")
    np.testing.assert_array_equal(PyEGM.load(tmp_path / "m").predict(Xt), m.predict(Xt))
    with pytest.raises(ValueError, match="synthetic points overflow float32.*noise_decay"):
        fit(X, y, noise_decay=1e30, num_iters=3)  # noise of 1e60 radii: was inf points
    quiet = fit(X, y, noise_scale=0.0, noise_decay=1e30, num_iters=3)  # 0 * inf: no noise
    assert torch.isfinite(quiet.bank_X_).all()


def test_a_new_label_sorting_first_is_appended_consistently(blobs, tmp_path):
    X, y, Xt, yt = blobs
    labels = np.array([5, 7, 9])
    m = fit(X[y > 0], labels[y[y > 0]])
    m.partial_fit(X[y == 0], np.full(int((y == 0).sum()), 1))  # 1 sorts before 7 and 9
    assert m.classes_.tolist() == [7, 9, 1]
    truth = np.array([1, 7, 9])[yt]
    proba = m.predict_proba(Xt)
    np.testing.assert_array_equal(m.classes_[proba.argmax(1)], m.predict(Xt))
    np.testing.assert_array_equal(m.classes_[m.trend_paths(Xt)["winner"].numpy()], m.predict(Xt))
    assert proba[truth == 1, 2].min() > 0.5  # the column of label 1 is the third
    assert m.score(Xt, truth) == pytest.approx(np.mean(m.predict(Xt) == truth))
    assert m.score(Xt, truth) > 0.9
    m.save(tmp_path / "m")
    back = PyEGM.load(tmp_path / "m")
    assert back.classes_.tolist() == [7, 9, 1]
    np.testing.assert_array_equal(back.predict_proba(Xt), proba)


def test_data_whose_squared_distances_underflow_float32_is_refused(blobs):
    X, y, _, _ = blobs
    with pytest.raises(ValueError, match="X spans too small a range.*rescale X"):
        fit(X * 1e-25, y)  # was a warning, radius 1.0 and chance-level predictions
    small = np.float32(2.0**-60)  # small but with normal squared distances: scale-equivariant
    m = fit(X * small, y)
    np.testing.assert_array_equal(m.predict(X * small), fit(X, y).predict(X))
    with pytest.raises(ValueError, match="X spans too small a range"):
        fit(np.repeat(X[:2] * 1e-25, 5, axis=0), np.repeat(y[:2], 5))
    same = np.zeros((6, 3), dtype=np.float32)  # rows that all coincide are no range problem
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = fit(same, np.repeat([0, 1], 3))
    assert any("coincide" in str(w.message) for w in caught)
    assert torch.isfinite(m.bank_X_).all()
