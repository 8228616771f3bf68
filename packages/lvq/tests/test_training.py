"""Every shared training option does what it says (each on the path it affects)."""

import warnings

import blockops
import lvq
import numpy as np
import pytest
import torch
from lvq.optim import OPTIMIZERS, SCHEDULERS, make_schedule
from lvq.registry import REGISTRY

FIT_ARGS = ("initial_prototypes", "initial_labels", "validation_data", "sample_weight")


def fit(cls=lvq.GLVQ, X=None, y=None, **kw):
    params = {"max_iter": 10, "lr": 0.05, "device": "cpu", "epsilon": 0.0}
    fit_args = {k: kw.pop(k) for k in FIT_ARGS if k in kw}
    params.update(kw)
    return cls(**params).fit(X, y, **fit_args)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_by_name(name, blobs):
    X, y = blobs
    m = fit(X=X, y=y, optimizer=name, max_iter=5)
    assert np.isfinite(m.prototypes_).all()
    assert m.n_iter_ == 5


def test_optimizer_factory_class_and_errors(blobs):
    X, y = blobs
    made = []

    def factory(groups, lr):
        made.append(lr)
        return torch.optim.SGD(groups, lr=lr, momentum=0.5)

    m = fit(X=X, y=y, optimizer=factory, lr=0.02)
    assert made == [0.02] and isinstance(m._optimizer_state["opt"], torch.optim.SGD)
    m2 = fit(X=X, y=y, optimizer=torch.optim.Adagrad)
    assert isinstance(m2._optimizer_state["opt"], torch.optim.Adagrad)
    with pytest.raises(ValueError, match="optimizer='nope' is not known"):
        fit(X=X, y=y, optimizer="nope")


def test_set_params_changes_the_next_fit(blobs):
    X, y = blobs
    m = lvq.GLVQ(max_iter=5, device="cpu")
    a = m.fit(X, y).prototypes_.copy()
    b = m.set_params(lr=0.5).fit(X, y).prototypes_.copy()
    assert not np.allclose(a, b)
    c = m.set_params(optimizer="sgd").fit(X, y)
    assert isinstance(c._optimizer_state["opt"], torch.optim.SGD)


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_schedulers_by_name_keep_the_optimizer(name, blobs):
    X, y = blobs
    lrs = []

    class Rec(lvq.Callback):
        def on_iteration_end(self, model, info):
            lrs.append(info["lr"])

    m = fit(X=X, y=y, optimizer="rmsprop", lr_scheduler=name, max_iter=20, callbacks=[Rec()])
    assert isinstance(m._optimizer_state["opt"], torch.optim.RMSprop)
    assert len(lrs) == 20 and len(set(np.round(lrs, 12))) > 1
    assert max(lrs) <= 0.05 + 1e-12


def test_scheduler_values_and_callable(blobs):
    X, y = blobs
    lrs = []

    class Rec(lvq.Callback):
        def on_iteration_end(self, model, info):
            lrs.append(info["lr"])

    fit(X=X, y=y, lr=0.1, lr_scheduler="cosine_decay", max_iter=11, callbacks=[Rec()])
    # the lr of update t (0-based) is 0.1 * 0.5 * (1 + cos(pi t / 11))
    np.testing.assert_allclose(lrs[0], 0.1)
    np.testing.assert_allclose(lrs[-1], 0.05 * (1 + np.cos(np.pi * 10 / 11)), rtol=1e-9)
    lrs.clear()
    fit(X=X, y=y, lr=0.1, lr_scheduler=lambda t: 0.01 * (t + 1), max_iter=3, callbacks=[Rec()])
    np.testing.assert_allclose(lrs, [0.01, 0.02, 0.03])
    lrs.clear()
    fit(
        X=X,
        y=y,
        lr=0.1,
        lr_scheduler="piecewise_constant",
        lr_scheduler_kwargs={"boundaries_and_scales": {2: 0.5}},
        max_iter=4,
        callbacks=[Rec()],
    )
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.05, 0.05])
    with pytest.raises(ValueError, match="lr_scheduler_kwargs"):
        fit(X=X, y=y, lr_scheduler="cosine_decay", lr_scheduler_kwargs={"bogus": 1})


@pytest.mark.parametrize("max_iter", [2, 3, 5, 7])
def test_sgdr_with_few_steps_still_anneals(max_iter, blobs):
    # the default first cycle was max(1, T // 4) = 1 step below 8 steps: lr stayed constant
    X, y = blobs
    lrs = []

    class Rec(lvq.Callback):
        def on_iteration_end(self, model, info):
            lrs.append(info["lr"])

    fit(X=X, y=y, lr=0.1, lr_scheduler="sgdr", max_iter=max_iter, callbacks=[Rec()])
    assert len(lrs) == max_iter
    np.testing.assert_allclose(lrs[:2], [0.1, 0.05])
    assert make_schedule("sgdr", 0.1, 1)(0) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "spec, kwargs, match",
    [
        (None, {"alpha": 0.1}, "would be ignored"),
        (lambda t: 0.01, {"alpha": 0.1}, "would be ignored"),
        ("sgdr", [3], "must be None or a dict"),
        ("sgdr", {"cycle_steps": -3}, "cycle_steps"),
        ("cosine_decay", {"decay_steps": 0}, "decay_steps"),
        ("exponential_decay", {"decay_rate": -1.0}, "decay_rate"),
    ],
)
def test_scheduler_kwargs_that_would_be_ignored_or_invalid_are_refused(spec, kwargs, match, blobs):
    # they were ignored (no schedule, a constant lr for cycle_steps < 1, the default length
    # for 0) or gave a complex learning rate (decay_rate < 0)
    X, y = blobs
    with pytest.raises((ValueError, TypeError), match=match):
        fit(X=X, y=y, max_iter=2, lr_scheduler=spec, lr_scheduler_kwargs=kwargs)


def test_batch_size_minibatches(blobs):
    X, y = blobs
    full = fit(X=X, y=y)
    mini = fit(X=X, y=y, batch_size=7)
    assert mini.n_iter_ == 10
    assert not np.allclose(full.prototypes_, mini.prototypes_)
    assert mini.score(X, y) >= 0.9


def test_gradient_accumulation_equals_full_batch(blobs):
    X, y = blobs  # 60 rows: two micro-batches of 30 average to the full-batch gradient
    W0 = np.stack([X[y == c].mean(0) for c in range(3)])
    full = fit(X=X, y=y, optimizer="sgd", max_iter=6, initial_prototypes=W0)
    acc = fit(
        X=X,
        y=y,
        optimizer="sgd",
        max_iter=6,
        batch_size=30,
        gradient_accumulation_steps=2,
        initial_prototypes=W0,
    )
    np.testing.assert_allclose(acc.prototypes_, full.prototypes_, atol=1e-5)


def test_sample_weight_is_a_loss_weight(blobs):
    X, y = blobs
    W0 = np.stack([X[y == c].mean(0) for c in range(3)]) + 0.3
    w = np.ones(len(y))
    w[:10] = 2.0
    weighted = fit(X=X, y=y, initial_prototypes=W0, sample_weight=w)
    Xd = np.concatenate([X, X[:10]])
    yd = np.concatenate([y, y[:10]])
    duplicated = fit(X=Xd, y=yd, initial_prototypes=W0)
    np.testing.assert_allclose(weighted.prototypes_, duplicated.prototypes_, atol=1e-5)
    with pytest.raises(ValueError, match="non-negative"):
        fit(X=X, y=y, sample_weight=-w)


def test_class_weight_dict_and_balanced(blobs):
    X, y = blobs
    names = np.array(["a", "b", "c"])[y]
    W0 = np.stack([X[y == c].mean(0) for c in range(3)]) + 0.3
    by_dict = fit(X=X, y=names, initial_prototypes=W0, class_weight={"a": 3.0})
    w = np.where(names == "a", 3.0, 1.0)
    by_sw = fit(X=X, y=names, initial_prototypes=W0, sample_weight=w)
    np.testing.assert_allclose(by_dict.prototypes_, by_sw.prototypes_, atol=1e-6)
    plain = fit(X=X, y=names, initial_prototypes=W0)
    assert not np.allclose(by_dict.prototypes_, plain.prototypes_)
    keep = np.r_[0:20, 20:25, 40:60]  # class 1 rare
    bal = fit(X=X[keep], y=names[keep], class_weight="balanced")
    assert bal.score(X, names) >= 0.9
    with pytest.raises(ValueError, match="not seen during fit"):
        fit(X=X, y=names, class_weight={"zzz": 2.0})


def test_epsilon_and_patience_stop_early_with_honest_n_iter(blobs):
    X, y = blobs
    m = fit(X=X, y=y, epsilon=10.0, max_iter=50)
    assert m.n_iter_ == 2 and len(m.loss_history_) == 2
    m = fit(X=X, y=y, epsilon=0.0, patience=2, lr=5.0, max_iter=200)
    assert m.n_iter_ < 200 and len(m.loss_history_) == m.n_iter_


def test_restore_best_with_validation(blobs):
    X, y = blobs
    frames = []

    class Rec(lvq.Callback):
        def on_iteration_end(self, model, info):
            frames.append(info["params"]["prototypes"].clone().numpy())

    Xv, yv = X[::2] + 0.5, y[::2]
    m = fit(
        X=X,
        y=y,
        lr=0.3,
        max_iter=15,
        restore_best=True,
        validation_data=(Xv, yv),
        callbacks=[Rec()],
    )
    best = int(np.argmin(m.val_loss_history_))
    np.testing.assert_allclose(m.prototypes_, frames[best], atol=1e-7)
    assert m.best_loss_ == pytest.approx(min(m.val_loss_history_))


def test_restore_best_on_training_loss(blobs):
    X, y = blobs
    m = fit(X=X, y=y, lr=3.0, optimizer="sgd", max_iter=12, restore_best=True)
    assert m.best_loss_ == pytest.approx(min(m.loss_history_))


def test_ema_lookahead_freeze(blobs):
    X, y = blobs
    base = fit(lvq.GMLVQ, X=X, y=y)
    ema = fit(lvq.GMLVQ, X=X, y=y, ema_decay=0.8)
    la = fit(lvq.GMLVQ, X=X, y=y, lookahead={"sync_period": 3})
    assert not np.allclose(base.prototypes_, ema.prototypes_)
    assert not np.allclose(base.prototypes_, la.prototypes_)
    fr = fit(lvq.GMLVQ, X=X, y=y, freeze_params=["omega"])
    np.testing.assert_allclose(fr.omega_, np.eye(4) / 2.0, atol=1e-7)
    W0 = np.stack([X[y == c].mean(0) for c in range(3)])
    fp = fit(lvq.GMLVQ, X=X, y=y, freeze_params=["prototypes"], initial_prototypes=W0)
    np.testing.assert_allclose(fp.prototypes_, W0, atol=1e-6)
    assert not np.allclose(fp.omega_, np.eye(4) / 2.0)
    with pytest.raises(ValueError, match="unknown group"):
        fit(X=X, y=y, freeze_params=["omega"])
    with pytest.raises(ValueError, match="ema_decay"):
        fit(X=X, y=y, ema_decay=1.5)
    with pytest.raises(ValueError, match="lookahead accepts"):
        fit(X=X, y=y, lookahead={"k": 3})


@pytest.mark.parametrize("mp", ["float16", "bfloat16"])
def test_mixed_precision(mp, blobs):
    X, y = blobs
    m = fit(lvq.GMLVQ, X=X, y=y, mixed_precision=mp, max_iter=20)
    assert m.score(X, y) >= 0.9 and m.prototypes_.dtype == np.float32
    with pytest.raises(ValueError, match="mixed_precision"):
        fit(X=X, y=y, mixed_precision="int4")


def test_float16_loss_scale_backs_off_instead_of_stopping_training():
    # the exponential kernel overflows float16 at the initial loss scale: those steps are
    # skipped and the scale halved; training used to stop after two unchanged epochs
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 30)
    X = rng.normal(size=(60, 5)) + 2.0 * y[:, None]
    plain = lvq.OCDKGMLVQ(max_iter=20, random_seed=0).fit(X, y)
    half = lvq.OCDKGMLVQ(max_iter=20, random_seed=0, mixed_precision="float16").fit(X, y)
    assert half.n_iter_ == 20
    assert half._optimizer_state["loss_scale"] < 2.0**15
    assert half.loss_history_[-1] < 0.25 * half.loss_history_[0]
    # the skipped steps put it a few epochs behind the float32 run, on the same path
    assert min(abs(half.loss_history_[-1] - v) for v in plain.loss_history_[-5:]) < 0.01


def test_callbacks_can_stop_and_see_start_end(blobs):
    X, y = blobs
    calls = []

    class Stop(lvq.Callback):
        def on_fit_start(self, model):
            calls.append("start")

        def on_iteration_end(self, model, info):
            return info["iteration"] >= 3

        def on_fit_end(self, model):
            calls.append(("end", model.n_iter_))

    m = fit(X=X, y=y, max_iter=50, callbacks=[Stop()])
    assert m.n_iter_ == 3 and calls == ["start", ("end", 3)]
    es = lvq.EarlyStopping(monitor="val_loss", patience=1, min_delta=1e9)
    m = fit(X=X, y=y, max_iter=50, callbacks=[es], validation_data=(X, y))
    assert m.n_iter_ == 2 and es.stopped_at == 2
    traj = lvq.PrototypeTrajectory()
    fit(X=X, y=y, max_iter=4, callbacks=[traj])
    assert traj.trajectory.shape == (5, 3, 4)


def test_prototype_counts_and_initializers(blobs):
    X, y = blobs
    assert fit(X=X, y=y, n_prototypes_per_class=2).prototypes_.shape == (6, 4)
    m = fit(X=X, y=y, n_prototypes_per_class=[1, 2, 3])
    assert list(m.prototype_labels_) == [0, 1, 1, 2, 2, 2]
    m = fit(X=X, y=y, n_prototypes_per_class={0: 1, 1: 1, 2: 2})
    assert m.prototypes_.shape == (4, 4)
    with pytest.raises(ValueError, match="3 classes"):
        fit(X=X, y=y, n_prototypes_per_class=[1, 2])
    from lvq.initializers import INITIALIZERS

    for name in INITIALIZERS:
        spec = {"name": name, "value": 0.5} if name == "fill_value" else name
        m = lvq.GLVQ(
            max_iter=1, prototypes_initializer=spec, n_prototypes_per_class=2, device="cpu"
        )
        m.fit(X, y)
        assert m.prototypes_.shape == (6, 4)
    m = lvq.GLVQ(max_iter=1, lr=1e-9, prototypes_initializer="class_mean", device="cpu").fit(X, y)
    np.testing.assert_allclose(m.prototypes_, [X[y == c].mean(0) for c in range(3)], atol=1e-5)
    with pytest.raises(ValueError, match="needs a value"):
        fit(X=X, y=y, prototypes_initializer="fill_value")
    with pytest.raises(ValueError, match="not known"):
        fit(X=X, y=y, prototypes_initializer="nope")

    def custom(Xt, codes, counts, gen):
        return torch.zeros(sum(counts), Xt.shape[1]), torch.arange(len(counts)).repeat_interleave(
            torch.tensor(counts)
        )

    m = lvq.GLVQ(max_iter=1, lr=1e-9, prototypes_initializer=custom, device="cpu").fit(X, y)
    np.testing.assert_allclose(m.prototypes_, 0.0, atol=1e-6)


def test_initial_prototypes_and_labels(blobs):
    X, y = blobs
    W0 = X[[0, 1, 20, 40]]
    m = fit(X=X, y=y, initial_prototypes=W0, initial_labels=[0, 0, 1, 2])
    assert list(m.prototype_labels_) == [0, 0, 1, 2]
    with pytest.raises(ValueError, match="pass initial_labels"):
        fit(X=X, y=y, initial_prototypes=W0)
    with pytest.raises(ValueError, match="every class"):
        fit(X=X, y=y, initial_prototypes=W0, initial_labels=[0, 0, 1, 1])
    with pytest.raises(ValueError, match="resume=True cannot"):
        m.fit(X, y, initial_prototypes=W0, resume=True)


def test_resume_and_partial_fit_keep_raw_parameters(iris):
    X, y = iris
    m = lvq.GRLVQ(max_iter=60, lr=0.05, device="cpu", epsilon=0.0).fit(X, y)
    profile = m.relevance_profile.copy()
    assert profile.max() > 0.3
    m.fit(X, y, resume=True)  # continues, does not restart
    assert m.loss_history_[0] <= m.loss_history_[0] + 1e-12
    m2 = lvq.GRLVQ(max_iter=60, lr=0.05, device="cpu", epsilon=0.0).fit(X, y)
    m2.set_params(lr=1e-7).partial_fit(X, y)
    np.testing.assert_allclose(m2.relevance_profile, profile, atol=1e-4)


def test_partial_fit_equals_fit_epochs(blobs):
    X, y = blobs
    a = lvq.GMLVQ(max_iter=3, epsilon=0.0, lr=0.05, device="cpu").fit(X, y)
    b = lvq.GMLVQ(max_iter=3, epsilon=0.0, lr=0.05, device="cpu")
    for _ in range(3):
        b.partial_fit(X, y)
    np.testing.assert_allclose(a.prototypes_, b.prototypes_, atol=1e-6)
    np.testing.assert_allclose(a.omega_, b.omega_, atol=1e-6)
    assert b.n_iter_ == 3 and len(b.loss_history_) == 3


def test_resume_continues_the_loss(blobs):
    X, y = blobs
    m = lvq.GLVQ(max_iter=20, epsilon=0.0, lr=0.05, device="cpu").fit(X, y)
    last = m.loss_history_[-1]
    m.fit(X, y, resume=True)
    assert m.loss_history_[0] <= last + 1e-3


@pytest.mark.parametrize("transfer", ["identity", "sigmoid_beta", "swish_beta"])
def test_transfer_functions_and_beta(transfer, blobs):
    X, y = blobs
    if transfer == "identity":  # beta has no effect there: it warns
        with pytest.warns(UserWarning, match="beta=2.0 has no effect"):
            a = fit(X=X, y=y, transfer_fn=transfer, beta=2.0)
    else:
        a = fit(X=X, y=y, transfer_fn=transfer, beta=2.0)
    b = fit(X=X, y=y, transfer_fn=transfer, beta=10.0)
    if transfer != "identity":
        assert not np.allclose(a.prototypes_, b.prototypes_)
    assert a.score(X, y) >= 0.9


def test_transfer_callable_margin_and_errors(blobs):
    X, y = blobs
    m = fit(X=X, y=y, transfer_fn=lambda x, beta: torch.tanh(beta * x))
    assert m.score(X, y) >= 0.9
    a = fit(X=X, y=y, transfer_fn="sigmoid_beta", margin=0.0)
    b = fit(X=X, y=y, transfer_fn="sigmoid_beta", margin=0.3)
    assert not np.allclose(a.prototypes_, b.prototypes_)
    with pytest.raises(ValueError, match="transfer_fn"):
        fit(X=X, y=y, transfer_fn="relu")
    for bad in ({"max_iter": 0}, {"lr": -1.0}, {"batch_size": 0}, {"patience": 0}):
        with pytest.raises(ValueError):
            fit(X=X, y=y, **bad)
    with pytest.raises(ValueError, match="at least 2 classes"):
        fit(X=X, y=np.zeros(len(y)))


def test_lbfgs_and_verbose(blobs, capsys):
    X, y = blobs
    m = fit(X=X, y=y, optimizer="lbfgs", lr=0.5, max_iter=5)
    assert m.score(X, y) >= 0.9
    with pytest.raises(ValueError, match="lbfgs"):
        fit(X=X, y=y, optimizer="lbfgs", gradient_accumulation_steps=2)
    pytest.importorskip("tqdm")
    fit(X=X, y=y, verbose=True, max_iter=2)


@pytest.mark.parametrize("name,ref", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_lean_adam_matches_torch(name, ref, blobs):
    X, y = blobs
    lean = fit(lvq.GMLVQ, X=X, y=y, optimizer=name, max_iter=15)
    torch_ = fit(
        lvq.GMLVQ, X=X, y=y, optimizer=lambda g, lr: ref(g, lr=lr, foreach=False), max_iter=15
    )
    np.testing.assert_allclose(lean.prototypes_, torch_.prototypes_, atol=1e-6)
    np.testing.assert_allclose(lean.omega_, torch_.omega_, atol=1e-6)


def test_numpy_typed_options_survive_save_load(blobs, tmp_path):
    X, y = blobs
    counts = {np.int64(0): 1, np.int64(1): 2, np.int64(2): 1}
    m = lvq.GLVQ(
        max_iter=3, device="cpu", n_prototypes_per_class=counts, class_weight={np.int64(1): 2.0}
    ).fit(X, y)
    m.save(tmp_path / "m")
    back = lvq.load(tmp_path / "m")
    assert back.get_params()["n_prototypes_per_class"] == {0: 1, 1: 2, 2: 1}
    np.testing.assert_array_equal(back.predict(X), m.predict(X))
    back.fit(X, y)  # the stored options still train
    assert back.prototypes_.shape == (4, 4)


def test_torch_device_parameter_is_saved_by_name(blobs, tmp_path):
    X, y = blobs
    m = lvq.GLVQ(max_iter=3, device=torch.device("cpu")).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not serialisable, stored as None"
        m.save(tmp_path / "m")
    config, _, _ = blockops.load_checkpoint(tmp_path / "m")
    assert config["params"]["device"] == "cpu"
    back = lvq.load(tmp_path / "m", device="cpu")
    assert back.device == "cpu"
    np.testing.assert_array_equal(back.predict(X), m.predict(X))


@pytest.mark.parametrize("cls", [lvq.GMLVQ, lvq.MRSLVQ], ids=lambda c: c.__name__)
def test_latent_projection_save_load_bit_exact(cls, tmp_path):
    # a random orthonormal start (latent_dim < d) must reload to the same bits
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 64))
    y = np.repeat([0, 1, 2], 30)
    m = cls(latent_dim=10, max_iter=5, device="cpu").fit(X, y)
    back = lvq.load(m.save(tmp_path / "m"))
    np.testing.assert_array_equal(back.predict_proba(X), m.predict_proba(X))


@pytest.mark.parametrize("cls", [lvq.GLVQ, lvq.GMLVQ, lvq.RSLVQ, lvq.CELVQ, lvq.CBC])
def test_zero_weight_minibatch_contributes_nothing(cls, blobs):
    """A mini-batch whose samples all weigh 0 gave 0 / 0: NaN loss and NaN prototypes."""
    X, y = blobs
    sw = np.ones(len(y))
    sw[:10] = 0.0
    m = fit(cls, X, y, max_iter=3, batch_size=1, sample_weight=sw)
    assert np.isfinite(m.prototypes_).all() and np.isfinite(m.loss_history_).all()


@pytest.mark.parametrize(
    "cw, match",
    [
        ({0: 0, 1: 0, 2: 0}, "weight 0"),
        ({0: -1.0}, r"class_weight\[0\] must be >= 0"),
        ({0: float("nan")}, r"class_weight\[0\] must be finite"),
        ({0: "a"}, r"class_weight\[0\] must be a number"),
    ],
)
def test_class_weight_values_are_checked(cw, match, blobs):
    X, y = blobs
    with pytest.raises(ValueError, match=match):
        fit(class_weight=cw, X=X, y=y)
    with pytest.raises(TypeError, match="freeze_params"):
        fit(freeze_params="omega", X=X, y=y)  # a string is not a list of names


def test_partial_fit_schedule_spans_max_iter_calls(blobs):
    """The schedule of partial_fit covered one call: the learning rate was 0 from the second on."""
    X, y = blobs
    m = lvq.GLVQ(lr=0.05, max_iter=10, lr_scheduler="linear", device="cpu")
    lrs, moved = [], []
    for _ in range(4):
        before = getattr(m, "prototypes_", None)
        before = None if before is None else before.copy()
        m.partial_fit(X, y)
        lrs.append(m._optimizer_state["opt"].param_groups[0]["lr"])
        if before is not None:
            moved.append(np.abs(m.prototypes_ - before).max())
    np.testing.assert_allclose(lrs, [0.05, 0.045, 0.04, 0.035], rtol=1e-6)
    assert min(moved) > 1e-3


def test_npc_with_several_prototypes_per_class(blobs):
    """NPC assumed one prototype per class: initial_labels with two per class crashed."""
    X, y = blobs
    P = np.concatenate([X[y == c][:2] for c in range(3)]) + 0.5
    L = np.repeat([0, 1, 2], 2)
    m = lvq.NPC(max_iter=5, tol=1.0, device="cpu").fit(X, y, initial_prototypes=P, initial_labels=L)
    assert m.prototypes_.shape == (6, X.shape[1]) and m.score(X, y) >= 0.9
    assert not np.allclose(m.prototypes_, P)


@pytest.mark.parametrize(
    "cls, name, value",
    [
        (lvq.GMLVQ, "latent_dim", 2),
        (lvq.LGMLVQ, "latent_dim", 2),
        (lvq.GTLVQ, "subspace_dim", 1),
        (lvq.LVQ1, "max_iter", 5),
        (lvq.MedianLVQ, "n_candidates", 5),
        (lvq.SiameseGLVQ, "hidden_sizes", [4]),
    ],
)
def test_numpy_integer_hyper_parameters(cls, name, value, blobs, tmp_path):
    """np.int64 values (what a grid of np.arange gives) were refused as 'not an int'."""
    X, y = blobs
    as_np = [np.int64(v) for v in value] if isinstance(value, list) else np.int64(value)
    kw = {"max_iter": 5, "device": "cpu"}
    a = cls(**{**kw, name: value}).fit(X, y)
    b = cls(**{**kw, name: as_np}).fit(X, y)
    np.testing.assert_array_equal(a.prototypes_, b.prototypes_)
    b.save(tmp_path / "m")
    np.testing.assert_array_equal(lvq.load(tmp_path / "m").predict(X), b.predict(X))


@pytest.mark.parametrize("cls", [lvq.GLVQ, lvq.NeuralGas], ids=lambda c: c.__name__)
def test_load_auto_replaces_a_saved_gpu_this_machine_lacks(cls, blobs, tmp_path):
    X, y = blobs
    m = cls(max_iter=3, device="cpu") if cls is lvq.GLVQ else cls(n_prototypes=3, max_iter=3)
    m.fit(X, y) if cls is lvq.GLVQ else m.fit(X)
    missing = f"cuda:{torch.cuda.device_count()}"  # one index past the last GPU, if any
    m.set_params(device=missing).save(tmp_path / "m")
    with pytest.warns(UserWarning, match="not available here"):
        back = lvq.load(tmp_path / "m")
    assert back.device == "auto"
    np.testing.assert_array_equal(back.predict(X), m.predict(X))
    back.fit(X, y) if cls is lvq.GLVQ else back.fit(X)  # a refit finds a device too
    m.set_params(device="cpu").save(tmp_path / "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = lvq.load(tmp_path / "cpu")
    assert kept.device == "cpu" and str(kept.prototypes_.device) == "cpu"


@pytest.mark.parametrize(
    "options",
    [
        {"restore_best": True},
        {"ema_decay": 0.6},
        {"ema_decay": 0.6, "restore_best": True},
        {"batch_size": 16},
        {"batch_size": 16, "ema_decay": 0.6, "gradient_accumulation_steps": 2},
        {"lr_scheduler": "cosine_decay", "restore_best": True},
    ],
    ids=["restore_best", "ema", "ema-restore_best", "minibatch", "minibatch-ema-accumulation",
         "schedule-restore_best"],
)  # fmt: skip
@pytest.mark.parametrize(
    "cls", [lvq.GLVQ, lvq.GMLVQ, lvq.CELVQ, lvq.SRNG], ids=lambda c: c.__name__
)
def test_partial_fit_calls_equal_fit_epochs_with_every_option(cls, options, blobs):
    """partial_fit with restore_best never trained (each call restored the parameters it
    started from); with ema_decay the average was never used; mini-batches were shuffled the
    same way in every call. max_iter calls now give max_iter epochs of fit."""
    X, y = blobs
    kw = {"max_iter": 6, "lr": 0.05, "epsilon": 0.0, "device": "cpu", **options}
    a = cls(**kw).fit(X, y)
    b = cls(**kw)
    for _ in range(6):
        b.partial_fit(X, y)
    for k, v in a._params.items():
        torch.testing.assert_close(b._params[k], v, rtol=1e-6, atol=1e-6, msg=k)
    assert b.loss_history_ == pytest.approx(a.loss_history_, abs=1e-6)
    assert b.best_loss_ == pytest.approx(min(b.loss_history_)) == pytest.approx(a.best_loss_)
    plain = cls(max_iter=6, lr=0.05, epsilon=0.0, device="cpu")
    for _ in range(6):
        plain.partial_fit(X, y)
    assert np.abs(plain.prototypes_ - b.prototypes_).max() > 1e-4  # the options act
    first = cls(**kw).partial_fit(X, y).prototypes_
    assert np.abs(b.prototypes_ - first).max() > 1e-3  # the calls train


def test_partial_fit_publishes_the_average_and_trains_on_from_the_iterate(blobs):
    X, y = blobs
    m = lvq.GMLVQ(ema_decay=0.9, lr=0.05, max_iter=10, device="cpu")
    for _ in range(3):
        m.partial_fit(X, y)
    state = m._optimizer_state
    ema = state["ema"].shadow
    # the average is what predict, save and resume use; the next call steps the iterate
    np.testing.assert_array_equal(m.prototypes_, ema["prototypes"].numpy())
    np.testing.assert_array_equal(m._params["omega"].numpy(), ema["omega"].numpy())
    iterate = {k: v.detach().clone() for k, v in state["iterate"].items()}
    assert not torch.equal(iterate["prototypes"], ema["prototypes"])
    m.set_params(lr=1e-12).partial_fit(X, y)
    torch.testing.assert_close(state["iterate"]["prototypes"], iterate["prototypes"])


@pytest.mark.parametrize("name", ["RiemannianSRNG", "RiemannianSTNG"])
def test_riemannian_partial_fit_average_stays_on_the_manifold(name, manifold_blobs):
    from lvq.registry import REGISTRY

    spec = REGISTRY[name]
    X, y = manifold_blobs(spec.test_params["manifold"])
    kw = {**spec.test_params, "device": "cpu", "max_iter": 5, "epsilon": 0.0, "ema_decay": 0.6}
    a = spec.cls(**kw).fit(X, y)
    b = spec.cls(**kw)
    for _ in range(5):
        b.partial_fit(X, y)
    np.testing.assert_allclose(b.prototypes_, a.prototypes_, atol=1e-6)
    mf = b.manifold_
    assert bool(
        mf.belongs(mf.unflatten(torch.tensor(b.prototypes_, dtype=torch.float64)), atol=1e-4).all()
    )


@pytest.mark.parametrize("cls", [lvq.LVQ1, lvq.LVQ21], ids=lambda c: c.__name__)
def test_classic_partial_fit_minibatches_continue_the_shuffle(cls, blobs):
    X, y = blobs
    kw = {"max_iter": 3, "batch_size": 7, "epsilon": 0.0, "device": "cpu"}
    a = cls(**kw).fit(X, y)
    b = cls(**kw)
    for _ in range(3):
        b.partial_fit(X, y)
    np.testing.assert_array_equal(b.prototypes_, a.prototypes_)


@pytest.mark.parametrize(
    "sched", [None, "linear", lambda t: 0.05 / (1 + t)], ids=["none", "linear", "callable"]
)
def test_partial_fit_honours_a_new_lr_under_a_schedule(sched, blobs):
    """set_params(lr=...) between partial_fit calls was cancelled by a schedule (the schedule
    built with the old lr rescaled the groups back)."""
    X, y = blobs
    m = lvq.GLVQ(lr=0.05, max_iter=10, lr_scheduler=sched, device="cpu")
    m.partial_fit(X, y)
    before = m.prototypes_.copy()
    m.set_params(lr=1e-9).partial_fit(X, y)
    if callable(sched):  # a callable gives the learning rate itself: lr only scales groups
        assert np.abs(m.prototypes_ - before).max() > 1e-4
    else:
        np.testing.assert_allclose(m.prototypes_, before, atol=1e-6)


@pytest.mark.parametrize(
    "cls, kw",
    [(lvq.GMLVQ, {}), (lvq.SiameseGLVQ, {"hidden_sizes": [6], "latent_dim": 3}),
     (lvq.WGLVQ, {}), (lvq.LGMLVQ, {"freeze_params": ["prototypes"]})],
    ids=["GMLVQ", "SiameseGLVQ", "WGLVQ", "LGMLVQ-frozen-prototypes"],
)  # fmt: skip
def test_lbfgs_trains_every_parameter_group(cls, kw, blobs):
    """torch's L-BFGS takes one parameter group: every model with a metric, a backbone or
    reasonings failed with "LBFGS doesn't support per-parameter options"."""
    X, y = blobs
    start = cls(max_iter=1, lr=1e-30, optimizer="sgd", device="cpu", **kw).fit(X, y)._params
    m = cls(max_iter=5, lr=0.5, optimizer="lbfgs", epsilon=0.0, device="cpu", **kw).fit(X, y)
    frozen = {m._group_aliases.get(g, g) for g in kw.get("freeze_params", [])}
    for k, v in start.items():
        moved = not torch.allclose(m._params[k], v, atol=1e-6)
        assert moved != (k in frozen), k
    assert m.loss_history_[-1] < m.loss_history_[0]
    m.partial_fit(X, y)


def test_lbfgs_refuses_group_learning_rates_it_cannot_keep(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="optimizer 'lbfgs' keeps one learning rate"):
        lvq.SiameseGLVQ(optimizer="lbfgs", bb_lr=0.1, max_iter=2, device="cpu").fit(X, y)


_GRADIENT = sorted(
    (s for s in REGISTRY.values() if s.gradient and s.kind != "clusterer"), key=lambda s: s.name
)


@pytest.mark.parametrize("spec", _GRADIENT, ids=lambda s: s.name)
def test_transfer_fn_beta_and_margin_act_or_are_refused(spec, blobs, oc_data, manifold_blobs):
    """The probabilistic, cross-entropy, CBC and SVQ-OCC losses have no transfer function (and
    all but CBC no margin): they trained exactly as without them. Now they refuse them; every
    other model's fit changes with each."""
    if "manifold" in spec.test_params:
        X, y = manifold_blobs(spec.test_params["manifold"])
    else:
        X, y = oc_data if spec.kind == "one_class" else blobs
    base = {**spec.test_params, "device": "cpu", "max_iter": 3, "epsilon": 0.0}
    if spec.name.startswith("SVQOCC"):
        base["cost_function"] = "brier"

    def fit(**kw):
        return spec.cls(**{**base, **kw}).fit(X, y)._params

    def differ(a, b):
        return any(not torch.equal(a[k], b[k]) for k in a)

    uses = spec.cls._loss_options
    sig = {"transfer_fn": "sigmoid_beta"}
    tanh = {"transfer_fn": lambda x, beta: torch.tanh(beta * x)}
    if "transfer_fn" in uses:
        ref = fit(**sig)
        assert differ(fit(**tanh), ref)
        if "beta" in spec.cls._all_params:
            assert differ(fit(**sig, beta=2.0), ref)
    else:
        for value in ("sigmoid_beta", tanh["transfer_fn"]):
            with pytest.raises(ValueError, match="has no transfer function: transfer_fn="):
                fit(transfer_fn=value)
    if "margin" in uses:
        with_transfer = sig if "transfer_fn" in uses else {}
        assert differ(fit(**with_transfer, margin=0.25), fit(**with_transfer, margin=0.0))
    else:
        with pytest.raises(ValueError, match="has no margin: margin=0.25"):
            fit(margin=0.25)
        fit(margin=0)  # the default, as an int, is accepted


def test_partial_fit_with_classes_names_the_classes_missing_from_the_first_batch():
    # the error was "class code 1 has no training samples", naming neither the label nor the
    # cause, and the docstring promised that `classes` lifted the need for every class
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = np.repeat(["a", "b"], 10)
    m = lvq.GLVQ(max_iter=3, device="cpu")
    with pytest.raises(ValueError, match=r"every class .* \['b', 'z'\] have none in y"):
        m.partial_fit(X[:10], y[:10], classes=["a", "b", "z"])
    assert not hasattr(m, "prototypes_") and not hasattr(m, "n_features_in_")
    m.partial_fit(X, y, classes=["a", "b"])
    assert list(m.classes_) == ["a", "b"]


def test_rejection_threshold_must_be_a_finite_number():
    # a NaN threshold compared False with every margin: nothing was rejected, silently
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(20, 2)), rng.normal(size=(20, 2)) + 3]
    m = lvq.GLVQ(max_iter=2, device="cpu").fit(X, np.repeat([0, 1], 20))
    for bad, what in ((float("nan"), "finite"), ("0.2", "a number")):
        with pytest.raises(ValueError, match=f"threshold must be {what}"):
            m.predict_with_rejection(X, threshold=bad)
        with pytest.raises(ValueError, match=f"threshold must be {what}"):
            m.rejection_rate(X, bad)
    assert (m.predict_with_rejection(X, threshold=1.0) == -1).all()


@pytest.mark.parametrize("name", ["GLVQ", "OCGLVQ"])
def test_bad_validation_data_is_named_in_the_error(name):
    # the errors said "X contains 1 NaN ..." / "X has 1 features": the clean training X was
    # blamed for a fault of the validation pair
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(20, 2)), rng.normal(size=(20, 2)) + 3]
    y = np.repeat(["a", "b"], 20)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    model = getattr(lvq, name)(max_iter=2, device="cpu")
    with pytest.raises(ValueError, match="^validation_data: X contains 1 NaN"):
        model.fit(X, y, validation_data=(Xn, y))
    with pytest.raises(ValueError, match="^validation_data: X_val has 1 features .* has 2"):
        model.fit(X, y, validation_data=(X[:, :1], y))


@pytest.mark.parametrize("bad", [{"cost_reject": -1.0}, {"cost_error": float("nan")}])
def test_optimal_threshold_refuses_negative_or_nan_costs(bad, blobs):
    # a negative cost of rejecting returned a threshold that rejects almost everything
    X, y = blobs
    m = fit(X=X, y=y, max_iter=3)
    with pytest.raises(ValueError, match=next(iter(bad))):
        m.optimal_threshold(X, y, **bad)


@pytest.mark.parametrize("cls", [lvq.GLVQ, lvq.LVQ1])
def test_partial_fit_refuses_classes_that_differ_from_the_first_call(cls, blobs):
    # a later call's classes were ignored without a word (scikit-learn refuses them)
    X, y = blobs
    m = cls(max_iter=3, device="cpu").partial_fit(X, y, classes=np.unique(y))
    m.partial_fit(X, y, classes=np.unique(y)[::-1])  # the same set is fine
    with pytest.raises(ValueError, match=r"classes=.* differs from the fitted classes_"):
        m.partial_fit(X, y, classes=np.append(np.unique(y), 99))
