"""The Trainer under a torchrun-like environment: DDP over Gloo with 2 CPU processes.

Each rank is a fresh interpreter (no fork); tracking runs on rank 0 only.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from flt_tracker import load_run

WORKER = textwrap.dedent(
    """
    import json, os, sys
    sys.path[:0] = {paths!r}
    import torch
    from torch import nn
    from flt_tracker import FeatureTracker, FeatureTrackingCallback, Trainer
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    torch.manual_seed(0)  # same initial weights on both ranks
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = FeatureTracker(model, optimizer=opt)
    g = torch.Generator().manual_seed(10 + rank)  # different data per rank
    batches = [(torch.randn(8, 4, generator=g), torch.randint(0, 2, (8,), generator=g)) for _ in range(3)]
    trainer = Trainer(model, opt, callbacks=[FeatureTrackingCallback(tracker)], device="cpu")
    assert isinstance(trainer.model, nn.parallel.DistributedDataParallel)
    trainer.fit(batches, 1)
    if rank == 0:
        tracker.save(os.path.join({out!r}, "run"))
    with open(os.path.join({out!r}, f"rank{{rank}}.json"), "w") as fh:
        json.dump([len(tracker.get_features()), model.weight.detach().tolist(), trainer.history[-1]["loss"]], fh)
    torch.distributed.barrier()  # no rank tears the group down while the other still uses it
    torch.distributed.destroy_process_group()
    sys.stdout.flush(); sys.stderr.flush()
    # skip the interpreter's C++ teardown: under load a Gloo thread destroyed at exit sometimes
    # aborted a rank whose work was done ("terminate called without an active exception")
    os._exit(0)
    """
)


# flt-train's main() on two ranks; records the dataset rows of every batch each rank trains on
# and validates on, and the full test set's accuracy of the final model
RUN_WORKER = textwrap.dedent(
    """
    import contextlib, io, json, os, sys
    sys.path[:0] = {paths!r}
    import torch
    from flt_tracker.train import main
    from flt_tracker.trainer import Trainer
    torch.set_num_threads(1)
    seen = {{"train": [], "val": []}}
    last = {{}}

    def whole(loader):  # the TensorDataset (inside a rank's Subset)
        return getattr(loader.dataset, "dataset", loader.dataset).tensors

    def recorded(loader, into):
        X = whole(loader)[0]
        for batch in loader:
            into += (batch[0][:, None] == X).all(-1).nonzero()[:, 1].tolist()
            yield batch

    train_epoch, evaluate = Trainer._train_epoch, Trainer.evaluate

    def train_epoch_recorded(self, loader, epoch):
        seen["train"].append([])
        return train_epoch(self, recorded(loader, seen["train"][-1]), epoch)

    def evaluate_recorded(self, loader):
        last.update(trainer=self, test=loader)
        seen["val"].append([])
        return evaluate(self, recorded(loader, seen["val"][-1]))

    Trainer._train_epoch, Trainer.evaluate = train_epoch_recorded, evaluate_recorded
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # flt-train, as torchrun starts it on each rank
        main([
            "--no-hydra", "model=mlp", "data=gaussian", "data.n_train=256", "data.n_test=101",
            "epochs=2", "tracking=off", "logging.wandb=false", "logging.csv=false",
            "device=cpu", "output_dir={out}",
        ])
    trainer = last["trainer"]
    X, y = whole(last["test"])
    with torch.no_grad():
        full = (trainer.raw_model(X).argmax(-1) == y).float().mean().item()
    rank = int(os.environ["RANK"])
    with open(os.path.join({out!r}, f"run{{rank}}.json"), "w") as fh:
        json.dump({{**seen, "steps": trainer.global_step, "full_accuracy": full,
                   "val_accuracy": trainer.history[-1]["val_accuracy"],
                   "printed": printed.getvalue()}}, fh)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    sys.stdout.flush(); sys.stderr.flush()
    # skip the interpreter's C++ teardown: under load a Gloo thread destroyed at exit sometimes
    # aborted a rank whose work was done ("terminate called without an active exception")
    os._exit(0)
    """
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_two_ranks(worker, tmp_path):
    """Run ``worker`` as ranks 0 and 1 of a torchrun-like job; their exit codes."""
    import flt_tracker

    paths = [str(Path(flt_tracker.__file__).parents[1])] + [p for p in sys.path if p]
    script = tmp_path / "worker.py"
    script.write_text(worker.format(paths=paths, out=str(tmp_path)))
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = dict(
            os.environ,
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
        )
        procs.append(subprocess.Popen([sys.executable, str(script)], env=env))
    try:
        return [p.wait(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_ddp_two_ranks_track_on_rank_zero_only(tmp_path):
    assert _launch_two_ranks(WORKER, tmp_path) == [0, 0]
    n0, w0, loss0 = json.loads((tmp_path / "rank0.json").read_text())
    n1, w1, loss1 = json.loads((tmp_path / "rank1.json").read_text())
    assert n0 == 2 and n1 == 0  # rank 1 never started its tracker
    assert w0 == w1  # DDP kept the replicas identical
    assert loss0 == pytest.approx(loss1)  # epoch loss averaged over ranks
    W = load_run(tmp_path / "run").get_feature("weight")
    assert W.steps.tolist() == [0, 1, 2, 3]
    assert W.get_latest().tolist() == w0


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_flt_train_shards_the_data_between_ranks(tmp_path):
    assert _launch_two_ranks(RUN_WORKER, tmp_path) == [0, 0]
    r0 = json.loads((tmp_path / "run0.json").read_text())
    r1 = json.loads((tmp_path / "run1.json").read_text())
    for epoch in range(2):  # was: both ranks trained on all 256 samples every epoch
        t0, t1 = r0["train"][epoch], r1["train"][epoch]
        assert len(t0) == len(t1) == 128 and not set(t0) & set(t1)
        assert sorted(t0 + t1) == list(range(256))
        v0, v1 = r0["val"][epoch], r1["val"][epoch]  # 101 samples: 51 + 50, none padded
        assert not set(v0) & set(v1) and sorted(v0 + v1) == list(range(101))
    assert set(r0["train"][0]) != set(r0["train"][1])  # set_epoch reshuffles every epoch
    assert r0["steps"] == r1["steps"] == 4  # 128 samples per rank, batches of 64
    # validation metrics summed over the shards are those of the whole test set
    assert r0["val_accuracy"] == pytest.approx(r0["full_accuracy"])
    assert r1["val_accuracy"] == pytest.approx(r0["val_accuracy"])
    # flt-train prints the final metrics once, from rank 0 (was: one line per rank)
    assert json.loads(r0["printed"])["val_accuracy"] == pytest.approx(r0["val_accuracy"])
    assert r1["printed"] == ""
    assert json.loads((tmp_path / "summary.json").read_text())["global_step"] == 4
