"""The per-step recording path (preallocated row views, flat int64 index, resolved jobs) records
exactly what a plain reference does: every value, every index row, through block boundaries,
memory-budget downsampling and the error policy."""

import numpy as np
import pytest
import torch
from flt_tracker import FeatureTracker, MemoryBudgetError, MemoryStorage
from torch import nn


class ReferenceSeries:
    """The documented downsampling rule, written plainly: offers numbered from 0; keep an offer
    when its number is a multiple of the stride; at capacity double the stride and drop the kept
    snapshots whose offer number is not a multiple of it."""

    def __init__(self, capacity=None, policy="error"):
        self.capacity, self.policy, self.stride = capacity, policy, 1
        self.offers = 0
        self.rows = []  # (offer, step, epoch, batch, value)

    def append(self, value, step, epoch, batch):
        offer = self.offers
        self.offers += 1
        if offer % self.stride:
            return False
        if self.capacity is not None and len(self.rows) >= self.capacity:
            if self.policy == "error":
                raise MemoryBudgetError("full")
            self.stride *= 2
            self.rows = [r for r in self.rows if r[0] % self.stride == 0]
            if offer % self.stride:
                return False
        self.rows.append((offer, step, epoch, batch, value.detach().clone()))
        return True

    def index(self):
        return np.array([r[1:4] for r in self.rows], dtype=np.int64).reshape(-1, 3)

    def values(self):
        return torch.stack([r[4] for r in self.rows])


def assert_same(storage, ref):
    assert len(storage) == len(ref.rows)
    assert storage.index().dtype == np.int64
    np.testing.assert_array_equal(storage.index(), ref.index())
    if ref.rows:
        assert torch.equal(storage.read(0, len(storage)), ref.values())
        assert torch.equal(storage.get(-1), ref.rows[-1][4])


@pytest.mark.parametrize(
    "chunk_size, capacity",
    [(1, None), (3, None), (4, 8), (3, 7), (5, 5), (8, 3), (2, 2)],
)
def test_memory_storage_matches_reference_through_blocks_and_downsampling(chunk_size, capacity):
    g = torch.Generator().manual_seed(chunk_size * 10 + (capacity or 0))
    policy = "downsample" if capacity else "error"
    s = MemoryStorage(
        (3, 2), torch.float32, chunk_size=chunk_size, capacity=capacity, policy=policy
    )
    ref = ReferenceSeries(capacity, policy)
    for i in range(70):
        v = torch.randn(3, 2, generator=g)
        kept = s.append(v, 10 * i, i // 9, i % 9)
        assert kept == ref.append(v, 10 * i, i // 9, i % 9)
        assert_same(s, ref)  # after every append, including right after a thinning
    if capacity:
        assert len(s) <= capacity
        assert s.memory_nbytes <= capacity * 3 * 2 * 4


def test_memory_storage_error_policy_keeps_what_it_had():
    s = MemoryStorage((2,), torch.float32, chunk_size=2, capacity=3)
    ref = ReferenceSeries(3)
    for i in range(3):
        v = torch.full((2,), float(i))
        s.append(v, i, 0, i)
        ref.append(v, i, 0, i)
    with pytest.raises(MemoryBudgetError, match="capacity of 3"):
        s.append(torch.zeros(2), 3, 0, 3)
    assert_same(s, ref)


def test_memory_storage_converts_non_contiguous_and_other_dtypes_exactly():
    base = torch.randn(4, 6, dtype=torch.float64)
    s32 = MemoryStorage((6, 4), torch.float32, chunk_size=2)
    s16 = MemoryStorage((6, 4), torch.float16, chunk_size=2)
    for i in range(5):
        v = (base + i).t()  # non-contiguous float64 view
        s32.append(v, i, 0, i)
        s16.append(v, i, 0, i)
        assert torch.equal(s32.get(-1), v.float())
        assert torch.equal(s16.get(-1), v.half())
    w = torch.randn(6, 4, requires_grad=True)
    s32.append(w, 5, 0, 5)
    assert not s32.get(-1).requires_grad and torch.equal(s32.get(-1), w.detach())
    with pytest.raises(ValueError, match="does not match"):
        s32.append(torch.zeros(4, 6), 6, 0, 6)
    with pytest.raises(TypeError):
        s32.append([[0.0]], 6, 0, 6)
    assert len(s32) == 6  # the rejected values left nothing behind


def test_index_is_a_copy_and_numeric_steps_are_stored_as_ints():
    s = MemoryStorage((2,), torch.float32, chunk_size=4)
    s.append(torch.ones(2), 0, 0, 0)
    idx = s.index()
    idx[0, 0] = 99  # the caller's copy, not the storage
    s.append(torch.ones(2), np.int64(1), 0, 1)  # appending while an index copy is alive
    s.append(torch.ones(2), 2.0, 1, 0)  # float step, as Feature.append converts
    assert s.index().tolist() == [[0, 0, 0], [1, 0, 1], [2, 1, 0]]


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))


def train(tracker, model, opt, steps, *, epochs=1, seed=1):
    """Train; return the reference: post-step clones of every parameter and gradient."""
    g = torch.Generator().manual_seed(seed)
    ref = {n: [] for n, _ in model.named_parameters()}
    grads = {n: [] for n, _ in model.named_parameters()}
    with tracker:
        for epoch in range(epochs):
            tracker.on_epoch_start(epoch)
            for b in range(steps):
                opt.zero_grad()
                model(torch.randn(4, 6, generator=g)).pow(2).mean().backward()
                opt.step()
                tracker.on_batch_end(b)
                for n, p in model.named_parameters():
                    ref[n].append(p.detach().clone())
                    grads[n].append(p.grad.detach().clone())
    return ref, grads


def test_tracker_records_every_parameter_and_gradient_exactly():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    tracker = FeatureTracker(model, optimizer=opt, track_gradients=True, chunk_size=3)
    ref, grads = train(tracker, model, opt, 7, epochs=2)
    for n in init:
        w = tracker.get_feature(n)
        assert torch.equal(w.as_tensor(), torch.stack([init[n], *ref[n]]))
        assert w.steps.tolist() == list(range(15))
        assert w.epochs.tolist() == [0] + [0] * 7 + [1] * 7
        assert w.batch_indices.tolist() == [-1] + list(range(7)) * 2
        gr = tracker.get_feature(n + ".grad")
        assert torch.equal(gr.as_tensor(), torch.stack(grads[n]))
        assert gr.steps.tolist() == list(range(1, 15))


@pytest.mark.parametrize("dtype", [None, torch.float16])
def test_tracker_downsampling_records_what_the_reference_rule_keeps(dtype):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    per_step = sum(p.numel() for p in model.parameters()) * (2 if dtype else 4)
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    tracker = FeatureTracker(
        model,
        optimizer=opt,
        dtype=dtype,
        memory_budget=per_step * 6,
        budget_policy="downsample",
        chunk_size=4,
    )
    ref, _ = train(tracker, model, opt, 45)
    assert tracker.memory_nbytes <= per_step * 6
    for n in init:
        series = ReferenceSeries(6, "downsample")
        for step, value in enumerate([init[n], *ref[n]]):
            series.append(value if dtype is None else value.to(dtype), step, 0, step - 1)
        assert_same(tracker.get_feature(n).storage, series)
        assert tracker.get_feature(n).steps[-1] >= 32  # spans the run


def test_tracker_frequency_and_resume_keep_one_index():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    tracker = FeatureTracker(model, layers=["2"], optimizer=opt, track_frequency=3, chunk_size=2)
    ref, _ = train(tracker, model, opt, 7)
    ref2, _ = train(tracker, model, opt, 5, seed=2)  # resumed: history and step count kept
    w = tracker.get_feature("2.weight")
    allref = ref["2.weight"] + ref2["2.weight"]
    assert w.steps.tolist() == [0, 3, 6, 9, 12]
    assert torch.equal(w.as_tensor()[1:], torch.stack([allref[s - 1] for s in (3, 6, 9, 12)]))
