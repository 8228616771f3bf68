"""Families F (classification by components) and H (Wasserstein Gaussian prototypes)."""

import lvq
import numpy as np
import pytest
from lvq.models.cbc import cbc_probabilities
from lvq.registry import list_models

FAST = {"max_iter": 20, "lr": 0.05, "device": "cpu"}


def xor(n_per=30, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0], [3, 3], [3, 0], [0, 3]], float)
    X = np.concatenate([c + 0.4 * rng.normal(size=(n_per, 2)) for c in centres])
    return X, np.repeat([0, 0, 1, 1], n_per)


def test_families_registered():
    assert set(list_models(family="F")) == {"CBC", "ImageCBC"}
    assert set(list_models(family="H")) == {"WGLVQ", "WGRLVQ", "WGMLVQ"}


# ----------------------------------------------------------------------------- CBC


def test_cbc_reasons_through_xor_glvq_cannot():
    """XOR: a class is 'near component A or near component B'. CBC (4 components, reasoning
    per class) separates it; GLVQ with one prototype per class draws one straight boundary."""
    X, y = xor()
    opts = {"max_iter": 200, "lr": 0.1, "device": "cpu"}
    cbc = lvq.CBC(**opts, n_components=4, prototypes_initializer="class_conditional_mean")
    cbc.fit(X, y)
    glvq = lvq.GLVQ(**opts).fit(X, y)
    assert cbc.score(X, y) >= 0.97
    assert glvq.score(X, y) <= 0.76
    assert cbc.reasonings_.shape == (4, 2, 2) and cbc.components_.shape == (4, 2)
    # every component reasons positively for the class of the cluster it sits on
    np.testing.assert_array_equal(np.sort(cbc.prototype_labels_), [0, 0, 1, 1])


def test_cbc_probability_formula():
    sim = np.array([[1.0, 0.0]])
    # component 0 positive for class 0; component 1's absence is evidence for class 1
    raw = np.zeros((2, 2, 2))
    raw[0, 0] = [20, -20]  # p = 1
    raw[1, 1] = [-20, 20]  # p = 0, n = 1
    raw[0, 1] = [-20, -20]  # irrelevant
    raw[1, 0] = [-20, -20]
    import torch

    P = cbc_probabilities(torch.tensor(sim), torch.tensor(raw)).numpy()
    np.testing.assert_allclose(P, [[1.0, 1.0]], atol=1e-6)
    P0 = cbc_probabilities(torch.tensor([[0.0, 1.0]]), torch.tensor(raw)).numpy()
    np.testing.assert_allclose(P0, [[0.0, 0.0]], atol=1e-6)


def test_cbc_options(blobs, tmp_path):
    X, y = blobs
    m = lvq.CBC(
        **FAST, n_components=5, similarity_fn="inverse", reasonings_initializer="pure_positive"
    )
    m.fit(X, y)
    assert m.components_.shape == (5, 4) and m.evidences(X).shape == (len(y), 3)
    ev = m.evidences(X)
    assert (ev >= 0).all() and (ev <= 1 + 1e-6).all()
    np.testing.assert_array_equal(m.predict(X), m.classes_[ev.argmax(1)])

    def comps(X, k, gen):
        return X[:k] * 0.5

    def reasons(k, c, gen):
        return np.full((k, c, 2), 0.5)

    start = {**FAST, "max_iter": 1, "lr": 1e-7}
    c = lvq.CBC(**start, components_initializer=comps, reasonings_initializer=reasons).fit(X, y)
    np.testing.assert_allclose(c.components_, X[:3] * 0.5, rtol=1e-5)
    np.testing.assert_allclose(c.reasonings_[..., 0], 0.5, atol=1e-4)  # positive
    np.testing.assert_allclose(c.reasonings_[..., 1], 0.25, atol=1e-4)  # (1 - p) * 0.5
    frozen = lvq.CBC(**FAST, freeze_params=["prototypes"], components_initializer=comps).fit(X, y)
    np.testing.assert_allclose(frozen.components_, X[:3] * 0.5, rtol=1e-6)
    # a callable similarity cannot be saved: it is needed for prediction
    f = lvq.CBC(**FAST, similarity_fn=lambda d, s: 1 / (1 + d)).fit(X, y)
    with pytest.raises(ValueError, match="similarity_fn"):
        f.save(tmp_path / "f")
    # the inference module matches predict_proba
    import torch

    codes, proba = m.inference_module()(torch.as_tensor(X, dtype=torch.float32))
    np.testing.assert_allclose(proba.numpy(), m.predict_proba(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "params, err",
    [
        ({"n_components": 0}, ValueError),
        ({"sigma": 0.0}, ValueError),
        ({"similarity_fn": "nope"}, ValueError),
        ({"reasonings_initializer": "nope"}, ValueError),
        ({"components_initializer": "nope"}, TypeError),
    ],
)
def test_cbc_bad_params(params, err, blobs):
    X, y = blobs
    with pytest.raises(err):
        lvq.CBC(**params).fit(X, y)


def test_image_cbc_on_digit_images():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    keep = y < 3
    X, y = X[keep][:90] / 16.0, y[keep][:90]
    m = lvq.ImageCBC(max_iter=40, lr=0.02, channels=[4], latent_dim=8, device="cpu").fit(X, y)
    assert m.score(X, y) >= 0.9
    assert m.components_.shape[1] == 64 and m.transform(X).shape == (90, 8)


# ----------------------------------------------------------------------------- Wasserstein


def test_wasserstein_distance_is_mean_plus_trace(blobs):
    X, y = blobs
    m = lvq.WGLVQ(**FAST).fit(X, y)
    d = ((X[:, None, :] - m.prototypes_[None]) ** 2).sum(-1) + m.variances_.sum(1)
    np.testing.assert_allclose(m.prototype_distances(X), d, rtol=1e-4, atol=1e-4)
    r = lvq.WGRLVQ(**FAST).fit(X, y)
    lam = r.relevance_profile
    d = (lam * (X[:, None, :] - r.prototypes_[None]) ** 2).sum(-1) + r.variances_ @ lam
    np.testing.assert_allclose(r.prototype_distances(X), d, rtol=1e-4, atol=1e-4)
    g = lvq.WGMLVQ(**FAST, latent_dim=2).fit(X, y)
    om = g.omega_matrix
    proj = (X[:, None, :] - g.prototypes_[None]) @ om
    d = (proj**2).sum(-1) + np.einsum("pd,dl->p", g.variances_, om**2)
    np.testing.assert_allclose(g.prototype_distances(X), d, rtol=1e-4, atol=1e-4)


def test_wasserstein_variances_move_the_boundary_glvq_cannot():
    """A tight class beside a broad one, prototypes pinned to the class means: GLVQ's boundary
    stays the bisector; WGLVQ's learned variances shift it towards the tight class."""
    rng = np.random.default_rng(0)
    n = 200
    X = np.concatenate([rng.normal(size=(n, 2)) * 0.3, rng.normal(size=(n, 2)) * 1.5 + [3, 0]])
    y = np.repeat([0, 1], n)
    opts = {
        "max_iter": 150,
        "lr": 0.05,
        "prototypes_initializer": "class_mean",
        "freeze_params": ["prototypes"],
        "transfer_fn": "sigmoid_beta",
        "device": "cpu",
    }
    wg = lvq.WGLVQ(**opts).fit(X, y)
    means = np.stack([X[y == 0].mean(0), X[y == 1].mean(0)])
    np.testing.assert_allclose(wg.prototypes_, means, rtol=1e-5, atol=1e-6)
    # GLVQ with these prototypes has nothing else to learn: its boundary is the bisector
    bisector = ((X[:, None] - means[None]) ** 2).sum(-1).argmin(1)
    assert wg.score(X, y) >= (bisector == y).mean() + 0.04
    assert wg.variances_[1].sum() < wg.variances_[0].sum()  # broad class: smaller offset


def test_wasserstein_bad_init_variance(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="init_variance"):
        lvq.WGLVQ(init_variance=-1.0).fit(X, y)
    m = lvq.WGLVQ(**{**FAST, "max_iter": 1, "lr": 1e-6}, init_variance=0.5).fit(X, y)
    np.testing.assert_allclose(m.variances_, 0.5, rtol=1e-3)


def test_wasserstein_variances_before_fit_raise_not_fitted():
    import blockops

    # it raised a plain AttributeError about the private ``_params``
    with pytest.raises(blockops.NotFittedError):
        lvq.WGLVQ().variances_  # noqa: B018
    assert not hasattr(lvq.WGMLVQ(), "variances_")


def test_cbc_freeze_params_accepts_the_spec_name_components(blobs):
    """The spec freezes CBC's components with freeze_params=['components']; it was refused."""
    X, y = blobs

    def comps(X, k, gen):
        return X[:k] * 0.5

    m = lvq.CBC(**FAST, freeze_params=["components"], components_initializer=comps).fit(X, y)
    np.testing.assert_allclose(m.components_, X[:3] * 0.5, rtol=1e-6)
    trained = lvq.CBC(**FAST, components_initializer=comps).fit(X, y)
    assert not np.allclose(trained.components_, X[:3] * 0.5, rtol=1e-3)
