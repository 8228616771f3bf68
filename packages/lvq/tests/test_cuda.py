"""GPU paths (run through the device tool; skipped without CUDA)."""

import lvq
import numpy as np
import pytest
import torch


@pytest.mark.cuda
@pytest.mark.parametrize("cls", [lvq.GLVQ, lvq.GMLVQ, lvq.LGMLVQ, lvq.RSLVQ, lvq.KNN])
def test_cuda_fit_predict_matches_cpu(cls, blobs, tmp_path):
    X, y = blobs
    params = {} if cls is lvq.KNN else {"max_iter": 20, "epsilon": 0.0}
    gpu = cls(device="cuda", **params).fit(X, y)
    cpu = cls(device="cpu", **params).fit(X, y)
    assert (gpu.predict(X) == cpu.predict(X)).mean() >= 0.98
    np.testing.assert_allclose(gpu.prototypes_, cpu.prototypes_, atol=1e-3)
    gpu.save(tmp_path / "m")
    back = lvq.load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(back.predict(X), gpu.predict(X))


@pytest.mark.cuda
def test_cuda_model_keeps_its_device_index(blobs):
    X, y = blobs
    m = lvq.GLVQ(device="cuda", max_iter=2).fit(X, y)
    assert m._device == torch.device("cuda", torch.cuda.current_device())


@pytest.mark.cuda
def test_cuda_minibatch_memory_is_bounded_by_batch():
    g = torch.Generator(device="cuda").manual_seed(0)
    X = torch.randn(200_000, 64, device="cuda", generator=g)
    y = (X[:, 0] > 0).long().cpu().numpy()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    m = lvq.GMLVQ(device="cuda", max_iter=1, batch_size=4096, n_prototypes_per_class=10)
    m.fit(X, y)
    extra = torch.cuda.max_memory_allocated() - base
    assert extra < 200 * 2**20  # far below one (n, p, d) tensor (~5 GB)
    assert m.score(X[:10000].cpu().numpy(), y[:10000]) > 0.8


@pytest.mark.cuda
def test_cuda_tensors_reach_the_plots_and_one_class_score(blobs):
    """numpy cannot read CUDA tensors: the plots and the one-class score copy them to the host."""
    X, y = blobs
    Xc = torch.as_tensor(X[:, :2], dtype=torch.float32, device="cuda")
    yc = torch.as_tensor(y, device="cuda")
    oc = lvq.OCGLVQ(device="cuda", max_iter=5).fit(Xc, yc)
    w = torch.ones(len(y), device="cuda", dtype=torch.float64)
    assert oc.score(Xc, yc, sample_weight=w) == oc.score(X[:, :2], y)
    mpl = pytest.importorskip("matplotlib", reason="plots need the plot extra")
    mpl.use("Agg")
    from lvq import plot

    traj = lvq.PrototypeTrajectory()
    m = lvq.GLVQ(device="cuda", max_iter=5, callbacks=[traj]).fit(Xc, yc)
    assert plot.plot_decision_boundary_2d(m, Xc, yc, resolution=20) is not None
    assert plot.plot_prototype_trajectory(traj, Xc, yc) is not None
