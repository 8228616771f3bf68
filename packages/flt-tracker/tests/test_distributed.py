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
    """
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_ddp_two_ranks_track_on_rank_zero_only(tmp_path):
    import flt_tracker

    paths = [str(Path(flt_tracker.__file__).parents[1])] + [p for p in sys.path if p]
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(paths=paths, out=str(tmp_path)))
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
        codes = [p.wait(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert codes == [0, 0]
    n0, w0, loss0 = json.loads((tmp_path / "rank0.json").read_text())
    n1, w1, loss1 = json.loads((tmp_path / "rank1.json").read_text())
    assert n0 == 2 and n1 == 0  # rank 1 never started its tracker
    assert w0 == w1  # DDP kept the replicas identical
    assert loss0 == pytest.approx(loss1)  # epoch loss averaged over ranks
    W = load_run(tmp_path / "run").get_feature("weight")
    assert W.steps.tolist() == [0, 1, 2, 3]
    assert W.get_latest().tolist() == w0
