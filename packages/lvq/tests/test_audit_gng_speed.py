"""GrowingNeuralGas's fast chunk step (graph bookkeeping on the host, whole-array node updates)
equals a straightforward reference of the documented chunk step, ties and resume included."""

import math

import lvq.models.topology as O
import numpy as np
import pytest
import torch
from lvq.distances import squared_euclidean


def _reference_chunk(self, Xb, W, active, linked, age, err, ew, en):
    """The chunk step as documented, graph bookkeeping in plain Python loops over nodes."""
    N, b = W.shape[0], Xb.shape[0]
    D = squared_euclidean(Xb, W).masked_fill(~active, math.inf)
    two = torch.topk(D, 2, dim=1, largest=False)
    s1, s2 = two.indices[:, 0].tolist(), two.indices[:, 1].tolist()
    for k in range(b):
        err[s1[k]] += two.values[k, 0]
    wins = [s1.count(p) for p in range(N)]
    nbr_of = [[j for j in range(N) if age[p, j] >= 0] for p in range(N)]
    M = torch.zeros(b, N, dtype=W.dtype)
    for k in range(b):
        M[k, nbr_of[s1[k]]] = 1.0
    cnt = torch.tensor(wins, dtype=W.dtype)
    sums = torch.zeros_like(W).index_add_(0, torch.tensor(s1), Xb)
    for p in range(N):
        if wins[p]:
            W[p] += (1.0 - (1.0 - ew) ** cnt[p]) * (sums[p] / cnt[p] - W[p])
    ncnt = M.sum(0)
    nmean = (M.T @ Xb) / ncnt.clamp_min(1)[:, None]
    for p in range(N):
        if ncnt[p] > 0:
            W[p] += (1.0 - (1.0 - en) ** ncnt[p]) * (nmean[p] - W[p])
    for p in range(N):
        for j in nbr_of[p]:
            age[p, j] += wins[p] + wins[j]
    for k in range(b):
        age[s1[k], s2[k]] = age[s2[k], s1[k]] = 0
        linked[s1[k]] = linked[s2[k]] = True
    for p in range(N):
        for j in range(N):
            if age[p, j] > self.max_age:
                age[p, j] = -1
    isolated = [p for p in range(N) if active[p] and linked[p] and not (age[p] >= 0).any()]
    if int(active.sum()) - len(isolated) >= 2:
        for p in isolated:
            active[p] = linked[p] = False
            err[p] = 0
    if not bool(active.all()):
        q = max((p for p in range(N) if active[p]), key=lambda p: (err[p], -p))
        nbrs = [j for j in range(N) if age[q, j] >= 0]
        if nbrs:
            f = max(nbrs, key=lambda j: (err[j], -j))
            r = next(p for p in range(N) if not active[p])
            W[r] = 0.5 * (W[q] + W[f])
            active[r] = linked[r] = True
            age[q, f] = age[f, q] = -1
            age[q, r] = age[r, q] = age[f, r] = age[r, f] = 0
            err[q] *= 0.5
            err[f] *= 0.5
            err[r] = err[q]
    err *= float(self.error_decay) ** b


class _Reference(O.GrowingNeuralGas):
    _chunk = _reference_chunk


def _same(a: O.GrowingNeuralGas, b: O.GrowingNeuralGas) -> None:
    np.testing.assert_allclose(a.prototypes_, b.prototypes_, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(a.edges_, b.edges_)
    np.testing.assert_allclose(a.errors_, b.errors_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(a.loss_history_, b.loss_history_, rtol=1e-6)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 1.0], [0.0, 3.0, -1.0]])
    return np.concatenate([c + 0.5 * rng.normal(size=(50, 3)) for c in centres]).astype("f4")


@pytest.mark.parametrize(
    "kw",
    [
        {"max_nodes": 12, "max_iter": 4, "insert_interval": 10, "max_age": 5},
        {"max_nodes": 5, "max_iter": 3, "insert_interval": 7, "max_age": 2, "random_seed": 1},
        {"max_nodes": 20, "max_iter": 4, "insert_interval": 25, "restore_best": True},
    ],
)
def test_gng_equals_reference_chunk_step(data, kw):
    fast = O.GrowingNeuralGas(device="cpu", **kw).fit(data)
    _same(fast, _Reference(device="cpu", **kw).fit(data))
    assert fast.prototypes_.shape[0] <= kw["max_nodes"]
    E = fast.edges_
    assert np.array_equal(E, E.T) and not E.diagonal().any() and (fast.errors_ >= 0).all()


def test_gng_ties_and_resume_equal_reference(data):
    kw = {"max_nodes": 10, "max_iter": 3, "insert_interval": 15, "device": "cpu"}
    start = data[[0, 0, 60]]  # two equal nodes: every sample ties between them
    fast = O.GrowingNeuralGas(**kw).fit(data, initial_prototypes=start)
    ref = _Reference(**kw).fit(data, initial_prototypes=start)
    _same(fast, ref)
    _same(fast.fit(data, resume=True), ref.fit(data, resume=True))
