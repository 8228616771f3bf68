"""The optax-named optimizers torch lacks: update rules by hand, and each one learns."""

from __future__ import annotations

import math

import lvq
import numpy as np
import pytest
import torch
from lvq.lean_optimizers import (
    LEAN_OPTIMIZERS,
    SM3,
    Adan,
    Fromage,
    Lamb,
    Lars,
    Lion,
    NoisySGD,
    SignSGD,
)


def one_step(cls, p0, grad, lr=0.1, steps=1, **hyper):
    p = p0.clone().requires_grad_()
    opt = cls([{"params": [p]}], lr, **hyper)
    for _ in range(steps):
        p.grad = grad.clone()
        opt.step()
    return p.detach(), opt


P0 = torch.tensor([1.0, -2.0, 0.5, 0.0])
G = torch.tensor([0.3, -0.1, 0.05, 2.0])


def test_sign_sgd_and_lion_take_sign_steps():
    p, _ = one_step(SignSGD, P0, G)
    torch.testing.assert_close(p, P0 - 0.1 * G.sign())
    # first Lion step: m = 0, so the direction is sign((1 - b1) g) = sign(g); decay decoupled
    p, opt = one_step(Lion, P0, G, weight_decay=0.5)
    torch.testing.assert_close(p, P0 - 0.1 * (G.sign() + 0.5 * P0))
    torch.testing.assert_close(opt.state[next(iter(opt.state))]["m"], 0.01 * G)


def test_lamb_and_lars_scale_by_the_trust_ratio():
    p, _ = one_step(Lamb, P0, G, eps=0.0)
    adam_dir = G.sign()  # the first bias-corrected Adam step
    torch.testing.assert_close(p, P0 - 0.1 * P0.norm() / adam_dir.norm() * adam_dir)
    p, _ = one_step(Lars, P0, G, momentum=0.0)
    torch.testing.assert_close(p, P0 - 0.1 * 0.001 * P0.norm() / G.norm() * G)
    p, _ = one_step(Lars, torch.zeros(4), G, momentum=0.0)  # |p| = 0: ratio 1
    torch.testing.assert_close(p, -0.1 * G)


def test_fromage_keeps_the_norm_scale():
    p, _ = one_step(Fromage, P0, G, lr=0.01)
    expected = (P0 - 0.01 * P0.norm() / G.norm() * G) / math.sqrt(1 + 0.01**2)
    torch.testing.assert_close(p, expected)


def test_sm3_on_a_vector_is_adagrad_with_momentum():
    p, _ = one_step(SM3, P0, G, momentum=0.0, eps=0.0, steps=2)
    # two identical gradients: nu = 2 g^2, each step g / sqrt(nu_t)
    step = G.sign() * (1 + 1 / math.sqrt(2))
    torch.testing.assert_close(p, P0 - 0.1 * step)


def test_sm3_matrix_accumulators_cover_rows_and_columns():
    g = torch.tensor([[1.0, 2.0], [3.0, 0.5]])
    _, opt = one_step(SM3, torch.zeros(2, 2), g)
    rows, cols = opt.state[next(iter(opt.state))]["acc"]
    torch.testing.assert_close(rows, (g * g).amax(1))
    torch.testing.assert_close(cols, (g * g).amax(0))


def test_adan_first_step_is_sign_like_and_noisy_sgd_is_seeded():
    p, _ = one_step(Adan, P0, G, eps=0.0)
    torch.testing.assert_close(p, P0 - 0.1 * G.sign())
    a, _ = one_step(NoisySGD, P0, G, steps=3, seed=7)
    b, _ = one_step(NoisySGD, P0, G, steps=3, seed=7)
    c, _ = one_step(NoisySGD, P0, G, steps=3, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_unknown_hyper_parameter_and_refused_names(blobs):
    with pytest.raises(TypeError, match="no hyper-parameter"):
        Lion([{"params": [torch.zeros(2)]}], 0.1, beta=0.3)
    X, y = blobs
    with pytest.raises(ValueError, match="per-sample gradients"):
        lvq.GLVQ(optimizer="dpsgd").fit(X, y)


@pytest.mark.parametrize("name", sorted(LEAN_OPTIMIZERS) + ["adafactor"])
def test_every_optax_name_learns(name, blobs):
    X, y = blobs
    lr = 1.0 if name == "lars" else 0.02
    m = lvq.GMLVQ(optimizer=name, lr=lr, max_iter=40, epsilon=0.0, random_seed=0).fit(X, y)
    assert m.loss_history_[-1] < m.loss_history_[0] - 0.05
    again = lvq.GMLVQ(optimizer=name, lr=lr, max_iter=40, epsilon=0.0, random_seed=0).fit(X, y)
    np.testing.assert_array_equal(m.prototypes_, again.prototypes_)


def test_a_factory_may_return_a_lean_optimizer(blobs):
    X, y = blobs
    m = lvq.GLVQ(optimizer=lambda groups, lr: Lion(groups, lr, b2=0.95), max_iter=5).fit(X, y)
    assert isinstance(m._optimizer_state["opt"], Lion)
    assert m._optimizer_state["opt"].param_groups[0]["b2"] == 0.95
