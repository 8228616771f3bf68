"""The Trainer under a torchrun-like environment: DDP over Gloo with 2 CPU processes.

Processes are forked (no re-import of torch); tracking runs on rank 0 only.
"""

import multiprocessing as mp
import os
import socket
import sys

import pytest
import torch
from flt_tracker import FeatureTracker, FeatureTrackingCallback, Trainer, load_run
from torch import nn


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, port, out, queue):
    try:
        os.environ.update(
            {
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "WORLD_SIZE": "2",
            }
        )
        torch.set_num_threads(1)
        torch.manual_seed(0)  # same initial weights on both ranks
        model = nn.Linear(4, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        tracker = FeatureTracker(model, optimizer=opt)
        g = torch.Generator().manual_seed(10 + rank)  # different data per rank
        batches = [
            (torch.randn(8, 4, generator=g), torch.randint(0, 2, (8,), generator=g))
            for _ in range(3)
        ]
        trainer = Trainer(model, opt, callbacks=[FeatureTrackingCallback(tracker)], device="cpu")
        assert isinstance(trainer.model, nn.parallel.DistributedDataParallel)
        trainer.fit(batches, 1)
        if rank == 0:
            tracker.save(os.path.join(out, "run"))
        queue.put(
            (
                rank,
                len(tracker.get_features()),
                model.weight.detach().clone().tolist(),
                trainer.history[-1]["loss"],
            )
        )
        torch.distributed.destroy_process_group()
    except BaseException as exc:  # report instead of hanging the parent
        queue.put((rank, "error", repr(exc), None))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork start method needed")
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_ddp_two_ranks_track_on_rank_zero_only(tmp_path):
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, port, str(tmp_path), queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict((r, rest) for r, *rest in (queue.get(timeout=120) for _ in procs))
    for p in procs:
        p.join(timeout=60)
    assert all(res[0] != "error" for res in results.values()), results
    n0, w0, loss0 = results[0]
    n1, w1, loss1 = results[1]
    assert n0 == 2 and n1 == 0  # rank 1 never started its tracker
    assert w0 == w1  # DDP kept the replicas identical
    assert loss0 == pytest.approx(loss1)  # epoch loss averaged over ranks
    run = load_run(tmp_path / "run")
    W = run.get_feature("weight")
    assert W.steps.tolist() == [0, 1, 2, 3]
    assert W.get_latest().tolist() == w0
