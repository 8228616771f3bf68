import egm_viz
import numpy as np
import pytest
from egm_core import PyEGM
from egmviz_helpers import assert_same_state, gif_frames, snapshot


@pytest.mark.cuda
def test_draws_a_model_on_the_gpu(data, tmp_path):
    X, y = data
    m = PyEGM(platform="cuda", num_iters=2, num_points=20, path_steps=3, random_state=0).fit(X, y)
    assert m.bank_X_.is_cuda
    before = snapshot(m)
    pred = m.predict(X)
    fig = egm_viz.visualize_explosion(
        m, X, y, show_energy_vectors=True, save_path=tmp_path / "g.png", figsize=(5, 4), dpi=40
    )
    assert fig.axes[0].get_title().startswith("EGM bank")
    egm_viz.visualize_explosion(m, save_path=tmp_path / "g.gif", figsize=(5, 4), dpi=40)
    assert len(gif_frames(tmp_path / "g.gif")) == len(m.history_) + 3
    egm_viz.plot_class_energy(m, save_path=tmp_path / "s.png", dpi=40)
    assert_same_state(before, m)
    assert m.bank_X_.device.type == "cuda"
    np.testing.assert_array_equal(pred, m.predict(X))


@pytest.mark.cuda
def test_cuda_tensors_and_cuda_generator_as_inputs(data, tmp_path):
    import torch

    X, y = data
    m = PyEGM(platform="cuda", num_iters=2, num_points=20, path_steps=3, random_state=0).fit(X, y)
    Xg, yg = torch.as_tensor(X).cuda(), torch.as_tensor(y).cuda()
    fig = egm_viz.visualize_explosion(
        m,
        Xg,
        yg,
        random_state=torch.Generator(device="cuda").manual_seed(0),
        save_path=tmp_path / "c.png",
        figsize=(5, 4),
        dpi=40,
    )
    assert fig.axes[0].get_title().startswith("EGM bank")
    idx = egm_viz.stratified_subsample(
        np.asarray(y), 10, torch.Generator(device="cuda").manual_seed(0)
    )
    assert len(idx) == 10
