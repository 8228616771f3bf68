import csv
import json
import math
import os
import warnings

import numpy as np
import pytest
import torch
from flt_tracker import FeatureTracker
from flt_tracker.attacks import fgm, make_attack, pgd
from flt_tracker.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    FeatureTrackingCallback,
    JSONLinesLogger,
    ModelCheckpoint,
)
from flt_tracker.trainer import Trainer, accuracy
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=g)
    y = (X[:, 0] > 0).long()
    return X, y


def loaders(batch=16):
    X, y = data()
    Xv, yv = data(32, seed=1)
    return DataLoader(TensorDataset(X, y), batch_size=batch), DataLoader(
        TensorDataset(Xv, yv), batch_size=16
    )


def model_opt(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
    return model, torch.optim.SGD(model.parameters(), lr=0.2)


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_train_start(self, trainer, model):
        self.events.append("train_start")

    def on_epoch_start(self, trainer, model, epoch):
        self.events.append(f"epoch_start {epoch}")

    def on_step_end(self, trainer, model, step):
        self.events.append(f"step {step}")

    def on_batch_end(self, trainer, model, batch, batch_idx, loss):
        self.events.append(f"batch_end {batch_idx}")

    def on_epoch_end(self, trainer, model, epoch, logs):
        self.events.append(f"epoch_end {epoch} {sorted(logs)}")

    def on_train_end(self, trainer, model):
        self.events.append("train_end")


def test_fit_with_tracking_and_validation_not_recorded():
    model, opt = model_opt()
    train, val = loaders()
    tracker = FeatureTracker(model, layers=["0"], track_frequency=2, optimizer=opt)
    rec = Recorder()
    trainer = Trainer(
        model,
        opt,
        callbacks=[FeatureTrackingCallback(tracker), rec],
        device="cpu",
        metrics={"acc": "accuracy"},
    )
    history = trainer.fit(train, num_epochs=2, val_loader=val)
    assert trainer.global_step == 8 and len(history) == 2
    assert set(history[-1]) == {"epoch", "loss", "acc", "val_loss", "val_acc"}
    f = tracker.get_feature("0.weight")
    # initial + steps 2, 4, 6, 8: validation forwards never create snapshots
    assert f.steps.tolist() == [0, 2, 4, 6, 8]
    assert f.epochs.tolist() == [0, 0, 0, 1, 1]
    assert f.batch_indices.tolist() == [-1, 1, 3, 1, 3]
    assert torch.equal(f.get_latest(), model[0].weight.detach())
    assert rec.events[:4] == ["train_start", "epoch_start 0", "step 1", "batch_end 0"]
    assert rec.events[-1] == "train_end"
    assert history[-1]["loss"] < history[0]["loss"] + 1e-6
    assert trainer.get_metrics() == history[-1]


def test_tracker_without_optimizer_is_stepped_by_callback():
    model, opt = model_opt()
    train, _ = loaders()
    tracker = FeatureTracker(model, layers=["2"])
    Trainer(model, opt, callbacks=[FeatureTrackingCallback(tracker)], device="cpu").fit(train, 1)
    f = tracker.get_feature("2.weight")
    assert f.steps.tolist() == [0, 1, 2, 3, 4]
    assert torch.equal(f.get_latest(), model[2].weight.detach())


def test_second_fit_continues_steps_and_epochs_with_phases():
    model, opt = model_opt()
    train, _ = loaders()
    tracker = FeatureTracker(model, layers=["0"], optimizer=opt)
    Trainer(
        model, opt, callbacks=[FeatureTrackingCallback(tracker, phase="clean")], device="cpu"
    ).fit(train, 1)
    trainer = Trainer(
        model,
        opt,
        callbacks=[FeatureTrackingCallback(tracker, phase="adversarial")],
        device="cpu",
        inner_max=make_attack("fgm", nn.functional.cross_entropy, eps=0.1),
    )
    trainer.global_step, trainer.epoch = 4, 1
    trainer.fit(train, 1)
    assert tracker.phases == [(0, "clean"), (4, "adversarial")]
    assert tracker.get_feature("0.weight").steps.tolist() == list(range(9))
    assert tracker.get_feature("0.weight").epochs.tolist()[-1] == 1


def test_inner_max_replaces_inputs_and_leaves_no_parameter_grads():
    model, opt = model_opt()
    seen = []

    def inner(m, x, y):
        before = [None if p.grad is None else p.grad.clone() for p in m.parameters()]
        x_adv = fgm(m, x, y, nn.functional.cross_entropy, eps=0.5)
        for p, b in zip(m.parameters(), before):  # the attack leaves parameter grads alone
            assert (p.grad is None and b is None) or torch.equal(p.grad, b)
        seen.append((x_adv - x).norm(dim=1))
        return x_adv

    train, _ = loaders()
    Trainer(model, opt, device="cpu", inner_max=inner).fit(train, 1)
    assert len(seen) == 4
    torch.testing.assert_close(seen[0], torch.full_like(seen[0], 0.5))


def test_attacks_stay_in_ball_and_increase_loss():
    model, _ = model_opt()
    X, y = data(32)
    loss = nn.functional.cross_entropy
    for norm in ("l2", "linf"):
        x_adv = pgd(model, X, y, loss, eps=0.3, steps=5, norm=norm, random_start=True)
        delta = (x_adv - X).flatten(1)
        size = delta.norm(dim=1) if norm == "l2" else delta.abs().amax(dim=1)
        assert float(size.max()) <= 0.3 + 1e-5
        with torch.no_grad():
            assert float(loss(model(x_adv), y)) > float(loss(model(X), y))
    with pytest.raises(ValueError, match="norm"):
        fgm(model, X, y, loss, 0.1, norm="l1")


def test_explicit_loss_grad_clip_scheduler_and_seed():
    def run(seed):
        model, opt = model_opt(seed=3)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        train = DataLoader(TensorDataset(*data()), batch_size=16, shuffle=True)
        calls = []

        def loss_fn(out, target):
            calls.append(out.shape)
            return nn.functional.cross_entropy(out, target)

        trainer = Trainer(
            model, opt, device="cpu", loss_fn=loss_fn, scheduler=sched, grad_clip=1e-3, seed=seed
        )
        before = [p.detach().clone() for p in model.parameters()]
        trainer.fit(train, 2)
        step = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)])
        return model, opt, calls, step

    m1, opt1, calls, step = run(5)
    m2, *_ = run(5)
    assert calls and all(s == (16, 2) for s in calls)
    assert opt1.param_groups[0]["lr"] == pytest.approx(0.05)
    # 8 steps with lr <= 0.2 and clipped gradient norm 1e-3: total movement <= 8 * 0.2 * 1e-3
    assert float(step.norm()) <= 8 * 0.2 * 1e-3 + 1e-7
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b)


def test_dict_batches_and_autoencoder_target():
    torch.manual_seed(0)
    model = nn.Linear(5, 5)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, _ = data()
    batches = [{"input": X[i : i + 16]} for i in range(0, 64, 16)]
    hist = Trainer(model, opt, device="cpu", loss_fn=nn.MSELoss()).fit(batches, 3)
    assert hist[-1]["loss"] < hist[0]["loss"]


def test_batches_without_targets_need_an_explicit_loss_fn():
    # the default CrossEntropyLoss scored an autoencoder's output against its inputs as class
    # probabilities: a negative "loss" that training drove down without a word
    torch.manual_seed(0)
    model = nn.Linear(5, 5)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, _ = data()
    before = model.weight.detach().clone()
    trainer = Trainer(model, opt, device="cpu")
    with pytest.raises(ValueError, match="without targets .* pass loss_fn"):
        trainer.fit([{"input": X[:16]}], 1)
    with pytest.raises(ValueError, match="without targets"):
        trainer.evaluate([(X[:16],)])
    assert torch.equal(model.weight, before) and trainer.global_step == 0
    trainer.loss_fn = nn.MSELoss()  # a loss set on the trainer later is explicit too
    assert trainer.fit([{"input": X[:16]}], 1)[-1]["loss"] > 0


def test_early_stopping_checkpoint_and_loggers(tmp_path):
    model, opt = model_opt()
    train, val = loaders()
    stopper = EarlyStopping(monitor="val_loss", patience=1, mode="max")  # loss never "increases"
    ckpt = ModelCheckpoint(tmp_path / "ckpt", monitor="val_loss")
    jl = JSONLinesLogger(tmp_path / "log.jsonl", log_every_n_steps=2)
    cl = CSVLogger(tmp_path / "log.csv")
    trainer = Trainer(model, opt, callbacks=[stopper, ckpt, jl, cl], device="cpu")
    hist = trainer.fit(train, 10, val_loader=val)
    assert len(hist) == 2 and stopper.stopped_epoch == 1
    state = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    assert state["global_step"] == 8 and "optimizer" in state
    for k, v in state["model"].items():
        assert torch.equal(v, model.state_dict()[k])
    assert (tmp_path / "ckpt" / "best.pt").exists()
    lines = [json.loads(s) for s in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r and "epoch" in r and "val_loss" not in r] == [
        2,
        4,
        6,
        8,
    ]
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1] and "val_loss" in rows[0]
    with pytest.raises(KeyError, match="not in the logs"):
        Trainer(model, opt, callbacks=[EarlyStopping(monitor="val_acc")], device="cpu").fit(
            train, 1
        )


def test_early_stopping_restarts_its_patience_in_a_later_fit():
    model, opt = model_opt()
    train, val = loaders()
    stopper = EarlyStopping(monitor="val_loss", patience=2, mode="max")  # loss never "increases"
    trainer = Trainer(model, opt, callbacks=[stopper], device="cpu")
    assert len(trainer.fit(train, 10, val_loader=val)) == 3 and stopper.stopped_epoch == 2
    best = stopper.best
    assert len(trainer.fit(train, 10, val_loader=val)) == 5  # two more epochs, not one
    assert stopper.stopped_epoch == 4 and stopper.best == best


def test_accuracy_metric_and_argument_errors():
    assert float(accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0]))) == 0.5
    assert float(
        accuracy(torch.tensor([1.0, -2.0, 3.0]), torch.tensor([1.0, -1.0, -1.0]))
    ) == pytest.approx(2 / 3)
    model, opt = model_opt()
    with pytest.raises(TypeError, match="optimizer"):
        Trainer(model, "sgd")
    with pytest.raises(ValueError, match="scheduler_interval"):
        Trainer(model, opt, scheduler_interval="batch")
    with pytest.raises(TypeError, match="Callback"):
        Trainer(model, opt, callbacks=[object()])


def test_empty_or_used_up_loaders_raise_instead_of_reporting_zero_loss():
    model, opt = model_opt()
    X, y = data()
    with pytest.raises(ValueError, match="training loader yielded no batches"):
        Trainer(model, opt, device="cpu").fit([], 1)
    with pytest.raises(ValueError, match="evaluation loader yielded no batches"):
        Trainer(model, opt, device="cpu").fit([(X, y)], 1, val_loader=[])
    once = iter([(X, y)])  # a one-shot iterator: the second epoch would see nothing
    with pytest.raises(ValueError, match="no batches"):
        Trainer(model, opt, device="cpu").fit(once, 2)


def test_num_epochs_must_be_an_integer():
    model, opt = model_opt()
    X, y = data()
    trainer = Trainer(model, opt, device="cpu")
    for bad in (2.5, "3", None, True):
        with pytest.raises(TypeError, match="num_epochs"):
            trainer.fit([(X, y)], bad)
    with pytest.raises(ValueError, match="non-negative"):
        trainer.fit([(X, y)], -1)
    assert trainer.fit([(X, y)], 0) == [] and trainer.global_step == 0
    assert len(trainer.fit([(X, y)], np.int64(2))) == 2


def test_seed_is_applied_once_so_split_fits_replay_one_long_fit():
    def run(split):
        model, opt = model_opt(seed=3)
        train = DataLoader(TensorDataset(*data()), batch_size=16, shuffle=True)
        trainer = Trainer(model, opt, device="cpu", seed=7)
        for n in split:
            trainer.fit(train, n)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(run([2, 2]), run([4]))  # not the same shuffles replayed in each fit


def test_attack_restores_each_module_mode_and_rejects_infinite_eps():
    model = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.5), nn.ReLU(), nn.Linear(8, 2))
    X, y = data(8)
    model.train()
    model[1].eval()  # a frozen submodule stays frozen
    make_attack("pgd", nn.CrossEntropyLoss(), 0.1, steps=2)(model, X, y)
    assert model.training and not model[1].training and model[0].training
    with pytest.raises(ValueError, match="finite"):
        make_attack("fgm", nn.CrossEntropyLoss(), float("inf"))


def test_reduce_lr_on_plateau_watches_the_chosen_metric():
    X, y = data()
    model, opt = model_opt()
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=0)
    seen = []
    sched.step = seen.append  # record what the Trainer passes
    trainer = Trainer(
        model,
        opt,
        device="cpu",
        scheduler=sched,
        scheduler_monitor="val_accuracy",
        metrics={"accuracy": "accuracy"},
    )
    history = trainer.fit([(X, y)], 2, val_loader=[(X, y)])
    assert seen == [h["val_accuracy"] for h in history]
    model, opt = model_opt()
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, threshold=0.0)
    history = Trainer(model, opt, device="cpu", scheduler=sched).fit([(X, y)], 4)
    assert sched.best == min(h["loss"] for h in history)  # no val_loader: watches "loss"
    with pytest.raises(KeyError, match="val_loss"):
        Trainer(model, opt, device="cpu", scheduler=sched, scheduler_monitor="val_loss").fit(
            [(X, y)], 1
        )
    with pytest.raises(ValueError, match="epoch"):
        Trainer(model, opt, device="cpu", scheduler=sched, scheduler_interval="step")


def test_json_lines_are_strict_json_when_a_metric_diverges(tmp_path):
    model, opt = model_opt()
    X, y = data()
    jl = JSONLinesLogger(tmp_path / "log.jsonl")
    nan_loss = lambda out, target: out.sum() * float("nan")  # noqa: E731
    with pytest.warns(RuntimeWarning, match="training diverged"):
        Trainer(model, opt, device="cpu", loss_fn=nan_loss, callbacks=[jl]).fit([(X, y)], 1)

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    records = [
        json.loads(line, parse_constant=refuse)
        for line in (tmp_path / "log.jsonl").read_text().splitlines()
    ]
    assert records == [{"step": 1, "epoch": 0, "loss": None}]


def test_a_fit_failing_in_on_train_start_still_ends_the_fit():
    class Broken(Callback):
        def on_train_start(self, trainer, model):
            raise RuntimeError("cannot start")

    ended = []

    class Ends(Callback):
        def on_train_end(self, trainer, model):
            ended.append(trainer.error)

    model, opt = model_opt()
    train, _ = loaders()
    trainer = Trainer(model, opt, callbacks=[Ends(), Broken()], device="cpu")
    with pytest.raises(RuntimeError, match="cannot start"):
        trainer.fit(train, 1)
    assert len(ended) == 1 and isinstance(ended[0], RuntimeError)  # e.g. wandb finishes its run


def test_tracking_callback_follows_the_trainers_optimizer_and_epoch():
    model, opt = model_opt()
    train, _ = loaders()
    Trainer(model, opt, device="cpu").fit(train, 2)  # untracked warm-up: 8 steps, 2 epochs
    tracker = FeatureTracker(model, layers=["0"], optimizer=opt)
    opt2 = torch.optim.Adam(model.parameters(), lr=0.01)  # a new phase, a new optimizer
    trainer = Trainer(model, opt2, callbacks=[FeatureTrackingCallback(tracker)], device="cpu")
    trainer.epoch = 2
    trainer.fit(train, 1)
    w = tracker.get_feature("0.weight")
    assert w.steps.tolist() == [0, 1, 2, 3, 4]  # was [0]: the hook sat on the old optimizer
    assert w.epochs.tolist() == [2] * 5  # the initial snapshot was labelled epoch 0
    assert torch.equal(w.get_latest(), model[0].weight.detach())


def test_pgd_linf_random_start_is_uniform_in_the_cube():
    model, _ = model_opt()
    X, y = data(256)
    g = torch.Generator().manual_seed(0)
    x_adv = pgd(
        model,
        X,
        y,
        nn.functional.cross_entropy,
        eps=0.5,
        steps=1,
        step_size=0.0,
        norm="linf",
        random_start=True,
        generator=g,
    )
    delta = (x_adv - X).flatten()
    assert delta.abs().max() <= 0.5 + 1e-6
    assert (delta.abs() < 0.45).float().mean() > 0.8  # not only the corners (+-eps)
    assert abs(float(delta.mean())) < 0.05 and abs(float(delta.std()) - 0.5 / 3**0.5) < 0.02


def test_torchrun_on_cuda_binds_each_rank_to_its_own_gpu(monkeypatch):
    # without torch.cuda.set_device every rank's current device is cuda:0 (NCCL's default
    # device, pinned memory, "cuda" tensors); no GPU needed: CUDA and DDP are stood in for
    import blockops

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    calls = []
    monkeypatch.setattr(blockops, "resolve_device", lambda device: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(
        torch.distributed, "init_process_group", lambda backend: calls.append(("init", backend))
    )
    monkeypatch.setattr(
        nn.parallel, "DistributedDataParallel", lambda m, device_ids: calls.append(device_ids) or m
    )

    class Stays(nn.Linear):
        def to(self, *args, **kwargs):
            return self

    model = Stays(2, 2)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1))
    cuda1 = torch.device("cuda", 1)
    assert trainer.device == cuda1 and trainer.rank == 1
    assert calls == [("set_device", cuda1), ("init", "nccl"), [1]]


def test_fit_sets_the_epoch_of_a_distributed_sampler_or_one_in_a_batch_sampler():
    from torch.utils.data import BatchSampler, DistributedSampler

    class Recording(DistributedSampler):
        def set_epoch(self, epoch):
            self.calls.append(epoch)
            super().set_epoch(epoch)

    X, y = data()
    ds = TensorDataset(X, y)
    for how in ("sampler", "batch_sampler"):
        sampler = Recording(ds, num_replicas=2, rank=0, seed=0)
        sampler.calls = []
        if how == "sampler":
            loader = DataLoader(ds, batch_size=16, sampler=sampler)
        else:  # was never set: the loader's own sampler is then a SequentialSampler
            loader = DataLoader(ds, batch_sampler=BatchSampler(sampler, 16, drop_last=False))
        trainer = Trainer(*model_opt(), device="cpu")
        trainer.fit(loader, 2)
        trainer.fit(loader, 1)
        assert sampler.calls == [0, 1, 2], how


def test_batches_follow_the_models_dtype_at_each_step():
    # was: batches went to the model as they came, so model.double() after building the Trainer
    # (or float64 numpy data for a float32 model) failed with a dtype mismatch in the forward
    model, opt = model_opt()
    trainer = Trainer(model, opt, device="cpu", metrics={"acc": "accuracy"})
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].dtype))
    model.double()
    train, val = loaders()
    trainer.fit(train, 1, val_loader=val)
    assert set(seen) == {torch.float64} and model[0].weight.dtype == torch.float64
    model.float()
    X, y = data()
    trainer.fit([(X.double(), y)], 1)  # labels stay integers
    assert seen[-1] == torch.float32
    reg = nn.Linear(5, 1).double()  # a float target (MSE) is cast along with the inputs
    with torch.no_grad():
        expected = nn.functional.mse_loss(reg(X.double()), X[:, :1].double()).item()
    opt = torch.optim.SGD(reg.parameters(), lr=0.1)
    out = Trainer(reg, opt, device="cpu", loss_fn=nn.MSELoss()).fit([(X, X[:, :1])], 1)
    assert out[-1]["loss"] == pytest.approx(expected, rel=1e-12)


def test_pgd_refuses_fractional_steps_and_bad_step_sizes():
    model = nn.Sequential(nn.Linear(5, 2))
    X, y = data(4)
    loss = nn.CrossEntropyLoss()
    assert pgd(model, X, y, loss, 0.1, steps=np.int64(2), step_size=0.05).shape == X.shape
    for kwargs, name in (
        ({"steps": 2.5}, "steps=2.5"),  # was 2 steps
        ({"steps": True}, "steps=True"),
        ({"step_size": float("nan")}, "step_size=nan"),  # was a NaN perturbation
        ({"step_size": -0.1}, "step_size=-0.1"),  # was gradient descent
    ):
        with pytest.raises(ValueError, match=name):
            pgd(model, X, y, loss, 0.1, **kwargs)
        with pytest.raises(ValueError, match=name):  # before training, not at its first batch
            make_attack("pgd", loss, 0.1, **kwargs)


def test_periods_seed_and_distributed_are_checked_when_built():
    with pytest.raises(TypeError, match=r"patience=2.5 must be an integer"):
        EarlyStopping(patience=2.5)  # was 2
    with pytest.raises(TypeError, match=r"every_n_epochs=1.5 must be an integer"):
        ModelCheckpoint("unused", every_n_epochs=1.5)  # was 1
    with pytest.raises(TypeError, match=r"log_every_n_steps=2.5 must be an integer"):
        JSONLinesLogger("unused.jsonl", log_every_n_steps=2.5)  # logged every 5th step
    with pytest.raises(ValueError, match=r"log_every_n_steps=0 must be >= 1"):
        JSONLinesLogger("unused.jsonl", log_every_n_steps=0)
    assert EarlyStopping(patience=np.int64(3)).patience == 3
    model, opt = model_opt()
    with pytest.raises(TypeError, match=r"seed=1.5 must be an integer"):
        Trainer(model, opt, seed=1.5)  # failed in fit with a numpy casting error
    with pytest.raises(ValueError, match=r"distributed=True; use 'auto' or False"):
        Trainer(model, opt, distributed=True)  # never wrapped the model


def test_accuracy_without_targets_says_so():
    model = nn.Linear(5, 5)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, opt, loss_fn=nn.MSELoss(), metrics={"acc": "accuracy"}, device="cpu")
    X, _ = data(8)
    with pytest.raises(ValueError, match="accuracy needs targets"):  # was an AttributeError
        trainer.fit([X], 1)


def test_tracking_callback_refuses_a_tracker_of_another_model():
    model, opt = model_opt()
    other, _ = model_opt(1)
    X, y = data(8)
    # it recorded the other model's unchanged weights at every step
    trainer = Trainer(model, opt, callbacks=[FeatureTrackingCallback(FeatureTracker(other))])
    with pytest.raises(ValueError, match="not \\(part\\s+of\\) the trainer's model"):
        trainer.fit([(X, y)], 1)
    part = FeatureTracker(model[0])  # a submodule of the trained model is fine
    Trainer(model, opt, callbacks=[FeatureTrackingCallback(part)]).fit([(X, y)], 1)
    assert part.get_feature("weight").distance_to_init()[-1] > 0


def test_an_optimizer_of_another_model_is_refused():
    model, _ = model_opt()
    _, other_opt = model_opt(1)
    with pytest.raises(ValueError, match="optimizer holds none of the model's parameters"):
        Trainer(model, other_opt)  # trained nothing: the other model's weights were stepped


def test_make_attack_refuses_arguments_its_attack_does_not_take():
    # fgm has no steps: the TypeError came at the first training batch, inside fgm()
    with pytest.raises(TypeError, match=r"make_attack\('fgm'\).*\['steps'\].*fgm takes \['norm'\]"):
        make_attack("fgm", nn.functional.cross_entropy, 0.1, steps=5)
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['step'\]"):  # a typo
        make_attack("pgd", nn.functional.cross_entropy, 0.1, step=5)
    with pytest.raises(TypeError, match="eps='a' must be a number"):
        make_attack("pgd", nn.functional.cross_entropy, "a")
    model, _ = model_opt()
    X, y = data(8)
    attack = make_attack("pgd", nn.functional.cross_entropy, 0.1, steps=2, norm="linf")
    assert (attack(model, X, y) - X).abs().max() <= 0.1 + 1e-6


def test_trainer_names_a_bare_callback_and_a_non_numeric_grad_clip():
    model, opt = model_opt()
    with pytest.raises(TypeError, match=r"callbacks must be a list.*EarlyStopping.*\[\.\.\.\]"):
        Trainer(model, opt, callbacks=EarlyStopping())
    with pytest.raises(TypeError, match="grad_clip='abc' must be a positive number"):
        Trainer(model, opt, grad_clip="abc")
    with pytest.raises(ValueError, match="grad_clip=0"):
        Trainer(model, opt, grad_clip=0)
    assert Trainer(model, opt, grad_clip=np.float64(0.5)).grad_clip == 0.5


def test_epoch_means_weight_batches_of_nested_inputs_by_their_sample_count():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(5, 2), nn.Linear(5, 2)

        def forward(self, xs):
            return self.a(xs[0]) + self.b(xs[1])

    torch.manual_seed(0)
    model = TwoInputs()
    X, y = data(10)
    X2 = X.flip(0)
    whole = [{"input": (X, X2), "target": y}]
    split = [
        {"input": (X[:8], X2[:8]), "target": y[:8]},
        {"input": (X[8:], X2[8:]), "target": y[8:]},
    ]
    # each batch counted len((x1, x2)) = 2 samples: the 2-sample batch weighed as much as the 8
    trainer = Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.0), metrics={"acc": "accuracy"}
    )
    expected = trainer.evaluate(whole)
    assert trainer.evaluate(split) == pytest.approx(expected)
    assert trainer.fit(split, 1)[-1]["loss"] == pytest.approx(expected["loss"])  # lr 0: no change


def test_a_scheduler_of_another_optimizer_is_refused():
    model, opt = model_opt()
    old = torch.optim.SGD(model.parameters(), lr=0.2)  # e.g. the optimizer of an earlier phase
    for sched in (
        torch.optim.lr_scheduler.StepLR(old, step_size=1, gamma=0.5),
        torch.optim.lr_scheduler.ReduceLROnPlateau(old),
    ):
        # it halved the other optimizer's lr every epoch; the trained one stayed at 0.2
        with pytest.raises(ValueError, match="scheduler is bound to another optimizer"):
            Trainer(model, opt, scheduler=sched)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    Trainer(model, opt, scheduler=sched).fit([data(16)], 2)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)


def test_accuracy_takes_one_hot_and_probability_targets():
    output = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, 1.0], [0.0, 1.0, 0.5]])
    labels = torch.tensor([0, 1, 0])  # the last one is wrong
    one_hot = nn.functional.one_hot(labels, 3).float()
    soft = one_hot * 0.8 + 0.2 / 3  # class probabilities, as CrossEntropyLoss accepts them
    # n == classes: element-wise comparison broadcast to a wrong fraction (2/9, not 2/3)
    for target in (labels, one_hot, soft):
        assert float(accuracy(output, target)) == pytest.approx(2 / 3)
    assert float(accuracy(output[:2].repeat(4, 1), one_hot[:2].repeat(4, 1))) == 1.0


def test_metric_names_of_the_epoch_logs_are_refused():
    model, opt = model_opt()
    one = lambda output, target: torch.tensor(1.0)  # noqa: E731
    # "loss" was summed into the training loss (+1 here), "epoch" replaced the epoch number
    for name in ("loss", "epoch"):
        with pytest.raises(ValueError, match=rf"metrics\['{name}'\].*name the metric otherwise"):
            Trainer(model, opt, metrics={name: one})
    history = Trainer(model, opt, metrics={"one": one}).fit([data(16)], 1)
    assert history[-1]["epoch"] == 0 and history[-1]["one"] == 1.0


def test_a_0d_batch_is_refused_before_any_step():
    class Scale(nn.Module):  # accepts a 0-d input: the failure was len() after the step
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(()))

        def forward(self, x):
            return self.w * x

    model = Scale()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, opt, loss_fn=nn.MSELoss(), device="cpu")
    for batch in ((torch.tensor(1.0), torch.tensor(2.0)), {"input": (torch.tensor(1.0),)}):
        with pytest.raises(ValueError, match="inputs need a batch dimension, got a 0-d tensor"):
            trainer.fit([batch], 1)
    assert trainer.global_step == 0 and model.w.item() == 1.0  # nothing was trained
    with pytest.raises(ValueError, match="batch dimension"):
        trainer.evaluate([(torch.tensor(1.0), torch.tensor(2.0))])


def test_make_attack_refuses_a_numeric_string_eps():
    # "0.3" passed the float() check, then failed at the first batch inside the attack
    for eps in ("0.3", True):
        with pytest.raises(TypeError, match="eps=.* must be a number"):
            make_attack("fgm", nn.functional.cross_entropy, eps)


def test_an_empty_batch_is_refused():
    # its NaN mean loss, weighted by 0 samples, made the epoch loss NaN beside a good batch
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, opt, loss_fn=nn.CrossEntropyLoss(), device="cpu")
    X, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    with pytest.raises(ValueError, match=r"inputs hold no samples, got shape \(0, 4\)"):
        trainer.fit([(X, y), (X[:0], y[:0])], 1)
    assert math.isfinite(trainer.fit([(X, y)], 1)[-1]["loss"])


def test_ezflt_style_hooks_without_logs_are_called_with_what_they_name():
    # ezflt's hooks were on_epoch_end(trainer, model, epoch): a TypeError "missing logs" here
    seen = []

    class Ezflt(Callback):
        def on_epoch_end(self, trainer, model, epoch):
            seen.append(("ezflt", epoch, model is trainer.model))

    class Short(Callback):
        def on_epoch_start(self, epoch):
            seen.append(("start", epoch))

        def on_train_start(self, trainer):
            seen.append(("train", trainer.global_step))

        def on_batch_end(self, batch_idx, **rest):
            seen.append(("batch", batch_idx, sorted(rest)))

    model, opt = model_opt()
    X, y = data(16)
    Trainer(model, opt, device="cpu", callbacks=[Ezflt(), Short()]).fit([(X, y)], 2)
    assert seen == [
        ("train", 0),
        ("start", 0),
        ("batch", 0, ["batch", "loss", "model", "trainer"]),
        ("ezflt", 0, True),
        ("start", 1),
        ("batch", 0, ["batch", "loss", "model", "trainer"]),
        ("ezflt", 1, True),
    ]


def test_hooks_not_named_after_the_arguments_fail_at_construction_and_errors_inside_surface():
    class Unnamed(Callback):
        def on_epoch_end(self, e):
            """One argument, not named after any the Trainer gives."""

    model, opt = model_opt()
    with pytest.raises(TypeError, match=r"Unnamed.on_epoch_end\(self, e\).*trainer, model"):
        Trainer(model, opt, device="cpu", callbacks=[Unnamed()])

    class Broken(Callback):
        def on_epoch_end(self, trainer, model, epoch):
            raise TypeError("a bug in the user's hook")

    X, y = data(16)
    with pytest.raises(TypeError, match="a bug in the user's hook"):  # never swallowed
        Trainer(model, opt, device="cpu", callbacks=[Broken()]).fit([(X, y)], 1)


def test_a_nan_loss_stops_fit_after_that_batch_with_a_warning():
    model, opt = model_opt()
    X, y = data(16)
    batches = [(X, y), (X * float("nan"), y), (X, y)]
    tracker = FeatureTracker(model, layers=["0"])
    trainer = Trainer(model, opt, device="cpu", callbacks=[FeatureTrackingCallback(tracker)])
    with pytest.warns(RuntimeWarning, match=r"diverged: batch 1 of epoch 0 had loss nan"):
        history = trainer.fit(batches, 5)
    # was: 5 epochs of 3 steps on NaN weights, 16 snapshots, 13 of them NaN
    assert len(history) == 1 and math.isnan(history[0]["loss"])
    assert trainer.global_step == 2 and trainer.epoch == 1
    w = tracker.get_feature("0.weight")
    assert w.steps.tolist() == [0, 1, 2]
    assert torch.isfinite(w.get_at_step(1)).all()


def test_csv_logger_writes_its_file_when_no_epoch_runs(tmp_path):
    # flt-train epochs=0 promised metrics.csv and wrote none
    model, opt = model_opt()
    train, _ = loaders()
    Trainer(model, opt, callbacks=[CSVLogger(tmp_path / "m.csv")], device="cpu").fit(train, 0)
    assert (tmp_path / "m.csv").read_text().splitlines() == ["epoch,step"]


def test_epoch_accuracy_is_the_exact_fraction_of_correct_predictions():
    # identity logits: the prediction is the argmax of the input; lr=0 keeps it so
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
        model.bias.zero_()
    x = torch.tensor([[1.0, 0.0]] * 6 + [[0.0, 1.0]] * 4)  # predicts 0 six times, then 1
    y = torch.tensor([0, 0, 1, 0, 0, 0, 0, 0, 1, 1])  # 3 wrong: 7 of 10 right
    batches = [(x[:3], y[:3]), (x[3:], y[3:])]  # 2 of 3, then 5 of 7
    trainer = Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.0), metrics={"acc": "accuracy"}
    )
    logs = trainer.fit(batches, 1, val_loader=batches)[-1]
    assert (
        logs["acc"] == 0.7 and logs["val_acc"] == 0.7
    )  # float32 batch means gave 0.7000000178813934
    assert float(accuracy(model(x[3:8]), y[3:8])) == 0.6  # float32: 0.6000000238418579
    assert accuracy(model(x[:0]), y[:0]).isnan()


def test_resume_from_last_checkpoint_replays_the_uninterrupted_run(tmp_path):
    X, y = data()

    def run(epochs, ckpt_dir=None, resume=None):
        torch.manual_seed(1)  # as a fresh process: a resumed run takes its state from the file
        model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
        callbacks = [] if ckpt_dir is None else [ModelCheckpoint(ckpt_dir)]
        trainer = Trainer(model, opt, callbacks, scheduler=sched, seed=0)
        if resume is not None:
            ckpt = trainer.load_checkpoint(resume)
            assert ckpt["epoch"] == 1 and trainer.epoch == 2 and trainer.global_step == 8
        # shuffling and dropout draw from torch's global generator
        trainer.fit(DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True), epochs)
        return model.state_dict(), trainer.epoch

    whole, last_epoch = run(4)
    run(2, ckpt_dir=tmp_path / "ckpt")  # interrupted after epoch 1
    path = tmp_path / "ckpt" / "last.pt"
    assert torch.load(path, weights_only=True)["rng_state"]["torch"].dtype == torch.uint8
    resumed, resumed_epoch = run(2, resume=path)
    assert resumed_epoch == last_epoch == 4
    for k in whole:
        assert torch.equal(resumed[k], whole[k]), k


def test_a_fresh_tracker_on_a_resumed_trainer_records_on_the_trainers_step_axis(tmp_path):
    X, y = data()

    def run(epochs, ckpt_dir=None, resume=None):
        torch.manual_seed(1)
        model, opt = model_opt()
        tracker = FeatureTracker(model, layers=["0"], track_frequency=3)
        callbacks = [FeatureTrackingCallback(tracker)]
        callbacks += [] if ckpt_dir is None else [ModelCheckpoint(ckpt_dir)]
        trainer = Trainer(model, opt, callbacks, seed=0)
        if resume is not None:
            trainer.load_checkpoint(resume)
        trainer.fit(DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True), epochs)
        return tracker.get_feature("0.weight")

    whole = run(4)
    run(2, ckpt_dir=tmp_path / "ckpt")  # 8 steps, interrupted after epoch 1
    resumed = run(2, resume=tmp_path / "ckpt" / "last.pt")
    # the initial snapshot is the checkpoint's weights at its step 8 (was step 0, epoch 2), then
    # the uninterrupted run's tracked steps, epochs and values (it restarted at 3, 6, 9)
    assert resumed.steps.tolist() == [8, 9, 12, 15] and resumed.epochs.tolist() == [2, 2, 2, 3]
    tail = whole.steps >= 9
    assert resumed.steps[1:].tolist() == whole.steps[tail].tolist()
    assert resumed.epochs[1:].tolist() == whole.epochs[tail].tolist()
    assert torch.equal(resumed.as_tensor()[1:], whole.as_tensor()[torch.from_numpy(tail)])


def test_a_lightning_hook_name_the_trainer_never_calls_is_a_warning_naming_ours():
    class LightningStyle(Callback):
        def __init__(self):
            self.seen = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.seen.append(batch_idx)  # never called: the Trainer's hook is on_batch_end

    model, opt = model_opt()
    with pytest.warns(UserWarning, match=r"on_train_batch_end \(use on_batch_end\)"):
        Trainer(model, opt, [LightningStyle()])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the Trainer's own hooks and callbacks: no warning
        Trainer(model, opt, [Recorder(), CSVLogger(os.devnull), EarlyStopping("loss")])


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    import random

    from flt_tracker.callbacks import rng_state, set_rng_state

    torch.save(rng_state(), tmp_path / "rng.pt")

    def draw():
        return torch.rand(3).tolist(), random.random(), np.random.rand(3).tolist()  # noqa: NPY002

    first = draw()
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert draw() == first
