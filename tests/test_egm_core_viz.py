"""egm-core and egm-viz together: the fitted model's public contract is what egm-viz draws."""

import numpy as np
import pytest

egm_core = pytest.importorskip("egm_core", reason="needs egm-core")
egm_viz = pytest.importorskip("egm_viz", reason="needs egm-viz installed next to egm-core")
pytest.importorskip("matplotlib", reason="egm-viz draws with matplotlib")


@pytest.fixture
def model():
    import matplotlib

    matplotlib.use("Agg")
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(3, 5))
    X = np.concatenate([c + rng.normal(size=(25, 5)) for c in centres]).astype(np.float32)
    y = np.repeat(["a", "b", "c"], 25)
    m = egm_core.PyEGM(platform="cpu", random_state=0, num_points=8).fit(X, y)
    m.continue_fit(extra_iters=1)
    m.partial_fit(X[:4] + 0.1, np.array(["d"] * 4))
    return m, X, y


def test_read_model_sees_the_whole_bank(model):
    m, _, _ = model
    view = egm_viz.read_model(m)
    n = m.bank_X_.shape[0]
    assert view.X.shape == (n, 5)
    assert view.n_classes == 4
    assert view.n_iterations == len(m.history_) == int(m.bank_generation_.max())
    assert view.session_of(len(m.history_)) == 2
    np.testing.assert_array_equal(view.seed, m.bank_seed_.numpy())


def test_visualize_explosion_through_the_model(model, tmp_path):
    m, X, y = model
    before = m.bank_X_.clone()
    out = tmp_path / "explosion.png"
    m.visualize_explosion(
        projection="pca",
        n_samples=100,
        path_steps=3,
        show_synthetic=True,
        show_energy_vectors=True,
        save_path=str(out),
        show=False,
    )
    assert out.is_file() and out.stat().st_size > 0
    assert bool((m.bank_X_ == before).all())  # drawing never changes the model
    proba = m.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
