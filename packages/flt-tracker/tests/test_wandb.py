"""WandbCallback for real, in offline mode (no account, no network). Skipped without wandb."""

import pytest
import torch
from flt_tracker import FeatureTracker
from flt_tracker.callbacks import FeatureTrackingCallback, WandbCallback
from flt_tracker.trainer import Trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

wandb = pytest.importorskip("wandb", reason="the [wandb] extra is not installed")


def test_wandb_offline_run_logs_monotonic_steps_series_and_finishes(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X = torch.randn(64, 5)
    y = (X[:, 0] > 0).long()
    tracker = FeatureTracker(model, layers=["0"], optimizer=opt)
    cb = WandbCallback(
        project="flt-test",
        mode="offline",
        tracker=tracker,
        log_every_n_steps=2,
        dir=str(tmp_path),
        config={"lr": 0.1},
    )
    loader = DataLoader(TensorDataset(X, y), batch_size=16)
    Trainer(model, opt, callbacks=[FeatureTrackingCallback(tracker), cb], device="cpu").fit(
        loader, 2
    )
    assert wandb.run is None  # the run it started was finished
    wandb.teardown()  # stop the local service so every record is on disk
    steps = cb.logged_steps
    assert steps == sorted(steps) and steps[-1] == 8  # monotonic, on the global step
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    (record,) = run_dir.glob("*.wandb")
    raw = record.read_bytes()
    for key in (
        b"train/batch_loss",
        b"epoch/loss",
        b"features/0.weight/norm",
        b"features/0.bias/distance_to_init",
    ):
        assert key in raw, key
    figures = sorted(
        p.name.split("_")[0]
        for p in (run_dir / "files" / "media" / "images" / "figures").glob("*.png")
    )
    if _has_matplotlib():
        assert figures == ["0.bias", "0.weight"]


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


def test_a_crashed_fit_finishes_its_wandb_run_as_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    codes = []
    finish = wandb.sdk.wandb_run.Run.finish

    def spy(self, exit_code=None, **kwargs):
        codes.append(exit_code)
        return finish(self, exit_code=exit_code, **kwargs)

    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "finish", spy)
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    cb = WandbCallback(project="flt-test", mode="offline", dir=str(tmp_path))

    def broken(out, target):
        raise RuntimeError("diverged")

    trainer = Trainer(model, opt, callbacks=[cb], device="cpu", loss_fn=broken)
    with pytest.raises(RuntimeError, match="diverged"):
        trainer.fit([(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))], 1)
    assert codes == [1] and wandb.run is None
    assert isinstance(trainer.error, RuntimeError)
    wandb.teardown()


def test_a_reused_callback_starts_a_new_step_list_with_each_new_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    cb = WandbCallback(
        project="flt-test",
        mode="offline",
        dir=str(tmp_path),
        log_every_n_steps=1,
        log_figures=False,
    )
    loader = [(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))] * 2
    for _ in range(2):  # e.g. a sweep: a new model and trainer, the same callback
        model = nn.Linear(3, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        Trainer(model, opt, callbacks=[cb], device="cpu").fit(loader, 1)  # raised "backwards"
        assert cb.logged_steps == [1, 2, 2] and wandb.run is None
    wandb.teardown()


def test_feature_norms_are_logged_from_the_trainers_tracking_callback(tmp_path, monkeypatch):
    # the spec's callbacks=[FeatureTrackingCallback(tracker), WandbCallback(project=...)]
    # logged no feature information (only a tracker= given to WandbCallback was logged)
    monkeypatch.setenv("WANDB_SILENT", "true")
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = FeatureTracker(model, optimizer=opt)
    cb = WandbCallback(project="flt-test", mode="offline", dir=str(tmp_path), log_figures=False)
    logged = []
    log = cb._log
    monkeypatch.setattr(cb, "_log", lambda data, step: (logged.append(data), log(data, step)))
    loader = [(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))] * 2
    Trainer(model, opt, callbacks=[FeatureTrackingCallback(tracker), cb], device="cpu").fit(
        loader, 1
    )
    (epoch_record,) = [d for d in logged if "epoch/loss" in d]
    latest = tracker.get_feature("weight").get_latest()
    assert epoch_record["features/weight/norm"] == pytest.approx(float(latest.norm()))
    assert "features/bias/distance_to_init" in epoch_record
    wandb.teardown()


def test_the_trainers_hyper_parameters_are_recorded_without_a_config(tmp_path, monkeypatch):
    # the spec's WandbCallback(project=...) records hyper-parameters automatically; without
    # config= the run's config was empty
    monkeypatch.setenv("WANDB_SILENT", "true")
    configs = []
    finish = wandb.sdk.wandb_run.Run.finish

    def spy(self, *args, **kwargs):
        configs.append(dict(self.config))
        return finish(self, *args, **kwargs)

    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "finish", spy)
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    cb = WandbCallback(project="flt-test", mode="offline", dir=str(tmp_path), log_figures=False)
    loader = [(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))]
    Trainer(model, opt, callbacks=[cb], device="cpu", grad_clip=1.0, seed=7).fit(loader, 1)
    (config,) = configs
    trainer = config["trainer"]
    assert trainer["optimizer"] == "SGD" and trainer["lr"] == 0.05 and trainer["momentum"] == 0.9
    assert trainer["loss_fn"] == "CrossEntropyLoss" and trainer["grad_clip"] == 1.0
    assert trainer["seed"] == 7 and trainer["inner_max"] is False
    wandb.teardown()
