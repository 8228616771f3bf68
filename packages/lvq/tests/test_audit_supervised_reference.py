"""The supervised models against independent float64 numpy references written from the papers.

GLVQ (Sato & Yamada 1996) ``f(mu)``, ``mu = (d+ - d-) / (d+ + d-)``; GRLVQ / GMLVQ / LGMLVQ
(Hammer & Villmann 2002, Schneider et al. 2009) with their normalised metrics; RSLVQ (Seo &
Obermayer 2003) ``-log p(y | x)`` of the Gaussian mixture and its posterior; Kohonen's LVQ2.1
window. One SGD step from the initial prototypes is compared with a finite-difference gradient
of the reference loss; the reference never calls the package.
"""

from __future__ import annotations

import lvq
import numpy as np
import pytest
import torch
from scipy.special import logsumexp, softmax

LR = 0.1


def _data(n=20, d=3, classes=2, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % classes
    return rng.randn(n, d) + 0.8 * y[:, None], y


def _transfer(z, name, beta):
    if name is None:
        return z
    s = 1.0 / (1.0 + np.exp(-beta * z))
    return s if name == "sigmoid_beta" else z * s


def _diff(X, W):
    return X[:, None, :] - W[None, :, :]  # (n, p, d)


def _metric(kind, X, W, P):
    D = _diff(X, W)
    if kind == "glvq":
        return (D**2).sum(-1)
    if kind == "grlvq":  # λ = r^2 / |r|^2
        return (D**2 * (P**2 / (P**2).sum())).sum(-1)
    if kind == "gmlvq":  # Λ = ΩΩᵀ with |Ω|_F = 1
        return ((D @ (P / np.linalg.norm(P))) ** 2).sum(-1)
    # lgmlvq: Ω_k jointly scaled so that the traces of the Λ_k average 1
    om = P / np.sqrt((P**2).sum() / P.shape[0])
    return (np.einsum("npd,pdl->npl", D, om) ** 2).sum(-1)


def _glvq_loss(dist, y, labels, transfer, beta, margin, w):
    same = y[:, None] == labels[None, :]
    dp = np.where(same, dist, np.inf).min(1)
    dm = np.where(same, np.inf, dist).min(1)
    per = _transfer((dp - dm) / (dp + dm) + margin, transfer, beta)
    return (per * w).sum() / w.sum()


def _fd(fun, A, h=1e-6):
    g = np.zeros_like(A)
    for i in np.ndindex(A.shape):
        a, b = A.copy(), A.copy()
        a[i] += h
        b[i] -= h
        g[i] = (fun(a) - fun(b)) / (2 * h)
    return g


def _start(model, X, y):
    """The initial parameters ``fit`` starts from (float64) and the prototype labels."""
    p = model._init_params(torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y), None, None)
    return {k: v.double().numpy() for k, v in p.items()}, model._plabels.numpy()


GROUP = {"grlvq": "relevances", "gmlvq": "omega", "lgmlvq": "omegas"}
MODELS = {"glvq": lvq.GLVQ, "grlvq": lvq.GRLVQ, "gmlvq": lvq.GMLVQ, "lgmlvq": lvq.LGMLVQ}


@pytest.mark.parametrize(
    "kind, transfer, per_class, latent, weighted",
    [
        ("glvq", None, 1, None, False),
        ("glvq", "sigmoid_beta", 2, None, True),
        ("grlvq", "swish_beta", 2, None, True),
        ("gmlvq", None, 2, 2, True),
        ("gmlvq", "sigmoid_beta", 1, None, False),
        ("lgmlvq", "swish_beta", 2, 2, True),
    ],
)
def test_glvq_family_one_sgd_step_matches_the_paper_loss(
    kind, transfer, per_class, latent, weighted
):
    X, y = _data()
    w = np.random.RandomState(1).rand(len(y)) + 0.2 if weighted else np.ones(len(y))
    kw = {"max_iter": 1, "optimizer": "sgd", "lr": LR, "margin": 0.05}
    kw.update(transfer_fn=transfer, n_prototypes_per_class=per_class)
    if transfer is not None:
        kw["beta"] = 3.0
    if latent is not None:
        kw["latent_dim"] = latent
    model = MODELS[kind](**kw).fit(X, y, sample_weight=w if weighted else None)
    start, labels = _start(model, X, y)
    W0, P0 = start["prototypes"], start.get(GROUP.get(kind, ""))

    def loss(W, P):
        return _glvq_loss(_metric(kind, X, W, P), y, labels, transfer, 3.0, 0.05, w)

    assert model.loss_history_[0] == pytest.approx(loss(W0, P0), abs=1e-6)
    W1 = W0 - LR * _fd(lambda A: loss(A, P0), W0)
    np.testing.assert_allclose(model._params["prototypes"].detach().numpy(), W1, atol=1e-6)
    if kind in GROUP:
        P1 = P0 - LR * _fd(lambda A: loss(W0, A), P0)
        np.testing.assert_allclose(model._params[GROUP[kind]].detach().numpy(), P1, atol=1e-6)


@pytest.mark.parametrize("cls", [lvq.RSLVQ, lvq.MRSLVQ])
def test_rslvq_step_and_posterior_match_seo_obermayer(cls):
    X, y = _data(n=24, d=4, classes=3, seed=2)
    sigma = 0.7
    kw = {"sigma": sigma, "n_prototypes_per_class": 2, "optimizer": "sgd", "lr": LR}
    model = cls(max_iter=1, **kw).fit(X, y)
    start, labels = _start(model, X, y)
    kind = "gmlvq" if cls is lvq.MRSLVQ else "glvq"
    W0, P0 = start["prototypes"], start.get("omega")
    same = y[:, None] == labels[None, :]

    def loss(W, P):
        logits = -_metric(kind, X, W, P) / (2 * sigma**2)
        return (logsumexp(logits, 1) - logsumexp(np.where(same, logits, -np.inf), 1)).mean()

    assert model.loss_history_[0] == pytest.approx(loss(W0, P0), abs=1e-6)
    W1 = W0 - LR * _fd(lambda A: loss(A, P0), W0)
    np.testing.assert_allclose(model._params["prototypes"].detach().numpy(), W1, atol=1e-6)

    fitted = cls(max_iter=15, **kw).fit(X, y)
    Wf = fitted._params["prototypes"].detach().double().numpy()
    Pf = fitted._params["omega"].detach().double().numpy() if kind == "gmlvq" else None
    post = softmax(-_metric(kind, X, Wf, Pf) / (2 * sigma**2), 1)
    lab = fitted._plabels.numpy()
    ref = np.stack([post[:, lab == c].sum(1) for c in range(3)], 1)
    np.testing.assert_allclose(fitted.predict_proba(X), ref, atol=1e-6)


@pytest.mark.parametrize("window", [0.2, 0.5])
def test_lvq21_batch_step_follows_kohonens_window(window):
    X, y = _data(n=30, d=3, classes=3, seed=2)
    model = lvq.LVQ21(max_iter=1, lr=0.3, window=window, n_prototypes_per_class=2).fit(X, y)
    start, labels = _start(model, X, y)
    W = start["prototypes"]
    D = np.sqrt((_diff(X, W) ** 2).sum(-1))  # Euclidean, not squared
    same = y[:, None] == labels[None, :]
    jp, jm = np.where(same, D, np.inf).argmin(1), np.where(same, np.inf, D).argmin(1)
    rows = np.arange(len(y))
    dp, dm = D[rows, jp], D[rows, jm]
    inside = np.minimum(dp / dm, dm / dp) > (1 - window) / (1 + window)
    assert 0 < inside.sum() < len(y)
    num, cnt = np.zeros_like(W), np.zeros(len(W))
    for i in np.flatnonzero(inside):  # each prototype moves by the mean of its updates
        num[jp[i]] += X[i] - W[jp[i]]
        num[jm[i]] -= X[i] - W[jm[i]]
        cnt[jp[i]] += 1
        cnt[jm[i]] += 1
    expected = W + 0.3 * num / np.maximum(cnt, 1)[:, None]
    np.testing.assert_allclose(model.prototypes_, expected, atol=1e-6)
