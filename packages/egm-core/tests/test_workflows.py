"""Multi-step workflows: refits, class-incremental sessions, checkpoints in the middle."""

import numpy as np
import torch
from egm_core import PyEGM

_STATE = ("bank_X_", "bank_y_", "bank_is_real_", "bank_energy_", "bank_seed_", "radius_")


def _assert_same_model(a, b, Q):
    assert a.classes_.tolist() == b.classes_.tolist()
    for name in _STATE:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.history_ == b.history_
    np.testing.assert_array_equal(a.predict_proba(Q), b.predict_proba(Q))


def test_fit_forgets_every_earlier_fit_and_session(make_blobs):
    X, y = make_blobs((12, 12, 12, 12, 12), seed=3)
    A, yA = X[y < 3], np.array(["a", "b", "c"])[y[y < 3]]
    B, yB = X[y >= 2], y[y >= 2]
    used = PyEGM(platform="cpu", random_state=4).fit(A, yA)
    used.partial_fit(A[:4] + 1.0, np.array(["z"] * 4))
    used.continue_fit(2, reseed=11)
    used.fit(B, yB)
    _assert_same_model(used, PyEGM(platform="cpu", random_state=4).fit(B, yB), X)


def test_checkpoint_in_the_middle_of_class_incremental_sessions(make_blobs, tmp_path):
    X, y = make_blobs((20, 20, 20, 20, 20), seed=5)
    base = y < 2
    sessions = [(X[y == c][:5], y[y == c][:5]) for c in (2, 3, 4)]
    straight = PyEGM("fscil", platform="cpu", random_state=2).fit(X[base], y[base])
    resumed = PyEGM("fscil", platform="cpu", random_state=2).fit(X[base], y[base])
    for i, (Xs, ys) in enumerate(sessions):
        straight.partial_fit(Xs, ys)
        resumed.partial_fit(Xs, ys)
        if i == 0:  # save and reload after the first new session, then go on
            resumed.save(tmp_path / "ckpt")
            resumed = PyEGM.load(tmp_path / "ckpt", platform="cpu")
    straight.continue_fit(1)
    resumed.continue_fit(1)
    _assert_same_model(straight, resumed, X)
    assert straight.classes_.tolist() == [0, 1, 2, 3, 4]


def test_first_partial_fit_is_fit(make_blobs):
    X, y = make_blobs((15, 15, 15), seed=7)
    a = PyEGM(platform="cpu", random_state=1).partial_fit(X, y)
    b = PyEGM(platform="cpu", random_state=1).fit(X, y)
    _assert_same_model(a, b, X)
