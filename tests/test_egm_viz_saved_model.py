"""egm-viz on egm-core models that went through save/load and several sessions."""

import numpy as np
import pytest

egm_core = pytest.importorskip("egm_core", reason="needs egm-core")
egm_viz = pytest.importorskip("egm_viz", reason="needs egm-viz installed next to egm-core")


def _data():
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=3.0, size=(3, 6))
    X = np.concatenate([c + rng.normal(size=(20, 6)) for c in centres]).astype(np.float32)
    return X, np.repeat(["x", "y", "z"], 20)


def _layers(fig):
    ax = fig.axes[0]
    return {
        a.get_gid(): np.asarray(a.get_offsets() if hasattr(a, "get_offsets") else a.get_xydata())
        for a in [*ax.collections, *ax.lines]
        if a.get_gid()
    }


def test_a_loaded_model_draws_the_same_picture(tmp_path):
    X, y = _data()
    m = egm_core.PyEGM(platform="cpu", num_iters=2, num_points=12, random_state=0).fit(X, y)
    m.continue_fit(extra_iters=1)
    m.save(tmp_path / "ckpt")
    loaded = egm_core.PyEGM.load(tmp_path / "ckpt", platform="cpu")
    kw = {"show_energy_vectors": True, "n_queries": 3, "path_steps": 3, "random_state": 5}
    a = _layers(egm_viz.visualize_explosion(m, X[::5], y[::5], **kw))
    b = _layers(egm_viz.visualize_explosion(loaded, X[::5], y[::5], **kw))
    assert a.keys() == b.keys()
    assert any(k.startswith("synthetic:") for k in a) and any(k.startswith("path:") for k in a)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5, err_msg=key)


def test_every_output_after_sessions_leaves_the_model_alone(tmp_path):
    X, y = _data()
    m = egm_core.PyEGM(platform="cpu", num_iters=1, num_points=9, random_state=0)
    m.fit(X[y != "z"], y[y != "z"])
    m.partial_fit(X[y == "z"][:4], y[y == "z"][:4])
    bank = {k: getattr(m, k).clone() for k in ("bank_X_", "bank_y_", "bank_seed_")}
    history = [dict(h) for h in m.history_]
    proba = m.predict_proba(X)
    small = {"figsize": (4, 3), "dpi": 40}
    for suffix in (".png", ".svg", ".pdf", ".gif"):
        m.visualize_explosion(save_path=tmp_path / f"e{suffix}", path_steps=2, **small)
        assert (tmp_path / f"e{suffix}").stat().st_size > 1000
    fig = egm_viz.plot_class_energy(m, save_path=tmp_path / "s.png", dpi=40)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["x", "y", "z"]
    for k, v in bank.items():
        assert bool((getattr(m, k) == v).all()), k
    assert m.history_ == history
    np.testing.assert_array_equal(proba, m.predict_proba(X))
