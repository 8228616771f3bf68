"""Two CPU processes with the gloo backend: Fisher and data-parallel training match one process."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 4  # 16 per class: every batch of 16 splits 8 / 8 over two ranks
    X = torch.randn(64, 6, generator=g) + y.unsqueeze(1).float()
    return X, y


def _model():
    import continual as cl

    torch.manual_seed(0)
    return cl.MLP(6, (8,), 4)


def _worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    import continual as cl
    from continual.distributed import get_rank, get_world_size, maybe_initialize

    assert maybe_initialize("gloo")
    assert get_rank() == rank and get_world_size() == world
    X, y = _data()
    model = _model()
    shard = slice(rank * 32, (rank + 1) * 32)
    fisher = model.estimate_fisher((X[shard], y[shard]), torch.nn.functional.cross_entropy)
    sc = cl.class_incremental(X, y, X, y, class_order=[[0, 1], [2, 3]])
    out = {"fisher": fisher}
    for name, strategy in (("naive", cl.Naive()), ("replay", cl.Replay(mem_size=8))):
        tr = cl.Trainer(_model(), strategy, lr=0.1, epochs=2, batch_size=16, device="cpu")
        tr.fit_stream(sc)
        out[name] = torch.cat([p.detach().reshape(-1) for p in tr.model.parameters()])
    torch.save(out, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_two_gloo_ranks_match_single_process(tmp_path):
    import continual as cl

    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    X, y = _data()
    full = _model().estimate_fisher((X, y), torch.nn.functional.cross_entropy)
    for n in full:
        torch.testing.assert_close(r0["fisher"][n], full[n])
        torch.testing.assert_close(r1["fisher"][n], full[n])
    # replicas stay identical (averaged gradients, same memory on every rank)
    for name in ("naive", "replay"):
        torch.testing.assert_close(r0[name], r1[name], rtol=0, atol=0)
    # data-parallel Naive equals one process on the full batches
    sc = cl.class_incremental(X, y, X, y, class_order=[[0, 1], [2, 3]])
    tr = cl.Trainer(_model(), cl.Naive(), lr=0.1, epochs=2, batch_size=16, device="cpu")
    tr.fit_stream(sc)
    single = torch.cat([p.detach().reshape(-1) for p in tr.model.parameters()])
    torch.testing.assert_close(r0["naive"], single, rtol=1e-4, atol=1e-5)
