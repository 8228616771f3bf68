"""Robustness of the unsupervised, fuzzy and Riemannian models on valid but awkward data."""

from __future__ import annotations

import lvq
import numpy as np
import pytest
from _unsupervised_fitted import _blobs


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labelings split the samples the same way (up to renaming the clusters)."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("name", ["FCM", "PCM", "FPCM", "IPCM2"])
def test_fuzzy_clusters_data_with_tiny_squared_distances(name):
    # squared distances ~1e-13 were floored at a fixed 1e-12 before the log: every membership
    # became uniform and all samples fell into one cluster
    X = _blobs(spread=0.3)
    truth = np.repeat([0, 1, 2], 20)
    m = getattr(lvq, name)(n_clusters=3, epsilon=0.0, max_iter=50, random_seed=0)
    labels = m.fit(X * 1e-7).predict(X * 1e-7)
    assert _same_partition(labels, truth)
    assert np.isfinite(m.predict_proba(X * 1e-7)).all()


def test_riemannian_initial_prototypes_checked_before_training(manifold_blobs):
    X, y = manifold_blobs("spd:2")
    m = lvq.RiemannianSRNG(manifold="spd:2", max_iter=2)
    with pytest.raises(ValueError, match="rows of initial_prototypes are not points of SPD"):
        m.fit(X, y, initial_prototypes=-X[[0, 20, 40]])
    assert not hasattr(m, "prototypes_") and not hasattr(m, "n_iter_")
    # a wrong width gets the base class's shape message, not a manifold error
    with pytest.raises(ValueError, match="initial_prototypes has 3 features but X has 4"):
        m.fit(X, y, initial_prototypes=X[[0, 20, 40], :3])
    fitted = m.fit(X, y, initial_prototypes=X[[0, 20, 40]])
    assert fitted.n_iter_ >= 1
