"""log_prediction_figures, for real in wandb offline mode (no account, no network)."""

import pytest
import torch

wandb = pytest.importorskip("wandb", reason="the [wandb] extra is not installed")
plt = pytest.importorskip("matplotlib.pyplot", reason="the [wandb] extra needs matplotlib")

from continual.wandb_plots import log_prediction_figures  # noqa: E402


class _Recorder:
    """A run that keeps what is logged to it."""

    def __init__(self):
        self.logged = []

    def log(self, data, step=None):
        self.logged.append((sorted(data), step))


def test_offline_run_gets_a_jet_and_a_gray_figure(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    volumes = torch.rand(2, 3, 4, 8, 8)  # (n, c, d, h, w)
    run = wandb.init(project="continual-test", mode="offline", dir=str(tmp_path))
    try:
        logged = log_prediction_figures(3, volumes, volumes * 0.5, image_index=2)
    finally:
        run.finish()
    wandb.teardown()  # every record on disk
    assert sorted(logged) == ["Image 3 Gray Scale", "Image 3 Jet Scale"]
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    pngs = sorted(p.name for p in (run_dir / "files" / "media" / "images").glob("*.png"))
    assert [p.split("_")[0] for p in pngs] == ["Image 3 Gray Scale", "Image 3 Jet Scale"]


def test_images_volumes_and_refused_arguments():
    volumes = torch.rand(2, 3, 4, 8, 8)
    run = _Recorder()
    open_before = plt.get_fignums()
    log_prediction_figures(4, volumes[:, :, 0], volumes[:, :, 0], run=run, step=7)  # images
    assert run.logged == [(["Image 4 Gray Scale", "Image 4 Jet Scale"], 7)]
    assert plt.get_fignums() == open_before  # its figures were closed
    if wandb.run is None:
        with pytest.raises(RuntimeError, match=r"wandb.init"):
            log_prediction_figures(0, volumes, volumes)
    for kwargs, match in [
        ({"image_index": 4}, "image_index=4"),
        ({"channel": 3}, "channel=3"),
        ({"min_norm": 1.0, "max_norm": 0.0}, "min_norm must be < max_norm"),
    ]:
        with pytest.raises(ValueError, match=match):
            log_prediction_figures(5, volumes, volumes, run=run, **kwargs)
    with pytest.raises(ValueError, match=r"\(n, c, h, w\)"):
        log_prediction_figures(5, volumes[0, 0], volumes[0, 0], run=run)
    assert len(run.logged) == 1
