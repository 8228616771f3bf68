import blockops
import numpy as np
import pytest
import torch
from continual import EpisodicMemory


def _batch(n, start=0, n_classes=None):
    x = torch.arange(start, start + n, dtype=torch.float32).unsqueeze(1)
    y = torch.arange(start, start + n) % (n_classes or 1000)
    return x, y


def test_quota_fixed_is_fill_first_and_covers_every_task():
    mem = EpisodicMemory(6, total_tasks=3, random_state=0)
    for t in range(3):
        mem.add(*_batch(5, 10 * t), task_id=t)
    assert len(mem) == 6
    for t in range(3):
        x, _ = mem.task_data(t)
        assert x.squeeze(1).tolist() == [10 * t, 10 * t + 1]  # first come
    with pytest.raises(ValueError, match="total_tasks"):
        mem.add(*_batch(1), task_id=9)
    # one task only: no division by zero
    single = EpisodicMemory(4, total_tasks=1)
    single.add(*_batch(10), task_id=0)
    assert len(single) == 4


def test_quota_adaptive_rebalances():
    mem = EpisodicMemory(10, random_state=0)
    mem.add(*_batch(20), task_id=0)
    assert len(mem) == 10
    mem.add(*_batch(20, 100), task_id=1)
    assert [mem._tasks.count(t) for t in (0, 1)] == [5, 5]
    mem.add(*_batch(20, 200), task_id=2)
    assert sorted(mem._tasks.count(t) for t in (0, 1, 2)) == [3, 3, 4]


def test_reservoir_is_uniform_over_stream():
    counts = torch.zeros(100)
    for seed in range(200):
        mem = EpisodicMemory(10, policy="reservoir", random_state=seed)
        for start in range(0, 100, 10):
            mem.add(*_batch(10, start))
        x, _ = mem.sample(10)
        counts[x.squeeze(1).long()] += 1
    assert len(mem) == 10
    # each item kept with probability 0.1 -> about 20 of 200
    assert counts[:50].sum() == pytest.approx(counts[50:].sum(), rel=0.2)


def test_class_balanced_balances_classes():
    mem = EpisodicMemory(20, policy="class_balanced", random_state=0)
    x = torch.randn(200, 2)
    y = torch.cat([torch.zeros(150), torch.ones(30), 2 * torch.ones(20)]).long()
    mem.add(x, y)
    labels = mem.sample(20)[1]
    counts = torch.bincount(labels, minlength=3).tolist()
    assert max(counts) - min(counts) <= 1
    with pytest.raises(ValueError, match="labels"):
        EpisodicMemory(3, policy="class_balanced").add(x)


def _cbrs_after_class_0_lost_the_lead(seed):
    """Capacity 5: five rows of class 0 fill the memory (0 is largest, hence full), then three of
    class 1 (not full) each replace a row of the largest class: 0 ends with 2 rows, 1 with 3."""
    mem = EpisodicMemory(5, policy="class_balanced", random_state=seed)
    x = torch.arange(8, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1])
    mem.add(x, y)
    assert _stored_label_counts(mem) == [2, 3]
    return mem


def _stored_label_counts(mem):
    return torch.bincount(mem.dataset().tensors[1], minlength=2).tolist()


def test_class_balanced_class_that_has_been_largest_stays_full():
    # CBRS: a class is full if it is *or has been* the largest. Class 0 was the largest, so its
    # new samples only replace rows of class 0 (with probability m_0 / n_0); treating only the
    # currently largest class (1) as full let class 0 take rows of class 1 back.
    for seed in range(5):
        mem = _cbrs_after_class_0_lost_the_lead(seed)
        for i in range(20):
            mem.add(torch.tensor([[100.0 + i]]), torch.tensor([0]))
            assert _stored_label_counts(mem) == [2, 3]
        # a class that is not full (2) still takes a row of the largest class (1)
        mem.add(torch.tensor([[200.0]]), torch.tensor([2]))
        assert torch.bincount(mem.dataset().tensors[1], minlength=3).tolist() == [2, 2, 1]


def test_class_balanced_full_class_is_kept_with_probability_m_over_n():
    # after the setup m_0 = 2 and n_0 = 5; the k-th further sample of class 0 has n_0 = 5 + k
    trials, extra = 600, 4
    kept = torch.zeros(extra)
    for seed in range(trials):
        mem = _cbrs_after_class_0_lost_the_lead(seed)
        for k in range(extra):
            kept[k] += mem.add(torch.tensor([[100.0 + k]]), torch.tensor([0]))
        assert _stored_label_counts(mem) == [2, 3]
    expected = torch.tensor([2 / (6 + k) for k in range(extra)])
    assert torch.allclose(kept / trials, expected, atol=0.06)


def test_class_balanced_state_roundtrip_keeps_full_classes_and_seen_counts(tmp_path):
    mem = _cbrs_after_class_0_lost_the_lead(7)
    config, tensors = mem.state_dict()
    assert config["full_classes"] == [0, 1]
    assert sorted(map(tuple, config["class_seen"])) == [(0, 5), (1, 3)]
    blockops.save_checkpoint(tmp_path / "mem", config, tensors)  # safe YAML, weights_only load
    config2, tensors2, _ = blockops.load_checkpoint(tmp_path / "mem")
    other = EpisodicMemory(1)
    other.load_state_dict(config2, tensors2)
    assert other.state_dict()[0]["full_classes"] == [0, 1]
    x = torch.arange(300, 340, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor([0, 2, 0, 1, 3] * 8)
    mem.add(x, y)
    other.add(x, y)
    for a, b in zip(mem.dataset().tensors, other.dataset().tensors):
        assert torch.equal(a, b)
    assert mem.state_dict()[0] == other.state_dict()[0]


def test_fifo_keeps_latest():
    mem = EpisodicMemory(5, policy="fifo")
    mem.add(*_batch(12))
    x, _ = mem.sample(5)
    assert sorted(x.squeeze(1).tolist()) == [7, 8, 9, 10, 11]


def test_reference_batches_fixed():
    mem = EpisodicMemory(6, total_tasks=4, random_state=0)
    for t in range(3):
        mem.add(*_batch(4, 10 * t), task_id=t)
    # gradient_ref_data_size == 0: the whole block of one earlier task, never empty
    for _ in range(20):
        x, _ = mem.get_data_for_reference_gradient(3)
        assert x.shape[0] > 0
        assert len({int(v) // 10 for v in x.squeeze(1).tolist()}) == 1
    mem.gradient_ref_data_size = 50  # more than stored: all of them, no crash
    x, _ = mem.get_data_for_reference_gradient(3)
    assert x.shape[0] == len(mem)
    x, _ = mem.get_data_for_reference_gradient(1)
    assert set(x.squeeze(1).tolist()) <= {0.0, 1.0, 2.0, 3.0}
    with pytest.raises(ValueError, match="before task 0"):
        mem.get_data_for_reference_gradient(0)


def test_own_generator_state_roundtrip_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    mem = EpisodicMemory(8, policy="reservoir", random_state=3)
    mem.add(*_batch(30))
    assert torch.equal(before, torch.get_rng_state())
    config, tensors = mem.state_dict()
    other = EpisodicMemory(1)
    other.load_state_dict(config, tensors)
    a = mem.sample(4)[0]
    b = other.sample(4)[0]
    assert torch.equal(a, b)
    mem.add(*_batch(10, 500))
    other.add(*_batch(10, 500))
    assert torch.equal(mem.dataset().tensors[0], other.dataset().tensors[0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="total_mem_size"):
        EpisodicMemory(0)
    with pytest.raises(ValueError, match="policy"):
        EpisodicMemory(3, policy="lru")
    mem = EpisodicMemory(3)
    with pytest.raises(ValueError, match="no sample"):
        mem.add(*_batch(2), task_id=0)
        mem.sample(2, tasks=[5])


def test_stratified_order_prefixes_are_class_balanced():
    from continual import stratified_order

    y = torch.tensor([0] * 30 + [1] * 5 + [2] * 12)
    order = stratified_order(y, torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(47))
    for q in (3, 9, 15):  # every class has >= 5 rows: prefixes hold q/3 of each
        counts = torch.bincount(y[order[:q]], minlength=3)
        assert counts.tolist() == [q // 3] * 3
    counts = torch.bincount(y[order[:20]], minlength=3)  # class 1 exhausted at 5
    assert counts[1] == 5 and abs(int(counts[0]) - int(counts[2])) <= 1
    other = stratified_order(y, torch.Generator().manual_seed(1))
    assert not torch.equal(order, other)  # random within the classes


def test_stratified_order_matches_its_definition_with_many_classes():
    # the rank of each row inside its class in shuffled order, counted by hand, plus a random
    # tie-break below 0.5: the sort-based rank (no n x classes one-hot) gives the same order
    from continual import stratified_order

    y = torch.randint(0, 60, (400,), generator=torch.Generator().manual_seed(3))
    order = stratified_order(y, torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    shuffled = torch.randperm(400, generator=gen)
    seen: dict[int, int] = {}
    rank = []
    for label in y[shuffled].tolist():
        rank.append(seen.get(label, 0))
        seen[label] = rank[-1] + 1
    key = torch.tensor(rank, dtype=torch.float64) + 0.5 * torch.rand(400, generator=gen).double()
    assert torch.equal(order, shuffled[torch.argsort(key, stable=True)])
    counts = torch.bincount(y[order[:60]], minlength=60)
    assert counts.tolist() == [1] * 60  # every class has a row: the first 60 hold one each


def test_quota_shrink_keeps_classes_balanced():
    mem = EpisodicMemory(40, random_state=0)
    x = torch.arange(40, dtype=torch.float32).unsqueeze(1)
    y = torch.arange(40) % 4
    mem.add(x, y, task_id=0)
    for t in (1, 2, 3):  # quota of task 0 shrinks 40 -> 20 -> 13 -> 10
        mem.add(x + 100 * t, y, task_id=t)
    _, y0 = mem.task_data(0)
    assert y0.shape[0] == 10
    counts = torch.bincount(y0, minlength=4)
    assert int(counts.max()) - int(counts.min()) <= 1


def test_memory_strategy_stores_a_stratified_sample():
    from continual import Replay
    from continual.scenarios import Experience
    from torch.utils.data import TensorDataset

    y = torch.tensor([0] * 90 + [1] * 10)  # imbalanced experience
    x = torch.randn(100, 3)
    strat = Replay(mem_size=10, random_state=0)
    strat.after_experience(None, Experience(TensorDataset(x, y), 0, (0, 1)))
    _, ym, _ = strat.memory.task_data(0)
    assert torch.bincount(ym, minlength=2).tolist() == [5, 5]


def test_cycle_walks_shuffled_passes_and_restarts_on_change():
    mem = EpisodicMemory(10, policy="fifo", random_state=0)
    mem.add(*_batch(10))
    first = torch.cat([mem.cycle(4)[0] for _ in range(5)]).squeeze(1).tolist()  # 2 passes
    assert sorted(first[:10]) == list(range(10)) and sorted(first[10:]) == list(range(10))
    assert first[:10] != list(range(10))  # shuffled
    config, tensors = mem.state_dict()  # mid-pass state survives a round trip
    other = EpisodicMemory(1)
    other.load_state_dict(config, tensors)
    assert torch.equal(mem.cycle(7)[0], other.cycle(7)[0])
    mem.cycle(1)
    mem.add(*_batch(5, 100))  # the contents change: a new pass starts
    seen = torch.cat([mem.cycle(5)[0] for _ in range(2)]).squeeze(1).tolist()
    assert len(set(seen)) == 10
    with pytest.raises(ValueError, match="n must be"):
        mem.cycle(0)
    with pytest.raises(ValueError, match="empty"):
        EpisodicMemory(3).cycle(2)


def test_replay_sampling_modes():
    from continual import Replay

    x = torch.arange(20, dtype=torch.float32).unsqueeze(1)
    y = torch.arange(20) % 2
    t = torch.zeros(20, dtype=torch.long)
    for sampling in ("cycle", "random"):
        strat = Replay(mem_size=6, batch_size=4, sampling=sampling, random_state=0)
        strat.memory.add(x[:6], y[:6], t[:6], task_id=0)
        batch = (x[10:13], y[10:13], t[10:13])
        bx, by, bt = strat.before_forward(None, batch)
        assert bx.shape[0] == 3 + 4 and torch.equal(bx[:3], batch[0])
        assert set(bx[3:].squeeze(1).tolist()) <= set(range(6))
    with pytest.raises(ValueError, match="sampling"):
        Replay(sampling="lifo")


def test_bad_sizes_and_fields_raise_clear_errors():
    for size in (2.5, True, "10"):
        with pytest.raises(ValueError, match="total_mem_size"):
            EpisodicMemory(size)
    mem = EpisodicMemory(5, policy="reservoir", random_state=0)
    mem.add(torch.randn(5, 3), torch.arange(5))
    for n in (0, -1):  # -1 used to return all rows but one
        with pytest.raises(ValueError, match="n must be an integer >= 1"):
            mem.sample(n)
    with pytest.raises(ValueError, match=r"field 0 must have rows of shape \(3,\)"):
        mem.add(torch.randn(2, 4), torch.arange(2))
    with pytest.raises(TypeError, match="field 1 is stored as torch.int64"):
        mem.add(torch.randn(2, 3), torch.tensor([0.5, 1.7]))  # would truncate to 0, 1
    with pytest.raises(TypeError, match="field 0 must be a tensor"):
        mem.add([[1.0, 2.0, 3.0]], torch.arange(1))
    with pytest.raises(TypeError, match="field 0 must be a tensor"):
        mem.add(torch.tensor(1.0))
    assert len(mem) == 5 and mem._n_seen == 5  # nothing was half-written


def test_class_balanced_refuses_labels_that_are_not_one_integer_per_row():
    mem = EpisodicMemory(4, policy="class_balanced", random_state=0)
    onehot = torch.nn.functional.one_hot(torch.arange(6), 6).float()
    # a one-hot matrix used to be read as its first column (every row but one "class 0")
    with pytest.raises(ValueError, match="integer class labels, one per row"):
        mem.add(torch.randn(6, 2), onehot)
    with pytest.raises(ValueError, match="integer class labels, one per row"):
        mem.add(torch.randn(3, 2), torch.tensor([0.5, 1.7, 2.2]))
    with pytest.raises(ValueError, match="integer class labels, one per row"):
        mem.add(torch.randn(3, 2))
    assert len(mem) == 0 and mem.n_fields == 0 and mem.tasks() == []  # nothing half-added
    mem.add(torch.randn(6, 2), torch.arange(6))
    assert len(mem) == 4


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"total_tasks": 1.5}, "total_tasks"),
        ({"total_tasks": 0}, "total_tasks"),
        ({"gradient_ref_data_size": 2.5}, "gradient_ref_data_size"),
        ({"gradient_ref_data_size": -1}, "gradient_ref_data_size"),
    ],
)
def test_memory_refuses_non_integer_sizes(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must be an integer"):
        EpisodicMemory(10, **kwargs)


@pytest.mark.cuda
def test_add_takes_fields_on_different_devices_cuda():
    # CUDA inputs with CPU labels / task ids (a CUDA experience, the strategies' _store):
    # each field is indexed on its own device
    for memory_device in ("cpu", "cuda"):
        mem = EpisodicMemory(6, policy="reservoir", random_state=0, device=memory_device)
        x, y = _batch(10)
        t = torch.zeros(10, dtype=torch.long)
        assert mem.add(x.cuda(), y, t, task_id=0) == 6
        assert mem.add(x[:4], y[:4].cuda(), t[:4].cuda(), task_id=0) >= 0
        sx, sy, _ = mem.sample(6, device="cpu")
        assert torch.equal(sx[:, 0].long(), sy)  # rows stayed aligned across the fields


def test_sample_and_cycle_refuse_counts_that_are_not_integers():
    mem = EpisodicMemory(5, policy="reservoir", random_state=0)
    mem.add(*_batch(5))
    # 2.5 used to give 2 rows and True 1 row, silently
    for n in (2.5, True, "3"):
        for read in (mem.sample, mem.cycle):
            with pytest.raises(ValueError, match=r"^n must be an integer >= 1"):
                read(n)
    assert len(mem.sample(3)[0]) == len(mem.cycle(3)[0]) == 3


def test_class_balanced_state_saved_before_full_classes_existed_still_loads():
    mem = _cbrs_after_class_0_lost_the_lead(0)  # class 1 is the largest now (3 of 5 rows)
    config, tensors = mem.state_dict()
    del config["full_classes"]  # a checkpoint written before the key existed (KeyError)
    other = EpisodicMemory(1)
    other.load_state_dict(config, tensors)
    assert other.state_dict()[0]["full_classes"] == [1]  # the largest class is full
    for i in range(10):  # so a sample of it only replaces a row of its own class
        other.add(torch.tensor([[50.0 + i]]), torch.tensor([1]))
        assert _stored_label_counts(other) == [2, 3]


def _cbrs_reference(labels, capacity, generator):
    """CBRS as first written, line by line: recounts the classes and scans the slots per sample.

    Returns the stored label of every slot and the slot each sample was written to (-1: dropped).
    """
    slots, seen, full, written = [], {}, set(), []

    def randint(high):
        return int(torch.randint(0, high, (1,), generator=generator).item())

    def counts():
        out = {}
        for lab in slots:
            out[lab] = out.get(lab, 0) + 1
        return out

    def largest(c):
        most = max(c.values())
        return [k for k, v in c.items() if v == most]

    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        if len(slots) < capacity:
            slot = len(slots)
        elif label not in full:
            big = largest(counts())
            victim = big[randint(len(big))]
            idx = [i for i, lab in enumerate(slots) if lab == victim]
            slot = idx[randint(len(idx))]
        elif randint(seen[label]) >= counts().get(label, 0):
            slot = -1
        else:
            idx = [i for i, lab in enumerate(slots) if lab == label]
            slot = idx[randint(len(idx))]
        written.append(slot)
        if slot == len(slots):
            slots.append(label)
        elif slot >= 0:
            slots[slot] = label
        if len(slots) == capacity:
            full.update(largest(counts()))
    return slots, written, full, seen


@pytest.mark.parametrize("seed", range(6))
def test_class_balanced_matches_the_line_by_line_reference(seed):
    gen = torch.Generator().manual_seed(seed)
    capacity = int(torch.randint(3, 40, (1,), generator=gen))
    n_classes = int(torch.randint(2, 12, (1,), generator=gen))
    skew = torch.rand(n_classes, generator=gen) ** 3 + 0.01  # imbalanced, some classes rare
    y = torch.multinomial(skew, 600, replacement=True, generator=gen)
    # classes arriving late: the first ones are all of one class, a new one starts midway
    y[: capacity + 5] = 0
    y[300:] = torch.where(y[300:] == 1, n_classes, y[300:])
    x = torch.arange(600, dtype=torch.float32).unsqueeze(1)
    mem = EpisodicMemory(capacity, policy="class_balanced", random_state=seed)
    ref_gen = torch.Generator().manual_seed(seed)
    slots, written, full, seen = _cbrs_reference(y.tolist(), capacity, ref_gen)
    start, config = 0, None
    for size in torch.randint(1, 40, (60,), generator=gen).tolist():  # uneven batches
        if start >= 600:
            break
        if config is not None:  # resume from a saved state half of the time
            mem = EpisodicMemory(1)
            mem.load_state_dict(*config)
        mem.add(x[start : start + size], y[start : start + size])
        config = mem.state_dict() if size % 2 else None
        start += size
    stored_x, stored_y = mem.dataset().tensors[:2]
    assert stored_y.tolist() == slots
    last_write = {s: i for i, s in enumerate(written) if s >= 0}
    assert stored_x.squeeze(1).long().tolist() == [last_write[s] for s in range(len(slots))]
    config, _ = mem.state_dict()
    assert set(config["full_classes"]) == full
    assert dict(map(tuple, config["class_seen"])) == seen
    assert torch.equal(mem.generator.get_state(), ref_gen.get_state())


def _corrupt(config, tensors, what):
    config, tensors = dict(config), dict(tensors)
    if what == "rows":
        config["tasks"] = config["tasks"] + [0, 0]  # more rows than the capacity
    elif what == "labels":
        config["labels"] = config["labels"][:2]
    elif what == "field":
        tensors["field.0"] = tensors["field.0"][:2]
    elif what == "policy":
        config["policy"] = "lru"
    elif what == "missing":
        del config["labels"]
    elif what == "generator":
        tensors["generator"] = torch.zeros(3, dtype=torch.uint8)
    elif what == "pass":
        tensors["pass"] = torch.tensor([0, 0, 7, 1, 2])
    elif what == "seen":
        config["class_seen"] = [[0, 5], [1]]
    return config, tensors


@pytest.mark.parametrize(
    ("what", "match"),
    [
        ("rows", "stores 7 rows, more than total_mem_size=5"),
        ("labels", "2 labels for 5 stored rows"),
        ("field", "field.0 must be a tensor of 5 rows"),
        ("policy", "policy='lru'"),
        ("missing", r"missing \['labels'\]"),
        ("generator", "generator state is invalid"),
        ("pass", r"pass must be a permutation of range\(5\)"),
        ("seen", r"class_seen must be a list of \[label, count\] pairs"),
    ],
)
def test_a_corrupted_state_is_refused_before_anything_is_loaded(what, match):
    # these used to load, half-load (KeyError midway) or fail later inside add / sample
    mem = _cbrs_after_class_0_lost_the_lead(0)
    mem.cycle(2)
    config, tensors = _corrupt(*mem.state_dict(), what)
    other = EpisodicMemory(3, policy="fifo", random_state=1)
    other.add(*_batch(4))
    before = other.state_dict()
    with pytest.raises(ValueError, match=match):
        other.load_state_dict(config, tensors)
    after = other.state_dict()
    assert after[0] == before[0]
    assert all(torch.equal(after[1][k], before[1][k]) for k in before[1])


def test_task_id_must_be_an_integer():
    mem = EpisodicMemory(5, random_state=0)
    for bad in (1.7, "a", None):  # 1.7 was stored as task 1, "a" failed with int()'s message
        with pytest.raises(TypeError, match="task_id must be an integer"):
            mem.add(*_batch(2), task_id=bad)
    assert len(mem) == 0 and mem.n_fields == 0  # nothing half-added
    mem.add(*_batch(2), task_id=torch.tensor(3))  # integer scalars of any kind are fine
    assert mem.tasks() == [3]


def test_sample_takes_one_task_id_or_several():
    mem = EpisodicMemory(20, random_state=0)
    mem.add(*_batch(5), task_id=0)
    mem.add(*_batch(5, start=100), task_id=1)
    x, _ = mem.sample(10, tasks=0)  # an int used to fail with "'int' object is not iterable"
    assert x.shape[0] == 5 and bool((x < 100).all())
    x, _ = mem.sample(10, exclude_tasks=0)
    assert x.shape[0] == 5 and bool((x >= 100).all())
    for tasks in ([1], (1,), {1}, torch.tensor(1), torch.tensor([1])):
        x, _ = mem.sample(10, tasks=tasks)  # a 1-D tensor used to match no task at all
        assert x.shape[0] == 5 and bool((x >= 100).all()), tasks
    with pytest.raises(ValueError, match="no sample matching"):
        mem.sample(3, tasks=7)


@pytest.mark.parametrize("bad", [True, 0.0, 1.5, "0", [0, 1.0], torch.tensor([0.0])])
def test_task_ids_that_are_not_integers_are_refused_by_name(bad):
    mem = EpisodicMemory(20, random_state=0)
    mem.add(*_batch(5), task_id=0)
    mem.add(*_batch(5, start=100), task_id=1)
    with pytest.raises(TypeError, match="tasks must"):
        mem.sample(3, tasks=bad)
    with pytest.raises(TypeError, match="exclude_tasks must"):
        mem.sample(3, exclude_tasks=bad)
    if not isinstance(bad, (list, torch.Tensor)):
        with pytest.raises(TypeError, match="task_id must be an integer"):
            mem.task_data(bad)  # True used to return task 1's rows
        with pytest.raises(TypeError, match="task_id must be an integer"):
            mem.get_data_for_reference_gradient(bad)


def test_add_refuses_a_bool_task_id():
    mem = EpisodicMemory(5, random_state=0)
    with pytest.raises(TypeError, match="task_id must be an integer"):
        mem.add(*_batch(2), task_id=True)  # used to be stored as task 1
    assert len(mem) == 0


def test_an_empty_batch_does_not_register_its_task():
    mem = EpisodicMemory(10, random_state=0)
    mem.add(*_batch(20), task_id=0)
    # an empty batch of a new task took half of the adaptive quota memory (5 rows evicted)
    assert mem.add(*_batch(0), task_id=1) == 0
    assert len(mem) == 10 and mem.tasks() == [0]
    mem.add(*_batch(20, start=100), task_id=2)
    assert [mem._tasks.count(t) for t in (0, 1, 2)] == [5, 0, 5]
    fixed = EpisodicMemory(4, total_tasks=1, random_state=0)
    fixed.add(*_batch(0), task_id=7)  # used to take the only task slot
    fixed.add(*_batch(4), task_id=0)
    assert fixed.tasks() == [0]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_add_refuses_non_finite_rows(bad):
    # a stored NaN row used to spoil every later replay step
    mem = EpisodicMemory(8, policy="reservoir", random_state=0)
    x, y = _batch(4)
    logits = torch.zeros(4, 3)
    logits[2, 1] = bad
    with pytest.raises(ValueError, match=r"field 3 of the tensors given to add .* 1 of its 4 "
                       r"rows \(first: row 2\)"):  # fmt: skip
        mem.add(x, y, y, logits, task_id=0)
    assert len(mem) == 0 and mem.n_fields == 0  # nothing stored, no storage allocated
    x[0, 0] = bad
    with pytest.raises(ValueError, match="field 0"):
        mem.add(x, y, task_id=0)
    x[0, 0] = 1.0
    assert mem.add(x, y, task_id=0) == 4


def test_reading_the_memory_takes_device_auto_like_its_constructor():
    # sample / cycle / task_data(device="auto") failed inside torch ("Expected one of cpu, ...")
    mem = EpisodicMemory(5, device="auto", random_state=0)
    mem.add(torch.randn(3, 2), torch.arange(3), task_id=0)
    want = "cuda" if torch.cuda.is_available() else "cpu"
    for read in (
        lambda: mem.sample(2, device="auto"),
        lambda: mem.cycle(2, device="auto"),
        lambda: mem.task_data(0, device="auto"),
        lambda: mem.get_data_for_reference_gradient(1, device="auto"),
    ):
        assert all(t.device.type == want for t in read())
    with pytest.raises(ValueError, match="device='gpu' is not understood"):
        mem.sample(2, device="gpu")


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_add_reads_numpy_arrays_as_tensors(dtype):
    X, y = np.arange(12.0).reshape(6, 2), np.arange(6).astype(dtype)
    mem = EpisodicMemory(10, random_state=0)
    assert mem.add(X, y, task_id=0) == 6  # was a TypeError: "field 0 must be a tensor"
    mx, my = mem.sample(6)
    order = my.argsort()
    torch.testing.assert_close(mx[order], torch.as_tensor(X))
    assert my.dtype == torch.as_tensor(y).dtype and my[order].tolist() == list(range(6))


def test_add_refuses_integer_values_the_stored_dtype_cannot_hold():
    # int64 labels above 2**31 went into the int32 storage of the first add and wrapped
    mem = EpisodicMemory(4, total_tasks=1)
    mem.add(torch.zeros(2, 3), torch.tensor([1, 2], dtype=torch.int32))
    mem.add(torch.zeros(1, 3), torch.tensor([7], dtype=torch.int64))  # fits: stored
    with pytest.raises(ValueError, match=r"field 1 is stored as torch.int32.*2147483648"):
        mem.add(torch.zeros(1, 3), torch.tensor([2**31], dtype=torch.int64))
    assert sorted(mem.task_data(0)[1].tolist()) == [1, 2, 7]


@pytest.mark.parametrize("policy", ["quota", "reservoir", "fifo"])
def test_task_rows_are_cached_until_the_stored_rows_change(policy):
    # GEM read every task's rows with a pass over the whole memory at each step
    mem = EpisodicMemory(12, policy=policy, random_state=0)
    copy = EpisodicMemory(12, policy=policy)
    for task in range(4):
        mem.add(torch.randn(7, 3), torch.arange(7) % 3, task_id=task)
        cached = mem._rows_by_task()
        assert mem._rows_by_task() is cached  # no rebuild while nothing changes
        copy.load_state_dict(*mem.state_dict())
        assert copy._rows_by_task() is not cached
        for m in (mem, copy):
            tasks = [t for t in m._task_order if t in set(m._tasks)]
            assert m.tasks() == tasks
            for t in range(5):
                want = [i for i, tt in enumerate(m._tasks) if tt == t]
                x, y = m.task_data(t)
                torch.testing.assert_close(x, m._fields[0][want])
                torch.testing.assert_close(y, m._fields[1][want])
