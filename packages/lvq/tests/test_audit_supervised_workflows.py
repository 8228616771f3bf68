"""Stateful workflows of the supervised models: options changed between ``partial_fit`` calls."""

from __future__ import annotations

import lvq
import numpy as np
import pytest
import torch


def _data():
    rng = np.random.RandomState(5)
    X = rng.randn(40, 4)
    y = np.arange(40) % 2
    X[y == 1] += 0.8
    return X, y


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model._params.items()}


@pytest.mark.parametrize(
    "cls, start, change",
    [
        (lvq.GMLVQ, {"optimizer": "adam"}, {"optimizer": "sgd", "lr": 0.1}),
        (lvq.GMLVQ, {}, {"ema_decay": 0.5}),
        (lvq.GMLVQ, {}, {"lookahead": {"sync_period": 2}}),
        (lvq.GMLVQ, {"freeze_params": ["prototypes"]}, {"freeze_params": None}),
        (lvq.MRSLVQ, {"freeze_params": ["prototypes"]}, {"freeze_params": None}),
    ],
    ids=["optimizer", "ema_decay", "lookahead", "unfreeze-closed-form", "unfreeze-autograd"],
)
def test_set_params_between_partial_fit_calls_takes_effect(cls, start, change):
    """A new optimizer / ema_decay / lookahead / freeze_params set between calls acts on the
    next calls, from the current iterate: as ``fit(resume=True)`` with the new settings (SGD
    keeps no state)."""
    X, y = _data()
    kw = {"max_iter": 6, "epsilon": 0.0, "optimizer": "sgd", **start}
    a, b, unchanged = cls(**kw), cls(**kw), cls(**kw)
    for m in (a, b, unchanged):
        for _ in range(2):
            m.partial_fit(X, y)
    a.set_params(**change)
    b.set_params(**change, max_iter=3)
    for _ in range(3):
        a.partial_fit(X, y)
        unchanged.partial_fit(X, y)
    b.fit(X, y, resume=True)
    pa, pb, pu = _params(a), _params(b), _params(unchanged)
    for k in pa:
        torch.testing.assert_close(pa[k], pb[k], rtol=1e-6, atol=1e-7, msg=k)
    assert max(float((pa[k] - pu[k]).abs().max()) for k in pa) > 1e-4


def test_partial_fit_after_load_starts_a_fresh_optimizer(tmp_path):
    """The optimizer state is not saved (docs: persistence): ``partial_fit`` on a loaded model
    is one epoch of a fresh optimizer, as ``fit(resume=True)`` with ``max_iter=1``, and not
    the continuation of the saved model's Adam."""
    X, y = _data()
    model = lvq.GLVQ(max_iter=5, epsilon=0.0).fit(X, y)
    model.save(tmp_path / "m")
    loaded = lvq.load(tmp_path / "m", device="cpu")
    resumed = lvq.load(tmp_path / "m", device="cpu").set_params(max_iter=1)
    loaded.partial_fit(X, y)
    resumed.fit(X, y, resume=True)
    model.partial_fit(X, y)
    np.testing.assert_array_equal(loaded.prototypes_, resumed.prototypes_)
    assert np.abs(loaded.prototypes_ - model.prototypes_).max() > 1e-5


def test_balanced_partial_fit_after_fit_forgets_the_labels_of_earlier_calls():
    """``class_weight='balanced'`` in ``partial_fit`` counts the labels since the first call
    after ``fit``: the labels of ``partial_fit`` calls before that ``fit`` do not leak in."""
    rng = np.random.RandomState(0)
    XA, yA = rng.randn(60, 3), np.r_[np.zeros(50, int), np.ones(10, int)]
    X, y = _data()
    kw = {"max_iter": 5, "class_weight": "balanced", "epsilon": 0.0}
    a = lvq.GLVQ(**kw)
    a.partial_fit(XA, yA)
    a.fit(X, y).partial_fit(X, y)
    b = lvq.GLVQ(**kw).fit(X, y).partial_fit(X, y)
    np.testing.assert_array_equal(a.prototypes_, b.prototypes_)
