import sys

import numpy as np
import pytest
import torch
from egm_viz import PCA2D, project


def _data(n=60, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    scale = torch.tensor([5.0, 2.0, 1.0, 0.5, 0.2, 0.1])[:d]
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + 3.0


def test_pca_matches_scikit_learn():
    decomposition = pytest.importorskip("sklearn.decomposition", reason="reference needs sklearn")
    Z = _data()
    ours = PCA2D.fit(Z)
    ref = decomposition.PCA(n_components=2).fit(Z.numpy())
    np.testing.assert_allclose(
        ours.explained_variance_ratio.numpy(), ref.explained_variance_ratio_, rtol=1e-10
    )
    a, b = ours.transform(Z), ref.transform(Z.numpy())
    for j in range(2):  # equal up to the sign of each axis
        assert min(np.abs(a[:, j] - b[:, j]).max(), np.abs(a[:, j] + b[:, j]).max()) < 1e-9


def _assert_axes_match_scikit_learn(Z, atol):
    decomposition = pytest.importorskip("sklearn.decomposition", reason="reference needs sklearn")
    ours = PCA2D.fit(Z).components.numpy()
    ref = decomposition.PCA(n_components=2, svd_solver="full").fit(Z.numpy()).components_.T
    for j in range(2):  # equal up to the sign of each axis
        err = min(np.abs(ours[:, j] - ref[:, j]).max(), np.abs(ours[:, j] + ref[:, j]).max())
        assert err < atol, (j, err)


def test_pca_axes_survive_ill_conditioned_data():
    # second axis with 1e-7 of the first's spread, far from the origin: the scatter matrix
    # squares the condition number (1e-14) and loses that axis (about 2e-3 off)
    g = torch.Generator().manual_seed(0)
    rot, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))
    spread = torch.tensor([1.0, 1e-7, 1e-9, 0.0, 0.0], dtype=torch.float64)
    Z = (torch.randn(500, 5, generator=g, dtype=torch.float64) * spread) @ rot.T + 3.0
    _assert_axes_match_scikit_learn(Z, atol=1e-8)


@pytest.mark.parametrize("n", [4, 60, 3000])
def test_pca_axes_match_scikit_learn_on_ordinary_data(n):
    _assert_axes_match_scikit_learn(_data(n=n), atol=1e-10)


def test_pca_is_deterministic_and_sign_fixed():
    Z = _data()
    p1, p2 = PCA2D.fit(Z), PCA2D.fit(Z.flip(0))
    torch.testing.assert_close(p1.components, p2.components)
    for j in range(2):
        col = p1.components[:, j]
        assert col[col.abs().argmax()] > 0


def test_pca_degenerate_inputs():
    one_d = PCA2D.fit(torch.arange(5.0).reshape(5, 1))
    out = one_d.transform(torch.arange(5.0).reshape(5, 1))
    assert out.shape == (5, 2)
    np.testing.assert_allclose(out[:, 1], 0.0)
    single = PCA2D.fit(torch.ones(1, 3))
    np.testing.assert_allclose(single.transform(torch.ones(2, 3)), 0.0)
    with pytest.raises(ValueError, match="non-empty"):
        PCA2D.fit(torch.zeros(0, 3))


def test_project_applies_one_plane_to_everything():
    Z = _data()
    emb = project("pca", Z[:50], Z[50:])
    full = PCA2D.fit(Z[:50]).transform(Z)
    np.testing.assert_allclose(np.concatenate([emb.fitted, emb.others]), full)
    assert emb.axis_labels[0].startswith("PC 1")


def test_project_rejects_unknown():
    with pytest.raises(ValueError, match="projection must be one of"):
        project("isomap", _data(), _data())
    with pytest.raises(ValueError, match="projection must be one of"):
        project(np.array(["pca", "tsne"]), _data(), _data())


def test_pca_takes_arrays_and_rejects_nan():
    Z = _data()
    from_array = PCA2D.fit(Z.numpy())
    torch.testing.assert_close(from_array.components, PCA2D.fit(Z).components)
    bad = Z.clone()
    bad[4, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        PCA2D.fit(bad)
    with pytest.raises(ValueError, match="NaN"):
        project("pca", bad, Z)
    with pytest.raises(ValueError, match="NaN"):
        project("pca", Z, bad)  # points projected into the plane, e.g. trend paths


def test_pca_transform_names_a_feature_mismatch():
    plane = PCA2D.fit(_data(d=4))
    assert plane.transform(np.zeros(4)).shape == (2,)  # one point
    assert plane.transform(np.zeros((2, 3, 4))).shape == (2, 3, 2)  # any leading shape
    for bad in (np.zeros((3, 5)), np.zeros(3), np.float64(1.0)):
        with pytest.raises(ValueError, match="Z must have 4 features"):
            plane.transform(bad)


def test_lists_are_read_in_float64():
    # a list went through torch's float32 default: the plane moved by ~1e-7
    Z = _data()
    assert torch.equal(PCA2D.fit(Z.tolist()).components, PCA2D.fit(Z).components)
    plane = PCA2D.fit(Z)
    np.testing.assert_array_equal(plane.transform(Z.tolist()), plane.transform(Z))


def test_project_takes_arrays_and_names_a_feature_mismatch():
    Z = _data()
    # numpy points failed with "'numpy.ndarray' object has no attribute 'detach'"
    got = project("pca", Z.numpy(), Z[:3].numpy())
    want = project("pca", Z, Z[:3])
    np.testing.assert_array_equal(got.others, want.others)
    assert project("pca", Z, Z.reshape(2, 30, 6)).others.shape == (60, 2)  # any leading shape
    # a wrong width was a RuntimeError from a reshape
    with pytest.raises(ValueError, match="other_points must have the 6 features"):
        project("pca", Z, Z[:3, :2])
    with pytest.raises(ValueError, match=r"fit_points must be \(n, d\)"):
        project("pca", Z[0], Z)


def test_tsne_embeds_everything_jointly():
    pytest.importorskip("sklearn", reason="t-SNE needs the egm-viz[tsne] extra (scikit-learn)")
    Z = _data(n=40)
    emb = project("tsne", Z[:30], Z[30:], random_state=0)
    assert emb.fitted.shape == (30, 2) and emb.others.shape == (10, 2)
    assert np.isfinite(emb.fitted).all()
    again = project("tsne", Z[:30], Z[30:], random_state=0)
    np.testing.assert_allclose(emb.fitted, again.fitted)


def test_tsne_of_one_feature_data():
    pytest.importorskip("sklearn", reason="t-SNE needs the egm-viz[tsne] extra (scikit-learn)")
    Z = _data(n=20, d=1)  # a PCA initialisation needs two features: it raised ValueError
    emb = project("tsne", Z[:15], Z[15:], random_state=0)
    assert emb.fitted.shape == (15, 2) and np.isfinite(emb.others).all()


def test_tsne_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)
    with pytest.raises(ImportError, match=r"egm-viz\[tsne\]"):
        project("tsne", _data(), _data())


def test_umap_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(ImportError, match=r"egm-viz\[umap\]"):
        project("umap", _data(), _data())


def test_umap_projection():
    pytest.importorskip("umap", reason="UMAP needs the egm-viz[umap] extra (umap-learn)")
    Z = _data(n=40)
    emb = project("umap", Z[:30], Z[30:], random_state=0)
    assert emb.fitted.shape == (30, 2) and emb.others.shape == (10, 2)
    assert np.isfinite(emb.others).all()


class _RecordingUMAP:
    """Stands in for umap.UMAP to check how egm-viz drives it (fit on the bank, transform rest)."""

    calls: list = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def fit_transform(self, Z):
        self.calls.append(("fit_transform", Z.shape, self.kwargs))
        self.mean = Z.mean(axis=0)
        return (Z - self.mean)[:, :2]

    def transform(self, Z):
        self.calls.append(("transform", Z.shape, self.kwargs))
        return (Z - self.mean)[:, :2]


def test_umap_is_fitted_on_the_bank_and_applied_to_the_rest(monkeypatch):
    import types

    _RecordingUMAP.calls = []
    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=_RecordingUMAP))
    Z = _data(n=12)
    emb = project("umap", Z[:8], Z[8:], random_state=3)
    names = [c[0] for c in _RecordingUMAP.calls]
    assert names == ["fit_transform", "transform"]
    assert _RecordingUMAP.calls[0][1] == (8, 6) and _RecordingUMAP.calls[1][1] == (4, 6)
    assert _RecordingUMAP.calls[0][2] == {"n_components": 2, "n_neighbors": 7, "random_state": 3}
    mean = Z[:8].mean(0).numpy()
    np.testing.assert_allclose(emb.others, (Z[8:].numpy() - mean)[:, :2])
    assert emb.axis_labels == ("UMAP 1", "UMAP 2")
