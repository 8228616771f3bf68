"""Follow-ups: GLVQ1/GLVQ21 ``beta``, ``load(platform=...)``, HeskesSOM's reached ``sigma_``."""

import lvq
import numpy as np
import pytest
import torch
from conftest import make_blobs3
from lvq.base import Callback

# ------------------------------------------------------------------ GLVQ1 / GLVQ21 beta


@pytest.mark.parametrize("cls", [lvq.GLVQ1, lvq.GLVQ21])
def test_beta_default_params_and_clone(cls):
    from sklearn.base import clone

    assert cls().get_params()["beta"] == 10.0  # the steepness that was hard-coded
    assert cls()._make_loss(3).beta == 10.0
    assert clone(cls(beta=3.0)).beta == 3.0


@pytest.mark.parametrize("cls", [lvq.GLVQ1, lvq.GLVQ21])
def test_beta_changes_the_sigmoid_loss(cls):
    X, y = make_blobs3(n_per=10)
    opts = {"transfer_fn": "sigmoid_beta", "max_iter": 2, "device": "cpu"}
    default = cls(**opts).fit(X, y).loss_history_
    assert cls(**opts, beta=10.0).fit(X, y).loss_history_ == default
    assert cls(**opts, beta=2.0).fit(X, y).loss_history_ != default


@pytest.mark.parametrize("cls", [lvq.GLVQ1, lvq.GLVQ21])
def test_beta_validated_warned_and_saved(cls, tmp_path):
    X, y = make_blobs3(n_per=10)
    with pytest.raises(ValueError, match="beta"):
        cls(beta=-1.0, transfer_fn="sigmoid_beta", max_iter=1).fit(X, y)
    with pytest.warns(UserWarning, match="beta=3.0 has no effect"):
        cls(beta=3.0, max_iter=1).fit(X, y)
    model = cls(beta=3.0, transfer_fn="swish_beta", max_iter=1, device="cpu").fit(X, y)
    assert lvq.load(model.save(tmp_path / "m")).beta == 3.0


# ------------------------------------------------------------------ load(platform=...)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    X, y = make_blobs3(n_per=10)
    root = tmp_path_factory.mktemp("saved")
    sup = lvq.GLVQ(max_iter=1, device="cpu").fit(X, y).save(root / "sup")
    uns = lvq.NeuralGas(n_prototypes=3, max_iter=2, device="cpu").fit(X).save(root / "uns")
    return {"sup": (lvq.GLVQ, sup), "uns": (lvq.NeuralGas, uns)}, X


@pytest.mark.parametrize("kind", ["sup", "uns"])
@pytest.mark.parametrize("how", [{"platform": "cpu"}, {"device": "cpu"}, {}])
def test_load_accepts_platform_and_device(saved, kind, how):
    paths, X = saved
    cls, path = paths[kind]
    for load in (lvq.load, cls.load):
        model = load(path, **how)
        assert model._device == torch.device("cpu")
        assert model.predict(X).shape == (X.shape[0],)
    assert cls.load(path, "cpu")._device == torch.device("cpu")  # positional: platform
    both = lvq.load(path, platform="cpu", device="cpu")  # the same value twice is fine
    assert both._device == torch.device("cpu")


@pytest.mark.parametrize("kind", ["sup", "uns"])
def test_load_refuses_conflicting_platform_and_device(saved, kind):
    cls, path = saved[0][kind]
    for load in (lvq.load, cls.load):
        with pytest.raises(TypeError, match="platform='cpu' and device='meta'"):
            load(path, platform="cpu", device="meta")


# ------------------------------------------------------------------ HeskesSOM sigma_


def _heskes_assign(X: np.ndarray, W: np.ndarray, shape: tuple[int, int], sigma: float):
    """The Heskes BMU of every row of ``X`` for the map ``W`` at neighbourhood width ``sigma``."""
    rows, cols = np.divmod(np.arange(shape[0] * shape[1]), shape[1])
    coords = np.stack([rows, cols], 1).astype(np.float64)
    G2 = ((coords[:, None] - coords[None]) ** 2).sum(-1)
    H = np.exp(-G2 / (2 * sigma * sigma))
    D = ((X[:, None] - W[None]) ** 2).sum(-1)
    return (D @ (H / H.sum(0, keepdims=True))).argmin(1)


class _StopAfter(Callback):
    """Stops after ``k`` epochs, keeping the map the last one ends with."""

    def __init__(self, k: int):
        self.k = k

    def on_iteration_end(self, model, info):
        self.W = info["params"]["prototypes"].double().numpy().copy()
        return info["iteration"] >= self.k


def test_heskes_early_stop_predicts_with_the_width_reached(tmp_path):
    X, _ = make_blobs3(n_per=15, d=2)
    T, k, s0, sf = 30, 3, 2.0, 0.1
    stop = _StopAfter(k)
    model = lvq.HeskesSOM(
        grid_height=3, grid_width=3, sigma_init=s0, sigma_final=sf, max_iter=T,
        callbacks=[stop], device="cpu",
    ).fit(X)  # fmt: skip
    reached = s0 * (sf / s0) ** ((k - 1) / (T - 1))  # the width of the last epoch run
    assert model.n_iter_ == k
    assert float(model.sigma_) == pytest.approx(reached)
    last = _heskes_assign(X, stop.W, (3, 3), reached)
    np.testing.assert_array_equal(model.predict(X), last)
    assert (_heskes_assign(X, stop.W, (3, 3), sf) != last).any()  # sigma_final would differ
    loaded = lvq.load(model.set_params(callbacks=None).save(tmp_path / "som"))
    assert float(loaded.sigma_) == pytest.approx(reached)
    np.testing.assert_array_equal(loaded.predict(X), last)


def test_heskes_full_run_keeps_sigma_final():
    X, _ = make_blobs3(n_per=15, d=2)
    model = lvq.HeskesSOM(
        grid_height=3, grid_width=3, sigma_init=2.0, sigma_final=0.3, max_iter=8, device="cpu"
    ).fit(X)
    assert model.n_iter_ == 8
    assert model.sigma_ == np.float32(0.3)  # exactly sigma_final, as before
    np.testing.assert_array_equal(
        model.predict(X), _heskes_assign(X, model.prototypes_.astype(np.float64), (3, 3), 0.3)
    )
