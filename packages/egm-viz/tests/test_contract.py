"""The egm-core contract egm-viz reads: a drift in PyEGM shows up here first."""

import inspect

import egm_viz
import numpy as np
import pytest
import torch
from egm_core import PyEGM
from egm_viz import BANK_ATTRIBUTES


@pytest.fixture
def grown(data):
    X, y = data
    m = PyEGM(num_iters=2, num_points=24, path_steps=3, random_state=0).fit(X[y < 2], y[y < 2])
    m.continue_fit(extra_iters=1)
    m.partial_fit(X[y == 2][:6], y[y == 2][:6])
    return m


def test_bank_attributes(grown):
    for name in BANK_ATTRIBUTES:
        assert hasattr(grown, name), name
    n, d = grown.bank_X_.shape
    assert d == grown.n_features_in_
    assert grown.bank_X_.dtype.is_floating_point
    for name, dtype in [
        ("bank_y_", torch.long),
        ("bank_is_real_", torch.bool),
        ("bank_generation_", torch.long),
        ("bank_seed_", torch.long),
    ]:
        t = getattr(grown, name)
        assert isinstance(t, torch.Tensor) and t.dtype == dtype and t.shape == (n,), name
    assert grown.bank_energy_.dtype.is_floating_point and grown.bank_energy_.shape == (n,)
    assert isinstance(grown.classes_, np.ndarray) and len(grown.classes_) == 3


def test_bank_semantics(grown):
    real = grown.bank_is_real_
    n_real = int(real.sum())
    assert bool(real[:n_real].all()) and not bool(real[n_real:].any()), "real rows come first"
    assert bool((grown.bank_generation_[real] == 0).all())
    assert bool((grown.bank_seed_[real] == -1).all())
    assert bool((grown.bank_energy_[real] == 0).all())
    syn = ~real
    gens = grown.bank_generation_[syn]
    assert int(gens.min()) >= 1
    seeds = grown.bank_seed_[syn]
    assert bool(((seeds >= 0) & (seeds < len(real))).all())
    assert bool((grown.bank_y_[seeds] == grown.bank_y_[syn]).all()), "a point grows from its class"
    assert int(gens.max()) == len(grown.history_) == 5  # 2 (fit) + 1 (continue) + 2 (partial)


def test_history_entries(grown):
    keys = {"session", "iteration", "class_counts", "radius", "energy"}
    for t, entry in enumerate(grown.history_, start=1):
        assert keys <= set(entry)
        assert entry["iteration"] == t
    assert [e["session"] for e in grown.history_] == [0, 0, 1, 2, 2]
    counts = egm_viz.synthetic_counts(egm_viz.read_model(grown))
    for t, entry in enumerate(grown.history_):
        kept = np.asarray(entry["class_counts"], dtype=np.int64)
        np.testing.assert_array_equal(counts[t, : kept.size], kept)


def test_trend_paths(grown, data):
    X, _ = data
    out = grown.trend_paths(X[:4], path_steps=2)
    assert out["paths"].shape == (4, 3, 3, X.shape[1])
    assert out["scores"].shape == (4, 3)
    assert out["winner"].dtype == torch.long and out["winner"].shape == (4,)
    np.testing.assert_array_equal(grown.classes_[out["winner"].cpu().numpy()], grown.predict(X[:4]))
    torch.testing.assert_close(
        out["paths"][:, :, 0, :].cpu(), torch.as_tensor(X[:4])[:, None, :].expand(4, 3, -1)
    )


def test_model_method_delegates(grown, tmp_path):
    assert "kwargs" in inspect.signature(PyEGM.visualize_explosion).parameters
    fig = grown.visualize_explosion(save_path=tmp_path / "m.png", figsize=(4, 3), dpi=40)
    assert fig.__class__.__name__ == "Figure"
    assert (tmp_path / "m.png").stat().st_size > 2000
