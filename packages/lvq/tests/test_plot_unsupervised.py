"""plot_neural_gas, plot_som_grid and plot_loss_history (matplotlib extra, headless Agg)."""

import blockops
import lvq
import numpy as np
import pytest
from lvq.models.clustering import SOM, KMeansPlusPlus
from lvq.models.topology import GrowingNeuralGas, KohonenSOM, NeuralGas
from lvq.registry import REGISTRY, list_models

CLUSTERERS = [REGISTRY[n] for n in list_models(kind="clusterer")]


@pytest.fixture(autouse=True)
def plt(agg_plt):
    return agg_plt


def _blobs(n_per=20, d=2, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 4.0, 0.0], [0.0, 4.0, 4.0]])[:, :d]
    return np.concatenate([c + 0.5 * rng.normal(size=(n_per, d)) for c in centres])


def _n_points(collection):
    return len(collection.get_offsets())


def test_neural_gas_draws_samples_prototypes_and_gng_edges(plt):
    from lvq import plot
    from matplotlib.collections import LineCollection

    X = _blobs()
    g = GrowingNeuralGas(max_nodes=8, max_iter=10, insert_interval=20, device="cpu").fit(X)
    _, given = plt.subplots()
    ax = plot.plot_neural_gas(g, X, ax=given)
    assert ax is given
    samples, lines, protos = ax.collections
    assert isinstance(lines, LineCollection)
    assert _n_points(samples) == len(X)
    np.testing.assert_allclose(protos.get_offsets(), g.prototypes_)
    n_edges = int(np.triu(g.edges_, 1).sum())
    assert n_edges >= 1 and len(lines.get_segments()) == n_edges
    # every segment joins two prototypes the graph connects
    for seg in lines.get_segments():
        i, j = (int(np.abs(g.prototypes_ - p).sum(1).argmin()) for p in seg)
        assert g.edges_[i, j]
    # samples coloured by their best matching prototype
    np.testing.assert_array_equal(samples.get_array(), g.predict(X))

    ng = NeuralGas(n_prototypes=5, max_iter=10, device="cpu").fit(X)
    ax = plot.plot_neural_gas(ng, X)
    assert len(ax.collections) == 2  # no graph: samples and prototypes only
    assert _n_points(ax.collections[1]) == 5


def test_neural_gas_refuses_bad_input():
    from lvq import plot

    X = _blobs()
    ng = NeuralGas(n_prototypes=4, max_iter=3, device="cpu").fit(X)
    with pytest.raises(ValueError, match=r"X of shape \(n, 2\), got shape \(60, 3\)"):
        plot.plot_neural_gas(ng, _blobs(d=3))
    with pytest.raises(ValueError, match=r"got shape \(60,\)"):
        plot.plot_neural_gas(ng, X[:, 0])
    ng3 = NeuralGas(n_prototypes=4, max_iter=3, device="cpu").fit(_blobs(d=3))
    with pytest.raises(ValueError, match="fitted with 3 features"):
        plot.plot_neural_gas(ng3, X)
    with pytest.raises(blockops.NotFittedError):
        plot.plot_neural_gas(NeuralGas(), X)
    glvq = lvq.GLVQ(max_iter=2, device="cpu").fit(X, np.repeat([0, 1, 2], 20))
    with pytest.raises(TypeError, match="GLVQ is not one"):
        plot.plot_neural_gas(glvq, X)


@pytest.mark.parametrize("shape", [(3, 4), (1, 5)])
def test_som_grid_joins_grid_neighbours(shape, plt):
    from lvq import plot

    X = _blobs()
    h, w = shape
    som = KohonenSOM(grid_height=h, grid_width=w, max_iter=10, device="cpu").fit(X)
    ax = plot.plot_som_grid(som, X)
    samples, lines, units = ax.collections
    assert _n_points(samples) == len(X)
    assert _n_points(units) == h * w
    segs = lines.get_segments()
    assert len(segs) == h * (w - 1) + (h - 1) * w
    W = som.weights_
    assert any(np.allclose(s, [W[0, 0], W[0, 1]]) for s in segs)  # row neighbours
    if h > 1:
        assert any(np.allclose(s, [W[0, 0], W[1, 0]]) for s in segs)  # column neighbours
    assert not any(np.allclose(s, [W[0, 0], W[-1, -1]]) for s in segs)
    _, given = plt.subplots()
    ax = plot.plot_som_grid(som, ax=given)  # no data: grid and units only
    assert ax is given and len(ax.collections) == 2


def test_som_grid_of_the_simple_som_and_errors():
    from lvq import plot

    X = _blobs()
    som = SOM(grid_size=3, max_iter=100, random_state=0, device="cpu").fit(X)
    assert len(plot.plot_som_grid(som).collections[0].get_segments()) == 12
    with pytest.raises(TypeError, match="NeuralGas has no grid"):
        plot.plot_som_grid(NeuralGas(n_prototypes=4, max_iter=2, device="cpu").fit(X))
    with pytest.raises(ValueError, match=r"got shape \(60, 3\)"):
        plot.plot_som_grid(som, _blobs(d=3))
    som3 = KohonenSOM(grid_height=2, grid_width=2, max_iter=2, device="cpu").fit(_blobs(d=3))
    with pytest.raises(ValueError, match="plot_umatrix"):
        plot.plot_som_grid(som3)
    with pytest.raises(blockops.NotFittedError):
        plot.plot_som_grid(KohonenSOM())


def test_loss_history_draws_training_and_validation(plt):
    from lvq import plot

    assert plot.plot_som_loss is plot.plot_loss_history
    X = _blobs()
    km = KMeansPlusPlus(n_clusters=3, max_iter=10, random_seed=0, device="cpu").fit(X)
    ax = plot.plot_loss_history(km)
    (line,) = ax.lines
    np.testing.assert_allclose(line.get_ydata(), km.loss_history_)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, km.n_iter_ + 1))
    y = np.repeat([0, 1, 2], 20)
    m = lvq.GLVQ(max_iter=6, device="cpu").fit(X, y, validation_data=(X, y))
    _, given = plt.subplots()
    ax = plot.plot_som_loss(m, ax=given)
    assert ax is given
    train, val = ax.lines
    np.testing.assert_allclose(train.get_ydata(), m.loss_history_)
    np.testing.assert_allclose(val.get_ydata(), m.val_loss_history_)
    assert len(plot.plot_loss_history(lvq.GLVQ(max_iter=3, device="cpu").fit(X, y)).lines) == 1
    with pytest.raises(blockops.NotFittedError):
        plot.plot_loss_history(NeuralGas())


@pytest.mark.parametrize("spec", CLUSTERERS, ids=[s.name for s in CLUSTERERS])
def test_plots_of_every_registered_clusterer(spec, plt):
    """No crash on a fitted model of every kind; the Riemannian one (SPD points, not 2-D) is
    refused with the ValueError of its shape."""
    from lvq import plot

    seed = getattr(spec.cls, "_seed_param", "random_seed")
    m = spec.cls(**{**spec.test_params, "device": "cpu", seed: 1})
    if "manifold" in spec.test_params:
        import torch
        from lvq import manifolds

        mf = manifolds.get_manifold(spec.test_params["manifold"])
        g = torch.Generator().manual_seed(0)
        m.fit(mf.flatten(mf.random_point(30, g, dtype=torch.float64)).numpy())
        with pytest.raises(ValueError, match="2-D data space"):
            plot.plot_neural_gas(m, _blobs())
        assert len(plot.plot_loss_history(m).lines) == 1
        return
    X = _blobs()
    m.fit(X)
    ax = plot.plot_neural_gas(m, X)
    assert _n_points(ax.collections[-1]) == len(m.prototypes_)
    assert len(plot.plot_loss_history(m).lines[0].get_ydata()) == m.n_iter_
    if hasattr(type(m), "grid_shape"):
        h, w = m.grid_shape
        lines = plot.plot_som_grid(m, X).collections[1]
        assert len(lines.get_segments()) == h * (w - 1) + (h - 1) * w
    else:
        with pytest.raises(TypeError, match="has no grid"):
            plot.plot_som_grid(m)
