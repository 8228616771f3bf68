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
from flt_tracker.purification import (
    make_sparse_coding,
    robust_accuracy,
    run_purification,
    srelu,
)


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


def test_dense_mixture_weight_checks_w_star_by_name():
    M, W = torch.eye(4), torch.randn(3, 4)
    # a (4, 1) w* broadcast the (3,) result into a (3, 3) matrix without a word
    for bad in (torch.ones(4, 1), torch.ones(3)):
        with pytest.raises(ValueError, match=r"w_star must be \(atoms,\) with atoms=4"):
            dense_mixture_weight(W, M, bad)
    with pytest.raises(TypeError, match="w_star must be a torch.Tensor"):
        dense_mixture_weight(W, M, [1.0] * 4)
    assert dense_mixture_weight(W, M, torch.ones(4)).shape == (3,)


def test_dictionary_metrics_take_numpy_and_name_a_feature_passed_as_w():
    # a numpy dictionary was a torch "to() received an invalid combination of arguments"
    # error, and a Feature passed as W "'Feature' object has no attribute 'ndim'"
    from flt_tracker import Feature

    gen = torch.Generator().manual_seed(0)
    M, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=torch.float64))
    W, w_star = torch.randn(4, 6, generator=gen), torch.ones(6)
    expected = purity(W, M)
    assert torch.allclose(purity(W.numpy(), M.numpy()), expected)
    assert torch.allclose(purity(W, M.numpy()), expected)
    dense = dense_mixture_weight(W, M, w_star)
    assert torch.allclose(dense_mixture_weight(W, M.numpy(), w_star.numpy()), dense)
    series = Feature("W")
    series.append(W)
    with pytest.raises(TypeError, match=r"W must be a tensor .*feature.map"):
        purity(series, M)
    assert torch.allclose(series.map(lambda v: purity(v, M.numpy()))[0], expected)


def test_make_sparse_coding_checks_its_arguments():
    # margin > d looped forever (no sample reaches it); n_train=0 was a torch.cat() error
    with pytest.raises(ValueError, match=r"margin=11 must be <= d=10"):
        make_sparse_coding(n_train=4, n_test=4, d=10, k=2, margin=11)
    with pytest.raises(ValueError, match="n_train and n_test must be >= 1"):
        make_sparse_coding(n_train=0, n_test=4, d=10, k=2)
    with pytest.raises(TypeError, match=r"n_test=2.5 must be an int"):
        make_sparse_coding(n_train=4, n_test=2.5, d=10, k=2)
    with pytest.raises(ValueError, match="noise=-0.1 must be finite and >= 0"):
        make_sparse_coding(n_train=4, n_test=4, d=10, k=2, noise=-0.1)
    assert make_sparse_coding(n_train=4, n_test=3, d=10, k=2).X_test.shape == (3, 10)


def test_run_purification_checks_the_attack_before_training(monkeypatch):
    # a misspelt attack or a bad eps failed only after the whole clean phase had trained
    from flt_tracker import purification

    def no_data(*args, **kwargs):
        raise AssertionError("the data was drawn before the attack was checked")

    monkeypatch.setattr(purification, "make_sparse_coding", no_data)
    with pytest.raises(ValueError, match="kind='fgsm' is not supported"):
        run_purification(attack="fgsm")
    with pytest.raises(ValueError, match="eps=-0.1 must be finite"):
        run_purification(eps=-0.1)


def test_accuracies_are_exact_fractions():
    class Fixed(torch.nn.Module):  # scores +1 for the first three rows, -1 for the rest
        def forward(self, x):
            return torch.where(x[:, 0] > 0, 1.0, -1.0) * (1.0 + 0.0 * x.sum(1))

    X = torch.tensor([[1.0], [1.0], [1.0], [-1.0], [-1.0]])
    y = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0])
    # 3 of 5 correct and no perturbation can move the fixed signs at eps=0
    assert robust_accuracy(Fixed(), X, y, eps=0.0, steps=1) == 0.6
