"""The original's small helpers: dist_utils, the toy data helpers and the memory histogram."""

import math

import continual as cl
import numpy as np
import pytest
import torch
import torch.distributed as dist
from continual import distributed as cd
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import (
    DataLoader,
    DistributedSampler,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed missing")


@pytest.fixture
def gloo_group(tmp_path):
    """A real one-rank gloo process group, destroyed afterwards."""
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", world_size=1, rank=0
    )
    try:
        yield
    finally:
        dist.destroy_process_group()


OPS = ("sum", "avg", "max", "min", "product")


# ---------------------------------------------------------------- distributed helpers
def test_local_rank_from_environment(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert cd.get_local_rank() == 0
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert cd.get_local_rank() == 3
    monkeypatch.setenv("LOCAL_RANK", "x")
    with pytest.raises(ValueError, match="LOCAL_RANK"):
        cd.get_local_rank()


def test_print0_prints_on_rank0(capsys, gloo_group):
    cd.print0("hello", 1, sep="-")
    assert capsys.readouterr().out == "hello-1\n"


def test_print0_without_group_and_on_other_ranks(capsys, monkeypatch):
    cd.print0("plain")
    assert capsys.readouterr().out == "plain\n"
    monkeypatch.setattr(cd, "get_rank", lambda: 1)
    cd.print0("hidden")
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("op", OPS)
def test_all_reduce_each_op_in_group(op, gloo_group):
    t = torch.tensor([1.5, -2.0, 4.0])
    out = cd.all_reduce(t, op)
    assert out is t  # reduced in place
    torch.testing.assert_close(t, torch.tensor([1.5, -2.0, 4.0]))  # one rank: unchanged
    n = cd.all_reduce(3, op)
    assert n == 3 and isinstance(n, float if op == "avg" else int)
    assert cd.all_reduce(2.5, op) == 2.5


@pytest.mark.parametrize("op", OPS)
def test_all_reduce_each_op_without_group(op):
    t = torch.tensor([1.0, 2.0])
    assert cd.all_reduce(t, op) is t
    torch.testing.assert_close(t, torch.tensor([1.0, 2.0]))
    n = cd.all_reduce(7, op)
    assert n == 7 and isinstance(n, float if op == "avg" else int)


def test_all_reduce_integer_tensor_in_group(gloo_group):
    t = torch.tensor([2, 3])
    assert cd.all_reduce(t, "max") is t and t.tolist() == [2, 3]


def test_all_reduce_bad_arguments():
    with pytest.raises(ValueError, match="op='mean'"):
        cd.all_reduce(1.0, "mean")
    with pytest.raises(TypeError, match="value"):
        cd.all_reduce("1", "sum")
    with pytest.raises(TypeError, match="value"):
        cd.all_reduce(True, "sum")
    with pytest.raises(TypeError, match="op='avg'"):
        cd.all_reduce(torch.tensor([1, 2]), "avg")


def test_maybe_ddp_wrap_in_group(gloo_group):
    model = torch.nn.Linear(3, 2)
    wrapped = cd.maybe_ddp_wrap(model)
    assert isinstance(wrapped, DistributedDataParallel)
    assert wrapped.module is model
    out = wrapped(torch.randn(4, 3))
    assert out.shape == (4, 2)


def test_maybe_ddp_wrap_without_group():
    model = torch.nn.Linear(3, 2)
    assert cd.maybe_ddp_wrap(model) is model
    with pytest.raises(TypeError, match="model"):
        cd.maybe_ddp_wrap(lambda x: x)


def test_helpers_without_group():
    assert not dist.is_initialized()
    assert cd.get_rank() == 0 and cd.get_world_size() == 1 and not cd.is_distributed()


def _order(sampler):
    return list(iter(sampler))


def test_sampler_in_group_matches_single_process(gloo_group):
    ds = TensorDataset(torch.arange(20.0))
    s = cd.create_distributed_sampler(ds, epoch=3, seed=7)
    assert isinstance(s, DistributedSampler) and s.epoch == 3
    assert sorted(_order(s)) == list(range(20))
    assert _order(s) == _order(cd.create_distributed_sampler(ds, epoch=3, seed=7))
    assert _order(s) != _order(cd.create_distributed_sampler(ds, epoch=4, seed=7))
    ordered = cd.create_distributed_sampler(ds, shuffle=False)
    assert isinstance(ordered, DistributedSampler) and _order(ordered) == list(range(20))


def test_sampler_without_group():
    ds = TensorDataset(torch.arange(20.0))
    s = cd.create_distributed_sampler(ds, epoch=1, seed=5)
    assert isinstance(s, RandomSampler)
    first = _order(s)
    assert sorted(first) == list(range(20))
    assert first == _order(cd.create_distributed_sampler(ds, epoch=1, seed=5))
    assert first != _order(cd.create_distributed_sampler(ds, epoch=2, seed=5))
    one_rank = DistributedSampler(ds, num_replicas=1, rank=0, seed=5)
    one_rank.set_epoch(1)
    assert first == _order(one_rank)  # the same order as a one-rank run
    seq = cd.create_distributed_sampler(ds, shuffle=False, drop_last=True)
    assert isinstance(seq, SequentialSampler) and _order(seq) == list(range(20))
    assert len(list(DataLoader(ds, batch_size=4, sampler=s))) == 5


def test_sampler_bad_arguments():
    ds = TensorDataset(torch.arange(4.0))
    with pytest.raises(ValueError, match="epoch"):
        cd.create_distributed_sampler(ds, epoch=-1)
    with pytest.raises(ValueError, match="seed"):
        cd.create_distributed_sampler(ds, seed=1.5)
    with pytest.raises(TypeError, match="dataset"):
        cd.create_distributed_sampler(iter(range(3)))


# ---------------------------------------------------------------- toy helpers
def test_generate_fake_toy():
    X, Y = cl.generate_fake_toy()
    assert X.shape == (5, 1) and Y.shape == (5, 1) and X.dtype == torch.float32
    torch.testing.assert_close(X[:, 0], torch.arange(5.0))
    torch.testing.assert_close(Y, 10 * X)
    assert cl.generate_fake_toy(2)[0].tolist() == [[0.0], [1.0]]
    with pytest.raises(ValueError, match="npoints"):
        cl.generate_fake_toy(0)


def test_points_on_circle():
    P = cl.points_on_circle(2.0, 8)
    assert P.shape == (8, 2)
    torch.testing.assert_close(P.norm(dim=1), torch.full((8,), 2.0))
    torch.testing.assert_close(P[0], torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(P[2], torch.tensor([0.0, 2.0]), atol=1e-6, rtol=0)
    gaps = (P - P.roll(1, dims=0)).norm(dim=1)  # equidistant neighbours
    torch.testing.assert_close(gaps, torch.full((8,), 4.0 * math.sin(math.pi / 8)))
    with pytest.raises(ValueError, match="radius"):
        cl.points_on_circle(-1.0, 4)
    with pytest.raises(ValueError, match="npoints"):
        cl.points_on_circle(1.0, 0)


def test_time_dependent_iter_dataset_advances_time():
    X, Y = cl.generate_toy8("all", 16, random_state=0)
    ds = cl.TimeDependentIterDataset(X, Y, dt=0.5, nsteps=3)
    assert len(ds) == 48 and ds.times == [0.0, 0.5, 1.0]
    items = list(ds)
    assert len(items) == 48
    Xs = torch.stack([x for x, _ in items]).reshape(3, 16, 2)
    Ys = torch.stack([y for _, y in items]).reshape(3, 16, 8)
    Xr, Yr = cl.td_arrays(X, Y, time=[0.0, 0.5, 1.0])
    torch.testing.assert_close(Xs, Xr)
    torch.testing.assert_close(Ys, Yr)
    assert len(list(ds)) == 48  # every iteration starts at time 0 again, and ends


def test_time_dependent_iter_dataset_with_workers_and_loader():
    X, Y = cl.generate_fake_toy(6)
    ds = cl.TimeDependentIterDataset(X, Y, nsteps=2)
    xb, yb = next(iter(DataLoader(ds, batch_size=12)))
    assert xb.shape == (12, 1)
    torch.testing.assert_close(xb[6:], xb[:6] + 1)  # second step shifted by dt = 1
    loader = DataLoader(ds, batch_size=None, num_workers=2)
    got = sorted(float(x) for x, _ in loader)
    assert got == sorted(float(x) for x, _ in ds)  # each row once per step, not per worker


def test_time_dependent_iter_dataset_bad_arguments():
    X, Y = cl.generate_fake_toy(4)
    with pytest.raises(ValueError, match="nsteps"):
        cl.TimeDependentIterDataset(X, Y, nsteps=0)
    with pytest.raises(ValueError, match="dt"):
        cl.TimeDependentIterDataset(X, Y, dt=float("nan"))
    with pytest.raises(ValueError, match="rows"):
        cl.TimeDependentIterDataset(X, Y[:3])


def test_label2color_toyN():
    _, Y = cl.generate_toy8("all", 16, random_state=0)
    Ys = cl.td_arrays(Y, Y, time=[0.0, 3.0])[1].reshape(32, 8)  # intensities 1 and 4
    rgba = cl.label2color_toyN(Ys)
    assert rgba.shape == (32, 4) and rgba.dtype == np.float64
    np.testing.assert_allclose(rgba[:16, 3], 0.25)
    np.testing.assert_allclose(rgba[16:, 3], 1.0)
    np.testing.assert_array_equal(rgba[:16, :3], rgba[16:, :3])  # colour = label, not time
    assert len({tuple(c) for c in rgba[:16, :3]}) == 8
    assert cl.label2color_toyN(np.zeros((3, 2)))[:, 3].tolist() == [1.0, 1.0, 1.0]


def test_label2color_matches_matplotlib_tab10():
    mpl = pytest.importorskip("matplotlib")
    rgba = cl.label2color_toyN(torch.eye(10))
    want = np.asarray(mpl.colormaps["tab10"].colors)
    np.testing.assert_allclose(rgba[:, :3], want, atol=1e-3)


def test_label2color_bad_arguments():
    with pytest.raises(ValueError, match="Y must be 2-D"):
        cl.label2color_toyN(torch.ones(4))
    with pytest.raises(ValueError, match="Y must be 2-D"):
        cl.label2color_toyN(torch.ones(4, 11))
    with pytest.raises(ValueError, match="finite"):
        cl.label2color_toyN(torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(TypeError, match="Y"):
        cl.label2color_toyN("labels")


# ---------------------------------------------------------------- memory histogram
@pytest.mark.parametrize("policy", ["quota", "reservoir", "fifo"])
def test_memory_status_counts_per_task(policy):
    mem = cl.EpisodicMemory(10, policy=policy, random_state=0)
    assert mem.status() == {}
    mem.add(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), task_id=3)
    assert mem.status() == {3: 4}
    for t in (5, 1):
        mem.add(torch.ones(8, 2), torch.ones(8, dtype=torch.long), task_id=t)
    status = mem.status()
    assert list(status) == [t for t in (3, 5, 1) if t in status]
    assert sum(status.values()) == len(mem) == 10
    stored = mem.dataset().tensors[-1]
    assert status == {t: int((stored == t).sum()) for t in mem.tasks()}
