"""Closed-form float64 references (numpy) for the Fisher, EWC, SI and A-GEM / GEM formulas."""

import numpy as np
import torch
import torch.nn.functional as F
from continual import EWC, SI, Trainer, class_incremental, empirical_fisher, task_incremental
from continual.kernels import agem_project, gem_project, per_sample_expected_fisher
from continual.learner import EWCTerms
from continual.strategies import fisher_on

N, D, C = 20, 3, 4


def _linear(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(D, C).double()


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, D)), rng.integers(0, C, N)


def _softmax(Z):
    P = np.exp(Z - Z.max(1, keepdims=True))
    return P / P.sum(1, keepdims=True)


def _probs(lin, X):
    return _softmax(X @ lin.weight.detach().numpy().T + lin.bias.detach().numpy())


def test_empirical_fisher_is_the_mean_of_squared_per_sample_gradients():
    # softmax regression: d CE_i / dW = (p_i - e_{y_i}) x_i^T, d CE_i / db = p_i - e_{y_i}
    X, y = _data()
    lin = _linear()
    R = _probs(lin, X) - np.eye(C)[y]
    gW = R[:, :, None] * X[:, None, :]
    for method in ("vmap", "loop"):
        fisher = empirical_fisher(
            lin, (torch.tensor(X), torch.tensor(y)), F.cross_entropy, batch_size=7, method=method
        )
        np.testing.assert_allclose(fisher["weight"].numpy(), (gW**2).mean(0), atol=1e-14)
        np.testing.assert_allclose(fisher["bias"].numpy(), (R**2).mean(0), atol=1e-14)
    assert np.abs(gW.mean(0) ** 2 - (gW**2).mean(0)).max() > 0.1  # not the squared batch grad


def test_expected_fisher_and_task_mask_match_the_closed_form():
    # F = mean_i sum_c p_ic (p_i - e_c)^2 x_i^2 over the classes of the task (others masked)
    X, y = _data(1)
    lin = _linear(1)
    scenario = task_incremental(X, y, X, y, class_order=[[0, 1], [2, 3]])
    trainer = Trainer(lin, device="cpu")
    trainer._register_masks(scenario.train_stream)
    exp = scenario.train_stream[1]
    x = exp.dataset.tensors[0].numpy()
    Z = x @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()
    Z[:, [0, 1]] = -np.inf
    P = _softmax(Z)
    want = np.zeros((C, D))
    for i in range(len(x)):
        for c in (2, 3):
            want += P[i, c] * ((P[i] - np.eye(C)[c])[:, None] * x[i][None, :]) ** 2
    got = fisher_on(trainer, exp, kind="expected")["weight"].numpy()
    np.testing.assert_allclose(got, want / len(x), atol=1e-14)
    unmasked = per_sample_expected_fisher(lin, torch.tensor(X))["weight"].numpy()
    P = _probs(lin, X)
    ref = sum(
        P[i, c] * ((P[i] - np.eye(C)[c])[:, None] * X[i][None, :]) ** 2
        for i in range(N)
        for c in range(C)
    )
    np.testing.assert_allclose(unmasked, ref, atol=1e-13)


def test_ewc_penalty_and_its_gradient_match_the_formula():
    lin = _linear()
    rng = np.random.default_rng(2)
    fisher = {"weight": rng.random((C, D)), "bias": rng.random(C)}
    anchor = {n: p.detach().numpy().copy() for n, p in lin.named_parameters()}
    terms = EWCTerms()
    terms.consolidate(lin, {n: torch.tensor(f) for n, f in fisher.items()})
    with torch.no_grad():
        lin.weight.add_(torch.tensor(rng.normal(size=(C, D))))
        lin.bias.sub_(0.3)
    penalty = terms.penalty(lin)
    penalty.backward()
    theta = {n: p.detach().numpy() for n, p in lin.named_parameters()}
    want = 0.5 * sum((fisher[n] * (theta[n] - anchor[n]) ** 2).sum() for n in fisher)
    np.testing.assert_allclose(penalty.item(), want, rtol=1e-14)
    for n, p in lin.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), fisher[n] * (theta[n] - anchor[n]), atol=1e-14)


def test_ewc_proximal_step_is_the_exact_minimiser_around_the_sgd_iterate():
    # argmin_t ||t - t_sgd||^2 / (2 lr) + lam / 2 * F (t - a)^2 = (t_sgd + lr lam F a) / (1 + lr lam F)
    X, y = _data(3)
    scenario = class_incremental(X, y, X, y, 2)
    lr, lam = 0.1, 40.0
    strategy = EWC(lam, solver="proximal")
    trainer = Trainer(_linear(3), strategy, lr=lr, batch_size=N, device="cpu")
    trainer.train_experience(scenario.train_stream[0])
    (term,) = strategy.terms.terms
    x, t = scenario.train_stream[1].dataset.tensors
    x = x.double()
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    loss = F.cross_entropy(trainer.model(x), t)
    grads = dict(zip(before, torch.autograd.grad(loss, list(trainer.model.parameters()))))
    trainer.train_step((x, t, torch.ones(len(t), dtype=torch.long)))
    for n, p in trainer.model.named_parameters():
        f, a = term["fisher"][n], term["anchor"][n]
        sgd = before[n] - lr * grads[n]
        want = (sgd + lr * lam * f * a) / (1 + lr * lam * f)
        torch.testing.assert_close(p.detach(), want, rtol=0, atol=1e-13)


def test_si_importance_and_weights_match_a_numpy_sgd_reference():
    X, y = _data(2)
    scenario = class_incremental(X, y, X, y, class_order=[[0, 1], [2, 3]])
    lin = _linear(0)
    W, b = lin.weight.detach().numpy().copy(), lin.bias.detach().numpy().copy()
    c, xi, lr, epochs = 0.7, 1e-3, 0.3, 5
    strategy = SI(c, xi)
    Trainer(lin, strategy, lr=lr, epochs=epochs, batch_size=100, device="cpu").fit_stream(scenario)
    omega = [np.zeros_like(W), np.zeros_like(b)]
    anchor = None
    for exp in scenario.train_stream:
        x, t = (v.numpy() for v in exp.dataset.tensors)
        start, w = [W.copy(), b.copy()], [np.zeros_like(W), np.zeros_like(b)]
        for _ in range(epochs):
            G = (_softmax(x @ W.T + b) - np.eye(C)[t]) / len(t)
            grads = [G.T @ x, G.sum(0)]
            new = []
            for k, (p, g) in enumerate(zip((W, b), grads)):
                pen = 0 if anchor is None else 2 * c * omega[k] * (p - anchor[k])
                new.append(p - lr * (g + pen))
                w[k] -= g * (new[k] - p)  # the path integral of the task loss alone
            W, b = new
        for k, p in enumerate((W, b)):
            omega[k] += np.maximum(w[k] / ((p - start[k]) ** 2 + xi), 0)
        anchor = [W.copy(), b.copy()]
    np.testing.assert_allclose(lin.weight.detach().numpy(), W, atol=1e-13)
    np.testing.assert_allclose(strategy.omega["weight"].numpy(), omega[0], rtol=1e-10)
    np.testing.assert_allclose(strategy.omega["bias"].numpy(), omega[1], rtol=1e-10)


def test_agem_and_gem_projections_match_their_closed_forms():
    rng = np.random.default_rng(4)
    g, ref = rng.normal(size=10), rng.normal(size=10)
    ref = -ref if g @ ref > 0 else ref
    got = agem_project(torch.tensor(g), torch.tensor(ref)).numpy()
    np.testing.assert_allclose(got, g - (g @ ref) / (ref @ ref) * ref, atol=1e-13)
    np.testing.assert_array_equal(agem_project(torch.tensor(g), torch.tensor(-ref)).numpy(), g)
    # one violated constraint: GEM is the same projection; two orthogonal ones: both removed
    np.testing.assert_allclose(
        gem_project(torch.tensor(g), torch.tensor(ref[None])).numpy(), got, atol=1e-10
    )
    e1, e2 = np.eye(10)[0], np.eye(10)[1]
    g2 = np.arange(10.0) - 5.0  # g . e1 = -5 < 0, g . e2 = -4 < 0
    z = gem_project(torch.tensor(g2), torch.tensor(np.stack([e1, e2]))).numpy()
    np.testing.assert_allclose(z, np.r_[0.0, 0.0, g2[2:]], atol=1e-8)
