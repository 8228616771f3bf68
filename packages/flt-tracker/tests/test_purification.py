import math

import pytest
import torch
from flt_tracker.analysis import (
    atoms_above,
    dense_mixture_weight,
    dictionary_correlations,
    participation_ratio,
    purity,
    sorted_atom_profile,
)
from flt_tracker.purification import make_sparse_coding, run_purification, srelu


def test_dictionary_metrics_on_known_weights():
    d = 16
    M, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(0)))
    w_star = torch.ones(d)
    pure = M[:, 3] * 2.0
    dense = M @ w_star
    W = torch.stack([pure, dense])
    assert purity(W, M).tolist() == pytest.approx([1.0, 1 / math.sqrt(d)], abs=1e-5)
    assert dense_mixture_weight(W, M, w_star).tolist() == pytest.approx(
        [1 / math.sqrt(d), 1.0], abs=1e-5
    )
    assert participation_ratio(W, M).tolist() == pytest.approx([1.0, d], rel=1e-4)
    assert atoms_above(W, M, 0.2).tolist() == [1, d]
    c = dictionary_correlations(W, M)
    assert c.shape == (2, d) and torch.allclose((c**2).sum(-1), torch.ones(2), atol=1e-5)
    assert sorted_atom_profile(W, M, top=3).shape == (2, 3)
    assert purity(torch.stack([W, W]), M).shape == (2, 2)  # batched over steps


def test_data_and_srelu():
    data = make_sparse_coding(n_train=300, n_test=50, d=20, k=3, seed=1)
    assert data.X_train.shape == (300, 20) and set(data.y_train.unique().tolist()) <= {-1.0, 1.0}
    assert torch.allclose(data.M.T @ data.M, torch.eye(20), atol=1e-5)
    u = torch.tensor([-1.0, 0.05, 0.1, 0.5])
    assert srelu(u, 0.1).tolist() == pytest.approx(
        [0.0, 0.05**3 / 0.03, 0.1 / 3, 0.5 - 0.2 / 3], rel=1e-5
    )


def test_feature_purification_picture():
    """The reference recipe at reduced length (300 + 300 steps, 5k samples): the
    qualitative picture of feature-purification.md section 3, with slack."""
    r = run_purification(
        300,
        300,
        n_train=5000,
        n_test=500,
        n_eval=500,
        pgd_steps=10,
        eval_every=300,
        track_frequency=20,
    )
    t = r["table"]
    clean, adv, ctl = t["clean"], t["adversarial"], t["control"]
    assert t["init"]["robust_acc"] < 0.1
    assert clean["clean_acc"] >= 0.97
    assert clean["dense_weight"] >= 0.35 and clean["purity"] >= 0.6
    assert adv["dense_weight"] <= 0.2
    assert adv["purity"] >= clean["purity"] + 0.1
    assert adv["robust_acc"] >= clean["robust_acc"] + 0.1
    assert adv["clean_acc"] >= 0.97
    assert r["alignment"]["fraction_above_0.707"] > 0.7
    # the clean-training control changes nothing
    assert abs(ctl["dense_weight"] - clean["dense_weight"]) < 0.05
    assert abs(ctl["robust_acc"] - clean["robust_acc"]) < 0.05
    # the tracker saw the same picture on its own step axis
    W = r["tracker"].get_feature("W")
    assert (
        W.steps[0] == 0
        and W.steps[-1] == 600
        and r["tracker"].phases == [(0, "clean"), (300, "adversarial")]
    )
    dense = W.map(
        lambda v: dense_mixture_weight(v, r["data"].M, r["data"].w_star).median(dim=1).values
    )
    assert dense[W.steps.tolist().index(300)] >= 0.35 and dense[-1] <= 0.2
