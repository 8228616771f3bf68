"""Spec-coverage audit: shared training options behave as the published documentation says."""

import lvq
import numpy as np
import pytest


def test_gradient_accumulation_full_batch_trains_until_converged(blobs):
    """An epoch that only accumulates changes nothing; it must not read as convergence."""
    X, y = blobs
    kw = {"max_iter": 20, "lr": 0.05, "device": "cpu", "epsilon": 1e-6}
    plain = lvq.GLVQ(**kw).fit(X, y)
    acc = lvq.GLVQ(gradient_accumulation_steps=2, **kw).fit(X, y)
    assert acc.n_iter_ == 20  # stopped after 2 epochs (one update) before
    # one update per two full-batch epochs: every second epoch's loss is plain GLVQ's
    np.testing.assert_allclose(acc.loss_history_[::2], plain.loss_history_[:10], rtol=1e-5)


def test_gradient_accumulation_still_stops_on_epsilon_and_patience(blobs):
    X, y = blobs
    kw = {"max_iter": 5000, "lr": 0.05, "device": "cpu", "epsilon": 1e-3}
    for extra in ({}, {"patience": 2}):
        plain = lvq.GLVQ(**kw, **extra).fit(X, y)
        acc = lvq.GLVQ(gradient_accumulation_steps=2, **kw, **extra).fit(X, y)
        assert plain.n_iter_ < 5000 and acc.n_iter_ < 5000
        assert acc.n_iter_ >= 2 * plain.n_iter_ - 2


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"name": "class_mean", "nosie": 0.5}, r"'class_mean' takes no keyword\(s\) \['nosie'\]"),
        ({"value": 2.0}, "has no 'name'"),
        ({"name": "zeros", "value": 1.0}, r"'zeros' takes no keyword\(s\) \['value'\]"),
    ],
)
def test_initializer_dict_typos_are_refused(blobs, spec, match):
    X, y = blobs
    with pytest.raises(ValueError, match=match):
        lvq.GLVQ(prototypes_initializer=spec, max_iter=1, device="cpu").fit(X, y)


def test_initializer_dict_keywords_still_apply(blobs):
    X, y = blobs
    m = lvq.GLVQ(
        prototypes_initializer={"name": "fill_value", "value": 2.5}, max_iter=1, lr=1e-9
    ).fit(X, y)
    np.testing.assert_allclose(m.prototypes_, 2.5, atol=1e-6)


def test_empty_lookahead_dict_enables_the_documented_defaults(blobs):
    X, y = blobs
    kw = {"max_iter": 20, "lr": 0.05, "device": "cpu", "epsilon": 0.0}
    empty = lvq.GLVQ(lookahead={}, **kw).fit(X, y).prototypes_
    defaults = lvq.GLVQ(lookahead={"sync_period": 6, "slow_step_size": 0.5}, **kw).fit(X, y)
    plain = lvq.GLVQ(**kw).fit(X, y).prototypes_
    np.testing.assert_array_equal(empty, defaults.prototypes_)
    assert not np.allclose(empty, plain)


@pytest.mark.parametrize(
    "value, error, match",
    [
        (5, TypeError, "lookahead must be None, True or a dict"),
        ({"sync_period": 2.5}, ValueError, "int sync_period"),
        ({"slow_step_size": "a"}, ValueError, "number slow_step_size"),
    ],
)
def test_bad_lookahead_names_the_option(blobs, value, error, match):
    X, y = blobs
    with pytest.raises(error, match=match):
        lvq.GLVQ(lookahead=value, max_iter=1, device="cpu").fit(X, y)


def test_non_numeric_ema_decay_names_the_option(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match=r"ema_decay must lie in \(0, 1\), got 'a'"):
        lvq.GLVQ(ema_decay="a", max_iter=1, device="cpu").fit(X, y)


def test_decision_boundary_of_unfitted_model_is_not_fitted_error(blobs):
    pytest.importorskip("matplotlib")
    import blockops
    import lvq.plot

    X, y = blobs
    with pytest.raises(blockops.NotFittedError, match="not fitted"):
        lvq.plot.plot_decision_boundary_2d(lvq.GLVQ(), X[:, :2], y)


def test_optax_peak_value_names_what_the_schedule_takes():
    from lvq.optim import make_schedule

    with pytest.raises(ValueError, match=r"\['peak_value'\].*takes \['warmup_steps'.*is lr"):
        make_schedule("warmup_cosine_decay", 0.01, 10, {"peak_value": 0.1})
    f = make_schedule("warmup_cosine_decay", 0.01, 10, {"warmup_steps": 2, "init_value": 0.0})
    assert f(0) == 0.0 and f(2) == pytest.approx(0.01)


def test_rejection_rate_follows_rejection_confidence(blobs):
    X, y = blobs
    m = lvq.RSLVQ(max_iter=5, rejection_confidence=0.99, device="cpu").fit(X, y)
    rejected = m.predict_with_rejection(X) == -1
    assert 0 < rejected.mean() < 1
    assert m.rejection_rate(X) == rejected.mean()  # 0.0 (the margin rule at 0) before
    assert m.rejection_rate(X, 0.3) == (m.predict_with_rejection(X, 0.3) == -1).mean()


@pytest.mark.parametrize("resume", [False, True])
def test_initial_labels_without_initial_prototypes_is_refused(blobs, resume):
    X, y = blobs
    m = lvq.GLVQ(max_iter=2, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="initial_labels labels initial_prototypes"):
        m.fit(X, y, initial_labels=[0, 1, 2], resume=resume)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: lvq.PrototypeTrajectory(every="a"), "every must be an int >= 1"),
        (lambda: lvq.PrototypeTrajectory(every=2.5), "every must be an int >= 1"),
        (lambda: lvq.EarlyStopping(patience="a"), "patience must be an int >= 0"),
        (lambda: lvq.EarlyStopping(min_delta=-1.0), "min_delta must be >= 0.0"),
    ],
)
def test_bad_callback_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_early_stopping_patience_still_stops(blobs):
    X, y = blobs
    es = lvq.EarlyStopping(patience=2, min_delta=10.0)
    m = lvq.GLVQ(max_iter=50, epsilon=0.0, callbacks=[es], device="cpu").fit(X, y)
    assert m.n_iter_ == 3 and es.stopped_at == 3  # the first epoch, then 2 without a gain


@pytest.mark.parametrize("name", ["LVQ1", "LVQ21", "MedianLVQ", "NPC"])
@pytest.mark.parametrize("bad", ["a", -1.0, float("nan")])
def test_classic_models_check_epsilon(blobs, name, bad):
    X, y = blobs
    with pytest.raises(ValueError, match="epsilon must be a non-negative number"):
        getattr(lvq, name)(epsilon=bad, max_iter=2, device="cpu").fit(X, y)
