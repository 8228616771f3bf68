"""plot_som_summary and plot_lvq_summary (matplotlib extra, headless Agg)."""

import blockops
import lvq
import numpy as np
import pytest
from lvq.models.clustering import SOM
from lvq.models.topology import KohonenSOM, NeuralGas


@pytest.fixture(autouse=True)
def plt(agg_plt):
    return agg_plt


def _blobs(d=2, n_per=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 4.0, 0.0], [0.0, 4.0, 4.0]])[:, :d]
    X = np.concatenate([c + 0.5 * rng.normal(size=(n_per, d)) for c in centres])
    return X, np.repeat(np.arange(3), n_per)


def _titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_som_summary_panels(plt, tmp_path):
    from matplotlib.figure import Figure

    X, _ = _blobs(d=3)
    som = KohonenSOM(grid_height=3, grid_width=4, max_iter=5, device="cpu").fit(X)
    fig = lvq.plot.plot_som_summary(som)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3  # U-matrix, its colour bar, loss history
    assert _titles(fig) == ["U-matrix", "KohonenSOM loss history"]
    fig = lvq.plot.plot_som_summary(som, X)
    assert len(fig.axes) == 4
    assert _titles(fig) == ["U-matrix", "hit map", "KohonenSOM loss history"]
    hit_ax = next(ax for ax in fig.axes if ax.get_title() == "hit map")
    counts = [int(t.get_text()) for t in hit_ax.texts]
    assert len(counts) == 12 and sum(counts) == len(X)
    fig.savefig(tmp_path / "som.png")
    assert (tmp_path / "som.png").stat().st_size > 0
    simple = SOM(grid_size=3, max_iter=5, device="cpu").fit(X)
    assert len(lvq.plot.plot_som_summary(simple, X).axes) == 4


def test_som_summary_errors(plt):
    X, _ = _blobs(d=3)
    with pytest.raises(TypeError, match="has no grid"):
        lvq.plot.plot_som_summary(NeuralGas(n_prototypes=4, max_iter=3, device="cpu").fit(X))
    with pytest.raises(TypeError, match="has no grid"):
        lvq.plot.plot_som_summary(lvq.GLVQ(max_iter=2, device="cpu").fit(X, np.arange(60) % 3))
    with pytest.raises(blockops.NotFittedError):
        lvq.plot.plot_som_summary(KohonenSOM())
    som = KohonenSOM(grid_height=2, grid_width=2, max_iter=3, device="cpu").fit(X)
    n_figs = len(plt.get_fignums())
    with pytest.raises(ValueError, match=r"X must have shape \(n, 3\); got shape \(60, 2\)"):
        lvq.plot.plot_som_summary(som, X[:, :2])
    with pytest.raises(ValueError, match="got shape"):
        lvq.plot.plot_som_summary(som, X[0])
    assert len(plt.get_fignums()) == n_figs  # no half-drawn figure left behind


def test_lvq_summary_panels(plt):
    from matplotlib.figure import Figure

    X, y = _blobs()
    g = lvq.GLVQ(max_iter=5, device="cpu").fit(X, y)
    fig = lvq.plot.plot_lvq_summary(g, X, y)
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # boundary, loss
    assert _titles(fig) == ["GLVQ decision regions", "GLVQ loss history"]
    r = lvq.GRLVQ(max_iter=5, device="cpu").fit(X, y)
    fig = lvq.plot.plot_lvq_summary(r, X, y)
    assert len(fig.axes) == 3 and _titles(fig)[-1] == "GRLVQ relevance profile"
    m = lvq.GMLVQ(max_iter=5, device="cpu").fit(X, y)
    fig = lvq.plot.plot_lvq_summary(m, X, y)
    assert len(fig.axes) == 5  # boundary, loss, relevances, Λ and its colour bar
    assert _titles(fig)[2] == "GMLVQ relevance profile"
    assert _titles(fig)[3].startswith("GMLVQ Λ")
    local = lvq.LGMLVQ(max_iter=5, device="cpu").fit(X, y)
    assert len(lvq.plot.plot_lvq_summary(local, X, y).axes) == 5
    # not 2-D: no decision regions
    X3, y3 = _blobs(d=3)
    m3 = lvq.GMLVQ(max_iter=5, device="cpu").fit(X3, y3)
    fig = lvq.plot.plot_lvq_summary(m3, X3, y3)
    assert len(fig.axes) == 4 and "decision regions" not in " ".join(_titles(fig))
    # a model without a loss history gets a panel saying so
    knn = lvq.KNN(device="cpu").fit(X, y)
    fig = lvq.plot.plot_lvq_summary(knn, X, y)
    assert len(fig.axes) == 2 and fig.axes[1].texts[0].get_text() == "no training loss"
    # one-class models: every non-target label is the outlier class
    oc = lvq.OCGLVQ(max_iter=5, target_label=0, device="cpu").fit(X, y)
    assert len(lvq.plot.plot_lvq_summary(oc, X, y).axes) == 2


def test_lvq_summary_errors(plt):
    X, y = _blobs()
    g = lvq.GLVQ(max_iter=3, device="cpu").fit(X, y)
    n_figs = len(plt.get_fignums())
    with pytest.raises(TypeError, match="is a clusterer"):
        lvq.plot.plot_lvq_summary(NeuralGas(n_prototypes=3, max_iter=2, device="cpu").fit(X), X, y)
    with pytest.raises(TypeError, match="fitted lvq classifier"):
        lvq.plot.plot_lvq_summary(object(), X, y)
    with pytest.raises(blockops.NotFittedError):
        lvq.plot.plot_lvq_summary(lvq.GLVQ(), X, y)
    with pytest.raises(ValueError, match=r"X must have shape \(n, 2\); got shape \(60, 3\)"):
        lvq.plot.plot_lvq_summary(g, np.c_[X, X[:, 0]], y)
    with pytest.raises(ValueError, match=r"y of shape \(60,\)"):
        lvq.plot.plot_lvq_summary(g, X, y[:-1])
    with pytest.raises(ValueError, match="not fitted with: \\[7\\]"):
        lvq.plot.plot_lvq_summary(g, X, np.where(y == 2, 7, y))
    assert len(plt.get_fignums()) == n_figs  # no half-drawn figure left behind
