"""The README example: track two layers of an MLP after every 2nd optimizer step, read the series,
save and reload the run.

    python examples/flt_basic_tracking.py [--smoke] [--out runs/basic]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from flt_tracker import FeatureTracker, load_run
from torch import nn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--smoke", action="store_true", help="same run (it already takes a second)")
    ap.add_argument(
        "--out", type=Path, default=None, help="where to save the run (default: a temp dir)"
    )
    args = ap.parse_args()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = torch.randn(512, 784), torch.randint(0, 10, (512,))

    tracker = FeatureTracker(model, layers=["0", "2"], optimizer=opt, track_frequency=2)
    with tracker:  # records after every 2nd optimizer.step(), never on forwards
        for epoch in range(3):
            tracker.on_epoch_start(epoch)
            for b in range(4):
                opt.zero_grad()
                nn.functional.cross_entropy(model(X[b::4]), y[b::4]).backward()
                opt.step()
                with torch.no_grad():
                    model(X[:64])  # an evaluation forward: not recorded
                tracker.on_batch_end(b)

    w = tracker.get_feature("0.weight")
    print(w)
    print("steps", w.steps, "epochs", w.epochs, "batches", w.batch_indices)
    print("latest == current weight:", torch.equal(w.get_latest(), model[0].weight))
    print("norm", w.norm())
    print("cosine to init", w.cosine_to_init())
    print("epoch 1 snapshots", tuple(w.get_at_epoch(1).shape))
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "basic"
        run = load_run(tracker.save(out))
        print(
            f"saved to {out}; reloaded 2.bias series {tuple(run.get_feature('2.bias').as_tensor().shape)}"
        )


if __name__ == "__main__":
    main()
