"""GPU paths: pinned, non-blocking offload of snapshots. Skipped without CUDA."""

import pytest
import torch
from flt_tracker import FeatureTracker, load_run
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


def test_trainer_on_cuda():
    torch.manual_seed(0)
    model = nn.Linear(8, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = torch.randn(32, 8), torch.randint(0, 2, (32,))
    trainer = Trainer(model, opt, device="cuda")
    trainer.fit([(X[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)], 1)
    assert next(model.parameters()).device.type == "cuda" and trainer.global_step == 4
