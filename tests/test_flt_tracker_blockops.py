"""flt-tracker with blockops: device policy, seeding, and nearest-atom analysis of tracked weights."""

import blockops
import pytest
import torch
from flt_tracker import FeatureTracker, Trainer
from flt_tracker.purification import TwoLayerSReLU, logistic_loss, make_sparse_coding


def test_trainer_follows_blockops_device_policy():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    assert Trainer(model, opt, device="auto").device == blockops.resolve_device("auto")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            Trainer(model, opt, device="cuda")


def test_tracked_neurons_nearest_atoms_with_blockops_knn():
    data = make_sparse_coding(n_train=2000, n_test=10, d=20, k=2, seed=0)
    model = TwoLayerSReLU(d=20, m=30, generator=blockops.make_generator(1))
    opt = torch.optim.SGD(model.parameters(), lr=2.0)
    tracker = FeatureTracker(model, layers=["W"], optimizer=opt, track_frequency=50)
    batches = [(data.X_train[i : i + 200], data.y_train[i : i + 200]) for i in range(0, 2000, 200)]
    with tracker:
        Trainer(model, opt, device="cpu", loss_fn=logistic_loss).fit(batches, 20)
    W = tracker.get_feature("W").get_latest()
    atoms = torch.cat([data.M.T, -data.M.T])  # signed atoms as a database
    _, idx = blockops.knn(W, atoms, k=1, metric="cosine")
    corr = (W / W.norm(dim=1, keepdim=True)) @ data.M
    expected = torch.where(
        corr.gather(1, corr.abs().argmax(1, keepdim=True)).squeeze(1) > 0,
        corr.abs().argmax(1),
        corr.abs().argmax(1) + 20,
    )
    assert torch.equal(idx[:, 0], expected)  # knn under cosine = the best signed atom
    assert len(tracker.get_feature("W")) == 1 + 200 // 50
