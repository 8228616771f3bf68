"""Family O: neural gas, growing neural gas, SOMs (with grid utilities), Riemannian NG."""

import blockops
import lvq
import lvq.models.topology as O
import numpy as np
import pytest
import torch
from lvq import manifolds, som_utils


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [3.0, 3.0], [0.0, 3.0]])
    return np.concatenate([c + 0.4 * rng.normal(size=(40, 2)) for c in centres])


def test_heskes_energy_is_monotone_at_fixed_sigma(blobs):
    for cls in (O.HeskesSOM,):
        m = cls(grid_height=3, grid_width=4, sigma_init=1.0, sigma_final=1.0, max_iter=25,
                epsilon=0.0, device="cpu").fit(blobs)  # fmt: skip
        h = np.array(m.loss_history_)
        assert len(h) >= 3 and np.all(np.diff(h) <= 1e-6 * h[:-1])
        assert h[-1] < h[0]


def test_heskes_bmu_minimises_the_neighbourhood_weighted_sum(blobs):
    m = O.HeskesSOM(grid_height=3, grid_width=3, sigma_final=0.8, max_iter=10, device="cpu")
    m.fit(blobs)
    W = m.prototypes_.astype(np.float64)
    D = ((blobs[:, None] - W[None]) ** 2).sum(-1)
    g = np.array([(r, c) for r in range(3) for c in range(3)], dtype=float)
    H = np.exp(-((g[:, None] - g[None]) ** 2).sum(-1) / (2 * 0.8**2))
    H = H / H.sum(0, keepdims=True)
    np.testing.assert_array_equal(m.predict(blobs), (D @ H).argmin(1))


def test_neural_gas_quantizes_well_and_energy_falls(blobs):
    m = O.NeuralGas(n_prototypes=3, max_iter=40, device="cpu").fit(blobs)
    assert m.loss_history_[-1] < 0.2 * m.loss_history_[0]
    assert -m.score(blobs) < 0.5
    mb = O.NeuralGas(n_prototypes=3, max_iter=20, batch_size=16, device="cpu").fit(blobs)
    assert -mb.score(blobs) < 0.6
    dk = O.DKNeuralGas(n_prototypes=3, kernel_sigma=2.0, max_iter=40, device="cpu").fit(blobs)
    D = dk.transform(blobs)
    assert (D >= 0).all() and (D <= 2).all()
    assert -dk.score(blobs) < 0.5


def test_kohonen_som_topology_on_a_line():
    X = np.linspace(0, 1, 80)[:, None]
    m = O.KohonenSOM(grid_height=1, grid_width=6, max_iter=60, device="cpu").fit(X)
    w = m.prototypes_[:, 0]
    d = np.diff(w)
    assert (d > 0).all() or (d < 0).all()  # neighbours on the grid are neighbours in data
    assert m.bmu_coordinates(X).shape == (80, 2)
    assert m.weights_.shape == (1, 6, 1)


def test_growing_neural_gas_graph(blobs):
    m = O.GrowingNeuralGas(max_nodes=10, max_iter=15, insert_interval=20, max_age=30,
                           device="cpu").fit(blobs)  # fmt: skip
    P = m.prototypes_.shape[0]
    assert 2 < P <= 10
    E = m.edges_
    assert E.shape == (P, P) and (E == E.T).all() and not E.diagonal().any()
    assert E.any(1).all()  # no isolated node survives
    assert -m.score(blobs) < 0.3
    # edges never connect the far-apart blobs' interiors densely: the graph has few edges
    assert E.sum() // 2 <= 3 * P


def test_som_grid_utilities_as_data():
    W = np.zeros((2, 3, 2))
    W[:, :, 0] = np.arange(3)[None, :]
    U = som_utils.umatrix(W)
    assert U.shape == (2, 3)
    # corner (0,0): neighbours (1,0) at 0 and (0,1) at 1 -> mean 0.5; centre top (0,1): 1,1,0
    assert U[0, 0] == pytest.approx(0.5) and U[0, 1] == pytest.approx(2 / 3)
    planes = som_utils.component_planes(W)
    assert planes.shape == (2, 2, 3)
    np.testing.assert_array_equal(planes[0], W[:, :, 0])
    X = np.random.default_rng(0).normal(size=(50, 2))
    m = O.KohonenSOM(grid_height=2, grid_width=3, max_iter=5, device="cpu").fit(X)
    hits = som_utils.hit_map(m, X)
    assert hits.shape == (2, 3) and hits.sum() == 50
    assert som_utils.umatrix(m).shape == (2, 3)
    with pytest.raises(ValueError, match="rows, cols, d"):
        som_utils.umatrix(np.zeros((3, 3)))


def test_som_grid_utilities_refuse_unfitted_and_gridless_models_by_name():
    # an unfitted map or a NeuralGas failed with "float() argument must be a string or a real
    # number, not 'KohonenSOM'" (the model was read as an array of weights)
    X = np.random.default_rng(0).normal(size=(30, 2))
    for fn in (som_utils.umatrix, som_utils.component_planes, lambda m: som_utils.hit_map(m, X)):
        with pytest.raises(blockops.NotFittedError, match="KohonenSOM instance is not fitted"):
            fn(O.KohonenSOM())
        with pytest.raises(TypeError, match="NeuralGas has no grid"):
            fn(O.NeuralGas(n_prototypes=3, max_iter=2, device="cpu").fit(X))


def test_som_grid_utilities_copy_tensor_weights_to_the_host(monkeypatch):
    """numpy cannot read a CUDA tensor (np.asarray raises): a weight tensor goes through the
    host. The refusal is simulated on a CPU tensor."""
    W = np.random.default_rng(0).normal(size=(2, 3, 2))
    expected = som_utils.umatrix(W)

    def refuse(self, *args, **kwargs):
        raise TypeError("can't convert cuda:0 device type tensor to numpy")

    monkeypatch.setattr(torch.Tensor, "__array__", refuse)
    np.testing.assert_allclose(som_utils.umatrix(torch.as_tensor(W)), expected)
    np.testing.assert_array_equal(som_utils.component_planes(torch.as_tensor(W))[1], W[:, :, 1])


def test_som_plots():
    pytest.importorskip("matplotlib", reason="plots need the lvq[plot] extra")
    import matplotlib

    matplotlib.use("Agg")
    X = np.random.default_rng(0).normal(size=(30, 3))
    m = O.KohonenSOM(grid_height=2, grid_width=2, max_iter=3, device="cpu").fit(X)
    assert som_utils.plot_umatrix(m).get_title() == "U-matrix"
    assert som_utils.plot_hit_map(m, X).get_title() == "hit map"
    fig = som_utils.plot_component_planes(m, ["a", "b", "c"])
    assert len(fig.axes) >= 3


@pytest.mark.parametrize("spec", ["spd:2", "so:3", "grassmann:4:2", "poincare:2"])
def test_riemannian_neural_gas_keeps_prototypes_on_the_manifold(spec, tmp_path):
    mf = manifolds.get_manifold(spec)
    g = torch.Generator().manual_seed(0)
    centres = mf.random_point(2, g, dtype=torch.float64)
    pts = []
    for c in centres:
        for _ in range(15):
            v = mf.log(c, mf.random_point(1, g, dtype=torch.float64)[0])
            pts.append(mf.exp(c, 0.1 * v / mf.norm(c, v).clamp_min(1e-9)))
    X = mf.flatten(torch.stack(pts)).numpy()
    m = O.RiemannianNeuralGas(manifold=spec, n_prototypes=2, max_iter=15, device="cpu").fit(X)
    W = mf.unflatten(torch.tensor(m.prototypes_, dtype=torch.float64))
    assert bool(mf.belongs(W, atol=1e-4).all())
    assert m.loss_history_[-1] < m.loss_history_[0]
    assert m.transform(X).shape == (30, 2)
    # the two groups end at different prototypes
    pred = m.predict(X)
    assert len(set(pred[:15])) == 1 and len(set(pred[15:])) == 1 and pred[0] != pred[-1]


def test_riemannian_neural_gas_scores_the_geodesic_quantization_error():
    # score measured the Euclidean distance between flattened matrices, not the geodesic one
    # that predict and transform use
    mf = manifolds.SPD(2)
    P = mf.random_point(30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    X = mf.flatten(P).numpy()
    m = O.RiemannianNeuralGas(manifold="spd:2", n_prototypes=3, max_iter=5, device="cpu").fit(X)
    W = mf.unflatten(torch.as_tensor(m.prototypes_, dtype=torch.float64))
    expected = -(mf.pairwise_distance(P, W) ** 2).min(1).values.mean().item()
    assert m.score(X) == pytest.approx(expected, rel=1e-4)
    assert m.score(X) == pytest.approx(-m.transform(X).min(1).mean(), rel=1e-6)


def test_riemannian_neural_gas_input_checks(tmp_path):
    with pytest.raises(ValueError, match="needs a manifold"):
        O.RiemannianNeuralGas().fit(np.eye(2).reshape(1, 4))
    with pytest.raises(ValueError, match="not points"):
        O.RiemannianNeuralGas(manifold="spd:2", n_prototypes=1).fit(-np.ones((3, 4)))
    with pytest.raises(ValueError, match="flatten"):
        O.RiemannianNeuralGas(manifold="spd:2", n_prototypes=1).fit(np.ones((3, 3)))
    for li in (0, -1.0, float("nan")):  # was a ZeroDivisionError, an overflow, NaN prototypes
        with pytest.raises(ValueError, match="lambda_init"):
            O.RiemannianNeuralGas(manifold="spd:2", lambda_init=li).fit(np.eye(2).reshape(1, 4))
    # predict / transform / score took any row, as fit did not
    ng = O.RiemannianNeuralGas(manifold="spd:2", n_prototypes=1, max_iter=2)
    ng.fit(np.tile(np.eye(2).reshape(1, 4), (3, 1)))
    for method in (ng.predict, ng.transform, ng.score):
        with pytest.raises(ValueError, match="not points"):
            method(-np.ones((3, 4)))
    obj = O.RiemannianNeuralGas(manifold=manifolds.SPD(2), n_prototypes=1, max_iter=2)
    obj.fit(np.tile(np.eye(2).reshape(1, 4), (3, 1)))
    with pytest.raises(ValueError, match="not serialisable"):
        obj.save(tmp_path / "m")


def test_growing_neural_gas_resume_continues_the_graph():
    # resume used to drop the edges and errors: every node the first chunk did not touch was
    # "isolated" and removed (30 -> 21 nodes, quantization error 0.07 -> 0.37 in one epoch)
    X = np.random.default_rng(0).normal(size=(60, 2))
    m = O.GrowingNeuralGas(max_nodes=30, max_iter=20, insert_interval=5, random_seed=0)
    m.fit(X)
    nodes, edges, qe = m.prototypes_.shape[0], int(m.edges_.sum()), m.loss_history_[-1]
    assert nodes == 30
    m.set_params(max_iter=1).fit(X, resume=True)
    assert m.prototypes_.shape[0] == nodes and m.errors_.shape == (nodes,)
    assert m.edges_.sum() >= 0.8 * edges and m.loss_history_[0] <= 1.2 * qe
    # initial prototypes (no edges yet) are kept until they win; one row cannot start a graph
    warm = O.GrowingNeuralGas(max_nodes=30, max_iter=1, insert_interval=5, random_seed=0)
    assert warm.fit(X, initial_prototypes=m.prototypes_).prototypes_.shape[0] == nodes
    with pytest.raises(ValueError, match="2 to max_nodes=30 nodes, got 1"):
        warm.fit(X, initial_prototypes=X[:1])


@pytest.mark.parametrize(
    "cls, kw",
    [
        (O.NeuralGas, {"n_prototypes": 5, "batch_size": 16, "lr_final": 0.5}),  # stops early
        (O.DKKohonenSOM, {"grid_height": 2, "grid_width": 3, "kernel_sigma": 2.0}),
        (O.HeskesSOM, {"grid_height": 2, "grid_width": 3}),
        (O.GrowingNeuralGas, {"max_nodes": 6, "insert_interval": 20}),
    ],
)
def test_topology_models_take_patience_and_restore_best(cls, kw, blobs):
    # the spec's patience / restore_best of the unsupervised base (TypeError before)
    seen = []

    class Record(lvq.Callback):
        def on_iteration_end(self, model, info):
            seen.append(info["params"]["prototypes"].detach().cpu().numpy().copy())

    m = cls(max_iter=30, epsilon=0.0, random_seed=0, patience=2, restore_best=True,
            callbacks=[Record()], **kw)  # fmt: skip
    assert {"patience", "restore_best"} <= set(m.get_params())
    m.fit(blobs)
    h = np.array(m.loss_history_)
    best = int(np.argmin(h))
    assert m.n_iter_ == len(h) and (m.n_iter_ == 30 or m.n_iter_ - 1 - best == 2)
    if cls is O.GrowingNeuralGas:  # its error is measured after the epoch: that epoch's graph
        np.testing.assert_array_equal(m.prototypes_, seen[best])
    elif best > 0:  # an energy is measured on the prototypes its epoch starts from
        np.testing.assert_array_equal(m.prototypes_, seen[best - 1])
    with pytest.raises(ValueError, match="patience"):
        cls(patience=0, **kw).fit(blobs)


def test_growing_neural_gas_epsilon_stops_and_batch_size_warns(blobs):
    # GNG accepted epsilon and batch_size and ignored both (every fit ran max_iter epochs)
    kw = {"max_nodes": 4, "insert_interval": 1000, "max_iter": 30, "random_seed": 0}
    settled = O.GrowingNeuralGas(lr_winner=1e-6, lr_neighbor=1e-6, epsilon=1e-3, **kw).fit(blobs)
    assert settled.n_iter_ < 30 and settled.prototypes_.shape[0] == 4
    full = O.GrowingNeuralGas(lr_winner=1e-6, lr_neighbor=1e-6, epsilon=0.0, **kw).fit(blobs)
    assert full.n_iter_ == 30
    for cls, extra in ((O.GrowingNeuralGas, {"max_nodes": 4}), (O.HeskesSOM, {"grid_height": 2})):
        with pytest.warns(UserWarning, match="ignores batch_size=8"):
            cls(batch_size=8, max_iter=2, random_seed=0, **extra).fit(blobs)


@pytest.mark.parametrize("cls", [O.KohonenSOM, O.HeskesSOM, O.DKHeskesSOM])
def test_fitted_map_keeps_its_grid_after_set_params(cls, blobs, tmp_path):
    # set_params(grid_height=...) on a fitted map changed grid_shape: HeskesSOM.predict raised
    # a shape error, bmu_coordinates and umatrix used the new shape on the old prototypes
    m = cls(grid_height=2, grid_width=3, max_iter=5, random_seed=0).fit(blobs)
    pred, bmu, um = m.predict(blobs), m.bmu_coordinates(blobs), som_utils.umatrix(m)
    m.set_params(grid_height=4, grid_width=5)
    assert m.grid_shape == (2, 3)
    np.testing.assert_array_equal(m.predict(blobs), pred)
    np.testing.assert_array_equal(m.bmu_coordinates(blobs), bmu)
    np.testing.assert_array_equal(som_utils.umatrix(m), um)
    m.save(tmp_path / "m")
    back = lvq.load(tmp_path / "m", device="cpu")
    assert back.grid_shape == (2, 3) and back.get_params()["grid_height"] == 4
    np.testing.assert_array_equal(back.predict(blobs), pred)
    m.fit(blobs)  # the new shape applies to the next fit
    assert m.grid_shape == (4, 5) and m.weights_.shape == (4, 5, 2)
