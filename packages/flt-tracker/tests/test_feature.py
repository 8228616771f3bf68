import math

import numpy as np
import pytest
import torch
from flt_tracker import Feature, effective_rank
from flt_tracker.storage import ChunkReader, DiskStorage, MemoryStorage, Storage


def filled(n=5, shape=(4, 3), seed=0, dtype=None):
    g = torch.Generator().manual_seed(seed)
    f = Feature("fc.weight", layer_name="fc", dtype=dtype)
    values = [torch.randn(*shape, generator=g) for _ in range(n)]
    for i, v in enumerate(values):
        f.append(v, epoch=i // 2, batch_idx=i % 2)
    return f, torch.stack(values)


def test_append_and_access():
    f, values = filled()
    assert len(f) == 5 and f.shape == (4, 3)
    assert f.steps.tolist() == [0, 1, 2, 3, 4]
    assert f.epochs.tolist() == [0, 0, 1, 1, 2]
    assert torch.equal(f.as_tensor(), values)
    assert torch.equal(f.get_latest(), values[-1])
    assert torch.equal(f.get_at_step(2), values[2])
    assert torch.equal(f.get_at_epoch(1), values[2:4])
    assert torch.equal(f.get_at_epoch(1, last=True), values[3])
    with pytest.raises(KeyError, match="recorded epochs"):
        f.get_at_epoch(7)
    with pytest.raises(ValueError, match="shape"):
        f.append(torch.zeros(2, 2))


def test_np_asarray_of_a_feature_is_its_stacked_history(tmp_path):
    f, values = filled(dtype=torch.float64)
    arr = np.asarray(f)  # was a 0-d object array holding the Feature
    assert arr.shape == (5, 4, 3) and arr.dtype == np.float64
    np.testing.assert_array_equal(arr, values.numpy())
    arr[0] = 0.0  # a copy: the series is untouched
    assert torch.equal(f.get_at_step(0), values[0])
    assert np.asarray(f, dtype=np.float32).dtype == np.float32
    disk = Feature("w", storage=DiskStorage(tmp_path / "w", (4, 3), torch.float64, chunk_size=2))
    for v in values:
        disk.append(v)
    np.testing.assert_array_equal(np.asarray(disk), values.numpy())


def test_caller_tensor_is_copied():
    f = Feature("w")
    t = torch.ones(3)
    f.append(t)
    t.add_(1)
    assert torch.equal(f.get_latest(), torch.ones(3))


def test_derived_series_match_direct_computation():
    f, values = filled()
    flat = values.flatten(1)
    torch.testing.assert_close(f.norm(), flat.norm(dim=1))
    torch.testing.assert_close(f.mean(), flat.mean(dim=1))
    torch.testing.assert_close(f.std(), flat.std(dim=1))
    cos = torch.nn.functional.cosine_similarity(flat, flat[:1], dim=1)
    torch.testing.assert_close(f.cosine_to_init(), cos)
    torch.testing.assert_close(f.distance_to_init(), (flat - flat[0]).norm(dim=1))
    assert f.cosine_to_init()[0] == pytest.approx(1.0)
    assert f.series("norm").shape == (5,)
    assert f.series(lambda v: v[:, 0, 0]).tolist() == pytest.approx(values[:, 0, 0].tolist())
    with pytest.raises(ValueError, match="metric"):
        f.series("bogus")


def test_effective_rank_known_values():
    eye = torch.eye(4)
    assert effective_rank(eye).item() == pytest.approx(4.0, rel=1e-5)
    rank_one = torch.outer(torch.arange(1.0, 4.0), torch.ones(5))
    assert effective_rank(rank_one).item() == pytest.approx(1.0, rel=1e-5)
    assert effective_rank(torch.zeros(3, 3)).item() == 0.0
    s = torch.tensor([3.0, 1.0])
    p = s / s.sum()
    expected = math.exp(-(p * p.log()).sum().item())
    assert effective_rank(torch.diag(s)).item() == pytest.approx(expected, rel=1e-5)
    f, _ = filled()
    assert f.effective_rank().shape == (5,)
    bias = Feature("b")
    bias.append(torch.ones(3))
    with pytest.raises(ValueError, match="matrix"):
        bias.effective_rank()


def test_effective_rank_keeps_the_floating_dtype():
    m = torch.randn(2, 4, 3, dtype=torch.float64)
    assert effective_rank(m).dtype == torch.float64  # was float32
    assert effective_rank(m.float()).dtype == torch.float32
    assert effective_rank(torch.eye(3, dtype=torch.int64)).dtype == torch.float32
    f = Feature("w", dtype=torch.float64)
    f.append(m[0])
    assert f.effective_rank().dtype == torch.float64
    assert f.effective_rank().item() == pytest.approx(effective_rank(m[0]).item(), rel=1e-12)


def test_float16_storage_halves_memory_and_stays_close():
    f16, values = filled(n=3, dtype=torch.float16)
    f32, _ = filled(n=3)
    assert f16.storage.dtype == torch.float16
    assert f16.storage.memory_nbytes * 2 == f32.storage.memory_nbytes
    torch.testing.assert_close(f16.as_tensor().float(), values, atol=2e-3, rtol=2e-3)
    assert f16.norm().dtype == torch.float32


def test_empty_feature_errors():
    f = Feature("w")
    assert len(f) == 0 and f.shape is None
    assert f.steps.shape == (0,) and isinstance(f.steps, np.ndarray)
    with pytest.raises(ValueError, match="no snapshots"):
        f.get_latest()


def test_scalar_snapshots_have_derived_series():
    f = Feature("temperature", dtype=torch.float64)
    for i in range(3):
        f.append(torch.tensor(float(i + 1)))
    assert f.norm().tolist() == [1.0, 2.0, 3.0]
    assert f.mean().tolist() == [1.0, 2.0, 3.0]
    assert f.distance_to_init().tolist() == [0.0, 1.0, 2.0]
    assert f.cosine_to_init().tolist() == pytest.approx([1.0, 1.0, 1.0])
    std = f.std()
    assert std.tolist() == [0.0, 0.0, 0.0] and std.dtype == torch.float64


def test_fractional_step_or_epoch_is_an_error_not_truncated():
    f, values = filled()
    assert torch.equal(f.get_at_step(np.int64(3)), values[3])
    assert torch.equal(f.get_at_epoch(1.0, last=True), values[3])
    with pytest.raises(TypeError, match="step"):
        f.get_at_step(3.7)
    with pytest.raises(TypeError, match="epoch"):
        f.get_at_epoch(0.5)


def test_bool_or_non_number_step_is_a_type_error_naming_the_argument():
    f, values = filled()
    with pytest.raises(TypeError, match="step=True"):
        f.get_at_step(True)  # not step 1
    with pytest.raises(TypeError, match="step=None"):
        f.get_at_step(None)
    with pytest.raises(TypeError, match="epoch='1'"):
        f.get_at_epoch("1")


def test_infinite_step_is_a_type_error_naming_the_argument():
    f, _ = filled()
    with pytest.raises(TypeError, match="step=inf must be an integer"):
        f.get_at_step(float("inf"))  # was OverflowError "cannot convert float infinity"
    with pytest.raises(TypeError, match="epoch=-inf must be an integer"):
        f.get_at_epoch(-math.inf)


def test_append_refuses_fractional_indices_instead_of_truncating_them():
    f = Feature("x")
    f.append(torch.ones(3), step=np.int64(4), epoch=1.0)
    for kwargs in ({"step": 2.5}, {"epoch": 0.5}, {"batch_idx": float("nan")}):
        with pytest.raises(TypeError, match=f"{next(iter(kwargs))}=.* must be an integer"):
            f.append(torch.ones(3), **kwargs)  # step=2.5 was stored as 2
    assert f.steps.tolist() == [4] and f.epochs.tolist() == [1]


def test_effective_rank_is_nan_for_a_diverged_snapshot_not_an_error():
    f = Feature("w")
    f.append(torch.eye(3))
    f.append(torch.full((3, 3), float("nan")))
    f.append(torch.diag(torch.tensor([math.inf, 1.0, 0.0])))
    f.append(torch.diag(torch.tensor([1.0, 0.0, 0.0])))
    # was: linalg.svd failed on the whole series because of one diverged snapshot
    r = f.effective_rank()
    assert r[0].item() == pytest.approx(3.0) and r[3].item() == pytest.approx(1.0)
    assert math.isnan(r[1]) and math.isnan(r[2])


@pytest.mark.parametrize("storage", ["memory", "disk"])
def test_append_refuses_a_step_that_repeats_or_goes_back(storage, tmp_path):
    from flt_tracker.storage import DiskStorage

    f = (
        Feature("x")
        if storage == "memory"
        else Feature("x", storage=DiskStorage(tmp_path, (3,), torch.float32))
    )
    f.append(torch.ones(3), step=5)
    for bad in (5, 4, -1):  # were stored: get_at_step(5) answered the later one
        with pytest.raises(
            ValueError, match=f"step must be greater than the last step 5 .*got {bad}"
        ):
            f.append(torch.zeros(3), step=bad)
    f.append(torch.full((3,), 2.0))  # the default step is one past the last
    f.append(torch.full((3,), 3.0), step=9)
    assert f.steps.tolist() == [5, 6, 9] and len(f) == 3
    assert f.get_at_step(6).tolist() == [2.0, 2.0, 2.0]


def test_map_refuses_a_function_that_does_not_return_one_row_per_snapshot():
    f, values = filled(n=4, shape=(3,))
    assert torch.allclose(f.map(lambda v: v.norm(dim=1)), values.norm(dim=1))
    # v.norm() failed in torch.cat; v.mean(0) (3 values for 4 snapshots) was returned as a series
    for fn, shape in ((lambda v: v.norm(), r"\(\)"), (lambda v: v.mean(0), r"\(3,\)")):
        with pytest.raises(ValueError, match=rf"one row per snapshot.*got shape {shape}"):
            f.map(fn)


def test_map_checks_the_block_size():
    f, values = filled()
    with pytest.raises(ValueError, match="block=0 must be >= 1"):  # was a range() error
        f.map(lambda v: v.sum(dim=(1, 2)), block=0)
    with pytest.raises(TypeError, match="block=2.5 must be an integer"):
        f.map(lambda v: v.sum(dim=(1, 2)), block=2.5)
    torch.testing.assert_close(f.map(lambda v: v.sum(dim=(1, 2)), block=2), values.sum(dim=(1, 2)))


def test_append_refuses_non_floating_values_after_the_first_too():
    f, values = filled()
    # the first snapshot refused an integer tensor, later ones were cast silently
    with pytest.raises(
        TypeError, match="only floating tensors can be tracked, got dtype torch.int64"
    ):
        f.append(torch.ones(4, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.bool"):
        Feature("mask", dtype=torch.float16).append(torch.ones(3, dtype=torch.bool))
    assert len(f) == 5
    torch.testing.assert_close(f.as_tensor(), values)


def test_docstring_examples_run_as_written():
    import doctest

    from flt_tracker import feature, tracker

    for module in (feature, tracker):  # Feature's example left out append's return value
        result = doctest.testmod(module, extraglobs={"torch": torch, "nn": torch.nn})
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_feature_kind_is_validated():
    # a typo ("weights") hid the series from the default heatmap, which shows kind "weight"
    with pytest.raises(ValueError, match=r"kind='weights' is not a known kind.*'activation'"):
        Feature("fc.weight", kind="weights")
    assert Feature("fc.weight.grad", kind="grad").kind == "grad"


def test_effective_rank_needs_matrices():
    # a 1-D tensor was "IndexError: Dimension out of range", a list "'list' has no attribute"
    with pytest.raises(ValueError, match=r"matrices must be \(\.\.\., r, c\), got shape \(3,\)"):
        effective_rank(torch.ones(3))
    with pytest.raises(TypeError, match="matrices must be a torch.Tensor, got list"):
        effective_rank([[1.0, 0.0], [0.0, 1.0]])
    assert effective_rank(torch.eye(3)).item() == pytest.approx(3.0)


def _check_every_step(f):
    """``get_at_step`` against its definition: the last snapshot whose step is ``step``."""
    steps, values = f.steps, f.as_tensor()
    for s in range(-2, int(steps[-1]) + 3):
        hits = np.flatnonzero(steps == s)
        assert Storage.position(f.storage, s) == f.storage.position(s)  # the generic scan
        if hits.size == 0:
            with pytest.raises(KeyError, match=f"no snapshot at step {s}"):
                f.get_at_step(s)
        else:
            assert torch.equal(f.get_at_step(s), values[hits[-1]])


@pytest.mark.parametrize("backend", ["memory", "downsample", "disk"])
def test_get_at_step_bisects_to_the_plain_definition(backend, tmp_path):
    shape = (2,)
    storage = {
        "memory": lambda: MemoryStorage(shape, torch.float32, chunk_size=16),
        "downsample": lambda: MemoryStorage(
            shape, torch.float32, chunk_size=16, capacity=40, policy="downsample"
        ),
        "disk": lambda: DiskStorage(tmp_path / "s", shape, torch.float32, chunk_size=16),
    }[backend]()
    f = Feature("w", storage=storage)
    step = 0
    for n in (150, 1, 60):  # lookups between appends: the search sees what was added since
        for _ in range(n):
            step += 1 + step % 3  # irregular gaps
            f.append(torch.full(shape, float(step)), step=step)
        _check_every_step(f)
    if backend == "disk":
        storage.close()
        _check_every_step(Feature("w", storage=ChunkReader(tmp_path / "s")))
