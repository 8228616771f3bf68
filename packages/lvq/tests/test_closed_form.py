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


# ---------------------------------------------------------------- every option on both paths

from lvq.base import SupervisedPrototypeModel  # noqa: E402
from lvq.optim import OPTIMIZERS, SCHEDULERS  # noqa: E402

#: models that train with closed-form gradients by default: (class, own parameters)
FAST_MODELS = {
    "GLVQ": (lvq.GLVQ, {"transfer_fn": "sigmoid_beta", "beta": 3.0}),
    "GRLVQ": (lvq.GRLVQ, {}),
    "GMLVQ": (lvq.GMLVQ, {"latent_dim": 3}),
    "LGMLVQ": (lvq.LGMLVQ, {"n_prototypes_per_class": 2}),
    "SRNG": (lvq.SRNG, {"n_prototypes_per_class": 2}),
    "SMNG": (lvq.SMNG, {"n_prototypes_per_class": 2, "lr_ratio": 0.3}),
    "WGLVQ": (lvq.WGLVQ, {}),
    "CBC": (lvq.CBC, {"sigma": 2.0}),
    "LVQMLN": (lvq.LVQMLN, {"hidden_sizes": [6], "latent_dim": 3, "lr": 0.01}),
    "SiameseGMLVQ": (
        lvq.SiameseGMLVQ,
        {"hidden_sizes": [6], "latent_dim": 3, "omega_dim": 2, "lr": 0.01},
    ),
}


class _StopAt(lvq.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_iteration_end(self, model, info):
        return info["iteration"] >= self.epoch


def _option_cases():
    """``(model, constructor options, fit options, modes, effect, reference options)``: every
    shared training option on every fast model that has what it needs. ``effect`` is what the
    option must do to a fit against the fit with the ``reference`` options: ``"changes"`` the
    parameters, ``"stops"`` at epoch 3, ``"freezes"`` the named group (or nothing to check)."""
    rng = np.random.default_rng(5)
    sw = rng.uniform(0.2, 2.0, size=90)
    both = ("fit", "partial_fit")
    cases = []
    for name, (cls, _) in FAST_MODELS.items():
        distance = cls()._make_distance() if name not in ("LVQMLN", "SiameseGMLVQ") else None
        groups = ["prototypes", *getattr(distance, "groups", ())]
        options = {  # name: (options, fit options, modes, effect, reference options)
            "defaults": ({}, {}, ("fit", "resume", "partial_fit"), None, {}),
            "batch_size": ({"batch_size": 16}, {}, ("fit", "resume", "partial_fit"), "changes", {}),
            "schedule": ({"lr_scheduler": "warmup_cosine_decay"}, {}, both, "changes", {}),
            "epsilon": ({"epsilon": 1e-3}, {}, ("fit",), None, {}),
            "patience-restore_best-validation": (
                {"patience": 2, "restore_best": True, "max_iter": 12},
                {"validation_data": "shifted"}, ("fit",), None, {},
            ),
            "restore_best": ({"restore_best": True}, {}, both, "changes", {}),
            "class_weight": ({"class_weight": {0: 3.0, 2: 0.5}}, {}, both, "changes", {}),
            "balanced": ({"class_weight": "balanced"}, {}, ("fit",), "changes", {}),
            "sample_weight": ({}, {"sample_weight": sw}, both, "changes", {}),
            # 90 rows in batches of 20: five micro-batches, a remainder of one per epoch
            "accumulation": (
                {"batch_size": 20, "gradient_accumulation_steps": 2}, {}, both, "changes",
                {"batch_size": 20},
            ),
            "ema": ({"ema_decay": 0.7}, {}, ("fit", "resume", "partial_fit"), "changes", {}),
            "lookahead": ({"lookahead": {"sync_period": 3}}, {}, both, "changes", {}),
            "callback-stop": ({"callbacks": [_StopAt(3)]}, {}, ("fit",), "stops", {}),
        }  # fmt: skip
        if "transfer_fn" in cls._loss_options:
            sig = {"transfer_fn": "sigmoid_beta"}
            options["margin"] = ({**sig, "margin": 0.2}, {}, ("fit",), "changes", sig)
            options["swish-beta"] = (
                {"transfer_fn": "swish_beta", "beta": 4.0}, {}, ("fit",), "changes",
                {"transfer_fn": "swish_beta"},
            )  # fmt: skip
        elif "margin" in cls._loss_options:  # CBC's own margin (0.3 by default)
            options["margin"] = ({"margin": 0.0}, {}, ("fit",), "changes", {})
        if distance is not None and len(groups) > 1:  # a model with one group cannot freeze it
            for g in groups:
                options[f"freeze-{g}"] = ({"freeze_params": [g]}, {}, ("fit",), f"freezes {g}", {})
        cases += [pytest.param(name, *spec, id=f"{name}-{opt}") for opt, spec in options.items()]
    return cases


def _fit_both_paths(cls, params, fit_args, mode, X, y):
    """The same training on the closed-form path and on autograd; the closed form is checked to
    run on the first and not on the second."""
    out = []
    for fast in (True, False):
        calls = []
        decide = SupervisedPrototypeModel._has_closed_form
        owner = next(c for c in cls.__mro__ if "_closed_form_loss" in vars(c))
        counted = vars(owner)["_closed_form_loss"]

        def counting(self, *args, _f=counted, _calls=calls):
            _calls.append(1)
            return _f(self, *args)

        try:
            owner._closed_form_loss = counting
            if not fast:  # the only switch between the paths: the model's own decision
                SupervisedPrototypeModel._has_closed_form = lambda self, p, c: False
            m = cls(**params)
            if mode == "partial_fit":
                for _ in range(params["max_iter"]):
                    m.partial_fit(X, y, sample_weight=fit_args.get("sample_weight"))
            else:
                m.fit(X, y, **fit_args)
                if mode == "resume":
                    m.fit(X, y, resume=True, **fit_args)
        finally:
            SupervisedPrototypeModel._has_closed_form = decide
            owner._closed_form_loss = counted
        assert bool(calls) == fast, "the closed form ran where it should not, or did not run"
        out.append(m)
    return out


def _data():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [40, 30, 20])  # unequal classes: "balanced" weighs
    X = rng.normal(size=(90, 5))
    X[:, :2] += 1.2 * y[:, None]
    return X, y


@pytest.mark.parametrize("model, kw, fit_kw, modes, effect, ref_kw", _option_cases())
def test_every_option_acts_and_trains_the_same_on_the_closed_form_and_autograd(
    model, kw, fit_kw, modes, effect, ref_kw
):
    """Each shared option on the fast path does what it says (changes the fit, stops it,
    freezes its group) and gives the parameters (every group) of the autograd path, after fit,
    fit(resume=True) and partial_fit. Plain SGD: Adam-type steps normalise gradient components
    that are 0 up to rounding (the translation-invariant last bias of a Siamese backbone),
    which turns float32 noise into full steps on either path."""
    X, y = _data()
    fit_kw = dict(fit_kw)
    if fit_kw.get("validation_data") == "shifted":
        fit_kw["validation_data"] = (X[::3] + 0.4, y[::3])
    cls, own = FAST_MODELS[model]
    base = {"max_iter": 8, "lr": 0.05, "epsilon": 0.0, "random_seed": 1, "device": "cpu",
            "optimizer": "sgd", **own}  # fmt: skip
    params = {**base, **kw}
    for mode in modes:
        fast, slow = _fit_both_paths(cls, params, fit_kw, mode, X, y)
        assert fast.n_iter_ == slow.n_iter_, mode
        for k, v in slow._params.items():
            np.testing.assert_allclose(
                fast._params[k].detach().numpy(), v.detach().numpy(), rtol=1e-4, atol=2e-5,
                err_msg=f"{mode}: {k}",
            )  # fmt: skip
        np.testing.assert_allclose(fast.loss_history_, slow.loss_history_, atol=1e-4)
        np.testing.assert_allclose(fast.val_loss_history_, slow.val_loss_history_, atol=1e-4)
        if effect is None or mode != "fit":
            continue
        ref = cls(**{**base, **ref_kw}).fit(X, y)
        if effect == "changes":
            assert any(not torch.equal(fast._params[k], v) for k, v in ref._params.items())
        elif effect == "stops":
            assert fast.n_iter_ == 3 and ref.n_iter_ == 8
        else:
            group = effect.split()[1]
            start = cls(**{**base, "max_iter": 1, "lr": 1e-30}).fit(X, y)._params
            torch.testing.assert_close(fast._params[group], start[group], rtol=0, atol=1e-6)
            moved = [k for k in start if not torch.allclose(fast._params[k], start[k])]
            assert moved and group not in moved


@pytest.mark.parametrize("name", sorted(set(OPTIMIZERS) - {"lbfgs"}))
def test_every_optimizer_steps_the_same_on_both_paths(name):
    """The optimizer by name sees the closed-form gradients as it sees autograd's."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.repeat([0, 1, 2], 20)
    X[:, 0] += 2.0 * y
    params = {"max_iter": 5, "lr": 0.02, "epsilon": 0.0, "device": "cpu", "optimizer": name}
    fast, slow = _fit_both_paths(lvq.GMLVQ, params, {}, "fit", X, y)
    np.testing.assert_allclose(fast.prototypes_, slow.prototypes_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast.omega_, slow.omega_, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "spec",
    [*sorted(SCHEDULERS), "callable", "factory", "class"],
)
def test_every_schedule_and_optimizer_spec_steps_the_same_on_both_paths(spec):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(60, 4)), np.repeat([0, 1, 2], 20)
    X[:, 1] += 2.0 * y
    params = {"max_iter": 12, "lr": 0.05, "epsilon": 0.0, "device": "cpu"}
    if spec == "callable":
        params["lr_scheduler"] = lambda t: 0.05 / (1.0 + t)
    elif spec == "factory":
        params["optimizer"] = lambda groups, lr: torch.optim.SGD(groups, lr=lr, momentum=0.8)
    elif spec == "class":
        params["optimizer"] = torch.optim.Adagrad
    else:
        params["lr_scheduler"] = spec
    fast, slow = _fit_both_paths(lvq.GRLVQ, params, {}, "fit", X, y)
    np.testing.assert_allclose(fast.prototypes_, slow.prototypes_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast.relevances_, slow.relevances_, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("option", [{"mixed_precision": "bfloat16"}, {"optimizer": "lbfgs"}])
def test_options_the_closed_form_cannot_honour_take_autograd(option, monkeypatch):
    """Autocast and L-BFGS's re-evaluating closure need the autograd graph: the closed form
    stays off (so mixed_precision really lowers the precision on its path)."""
    X, y = np.random.default_rng(0).normal(size=(30, 3)), np.repeat([0, 1, 2], 10)
    monkeypatch.setattr(
        SupervisedPrototypeModel, "_closed_form_loss",
        lambda *a: pytest.fail("the closed form ran"),
    )  # fmt: skip
    lvq.GMLVQ(max_iter=2, device="cpu", **option).fit(X, y)


@pytest.mark.parametrize("model", sorted(FAST_MODELS))
def test_fast_path_batch_size_none_full_and_partial_fit_agree(model):
    """batch_size=None, batch_size >= n and max_iter partial_fit calls: one computation."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(45, 5)), np.repeat([0, 1, 2], 15)
    X[:, 0] += 2.0 * y
    cls, own = FAST_MODELS[model]
    params = {"max_iter": 4, "lr": 0.05, "epsilon": 0.0, "device": "cpu", **own}
    ref = cls(**params).fit(X, y)
    big = cls(**{**params, "batch_size": 45}).fit(X, y)
    huge = cls(**{**params, "batch_size": 1000}).fit(X, y)
    part = cls(**params)
    for _ in range(4):
        part.partial_fit(X, y)
    for other in (big, huge, part):
        for k, v in ref._params.items():
            torch.testing.assert_close(other._params[k], v, rtol=1e-6, atol=1e-6, msg=k)
        assert other.loss_history_ == pytest.approx(ref.loss_history_, abs=1e-6)
