"""Kernels against brute force, metric invariants, loss numerics, plots (matplotlib extra)."""

import lvq
import numpy as np
import pytest
import torch
from lvq import distances as D
from lvq import losses as L
from lvq.neighbourhood import Nearest, NeuralGas


def brute(X, W, M):
    """(x - w) M, squared, summed, through an explicit (n, p, d) difference (float64)."""
    diff = X[:, None, :] - W[None, :, :]
    return ((diff @ M) ** 2).sum(-1)


def test_kernels_equal_brute_force_float64():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(9, 5, generator=g, dtype=torch.float64) * 10 + 3
    W = torch.randn(4, 5, generator=g, dtype=torch.float64) * 10 + 3
    I = torch.eye(5, dtype=torch.float64)
    torch.testing.assert_close(D.squared_euclidean(X, W), brute(X, W, I))
    om = torch.randn(5, 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(D.omega_distance(X, W, om), brute(X, W, om))
    oms = torch.randn(4, 5, 2, generator=g, dtype=torch.float64)
    ref = torch.stack([brute(X, W[k : k + 1], oms[k])[:, 0] for k in range(4)], 1)
    torch.testing.assert_close(D.local_omega_distance(X, W, oms), ref)
    lam = torch.rand(5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(D.relevance_distance(X, W, lam), brute(X, W, torch.diag(lam.sqrt())))
    B = torch.linalg.qr(torch.randn(4, 5, 2, generator=g, dtype=torch.float64))[0]
    ref = torch.stack(
        [
            brute(X, W[k : k + 1], torch.eye(5, dtype=torch.float64) - B[k] @ B[k].T)[:, 0]
            for k in range(4)
        ],
        1,
    )
    torch.testing.assert_close(D.tangent_distance(X, W, B), ref)


def test_local_omega_gradients(blobs):
    g = torch.Generator().manual_seed(1)
    X = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    W = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    O = torch.randn(3, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(D.local_omega_distance, (X, W, O))
    Xc = X.detach()

    def sparse_loss(W, O):  # few entries carry gradient: exercises the pair-wise backward
        return D.local_omega_distance(Xc, W, O)[torch.tensor([0, 4]), torch.tensor([1, 2])]

    assert torch.autograd.gradcheck(sparse_loss, (W, O))


def test_metric_invariants_after_training(iris):
    X, y = iris
    g = lvq.GMLVQ(max_iter=40, lr=0.05, device="cpu").fit(X, y)
    assert np.trace(g.lambda_matrix) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(g.lambda_matrix, g.lambda_matrix.T, atol=1e-7)
    assert np.linalg.eigvalsh(g.lambda_matrix).min() > -1e-6
    np.testing.assert_allclose(g.relevance_profile.sum(), 1.0, atol=1e-5)
    assert g.project(X).shape == (len(X), 4)
    lg = lvq.LGMLVQ(max_iter=20, lr=0.05, device="cpu").fit(X, y)
    traces = np.trace(lg.lambda_matrix, axis1=1, axis2=2)
    assert traces.mean() == pytest.approx(1.0, abs=1e-5)
    r = lvq.GRLVQ(max_iter=40, lr=0.05, device="cpu").fit(X, y)
    assert (r.relevance_profile >= 0).all() and r.relevance_profile.sum() == pytest.approx(1.0)
    t = lvq.GTLVQ(max_iter=20, lr=0.05, subspace_dim=2, device="cpu").fit(X, y)
    B = t.bases_
    for k in range(B.shape[0]):
        np.testing.assert_allclose(B[k].T @ B[k], np.eye(2), atol=1e-5)
    low = lvq.GMLVQ(max_iter=20, latent_dim=2, device="cpu").fit(X, y)
    assert low.omega_matrix.shape == (4, 2) and low.project(X).shape == (len(X), 2)
    with pytest.raises(ValueError, match="latent_dim"):
        lvq.GMLVQ(latent_dim=9, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="learns its own metric"):
        lvq.GMLVQ(distance_fn="euclidean", device="cpu").fit(X, y)


def test_glvq_and_rslvq_numerics():
    z = torch.zeros(3, requires_grad=True)
    mu = L.glvq_mu(z, z)
    mu.sum().backward()
    assert torch.isfinite(z.grad).all() and (mu == 0).all()
    dist = torch.tensor([[1e5, 1e5 + 1.0, 3e5]], requires_grad=True)
    loss = L.RSLVQLoss(sigma=0.5)(dist, torch.tensor([0]), torch.tensor([0, 1, 1]), Nearest())
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(dist.grad).all()
    proba = L.RSLVQLoss(1.0).proba_all(dist.detach().double(), torch.tensor([0, 1, 1]), 2)
    torch.testing.assert_close(proba.sum(1), torch.ones(1, dtype=torch.float64))


def test_neural_gas_neighbourhood_recovers_nearest():
    g = torch.Generator().manual_seed(0)
    dist = torch.rand(5, 6, generator=g)
    mask = torch.rand(5, 6, generator=g) > 0.3
    mask[:, 0] = True
    ng = NeuralGas(gamma_init=2.0, gamma_final=1e-4)
    ng.set_step(99, 100)
    assert ng.gamma == pytest.approx(1e-4)
    torch.testing.assert_close(ng.pool(dist, mask), Nearest().pool(dist, mask))
    ng.set_step(0, 100)
    assert ng.gamma == 2.0 and (ng.pool(dist, mask) >= Nearest().pool(dist, mask) - 1e-7).all()
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    ng.set_step(99, 100)
    torch.testing.assert_close(
        ng.pool_classes(dist, labels, 3), Nearest().pool_classes(dist, labels, 3)
    )


def test_custom_distance_fn_names_and_callables(blobs, tmp_path):
    X, y = blobs
    for name in ("euclidean", "manhattan"):
        m = lvq.GLVQ(distance_fn=name, max_iter=10, device="cpu").fit(X, y)
        assert m.score(X, y) >= 0.9
        m.save(tmp_path / name)
        np.testing.assert_array_equal(lvq.load(tmp_path / name).predict(X), m.predict(X))
    m = lvq.GLVQ(distance_fn=lambda A, B: torch.cdist(A, B), max_iter=10, device="cpu").fit(X, y)
    assert m.score(X, y) >= 0.9
    with pytest.raises(ValueError, match="not serialisable"):
        m.save(tmp_path / "callable")
    with pytest.warns(UserWarning, match="stored as None"):
        lvq.GLVQ(optimizer=torch.optim.SGD, max_iter=2, device="cpu").fit(X, y).save(tmp_path / "o")


def test_plots(blobs, iris, tmp_path):
    mpl = pytest.importorskip(
        "matplotlib", reason="plots need the plot extra: pip install lvq[plot]"
    )
    mpl.use("Agg")
    from lvq import plot

    X, y = blobs
    X2 = X[:, :2]
    traj = lvq.PrototypeTrajectory()
    m = lvq.GLVQ(max_iter=5, device="cpu", callbacks=[traj]).fit(X2, y)
    assert plot.plot_decision_boundary_2d(m, X2, y, resolution=30) is not None
    assert plot.plot_prototype_trajectory(traj, X2, y) is not None
    g = lvq.GMLVQ(max_iter=5, device="cpu").fit(*iris)
    assert plot.plot_relevance_profile(g) is not None
    ax = plot.plot_lambda_matrix(g)
    ax.figure.savefig(tmp_path / "lambda.png")
    assert (tmp_path / "lambda.png").stat().st_size > 0
    lg = lvq.LGMLVQ(max_iter=5, device="cpu").fit(*iris)
    assert plot.plot_lambda_matrix(lg, prototype=0) is not None
    with pytest.raises(ValueError, match="2-D data"):
        plot.plot_decision_boundary_2d(m, X, y)


def test_plots_copy_tensors_to_the_host(blobs, monkeypatch):
    """numpy cannot read a CUDA tensor (np.asarray raises): the plots take tensors (X, y of a
    model trained on the GPU) through the host. The refusal is simulated on CPU tensors."""
    mpl = pytest.importorskip(
        "matplotlib", reason="plots need the plot extra: pip install lvq[plot]"
    )
    mpl.use("Agg")
    from lvq import plot

    X, y = blobs
    X2, y2 = torch.as_tensor(X[:, :2], dtype=torch.float32), torch.as_tensor(y)
    traj = lvq.PrototypeTrajectory()
    m = lvq.GLVQ(max_iter=3, device="cpu", callbacks=[traj]).fit(X2, y2)

    def refuse(self, *args, **kwargs):
        raise TypeError("can't convert cuda:0 device type tensor to numpy")

    monkeypatch.setattr(torch.Tensor, "__array__", refuse)
    ax = plot.plot_decision_boundary_2d(m, X2, y2, resolution=10)
    assert len(ax.collections) >= 2
    assert plot.plot_prototype_trajectory(traj, X2, y2) is not None
    ax = plot.plot_prototype_trajectory(torch.as_tensor(traj.trajectory))  # (frames, P, d)
    assert len(ax.lines) == 2 * m.prototypes_.shape[0]


def test_decision_boundary_of_one_class_latent_and_cluster_models():
    # a one-class model fitted on several outlier labels raised "2 is not in list"; LVQMLN's
    # latent prototypes were drawn at input coordinates; a clusterer failed on classes_
    mpl = pytest.importorskip(
        "matplotlib", reason="plots need the plot extra: pip install lvq[plot]"
    )
    mpl.use("Agg")
    from lvq import plot

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(15, 2)) + c for c in ([0, 0], [4, 0], [0, 4])])
    y = np.repeat([0, 1, 2], 15)
    oc = lvq.OCGLVQ(target_label=0, max_iter=3, device="cpu").fit(X, y)
    ax = plot.plot_decision_boundary_2d(oc, X, y, resolution=10)
    colours = ax.collections[1].get_array()
    np.testing.assert_array_equal(colours, oc._encode(y).numpy())  # outliers share a colour
    mln = lvq.LVQMLN(max_iter=2, device="cpu").fit(X, y)  # latent_dim=2: same width as X
    ax = plot.plot_decision_boundary_2d(mln, X, y, resolution=10)
    assert len(ax.collections) == 2  # regions and samples, no prototypes
    glvq = lvq.GLVQ(max_iter=2, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match=r"not fitted with: \[7\]"):
        plot.plot_decision_boundary_2d(glvq, X, np.where(y == 2, 7, y), resolution=10)
    km = lvq.get_model_class("KMeansPlusPlus")(n_clusters=3, random_seed=0).fit(X)
    with pytest.raises(TypeError, match="clusterer"):
        plot.plot_decision_boundary_2d(km, X, y)
