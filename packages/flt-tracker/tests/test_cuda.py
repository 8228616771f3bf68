"""GPU paths: pinned, non-blocking offload of snapshots. Skipped without CUDA."""

import copy
from types import SimpleNamespace

import pytest
import torch
from flt_tracker import Feature, FeatureTracker, load_run
from flt_tracker.attacks import pgd
from flt_tracker.callbacks import ModelCheckpoint
from flt_tracker.trainer import Trainer
from torch import nn

pytestmark = pytest.mark.cuda


def test_gpu_snapshots_land_in_pinned_cpu_memory_and_equal_parameters():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    tracker = FeatureTracker(model, layers=["0", "2"], optimizer=opt, track_gradients=True)
    expected = []
    with tracker:
        for _ in range(5):
            opt.zero_grad()
            model(torch.randn(32, 64, device="cuda")).logsumexp(1).mean().backward()
            opt.step()
            expected.append(model[0].weight.detach().cpu().clone())
    f = tracker.get_feature("0.weight")
    assert f.storage.pin and f.storage._blocks[0].is_pinned()
    assert f.get_latest().device.type == "cpu"
    assert torch.equal(f.as_tensor()[1:], torch.stack(expected))


def test_gpu_disk_backend_and_float16(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(32, 16).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = FeatureTracker(
        model,
        optimizer=opt,
        storage="disk",
        directory=tmp_path / "run",
        dtype=torch.float16,
        chunk_size=3,
    )
    with tracker:
        for _ in range(7):
            opt.zero_grad()
            model(torch.randn(8, 32, device="cuda")).pow(2).mean().backward()
            opt.step()
    tracker.close()
    w = load_run(tmp_path / "run").get_feature("weight")
    assert len(w) == 8 and w.storage.dtype == torch.float16
    torch.testing.assert_close(
        w.get_latest().float(), model.weight.detach().cpu(), atol=1e-3, rtol=1e-3
    )


@pytest.mark.parametrize("storage", ["memory", "disk"])
def test_gpu_float16_overflow_switches_to_float32(tmp_path, storage):
    from flt_tracker import Float16OverflowWarning
    from flt_tracker.storage import float16_overflows

    big = torch.tensor([1.0, 7e4], device="cuda")
    assert float16_overflows([big, big.half(), torch.tensor([1.0], device="cuda")]) == [
        True,
        False,
        False,
    ]
    torch.manual_seed(0)
    model = nn.Linear(32, 16).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    extra = {"storage": "disk", "directory": tmp_path / "run"} if storage == "disk" else {}
    tracker = FeatureTracker(
        model, optimizer=opt, dtype=torch.float16, track_gradients=True, chunk_size=2, **extra
    )
    with pytest.warns(Float16OverflowWarning, match="'weight'"), tracker:
        for i in range(5):
            if i == 2:
                with torch.no_grad():
                    model.weight[0, 0] = 1e6
            opt.zero_grad()
            model(torch.randn(8, 32, device="cuda")).mean().backward()
            opt.step()
    w = tracker.get_feature("weight")
    assert w.storage.dtype == torch.float32
    assert w.as_tensor()[3:, 0, 0].tolist() == [1e6] * 3
    assert torch.equal(w.get_latest(), model.weight.detach().cpu())
    assert tracker.get_feature("bias").storage.dtype == torch.float16


def test_trainer_on_cuda():
    torch.manual_seed(0)
    model = nn.Linear(8, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = torch.randn(32, 8), torch.randint(0, 2, (32,))
    trainer = Trainer(model, opt, device="cuda")
    trainer.fit([(X[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)], 1)
    assert next(model.parameters()).device.type == "cuda" and trainer.global_step == 4


def test_pgd_random_start_with_a_cpu_generator_on_cuda():
    # the start is drawn on the generator's device (CPU), then moved: same start as on the CPU
    torch.manual_seed(0)
    model = nn.Linear(8, 3)
    x, y = torch.randn(16, 8), torch.randint(0, 3, (16,))
    out = {}
    for dev in ("cpu", "cuda"):
        m = copy.deepcopy(model).to(dev)
        for norm in ("l2", "linf"):
            g = torch.Generator().manual_seed(1)
            adv = pgd(
                m,
                x.to(dev),
                y.to(dev),
                nn.functional.cross_entropy,
                0.5,
                steps=2,
                norm=norm,
                random_start=True,
                generator=g,
            )
            assert adv.device.type == dev
            out[dev, norm] = adv.cpu()
    torch.testing.assert_close(out["cpu", "l2"], out["cuda", "l2"], atol=1e-4, rtol=1e-4)
    assert (out["cuda", "linf"] - x).abs().max() <= 0.5 + 1e-6


def test_model_checkpoint_of_a_cuda_run_holds_cpu_tensors(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(8, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    X, y = torch.randn(32, 8), torch.randint(0, 2, (32,))
    trainer = Trainer(model, opt, device="cuda", callbacks=[ModelCheckpoint(tmp_path)])
    trainer.fit([(X[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)], 1)
    state = torch.load(tmp_path / "last.pt", weights_only=True)  # no map_location needed
    tensors = list(state["model"].values())
    tensors += [v for s in state["optimizer"]["state"].values() for v in s.values()]
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    assert torch.equal(state["model"]["weight"], model.weight.detach().cpu())
    opt.load_state_dict(state["optimizer"])  # and it loads back into the GPU run
    assert opt.state[model.weight]["exp_avg"].device.type == "cuda"


def test_plots_take_a_cuda_basis_and_a_metric_computed_on_the_gpu():
    plot = pytest.importorskip("flt_tracker.plot")
    f = Feature("W")
    for step in range(3):
        f.append(torch.randn(4, 6), step=step)
    basis = torch.linalg.qr(torch.randn(6, 6))[0]
    run = SimpleNamespace(get_features=lambda: {"W": f})
    fig = plot.visualize_features_heatmap(run, step=2, basis=basis.cuda())
    ref = plot.visualize_features_heatmap(run, step=2, basis=basis)
    a, b = fig.axes[0].images[0].get_array(), ref.axes[0].images[0].get_array()
    assert abs(a - b).max() < 1e-5
    fig = plot.visualize_feature_evolution(f, metric=lambda v: v.cuda().norm(dim=-1))
    assert len(fig.axes[0].collections) == 1


def test_trainer_on_the_cpu_takes_batches_that_live_on_the_gpu():
    torch.manual_seed(0)
    model = nn.Linear(8, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = torch.randn(4096, 8, device="cuda"), torch.randint(0, 2, (4096,), device="cuda")
    ref = copy.deepcopy(model)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    Trainer(model, opt, device="cpu").fit([(X, y)], 1)
    Trainer(ref, ref_opt, device="cpu").fit([(X.cpu(), y.cpu())], 1)
    assert torch.equal(model.weight, ref.weight)
