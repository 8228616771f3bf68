import pytest
import torch
from flt_tracker import FeatureTracker, load_run
from flt_tracker.attacks import pgd
from torch import nn


def make_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))


def train_step(model, opt, x=None, y=None):
    x = torch.randn(8, 5) if x is None else x
    y = torch.randint(0, 3, (8,)) if y is None else y
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def test_records_post_step_values_after_every_optimizer_step():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    tracker = FeatureTracker(model, layers=["0", "2"], optimizer=opt)
    init = model[0].weight.detach().clone()
    with tracker:
        for _ in range(5):
            train_step(model, opt)
            for name, p in model.named_parameters():
                assert torch.equal(tracker.get_feature(name).get_latest(), p.detach()), name
    w = tracker.get_feature("0.weight")
    assert len(w) == 6  # initial + 5 steps
    assert w.steps.tolist() == [0, 1, 2, 3, 4, 5]
    assert torch.equal(w.get_at_step(0), init)
    assert torch.equal(w.get_latest(), model[0].weight.detach())


def test_weight_and_bias_never_swapped():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = FeatureTracker(model, layers=["0"], optimizer=opt)
    with tracker:
        train_step(model, opt)
    assert tracker.get_feature("0.weight").shape == (4, 5)
    assert tracker.get_feature("0.bias").shape == (4,)
    assert torch.equal(tracker.get_feature("0.bias").get_latest(), model[0].bias.detach())


def test_validation_no_grad_and_attack_forwards_are_not_recorded():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = FeatureTracker(model, layers=["0"], optimizer=opt)
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    with tracker:
        for _ in range(3):
            x_adv = pgd(model, x, y, nn.functional.cross_entropy, eps=0.5, steps=4)  # 4 forwards
            train_step(model, opt, x_adv, y)
            model.eval()
            with torch.no_grad():
                model(torch.randn(16, 5))  # validation
            model(torch.randn(16, 5))  # a forward with grad but no step
            model.train()
    assert len(tracker.get_feature("0.weight")) == 4  # initial + 3 optimizer steps


def test_frequency_epochs_and_batch_indices():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = FeatureTracker(model, layers="2", optimizer=opt, track_frequency=3)
    seen = {}
    with tracker:
        for epoch in range(2):
            tracker.on_epoch_start(epoch)
            for b in range(4):
                train_step(model, opt)
                seen[tracker.global_step] = model[2].weight.detach().clone()
                tracker.on_batch_end(b)
    f = tracker.get_feature("2.weight")
    assert f.steps.tolist() == [0, 3, 6]
    assert f.epochs.tolist() == [0, 0, 1]
    # step 3 = epoch 0 batch 2; step 6 = epoch 1 batch 1
    assert f.batch_indices.tolist() == [-1, 2, 1]
    assert f.get_at_epoch(0).shape == (2, 3, 4)
    assert torch.equal(f.get_at_epoch(1, last=True), seen[6])
    assert torch.equal(f.get_at_step(3), seen[3])
    with pytest.raises(KeyError, match="nearest steps"):
        f.get_at_step(4)


def test_classic_loop_without_optimizer_hook_counts_on_batch_end():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = FeatureTracker(model, layers=["0"])
    with tracker:
        tracker.on_epoch_start(0)
        for b in range(3):
            train_step(model, opt)
            tracker.on_batch_end(b)
            assert torch.equal(
                tracker.get_feature("0.weight").get_latest(), model[0].weight.detach()
            )
    assert tracker.get_feature("0.weight").batch_indices.tolist() == [-1, 0, 1, 2]


def test_explicit_step_and_double_count_guard():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = FeatureTracker(model, layers=["0"])
    with tracker:
        train_step(model, opt)
        assert tracker.step() is True
        tracker.on_batch_end(0)  # step() already counted this batch
    assert tracker.global_step == 1
    hooked = FeatureTracker(model, layers=["0"], optimizer=opt)
    with hooked, pytest.raises(RuntimeError, match="optimizer is attached"):
        hooked.step()


def test_unknown_layer_lists_valid_names():
    model = make_model()
    with pytest.raises(ValueError) as info:
        FeatureTracker(model, layers=["conv1"])
    msg = str(info.value)
    assert "conv1" in msg and "'0'" in msg and "'2.weight'" in msg
    with pytest.raises(ValueError, match="unknown module"):
        FeatureTracker(model, layers=["0"], track_activations=["nope"], probe=torch.randn(2, 5))


def test_reentry_keeps_history_and_steps_continue():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = FeatureTracker(model, layers=["0"], optimizer=opt)
    with tracker:
        train_step(model, opt)
    train_step(model, opt)  # not tracking: not recorded
    assert len(tracker.get_feature("0.weight")) == 2
    with tracker:
        train_step(model, opt)
    f = tracker.get_feature("0.weight")
    assert len(f) == 3 and f.steps.tolist() == [0, 1, 2]
    assert torch.equal(f.get_latest(), model[0].weight.detach())


def test_raw_parameter_gradients_and_activations():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.W = nn.Parameter(torch.randn(6, 5))
            self.head = nn.Linear(6, 2)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            return self.head(self.drop(torch.relu(x @ self.W.T)))

    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    probe = torch.randn(3, 5)
    tracker = FeatureTracker(
        model,
        layers=["W", "head"],
        track_gradients=True,
        track_activations=["head"],
        probe=probe,
        optimizer=opt,
    )
    with tracker:
        for _ in range(2):
            opt.zero_grad()
            model(torch.randn(4, 5)).sum().backward()
            grad = model.W.grad.clone()
            opt.step()
            assert torch.equal(tracker.get_feature("W.grad").get_latest(), grad)
    assert model.training  # the probe forward restored train mode
    acts = tracker.get_feature("head.output")
    assert acts.shape == (3, 2) and len(acts) == 3
    model.eval()
    with torch.no_grad():
        assert torch.allclose(acts.get_latest(), model(probe))
    assert set(tracker.get_features()) == {
        "W",
        "W.grad",
        "head.weight",
        "head.weight.grad",
        "head.bias",
        "head.bias.grad",
        "head.output",
    }
    with pytest.raises(KeyError, match="tracked"):
        tracker.get_feature("missing")


def test_ddp_wrapper_is_looked_through():
    model = make_model()
    wrapped = nn.DataParallel(model)
    tracker = FeatureTracker(wrapped, layers=["0"])
    assert "0.weight" in tracker._params


def test_invalid_arguments():
    model = make_model()
    with pytest.raises(ValueError, match="track_frequency"):
        FeatureTracker(model, track_frequency=0)
    with pytest.raises(ValueError, match="directory"):
        FeatureTracker(model, storage="disk")
    with pytest.raises(ValueError, match="probe"):
        FeatureTracker(model, layers=["0"], track_activations=True)
    with pytest.raises(ValueError, match="dtype"):
        FeatureTracker(model, dtype=torch.int8)


def test_async_copy_records_post_step_values():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    tracker = FeatureTracker(model, optimizer=opt, async_copy=True, track_gradients=True)
    seen = []
    with tracker:
        for _ in range(6):
            train_step(model, opt)
            seen.append(model[0].weight.detach().clone())
    assert torch.equal(tracker.get_feature("0.weight").as_tensor()[1:], torch.stack(seen))
    assert torch.equal(tracker.get_feature("2.bias").get_latest(), model[2].bias.detach())
    tracker.close()
    with pytest.raises(ValueError, match="async_copy"):
        FeatureTracker(model, async_copy=True).start()


def test_empty_layers_bad_chunk_size_and_silent_probe_modules_are_errors():
    model = make_model()
    with pytest.raises(ValueError, match="names nothing to track"):
        FeatureTracker(model, layers=[])
    with pytest.raises(TypeError, match="chunk_size=2.5"):
        FeatureTracker(model, chunk_size=2.5)  # was truncated to 2
    with pytest.raises(TypeError, match="chunk_size='4'"):
        FeatureTracker(model, chunk_size="4")

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.unused = nn.Linear(5, 3), nn.Linear(3, 3)

        def forward(self, x):
            return self.a(x)

    tracker = FeatureTracker(
        Net(), layers=["a"], track_activations=["a", "unused"], probe=torch.randn(2, 5)
    )
    with pytest.raises(ValueError, match=r"\['unused'\] did not run on the probe"):
        tracker.start()  # was: no 'unused.output' series, silently


def test_torch_compile_wrapper_is_looked_through():
    from flt_tracker.tracker import unwrap_model

    model = make_model()
    try:
        compiled = torch.compile(model, backend="eager")  # no C++ toolchain needed
    except Exception as exc:  # pragma: no cover - depends on the torch build
        pytest.skip(f"torch.compile cannot run on this build: {exc}")
    other = make_model()  # DataParallel moves its module to cuda:0 where a GPU exists
    assert unwrap_model(nn.DataParallel(torch.compile(other, backend="eager"))) is other
    opt = torch.optim.SGD(compiled.parameters(), lr=0.1)
    tracker = FeatureTracker(compiled, layers=["0"], optimizer=opt)  # was '_orig_mod.0'
    with tracker:
        for _ in range(2):
            train_step(compiled, opt)
    assert sorted(tracker.get_features()) == ["0.bias", "0.weight"]
    assert tracker.get_feature("0.weight").steps.tolist() == [0, 1, 2]
    assert torch.equal(tracker.get_feature("0.weight").get_latest(), model[0].weight.detach())


def test_downsample_policy_with_disk_storage_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="budget_policy='downsample' needs storage='memory'"):
        FeatureTracker(  # was accepted and ignored: the disk backend keeps every snapshot
            make_model(),
            storage="disk",
            directory=tmp_path,
            memory_budget="64MB",
            budget_policy="downsample",
        )


def test_downsample_policy_without_a_memory_budget_is_an_error():
    with pytest.raises(ValueError, match="budget_policy='downsample' needs a memory_budget"):
        FeatureTracker(make_model(), budget_policy="downsample")  # was: unbounded, never thinned
    tracker = FeatureTracker(make_model(), memory_budget="1MB", budget_policy="downsample")
    assert tracker.budget_policy == "downsample"


def test_start_after_close_of_a_disk_run_fails_at_start(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = FeatureTracker(model, layers=["0"], optimizer=opt, storage="disk", directory=tmp_path)
    with tracker:
        train_step(model, opt)
    tracker.close()
    with pytest.raises(RuntimeError, match="finished by close"):
        tracker.start()  # was accepted; the first optimizer step then raised "is closed"
    assert not tracker.is_tracking
    train_step(model, opt)  # no hook left behind
    assert tracker.get_feature("0.weight").steps.tolist() == [0, 1]


def test_probe_follows_the_models_dtype_after_a_cast():
    # was: after model.double() the float32 probe crashed the next recording mid-training
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    probe = torch.randn(5, 4)
    tracker = FeatureTracker(
        model, layers=["0"], track_activations=True, probe=probe, optimizer=opt
    )
    with tracker:
        model.double()
        opt.zero_grad()
        model(torch.randn(8, 4, dtype=torch.float64)).sum().backward()
        with pytest.warns(RuntimeWarning, match=r"'0.output' \(torch.float32 -> torch.float64\)"):
            opt.step()
    out = tracker.get_feature("0.output")
    assert len(out) == 2
    # stored in float64 since the cast (was float32), as the model's own output
    assert torch.equal(out.get_latest(), model[0](probe.double()).detach())


class TiedAutoencoder(nn.Module):
    """``dec.weight`` is ``enc.weight``; ``alias`` is the module ``mid`` under a second name."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(4, 4, bias=False)
        self.mid = nn.Linear(4, 4)
        self.alias = self.mid
        self.dec = nn.Linear(4, 4, bias=False)
        self.dec.weight = self.enc.weight

    def forward(self, x):
        return self.dec(torch.tanh(self.alias(self.enc(x))))


def test_tied_parameters_and_shared_modules_answer_to_every_name():
    torch.manual_seed(0)
    model = TiedAutoencoder()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    # each name was refused as unknown: named_parameters()/named_modules() drop aliases
    tracker = FeatureTracker(
        model,
        layers=["dec.weight", "alias"],
        optimizer=opt,
        track_activations=["alias"],
        probe=torch.randn(2, 4),
    )
    with tracker:
        opt.zero_grad()
        model(torch.randn(8, 4)).pow(2).mean().backward()
        opt.step()
    assert sorted(tracker.get_features()) == [
        "alias.bias",
        "alias.output",
        "alias.weight",
        "dec.weight",
    ]
    assert torch.equal(tracker.get_feature("dec.weight").get_latest(), model.enc.weight.detach())
    assert torch.equal(tracker.get_feature("alias.weight").get_latest(), model.mid.weight.detach())
    # None still tracks each parameter once, under its first name
    everything = FeatureTracker(model).start()
    assert sorted(everything.get_features()) == ["enc.weight", "mid.bias", "mid.weight"]


def test_probe_must_be_tensors_and_numpy_integers_are_accepted():
    import numpy as np

    model = make_model()
    for probe in (np.zeros((2, 5), np.float32), [[0.0] * 5], (), (torch.zeros(2, 5), "x")):
        with pytest.raises(TypeError, match="probe must be a tensor"):
            FeatureTracker(model, layers=["0"], track_activations=True, probe=probe)
    tracker = FeatureTracker(model, layers=["0"], track_frequency=np.int64(2))
    assert tracker.track_frequency == 2 and type(tracker.track_frequency) is int


def test_fractional_epochs_and_batch_indices_are_errors_not_truncated():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = FeatureTracker(model, layers=["0"])
    with tracker:
        with pytest.raises(TypeError, match="epoch=2.5"):
            tracker.on_epoch_start(2.5)  # was epoch 2
        with pytest.raises(TypeError, match="batch_idx=1.5"):
            tracker.on_batch_end(1.5)
        with pytest.raises(TypeError, match="batch_idx=None"):
            tracker.on_batch_end(None)
        with pytest.raises(TypeError, match="batch_idx=0.5"):
            tracker.step(0.5)
        assert tracker.global_step == 0  # nothing was counted
        tracker.on_epoch_start(3.0)  # an integral float is fine
        train_step(model, opt)
        tracker.on_batch_end(0)
    w = tracker.get_feature("0.weight")
    assert w.steps.tolist() == [0, 1] and w.epochs.tolist() == [0, 3]


def test_a_directory_without_disk_storage_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"directory=.* is only used with storage='disk'"):
        FeatureTracker(make_model(), directory=tmp_path / "run")  # was ignored: nothing written


@pytest.mark.parametrize("storage", ["memory", "disk"])
def test_tracker_refuses_to_repeat_a_step_appended_to_its_series(storage, tmp_path):
    # was: the tracker wrote its next step straight to storage, after a user's Feature.append
    # at that step: the series held step 2 twice
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    directory = tmp_path / "run" if storage == "disk" else None
    tracker = FeatureTracker(model, layers=["0"], optimizer=opt, storage=storage,
                             directory=directory)  # fmt: skip
    with tracker:
        train_step(model, opt)
        w = tracker.get_feature("0.weight")
        w.append(model[0].weight.detach() * 2, step=tracker.global_step + 1)
        with pytest.raises(ValueError, match=r"cannot record global step 2: the series "
                           r"\{'0.weight': 2\}"):  # fmt: skip
            train_step(model, opt)
        bias = tracker.get_feature("0.bias")
        assert w.steps.tolist() == [0, 1, 2] and bias.steps.tolist() == [0, 1]  # nothing written
        train_step(model, opt)  # step 3 follows the appended step 2
        assert w.steps.tolist() == [0, 1, 2, 3]


def test_save_before_tracking_started_is_an_error(tmp_path):
    model = make_model()
    tracker = FeatureTracker(model, layers=["0"])
    # was an empty run.json: load_run read back a run without a single series
    with pytest.raises(RuntimeError, match="nothing to save: tracking has not started"):
        tracker.save(tmp_path / "run")
    assert not (tmp_path / "run").exists()
    tracker.start().stop()
    assert sorted(load_run(tracker.save(tmp_path / "run")).get_features()) == ["0.bias", "0.weight"]


def test_probe_without_track_activations_is_an_error():
    model = make_model()
    # the probe was ignored: no "<module>.output" series, and nothing said why
    with pytest.raises(ValueError, match="probe is only used with track_activations"):
        FeatureTracker(model, layers=["0"], probe=torch.randn(2, 5))
    tracker = FeatureTracker(model, layers=["0"], probe=torch.randn(2, 5), track_activations=True)
    tracker.start().stop()
    assert tracker.get_feature("0.output").shape == (2, 4)


def test_track_activations_records_a_parameterless_module_named_in_layers():
    # layers=["0", "1"] with track_activations=True (the ReLU's outputs: "the tracked
    # modules") raised "module '1' has no parameters to track"
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    probe = torch.randn(3, 5)
    tracker = FeatureTracker(
        model, layers=["0", "1"], track_activations=True, probe=probe, optimizer=opt
    )
    with tracker:
        train_step(model, opt)
    assert sorted(tracker.get_features()) == ["0.bias", "0.output", "0.weight", "1.output"]
    relu = tracker.get_feature("1.output")
    assert relu.steps.tolist() == [0, 1]
    assert torch.allclose(relu.get_latest(), torch.relu(model[0](probe)).detach())
    with pytest.raises(ValueError, match="no parameters to track; to record its outputs"):
        FeatureTracker(model, layers=["0", "1"])  # weights only: still an error


def test_fsync_without_disk_storage_is_an_error(tmp_path):
    model = make_model()
    # fsync=True was ignored with storage="memory": nothing is written while tracking
    with pytest.raises(ValueError, match="fsync=True is only used with storage='disk'"):
        FeatureTracker(model, layers=["0"], fsync=True)
    tracker = FeatureTracker(
        model, layers=["0"], fsync=True, storage="disk", directory=tmp_path / "run"
    )
    tracker.start()
    tracker.close()
    assert len(load_run(tmp_path / "run").get_feature("0.weight")) == 1


def test_model_cast_to_a_wider_dtype_after_start_widens_the_series():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = FeatureTracker(model, layers=["0"], optimizer=opt, track_gradients=True)
    tracker.start()
    train_step(model, opt)
    at_1 = model[0].weight.detach().clone()
    model.double()  # the parameters stay the same objects: the tracker follows them
    with pytest.warns(RuntimeWarning, match=r"'0.weight' \(torch.float32 -> torch.float64\)"):
        train_step(model, opt, x=torch.randn(8, 5, dtype=torch.float64))
    tracker.stop()
    w = tracker.get_feature("0.weight")
    assert w.storage.dtype == torch.float64
    # was: rounded to float32 without a word, no longer equal to the parameter
    assert torch.equal(w.get_latest(), model[0].weight.detach())
    assert torch.equal(w.get_at_step(1), at_1.double())  # earlier snapshots converted exactly
    assert tracker.get_feature("0.weight.grad").get_latest().dtype == torch.float64


def test_tracking_gradients_of_frozen_parameters_warns():
    # their ".grad" series stayed empty without a word
    model = make_model()
    model[0].weight.requires_grad_(False)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    tracker = FeatureTracker(model, layers=["0"], optimizer=opt, track_gradients=True)
    with pytest.warns(RuntimeWarning, match=r"'0.weight' do not require gradients"):
        tracker.start()
    train_step(model, opt)
    tracker.stop()
    assert len(tracker.get_feature("0.weight.grad")) == 0
    assert len(tracker.get_feature("0.bias.grad")) >= 1
