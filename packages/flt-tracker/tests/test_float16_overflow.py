"""float16 storage never turns a finite value into inf: an overflowing series switches to float32."""

import json
import warnings

import pytest
import torch
from flt_tracker import DiskStorage, Feature, FeatureTracker, Float16OverflowWarning, load_run
from flt_tracker.storage import MemoryStorage, float16_overflows
from torch import nn


def model_and_opt(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))
    return model, torch.optim.SGD(model.parameters(), lr=0.01)


def half_tracker(model, opt, **kwargs):
    """A float16 tracker of layer 0 stepping with ``opt``."""
    return FeatureTracker(model, layers=["0"], optimizer=opt, dtype=torch.float16, **kwargs)


def steps(model, opt, n, blow_up_at=None, value=1e6):
    """``n`` optimizer steps; after step ``blow_up_at`` one weight of layer 0 is set to ``value``."""
    g = torch.Generator().manual_seed(1)
    for i in range(1, n + 1):
        opt.zero_grad()
        model(torch.randn(8, 5, generator=g)).pow(2).mean().backward()
        opt.step()
        if i == blow_up_at:
            with torch.no_grad():
                model[0].weight[1, 2] = value


def test_float16_overflows_is_exact_at_the_boundary_and_ignores_diverged_sources():
    inf, nan = float("inf"), float("nan")
    values = [
        torch.tensor([65519.0, -1.0]),  # rounds to 65504: representable
        torch.tensor([1.0, -65520.0]),  # rounds to -inf
        torch.tensor([7e4], dtype=torch.float64),
        torch.tensor([7e4], dtype=torch.bfloat16),
        torch.tensor([inf, 1.0]),  # already infinite: stored as inf, nothing is lost
        torch.tensor([inf, 7e4]),  # an inf, and a finite value float16 would lose
        torch.tensor([nan, 3.0]),
        torch.tensor([nan, -1e5]),
        torch.tensor([6e4], dtype=torch.float16),
        torch.empty(0),
        torch.tensor(1e9),  # a scalar
    ]
    assert float16_overflows(values) == [
        False,
        True,
        True,
        True,
        False,
        True,
        False,
        True,
        False,
        False,
        True,
    ]
    assert float16_overflows([]) == []


def test_tracker_switches_an_overflowing_float16_series_to_float32_and_names_it():
    model, opt = model_and_opt()
    tracker = FeatureTracker(
        model,
        layers=["0", "2"],
        optimizer=opt,
        dtype=torch.float16,
        track_activations=["0"],
        probe=torch.randn(3, 5),
    )
    seen = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with tracker:
            g = torch.Generator().manual_seed(1)
            for i in range(1, 6):
                opt.zero_grad()
                model(torch.randn(8, 5, generator=g)).pow(2).mean().backward()
                opt.step()
                seen[i] = model[0].weight.detach().clone()
                if i == 2:
                    with torch.no_grad():
                        model[0].weight[1, 2] = 1e6  # the next snapshot (step 3) overflows
    messages = [str(w.message) for w in caught if w.category is Float16OverflowWarning]
    w = tracker.get_feature("0.weight")
    # the step-3 snapshot is the first holding 1e6 (set after step 2's recording)
    assert any("'0.weight'" in m and "layer '0'" in m and "step 3" in m for m in messages)
    assert any("'0.output'" in m for m in messages)  # the probe's activations overflow too
    assert w.storage.dtype == torch.float32
    values = w.as_tensor()
    assert torch.isfinite(values).all()
    assert values[3:, 1, 2].min() > 9e5  # kept, not inf
    assert torch.equal(values[5], seen[5])  # exact float32 values from the switch on
    assert torch.equal(values[1], seen[1].half().float())  # earlier ones converted exactly
    assert torch.isfinite(tracker.get_feature("0.output").as_tensor()).all()
    # series that never overflowed keep float16
    assert tracker.get_feature("2.weight").storage.dtype == torch.float16
    assert tracker.get_feature("0.bias").storage.dtype == torch.float16


def test_values_within_float16_range_and_already_infinite_values_stay_float16():
    model, opt = model_and_opt()
    tracker = half_tracker(model, opt)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Float16OverflowWarning)
        with tracker:
            steps(model, opt, 2, blow_up_at=1, value=65000.0)
            at_2 = model[0].weight.detach().clone()
            with torch.no_grad():
                model[0].weight[0, 0] = float("inf")  # a run that has already diverged
            steps(model, opt, 1)
    w = tracker.get_feature("0.weight")
    assert w.storage.dtype == torch.float16
    assert torch.equal(w.get_at_step(2), at_2.half())
    assert 6e4 < w.get_at_step(2)[1, 2] < 65504  # large, within range
    assert not torch.isfinite(w.get_latest()).all()  # the diverged values, as they were


def test_overflowing_gradients_are_kept():
    model, _ = model_and_opt()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # the weights stay small
    tracker = FeatureTracker(
        model, layers=["2"], optimizer=opt, dtype=torch.float16, track_gradients=True
    )
    with warnings.catch_warnings(record=True) as caught, tracker:
        warnings.simplefilter("always")
        opt.zero_grad()
        (model(torch.randn(8, 5)).sum() * 1e7).backward()
        expected = model[2].weight.grad.clone()
        opt.step()
    named = sorted(str(w.message).split("'")[1] for w in caught)
    assert named == ["2.bias.grad", "2.weight.grad"]
    g = tracker.get_feature("2.weight.grad")
    assert g.storage.dtype == torch.float32
    assert torch.equal(g.get_latest(), expected)
    assert tracker.get_feature("2.weight").storage.dtype == torch.float16


def test_disk_run_switches_dtype_and_reads_back_every_snapshot(tmp_path):
    model, opt = model_and_opt()
    tracker = half_tracker(
        model,
        opt,
        storage="disk",
        directory=tmp_path / "live",
        chunk_size=2,
    )
    with pytest.warns(Float16OverflowWarning, match="step 4"):
        tracker.start()
        steps(model, opt, 3, blow_up_at=3)
        # the switch rewrote run.json before any float32 chunk: a crash now stays readable
        steps(model, opt, 1)
        tracker.flush()
        manifest = json.loads((tmp_path / "live" / "run.json").read_text())
        assert manifest["features"][0]["dtype"] == "float32"
        with pytest.warns(UserWarning, match="unfinished"):
            crashed = load_run(tmp_path / "live").get_feature("0.weight").as_tensor()
        steps(model, opt, 2)
        tracker.close()
    w = tracker.get_feature("0.weight")
    assert w.storage.dtype == torch.float32 and len(w) == 7
    values = w.as_tensor()
    assert torch.equal(values[6], model[0].weight.detach())
    assert values[4:, 1, 2].min() > 9e5
    assert torch.equal(crashed, values[:5])
    live = load_run(tmp_path / "live").get_feature("0.weight")
    saved = load_run(tracker.save(tmp_path / "saved")).get_feature("0.weight")
    for run in (live, saved):
        assert run.storage.dtype == torch.float32
        assert torch.equal(run.as_tensor(), values)


def test_downsampled_and_preallocated_series_keep_their_steps_after_the_switch():
    model, opt = model_and_opt()
    tracker = half_tracker(
        model,
        opt,
        memory_budget=6 * 2 * (20 + 4),  # 6 float16 snapshots of weight + bias
        budget_policy="downsample",
        preallocate=True,
    )
    with pytest.warns(Float16OverflowWarning), tracker:
        steps(model, opt, 20, blow_up_at=5)
    w, b = tracker.get_feature("0.weight"), tracker.get_feature("0.bias")
    assert w.storage.dtype == torch.float32 and b.storage.dtype == torch.float16
    assert w.steps.tolist() == b.steps.tolist()
    assert w.steps[-1] <= 20 and len(w) <= 6
    assert torch.equal(w.get_latest(), model[0].weight.detach())


def test_feature_append_and_storages_switch_too(tmp_path):
    f = Feature("w", layer_name="fc", dtype=torch.float16)
    f.append(torch.ones(3))
    with pytest.warns(Float16OverflowWarning, match=r"'w' \(layer 'fc'\) at step 1"):
        f.append(torch.tensor([1.0, -2e5, 3.0]))
    assert f.storage.dtype == torch.float32
    assert f.as_tensor().tolist() == [[1.0, 1.0, 1.0], [1.0, -2e5, 3.0]]

    mem = MemoryStorage((2,), torch.float16, chunk_size=2, pin=False)
    disk = DiskStorage(tmp_path / "d", (2,), torch.float16, chunk_size=2)
    for store in (mem, disk):
        for i in range(3):
            store.append(torch.full((2,), float(i)), i, 0, i)
        store.promote(torch.float32)
        store.append(torch.full((2,), 1e6), 3, 0, 3)
        assert store.dtype == torch.float32
        assert store.read(0, 4)[:, 0].tolist() == [0.0, 1.0, 2.0, 1e6]
        assert store.index()[:, 0].tolist() == [0, 1, 2, 3]
    disk.close()


def test_overflow_warning_points_at_the_users_line():
    # a fixed stacklevel named flt_tracker/tracker.py (or torch's optimizer wrapper)
    def files(record):
        return [w.filename for w in record if w.category is Float16OverflowWarning]

    model, opt = model_and_opt()
    with torch.no_grad():
        model[0].weight[0, 0] = 1e6
    tracker = half_tracker(model, opt)
    with pytest.warns(Float16OverflowWarning) as record:
        tracker.start()  # the initial snapshot overflows
    tracker.stop()
    assert files(record) == [__file__]

    model, opt = model_and_opt()
    with half_tracker(model, opt):
        with torch.no_grad():
            model[0].weight[0, 0] = 1e6
        with pytest.warns(Float16OverflowWarning) as record:
            opt.step()  # recorded by the optimizer step post-hook
    assert files(record) == [__file__]

    model, opt = model_and_opt()
    with FeatureTracker(model, layers=["0"], dtype=torch.float16) as tracker:  # stepped by hand
        with torch.no_grad():
            model[0].weight[0, 0] = 1e6
        with pytest.warns(Float16OverflowWarning) as record:
            tracker.step()
    assert files(record) == [__file__]
