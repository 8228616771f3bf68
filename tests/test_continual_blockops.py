"""continual with blockops: devices and checkpoints go through the shared backend."""

import blockops
import numpy as np
import pytest
import torch

continual = pytest.importorskip("continual")


def test_trainer_checkpoint_is_a_blockops_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    y = np.arange(40) % 4
    scenario = continual.class_incremental(X, y, X, y, 2)
    torch.manual_seed(0)
    trainer = continual.Trainer(
        continual.MLP(5, (8,), 4),
        continual.EWC(1.0),
        epochs=1,
        device=blockops.resolve_device("cpu"),
    )
    trainer.fit_stream(scenario, checkpoint_dir=tmp_path / "ckpt")
    config, tensors, meta = blockops.load_checkpoint(tmp_path / "ckpt")
    assert meta["package"] == "continual" and config["experiences_done"] == 2
    assert config["strategy"]["class"] == "EWC"
    assert any(k.startswith("strategy.ewc.1.fisher.") for k in tensors)
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())
