"""Spec-coverage audit of the unsupervised, Riemannian and one-class families: documented
parameters and behaviours that were silently ignored or wrong."""

from __future__ import annotations

import lvq
import numpy as np
import pytest


def _spd_blobs(n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = []
    for c in (0.0, 3.0):
        for _ in range(n):
            A = rng.normal(size=(2, 2)) + c * np.eye(2)
            rows.append((A @ A.T + 0.1 * np.eye(2)).ravel())
    return np.stack(rows), np.repeat([0, 1], n)


@pytest.mark.parametrize("name", ["RiemannianSRNG", "RiemannianDKGLVQ"])
def test_riemannian_gamma_init_below_gamma_final_is_refused(name):
    # the schedule only decays: gamma was held at gamma_final and gamma_init ignored silently
    X, y = _spd_blobs()
    model = getattr(lvq, name)(manifold="spd:2", gamma_init=0.001, gamma_final=0.01, max_iter=2)
    with pytest.raises(ValueError, match="gamma_init=0.001 is smaller than gamma_final=0.01"):
        model.fit(X, y)
    ok = getattr(lvq, name)(manifold="spd:2", gamma_init=0.01, gamma_final=0.01, max_iter=2)
    assert ok.fit(X, y).predict(X).shape == (len(X),)


def _blob_with_two_outlier_labels():
    rng = np.random.default_rng(0)
    Xn = rng.normal(size=(60, 2)) * 0.3
    Xo = rng.uniform(-2.0, 2.0, size=(12, 2))
    y = np.array(["normal"] * 60 + ["spike"] * 6 + ["drift"] * 6)
    return np.vstack([Xn, Xo]), y


def test_one_class_class_weight_dict_weighs_every_label_of_y():
    # "every label other than the target is an outlier", but a class_weight key naming the
    # second outlier label was refused as "not seen during fit"
    X, y = _blob_with_two_outlier_labels()
    cw = {"normal": 1.0, "spike": 2.0, "drift": 3.0}
    a = lvq.OCGLVQ(class_weight=cw, max_iter=8).fit(X, y)
    sw = np.select([y == "normal", y == "spike"], [1.0, 2.0], 3.0)
    b = lvq.OCGLVQ(max_iter=8).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(a.thetas_, b.thetas_, rtol=1e-6)
    np.testing.assert_allclose(a.prototypes_, b.prototypes_, rtol=1e-6)
    assert a.get_params()["class_weight"] == cw  # stored unchanged
    with pytest.raises(ValueError, match="class_weight key 'typo' is not a label of y"):
        lvq.OCGLVQ(class_weight={"typo": 2.0}, max_iter=2).fit(X, y)


def test_so4_neural_gas_export_says_why_it_cannot(tmp_path):
    # SO(n >= 4) distances use linalg.eigvals: the export failed deep inside torch.onnx with
    # "UnsupportedOperatorError" instead of the documented NotImplementedError naming why
    import torch
    from lvq import manifolds

    mf = manifolds.get_manifold("so:4")
    X = mf.flatten(mf.random_point(12, generator=torch.Generator().manual_seed(0))).numpy()
    m = lvq.RiemannianNeuralGas(manifold="so:4", n_prototypes=2, max_iter=2).fit(X)
    with pytest.raises(NotImplementedError, match="n >= 4 needs a general eigendecomposition"):
        m.export_onnx(tmp_path / "so4.onnx")
    assert manifolds.get_manifold("so:3").onnx_obstacle is None


def test_growing_neural_gas_start_errors_name_the_cause():
    # resume after set_params(max_nodes=...) below the fitted node count said "starts from 2
    # to max_nodes=5 nodes, got 9" without naming resume or initial_prototypes
    X = np.random.default_rng(0).normal(size=(200, 2))
    g = lvq.GrowingNeuralGas(max_nodes=12, max_iter=3, insert_interval=20).fit(X)
    fitted = len(g.prototypes_)
    assert fitted > 3
    g.set_params(max_nodes=3)
    with pytest.raises(
        ValueError, match=rf"resume=True continues the {fitted} fitted nodes.*max_nodes=3"
    ):
        g.fit(X, resume=True)
    with pytest.raises(ValueError, match=r"got 1 \(the rows of initial_prototypes\)"):
        lvq.GrowingNeuralGas(max_iter=1).fit(X, initial_prototypes=X[:1])
    g.set_params(max_nodes=fitted)
    assert len(g.fit(X, resume=True).prototypes_) <= fitted


def test_manifold_unflatten_names_the_expected_width():
    # a wrong width raised torch's "shape '[3, 2, 2]' is invalid for input of size 15"
    import torch
    from lvq import manifolds

    mf = manifolds.get_manifold("spd:2")
    with pytest.raises(ValueError, match=r"points of SPD\(2\) flatten to 4 columns, got 5"):
        mf.unflatten(torch.zeros(3, 5))
    assert mf.unflatten(torch.zeros(3, 4)).shape == (3, 2, 2)


def test_component_planes_plot_checks_feature_names():
    # too few names raised a bare IndexError half-way through drawing; too many were ignored
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lvq import som_utils

    X = np.random.default_rng(0).normal(size=(40, 3))
    som = lvq.KohonenSOM(grid_height=2, grid_width=2, max_iter=2).fit(X)
    for names in (["a"], ["a", "b", "c", "d"]):
        with pytest.raises(
            ValueError, match=f"feature_names has {len(names)} names but the map has 3"
        ):
            som_utils.plot_component_planes(som, feature_names=names)
    fig = som_utils.plot_component_planes(som, feature_names=["a", "b", "c"])
    assert [ax.get_title() for ax in fig.axes[:3]] == ["a", "b", "c"]
    plt.close("all")


class _GammaLog(lvq.base.Callback):
    """Records the possibilistic scales after every iteration."""

    def __init__(self):
        self.gammas: list[np.ndarray] = []

    def on_iteration_end(self, model, info):
        self.gammas.append(model._consts["gamma"].cpu().numpy().copy())
        return False


@pytest.mark.parametrize("name", ["IPCM", "IPCM2"])
def test_ipcm_patience_does_not_skip_the_second_phase(name):
    # patience stopped the whole fit on phase 0's plateau: the spec's phase 1 (gamma refined
    # from memberships and typicalities) never ran and gamma_ kept the phase-0 scales
    rng = np.random.default_rng(1)
    X = np.concatenate([c + rng.normal(size=(60, 2)) for c in [[0, 0], [4, 0], [2, 3]]])
    ref = getattr(lvq, name)(random_seed=0).fit(X)
    log = _GammaLog()
    m = getattr(lvq, name)(random_seed=0, patience=2, callbacks=[log]).fit(X)
    phase1 = [g for g in log.gammas if not np.allclose(g, log.gammas[0])]
    assert phase1, "phase 1 (the refined gamma) never ran"
    np.testing.assert_allclose(m.gamma_, ref.gamma_, rtol=1e-3)
    np.testing.assert_allclose(m.centroids_, ref.centroids_, atol=1e-2)


@pytest.mark.parametrize(
    "name, kw",
    [
        ("DKNeuralGas", {"n_prototypes": 6}),
        ("DKKohonenSOM", {"grid_height": 3, "grid_width": 3}),
        ("DKHeskesSOM", {"grid_height": 3, "grid_width": 3}),
    ],
)
def test_dk_topology_models_map_far_samples_to_their_nearest_unit(name, kw):
    # the kernel distance 2 (1 - K) saturates at 2 far from the map: every such sample was
    # tied and assigned to unit 0 (predict, hit maps), and tied ranks reordered the training
    rng = np.random.default_rng(0)
    X = np.concatenate([c + rng.normal(size=(40, 2)) for c in [[0, 0], [6, 0], [3, 5]]])
    m = getattr(lvq, name)(kernel_sigma=1.0, max_iter=15, **kw).fit(X)
    far = np.array([[100.0, 100.0], [-100.0, -100.0], [100.0, -100.0], [-100.0, 100.0]])
    assert np.allclose(m.transform(far), 2.0)  # saturated: the reason for the fix
    nearest = ((far[:, None, :] - m.prototypes_[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(m.predict(far), nearest)
    assert len(set(nearest.tolist())) > 1
    if name != "DKHeskesSOM":  # the kernel keeps the Euclidean order: the same map
        plain = getattr(lvq, name[2:])(max_iter=15, **kw).fit(X)
        np.testing.assert_allclose(m.prototypes_, plain.prototypes_, atol=1e-5)


def test_riemannian_initial_prototypes_must_be_manifold_points():
    # X rows were checked, but initial_prototypes were projected silently: a negated SPD
    # matrix became ~1e-6 * I, a degenerate prototype
    X, y = _spd_blobs()
    bad = -X[[0, 12]]
    with pytest.raises(ValueError, match=r"2 rows of initial_prototypes are not points of SPD"):
        lvq.RiemannianSRNG(manifold="spd:2", max_iter=2).fit(
            X, y, initial_prototypes=bad, initial_labels=[0, 1]
        )
    with pytest.raises(ValueError, match=r"2 rows of initial_prototypes are not points of SPD"):
        lvq.RiemannianNeuralGas(manifold="spd:2", n_prototypes=2, max_iter=2).fit(
            X, initial_prototypes=bad
        )
    good = lvq.RiemannianNeuralGas(manifold="spd:2", n_prototypes=2, max_iter=2)
    assert good.fit(X, initial_prototypes=X[[0, 12]]).fit(X, resume=True).n_iter_ >= 1
