"""Family G (differentiating-kernel GLVQ) and the kernel distances it shares with family N."""

import lvq
import numpy as np
import pytest
import torch
from lvq.distances import (
    EXP_KERNEL_CAP,
    ExponentialKernel,
    GaussianKernel,
    Relevance,
    exponential_kernel_distance,
    gaussian_kernel_distance,
    init_bandwidths,
)
from lvq.models.supervised_ng import NGGLVQLoss


def test_gaussian_kernel_distance_values():
    q = torch.tensor([[0.0, 1.0, 1e6]], dtype=torch.float64)
    s = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    d = gaussian_kernel_distance(q, s)
    expected = 2 * (1 - np.exp(-np.array([0.0, 1.0 / 8.0, 5e5])))
    np.testing.assert_allclose(d.numpy()[0], expected, rtol=1e-12)
    assert d.max() < 2.0 + 1e-12


def test_exponential_kernel_distance_matches_the_three_term_formula():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    W = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    om = 0.4 * torch.randn(4, 2, generator=gen, dtype=torch.float64)
    L = om @ om.T
    ref = (
        torch.exp(((X @ L) * X).sum(1, keepdim=True))
        + torch.exp(((W @ L) * W).sum(1))
        - 2 * torch.exp(X @ L @ W.T)
    )
    np.testing.assert_allclose(exponential_kernel_distance(X, W, om).numpy(), ref.numpy(), 1e-12)


def test_exponential_kernel_distance_is_never_negative_and_stays_finite():
    # the naive three-term formula subtracts large exponentials and goes negative near w
    gen = torch.Generator().manual_seed(1)
    W = 2.0 * torch.randn(50, 3, generator=gen)
    X = W + 1e-4 * torch.randn(50, 3, generator=gen)
    om = torch.eye(3) * 0.9
    d = exponential_kernel_distance(X, W, om)
    assert (d >= 0).all()
    a = (X @ om).pow(2).sum(1, keepdim=True)
    b = (W @ om).pow(2).sum(1)
    naive = torch.exp(a) + torch.exp(b) - 2 * torch.exp((X @ om) @ (W @ om).T)
    assert (naive < 0).any()  # what the rewrite avoids
    # 1e-4 apart, |x - w|^2 (1e-8) is below float32's resolution of |x|^2 + |w|^2 - 2 x.w;
    # 1e-2 apart it is resolved, and the float32 result follows float64's
    X = W + 1e-2 * torch.randn(50, 3, generator=gen)
    d = exponential_kernel_distance(X, W, om)
    ref = exponential_kernel_distance(X.double(), W.double(), om.double())
    np.testing.assert_allclose(d.diagonal().double().numpy(), ref.diagonal().numpy(), rtol=0.2)
    huge = exponential_kernel_distance(torch.full((1, 3), 50.0), W[:1], om)
    assert torch.isfinite(huge).all() and EXP_KERNEL_CAP == 40.0


def test_init_bandwidths_rules():
    q = torch.tensor([[1.0, 4.0], [9.0, 16.0], [25.0, 0.0]])
    y = torch.tensor([0, 0, 1])
    labels = torch.tensor([0, 1])
    med = init_bandwidths(q, y, labels, "median", 1e-3)
    np.testing.assert_allclose(med.numpy(), [1.0, 0.001])  # lower median of {1, 3}; own class
    mean = init_bandwidths(q, y, labels, "mean", 0.5)
    np.testing.assert_allclose(mean.numpy(), [2.0, 0.5])
    np.testing.assert_allclose(init_bandwidths(q, y, labels, 0.7, 1e-3).numpy(), [0.7, 0.7])
    for bad in ("max", -1.0, 0):
        with pytest.raises(ValueError, match="sigma_init"):
            init_bandwidths(q, y, labels, bad, 1e-3)


def test_kernel_components_groups_and_constraints():
    g = GaussianKernel(Relevance(), "mean", 0.2)
    assert g.groups == ("relevances", "sigmas")
    params = {"sigmas": torch.tensor([-0.05, 0.9]), "relevances": torch.ones(3)}
    g.constrain(params)
    np.testing.assert_allclose(params["sigmas"].numpy(), [0.2, 0.9])
    with pytest.raises(ValueError, match="sigma_min"):
        GaussianKernel(sigma_min=0).check(3, 2)
    with pytest.raises(ValueError, match="omega_hat_scale"):
        ExponentialKernel(None, -1.0).check(3, 2)
    with pytest.raises(ValueError, match="latent_dim"):
        ExponentialKernel(5).check(3, 2)


def test_dkglvq_learns_bandwidths_and_exports(blobs, tmp_path):
    X, y = blobs
    m = lvq.DKGLVQ(max_iter=30, lr=0.05, sigma_min=0.05, device="cpu").fit(X, y)
    assert m.kernel_bandwidths.shape == (3,) and (m.kernel_bandwidths >= 0.05).all()
    start = lvq.DKGLVQ(max_iter=1, lr=1e-9, device="cpu").fit(X, y).sigmas_
    assert not np.allclose(start, m.sigmas_)  # the bandwidths are trained
    fixed = lvq.DKGLVQ(max_iter=1, lr=1e-9, sigma_init=1.5, device="cpu").fit(X, y)
    np.testing.assert_allclose(fixed.sigmas_, 1.5, rtol=1e-6)
    frozen = lvq.DKGLVQ(max_iter=5, freeze_params=["sigmas"], sigma_init=1.5, device="cpu")
    np.testing.assert_array_equal(frozen.fit(X, y).sigmas_, np.full(3, 1.5, np.float32))
    d = m.prototype_distances(X)
    assert (d >= 0).all() and (d < 2).all()
    pytest.importorskip("onnx")
    m.export_onnx(tmp_path / "m.onnx")


def test_dkgrlvq_and_dkgmlvq_parameters(blobs):
    X, y = blobs
    r = lvq.DKGRLVQ(max_iter=20, lr=0.05, device="cpu").fit(X, y)
    np.testing.assert_allclose(r.relevance_profile.sum(), 1.0, rtol=1e-5)
    assert r.sigmas_.shape == (3,)
    with pytest.raises(ValueError, match="distance_fn must be None"):
        lvq.DKGRLVQ(distance_fn="manhattan").fit(X, y)
    m0 = lvq.DKGMLVQ(max_iter=1, lr=1e-9, latent_dim=2, omega_hat_scale=0.3).fit(X, y)
    np.testing.assert_allclose(m0.omega_hat_matrix, 0.3 * np.eye(4, 2), atol=1e-6)
    m = lvq.DKGMLVQ(max_iter=30, lr=0.05, device="cpu").fit(X, y)
    assert m.score(X, y) >= 0.9
    lam = m.lambda_hat_matrix
    np.testing.assert_allclose(lam, lam.T) and (np.linalg.eigvalsh(lam) > -1e-9).all()


def test_ng_variants_schedule_not_trained(blobs):
    X, y = blobs
    m = lvq.DKGLVQ_NG(n_prototypes_per_class=3, max_iter=20, lr=0.05, device="cpu")
    m.fit(X, y)
    assert set(m._params) == {"prototypes", "sigmas"}  # gamma is a schedule, not a parameter
    assert m.score(X, y) >= 0.9
    sched = m.gamma_schedule(20)
    assert sched[0] == pytest.approx(1.5) and sched[-1] == pytest.approx(0.01)
    assert isinstance(m._make_loss(3), NGGLVQLoss)  # the family-D cost
    with pytest.raises(ValueError, match="lr_ratio"):
        lvq.DKGMLVQ_NG(lr_ratio=0).fit(X, y)
    # gamma -> 0 with lr_ratio=1 is the base model
    kw = {"n_prototypes_per_class": 2, "max_iter": 5, "lr": 0.05, "device": "cpu"}
    ng = lvq.DKGRLVQ_NG(gamma_init=1e-3, gamma_final=1e-3, lr_ratio=1.0, **kw).fit(X, y)
    np.testing.assert_allclose(ng.prototypes_, lvq.DKGRLVQ(**kw).fit(X, y).prototypes_, atol=1e-5)
    near = lvq.DKGLVQ(n_prototypes_per_class=3, max_iter=20, lr=0.05, device="cpu").fit(X, y)
    assert not np.allclose(near.prototypes_, m.prototypes_)
