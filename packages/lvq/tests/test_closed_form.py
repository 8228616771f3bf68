"""Closed-form GLVQ gradients: the same values as autograd, and what fit() uses."""

from __future__ import annotations

import lvq
import numpy as np
import pytest
import torch
from lvq.backbones import BackboneDistance, FlatModule, make_cnn, make_mlp
from lvq.distances import LocalOmega, Omega, Relevance, SquaredEuclidean, Tangent
from lvq.losses import GLVQLoss, LVQ1Loss, Nearest
from lvq.models.cbc import CBCLoss, gaussian_similarity, inverse_similarity
from lvq.models.supervised_ng import ClassOmega, NGGLVQLoss
from lvq.models.wasserstein import Wasserstein
from lvq.neighbourhood import NeuralGas

DISTANCES = {  # name: (distance, prototypes per class)
    "euclidean": (SquaredEuclidean, {}, 2),
    "omega": (Omega, {}, 2),
    "omega-latent": (Omega, {"latent_dim": 3}, 2),
    "relevance": (Relevance, {}, 2),
    "local-omega": (LocalOmega, {}, 2),
    "local-omega-latent": (LocalOmega, {"latent_dim": 3}, 2),
    "local-omega-sparse": (LocalOmega, {}, 5),  # few non-zeros per row: the pairs path
    "wasserstein": (Wasserstein, {}, 2),
}


def _problem(distance, seed=0, n=60, d=5, classes=3, per_class=2):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.arange(n) % classes
    labels = torch.arange(classes).repeat_interleave(per_class)
    W = torch.randn(len(labels), d, generator=g, dtype=torch.float64)
    params = {"prototypes": W}
    params.update(distance.init_params(X, y, W, labels, g))
    # move away from the identity / uniform starting points
    params = {
        k: v + 0.3 * torch.randn(v.shape, generator=g, dtype=v.dtype) for k, v in params.items()
    }
    return X, y, labels, params


def _autograd(distance, loss, X, y, labels, params, w):
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    per = loss(distance(X, leaves["prototypes"], leaves), y, labels, Nearest())
    value = per.mean() if w is None else (per * w).sum() / w.sum()
    value.backward()
    return value.detach(), {k: v.grad for k, v in leaves.items()}


def _closed(distance, loss, X, y, labels, params, w):
    with torch.no_grad():
        dist, vjp = distance.closed_form(X, params["prototypes"], params)
        value, G = loss.closed_form(dist, y, labels, Nearest(), w)
        return value, vjp(G)


def _assert_same_gradients(distance, loss, X, y, labels, params, w):
    """Closed form and autograd agree on the loss and every gradient; autograd's gradients."""
    v_auto, g_auto = _autograd(distance, loss, X, y, labels, params, w)
    v_closed, g_closed = _closed(distance, loss, X, y, labels, params, w)
    torch.testing.assert_close(v_closed, v_auto, rtol=1e-10, atol=1e-12)
    assert set(g_closed) == set(g_auto)
    for k in g_auto:
        torch.testing.assert_close(g_closed[k], g_auto[k], rtol=1e-8, atol=1e-10, msg=k)
    return g_auto


@pytest.mark.parametrize("name", sorted(DISTANCES))
@pytest.mark.parametrize("transfer", [None, "sigmoid_beta", "swish_beta"])
@pytest.mark.parametrize("weighted", [False, True])
def test_closed_form_gradients_equal_autograd(name, transfer, weighted):
    cls, kwargs, per_class = DISTANCES[name]
    distance = cls(**kwargs)
    assert distance.has_closed_form
    X, y, labels, params = _problem(distance, per_class=per_class)
    w = torch.rand(X.shape[0], dtype=torch.float64) + 0.1 if weighted else None
    loss = GLVQLoss(transfer, beta=3.0, margin=0.1)
    assert loss.has_closed_form(Nearest())
    _assert_same_gradients(distance, loss, X, y, labels, params, w)


@pytest.mark.parametrize("neighbourhood", [Nearest(), NeuralGas(1.5)], ids=["nearest", "ng"])
@pytest.mark.parametrize("lr_ratio", [1.0, 0.5])
@pytest.mark.parametrize("weighted", [False, True])
def test_neural_gas_closed_form_equals_autograd(neighbourhood, lr_ratio, weighted):
    distance = Relevance()
    X, y, labels, params = _problem(distance, per_class=3)
    w = torch.rand(X.shape[0], dtype=torch.float64) + 0.1 if weighted else None
    loss = NGGLVQLoss("sigmoid_beta", beta=2.0, margin=0.05, lr_ratio=lr_ratio)
    assert loss.has_closed_form(neighbourhood)
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    per = loss(distance(X, leaves["prototypes"], leaves), y, labels, neighbourhood)
    value = per.mean() if w is None else (per * w).sum() / w.sum()
    value.backward()
    with torch.no_grad():
        dist, vjp = distance.closed_form(X, params["prototypes"], params)
        v_closed, G = loss.closed_form(dist, y, labels, neighbourhood, w)
        grads = vjp(G)
    torch.testing.assert_close(v_closed, value.detach(), rtol=1e-10, atol=1e-12)
    for k, leaf in leaves.items():
        torch.testing.assert_close(grads[k], leaf.grad, rtol=1e-8, atol=1e-10, msg=k)


@pytest.mark.parametrize("similarity", [gaussian_similarity, inverse_similarity])
@pytest.mark.parametrize("weighted", [False, True])
def test_cbc_closed_form_equals_autograd(similarity, weighted):
    distance = SquaredEuclidean()
    X, y, _, params = _problem(distance, per_class=2)
    g = torch.Generator().manual_seed(1)
    params["reasonings"] = 3.0 * torch.randn(6, 3, 2, generator=g, dtype=torch.float64)
    w = torch.rand(X.shape[0], dtype=torch.float64) + 0.1 if weighted else None
    loss = CBCLoss(similarity, sigma=2.0, margin=0.05)
    assert loss.has_closed_form(None)
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    per = loss.per_sample(distance(X, leaves["prototypes"], leaves), leaves["reasonings"], y)
    assert 0 < int((per > 0).sum()) < len(per)  # both sides of the hinge are covered
    value = per.mean() if w is None else (per * w).sum() / w.sum()
    value.backward()
    with torch.no_grad():
        dist, vjp = distance.closed_form(X, params["prototypes"], params)
        v_closed, ddist, draw = loss.closed_form(dist, params["reasonings"], y, w)
        grads = {**vjp(ddist), "reasonings": draw}
    torch.testing.assert_close(v_closed, value.detach(), rtol=1e-10, atol=1e-12)
    for k, leaf in leaves.items():
        torch.testing.assert_close(grads[k], leaf.grad, rtol=1e-8, atol=1e-10, msg=k)


def test_closed_form_only_where_it_is_exact():
    assert not SquaredEuclidean("manhattan").has_closed_form
    assert not SquaredEuclidean(lambda X, W: torch.cdist(X, W)).has_closed_form
    assert not LVQ1Loss().has_closed_form(Nearest())
    assert not GLVQLoss().has_closed_form(NeuralGas(1.0))
    assert not GLVQLoss(lambda x, beta: torch.tanh(x)).has_closed_form(Nearest())
    assert not Wasserstein("relevance").has_closed_form
    assert not ClassOmega(None, torch.arange(2), 2).has_closed_form
    assert not CBCLoss(lambda d, sigma: 1.0 / (1.0 + d), 1.0, 0.3).has_closed_form(None)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6)).astype(np.float32)
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "pos", "neg")
    y[::7] = "mid"
    X[y == "mid"] += 1.5
    return X, y


@pytest.mark.parametrize(
    "model",
    [
        lvq.GLVQ(transfer_fn="sigmoid_beta", beta=2.0, margin=0.05),
        lvq.GMLVQ(latent_dim=3),
        lvq.GRLVQ(transfer_fn="swish_beta"),
        lvq.LGMLVQ(n_prototypes_per_class=2),
        lvq.WGLVQ(),
        lvq.SRNG(n_prototypes_per_class=2, transfer_fn="sigmoid_beta", lr_ratio=0.5),
        lvq.SNG(n_prototypes_per_class=2),
        lvq.CBC(sigma=2.0),
        lvq.GLVQ(batch_size=32, gradient_accumulation_steps=2, class_weight="balanced"),
        lvq.SiameseGLVQ(hidden_sizes=[8], latent_dim=3),
        lvq.SiameseGMLVQ(hidden_sizes=[8], latent_dim=3, omega_dim=2, activation="relu"),
        lvq.SiameseGLVQ(latent_dim=3, activation="tanh", both_path_gradients=False, bb_lr=0.05),
        lvq.LVQMLN(hidden_sizes=[8, 6], latent_dim=3, activation="selu"),
    ],
    ids=["glvq", "gmlvq", "grlvq", "lgmlvq", "wglvq", "srng", "sng", "cbc", "glvq-minibatch",
         "siamese-glvq", "siamese-gmlvq", "siamese-one-path", "lvqmln"],
)  # fmt: skip
def test_fit_with_closed_form_matches_autograd_fit(model, data, monkeypatch):
    X, y = data
    model.set_params(max_iter=25, lr=0.02, epsilon=0.0, random_seed=3)
    fast = type(model)(**model.get_params())
    calls = []
    loss_cls = type(fast._make_loss(3))
    loss_closed_form = loss_cls.closed_form

    def counting(self, *args):
        calls.append(1)
        return loss_closed_form(self, *args)

    monkeypatch.setattr(loss_cls, "closed_form", counting)
    fast.fit(X, y)
    assert len(calls) == fast.n_iter_ * -(-len(X) // (model.batch_size or len(X)))
    monkeypatch.setattr(loss_cls, "has_closed_form", lambda self, neighbourhood: False)
    slow = type(model)(**model.get_params()).fit(X, y)
    np.testing.assert_allclose(fast.prototypes_, slow.prototypes_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast.loss_history_, slow.loss_history_, rtol=1e-4, atol=1e-6)
    assert np.array_equal(fast.predict(X), slow.predict(X))


BACKBONE_ACTIVATIONS = ["sigmoid", "relu", "tanh", "leaky_relu", "selu"]


def _backbone_problem(distance, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(40, 5, generator=g, dtype=torch.float64)
    y = torch.arange(40) % 3
    labels = torch.arange(3).repeat_interleave(2)
    W = torch.randn(6, 5, generator=g, dtype=torch.float64)
    params = distance.init_params(X, y, W, labels, g)
    params.setdefault("prototypes", W)  # Siamese: prototypes in input space
    params = {
        k: v + 0.1 * torch.randn(v.shape, generator=g, dtype=v.dtype) for k, v in params.items()
    }
    return X, y, labels, params


@pytest.mark.parametrize("activation", BACKBONE_ACTIVATIONS)
@pytest.mark.parametrize(
    "siamese, both_paths", [(True, True), (True, False), (False, True)],
    ids=["siamese", "siamese-one-path", "latent-prototypes"],
)  # fmt: skip
@pytest.mark.parametrize("inner", [SquaredEuclidean, lambda: Omega(2)], ids=["euclid", "omega"])
def test_mlp_backbone_closed_form_equals_autograd(activation, siamese, both_paths, inner):
    net = make_mlp(5, [7, 6], 4, activation, torch.Generator().manual_seed(1)).double()
    distance = BackboneDistance(FlatModule(net), inner(), siamese, both_paths)
    assert distance.has_closed_form
    X, y, labels, params = _backbone_problem(distance)
    loss = GLVQLoss("sigmoid_beta", beta=3.0, margin=0.05)
    w = torch.rand(X.shape[0], dtype=torch.float64) + 0.1
    g_auto = _assert_same_gradients(distance, loss, X, y, labels, params, w)
    with torch.no_grad():  # the prototypes-only pass (neural-gas lr_ratio) gives their share
        dist, vjp = distance.closed_form(X, params["prototypes"], params)
        only = vjp(loss.closed_form(dist, y, labels, Nearest(), w)[1], prototypes_only=True)
    assert set(only) == {"prototypes"}
    torch.testing.assert_close(only["prototypes"], g_auto["prototypes"], rtol=1e-8, atol=1e-10)


def test_user_mlp_without_bias_has_closed_form():
    net = torch.nn.Sequential(
        torch.nn.Linear(5, 6, bias=False), torch.nn.Identity(), torch.nn.LeakyReLU(0.2),
        torch.nn.Linear(6, 3),
    ).double()  # fmt: skip
    distance = BackboneDistance(FlatModule(net), SquaredEuclidean())
    assert distance.has_closed_form
    X, y, labels, params = _backbone_problem(distance, seed=2)
    _assert_same_gradients(distance, GLVQLoss(), X, y, labels, params, None)


class _MySequential(torch.nn.Sequential):
    def forward(self, x):
        return super().forward(x) * 2.0


def _shared():
    layer = torch.nn.Linear(4, 4)
    return torch.nn.Sequential(layer, torch.nn.Tanh(), layer)


def _hooked():
    net = torch.nn.Sequential(torch.nn.Linear(5, 3))
    net.register_forward_hook(lambda module, args, out: out + 1.0)
    return net


@pytest.mark.parametrize(
    "module",
    [
        lambda: torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Dropout(0.1)),
        lambda: torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.LayerNorm(4)),
        lambda: _MySequential(torch.nn.Linear(5, 3)),
        _hooked,
        _shared,
        lambda: make_cnn(4, (2, 2, 1), [2], [3], 3),
    ],
    ids=["dropout", "layernorm", "subclass", "hook", "shared-layer", "cnn"],
)
def test_other_backbones_keep_autograd(module):
    assert not BackboneDistance(FlatModule(module()), SquaredEuclidean()).has_closed_form


def test_backbone_closed_form_needs_an_inner_input_gradient():
    flat = FlatModule(make_mlp(5, [4], 3))
    assert not BackboneDistance(flat, Tangent(1)).has_closed_form
    assert not BackboneDistance(flat, SquaredEuclidean("manhattan")).has_closed_form
