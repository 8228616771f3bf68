"""Migration audit of the unsupervised models against scikit-learn's KMeans conventions:
conveniences a KMeans / MiniBatchKMeans user expects of every clusterer."""

from __future__ import annotations

import numpy as np
import pytest
from _unsupervised_fitted import CLUSTERERS, _data_for, _make, ids


@pytest.mark.parametrize("spec", CLUSTERERS, ids=ids)
def test_fit_transform_is_fit_then_transform(spec):
    # KMeans.fit_transform exists; ours raised AttributeError on every clusterer
    X = _data_for(spec)
    D = _make(spec).fit_transform(X)
    ref = _make(spec).fit(X)
    np.testing.assert_allclose(D, ref.transform(X), rtol=1e-6, atol=1e-6)
    assert D.shape == (len(X), ref.prototypes_.shape[0])


@pytest.mark.parametrize("name", ["OCGLVQ", "OCRSLVQ", "SVQOCC"])
def test_one_class_score_samples_ranks_as_scikit_learns_outlier_detectors(name):
    # IsolationForest / OneClassSVM users call score_samples (lower = more abnormal); ours had none
    import lvq

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    far = np.array([[6.0, 6.0], [0.0, 0.0]])
    extra = {"cost_function": "brier"} if name == "SVQOCC" else {}
    model = getattr(lvq, name)(n_prototypes=2, max_iter=20, random_seed=0, **extra).fit(X)
    s = model.score_samples(far)
    np.testing.assert_array_equal(s, model.decision_function(far))
    assert s.shape == (2,) and s[0] < s[1]


def test_som_quantization_and_topographic_error_match_minisoms_definitions():
    # MiniSom users measure every map with these two; som_utils had neither
    import lvq
    from lvq import som_utils

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    som = lvq.KohonenSOM(grid_height=3, grid_width=4, max_iter=5).fit(X)
    W = som.prototypes_.astype(np.float64)
    D = np.linalg.norm(X[:, None, :] - W[None], axis=-1)
    order = np.argsort(D, axis=1)[:, :2]
    r, c = np.divmod(order, 4)
    te = ((np.abs(r[:, 0] - r[:, 1]) + np.abs(c[:, 0] - c[:, 1])) > 1).mean()
    assert som_utils.quantization_error(som, X) == pytest.approx(D.min(1).mean(), rel=1e-6)
    assert som_utils.topographic_error(som, X) == pytest.approx(te)
    # weights (rows, cols, d) work as for the other utilities; a perfect 1-D chain has no error
    chain = np.arange(4.0).reshape(1, 4, 1)
    line = np.linspace(0.0, 3.0, 50)[:, None]
    assert som_utils.topographic_error(chain, line) == 0.0
    with pytest.raises(ValueError, match=r"shape \(n, 1\)"):
        som_utils.quantization_error(chain, X)


def test_row_ranks_is_the_double_argsort_with_one_sort():
    # neural-gas ranks sorted every (n, P) distance matrix twice: the hot spot of NeuralGas.fit
    import torch
    from lvq.neighbourhood import NeuralGas, _row_ranks

    g = torch.Generator().manual_seed(0)
    D = torch.randint(0, 4, (200, 7), generator=g).float()  # many ties
    D[0] = float("inf")
    assert torch.equal(_row_ranks(D), D.argsort(dim=1).argsort(dim=1))
    mask = torch.rand(200, 7, generator=g) > 0.3
    mask[:, 0] = True
    masked = D.masked_fill(~mask, float("inf"))
    ref = torch.exp(-masked.argsort(dim=1).argsort(dim=1).float() / 0.7) * mask
    ref = ref / ref.sum(1, keepdim=True)
    torch.testing.assert_close(NeuralGas(0.7)._weights(D, mask), ref)


def test_kohonen_som_epoch_sums_per_bmu_as_the_dense_neighbourhood_rows_did():
    # the batch SOM formed the (n, P) rows h(k, bmu_i) every epoch: most of an epoch's time
    import lvq
    import torch
    from lvq.models.topology import _geometric, _per_bmu

    g = torch.Generator().manual_seed(0)
    X = torch.randn(500, 3, generator=g, dtype=torch.float64)
    bmu = torch.randint(0, 12, (500,), generator=g)
    counts, sums, rows = _per_bmu(bmu, 12, X, X[:, :1] * torch.ones(1, 12, dtype=X.dtype))
    onehot = torch.nn.functional.one_hot(bmu, 12).to(X.dtype)
    torch.testing.assert_close(counts, onehot.sum(0))
    torch.testing.assert_close(sums, onehot.T @ X)
    torch.testing.assert_close(rows, (onehot.T @ X[:, :1]).expand(12, 12))

    model = lvq.KohonenSOM(grid_height=3, grid_width=4, max_iter=4)
    W0 = X[:12].clone()
    model._begin(X, W0)
    W = W0.clone()
    energy = model._epoch(X, W, 1, 4, g)
    Hg = model._h(model._sigma(1, 4))
    E = ((X[:, None] - W0[None]) ** 2).sum(-1)
    H = Hg[E.argmin(1)]
    lr = _geometric(float(model.lr_init), float(model.lr_final), 1, 4)
    ref_energy = float((H * E).sum()) / len(X)
    ref = W0 + lr * ((H.T @ X) / H.sum(0)[:, None] - W0)
    assert energy == pytest.approx(ref_energy, rel=1e-10)
    torch.testing.assert_close(W, ref, rtol=1e-10, atol=1e-10)
