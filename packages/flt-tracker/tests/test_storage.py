import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from flt_tracker import (
    DiskStorage,
    Feature,
    FeatureTracker,
    MemoryBudgetError,
    MemoryStorage,
    load_run,
    save_run,
)
from flt_tracker.storage import anonymous_pages, parse_bytes
from torch import nn


def run_steps(tracker, model, opt, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    with tracker:
        for _ in range(n):
            opt.zero_grad()
            model(torch.randn(8, 5, generator=g)).pow(2).mean().backward()
            opt.step()


def small():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 1))
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def test_parse_bytes():
    assert parse_bytes("2KiB") == 2048
    assert parse_bytes("1.5MB") == 1_500_000
    assert parse_bytes(10) == 10
    with pytest.raises(ValueError):
        parse_bytes("lots")
    with pytest.raises(ValueError):
        parse_bytes(0)
    for bad in (float("nan"), float("inf")):  # were "cannot convert float NaN" / OverflowError
        with pytest.raises(ValueError, match=r"memory_budget=.* must be a finite number"):
            parse_bytes(bad)


def test_parse_bytes_accepts_single_letter_units():
    # "512M" was refused; a single letter is the decimal unit, an "i" marks a binary one
    assert parse_bytes("512M") == parse_bytes("512mb") == 512 * 10**6
    assert parse_bytes("2k") == 2000 and parse_bytes("1.5G") == 1_500_000_000
    assert parse_bytes("1T") == 10**12 and parse_bytes("3 g") == 3 * 10**9
    assert parse_bytes("2Ki") == parse_bytes("2KiB") == 2048 and parse_bytes("1mi") == 2**20
    for bad in ("512i", "512iB", "512MBB", "512X", "B"):
        with pytest.raises(ValueError, match="is not understood"):
            parse_bytes(bad)


def test_memory_storage_grows_in_blocks_without_moving_data():
    s = MemoryStorage((2, 2), torch.float32, chunk_size=3)
    for i in range(7):
        s.append(torch.full((2, 2), float(i)), i, 0, i)
    assert len(s._blocks) == 3 and s.memory_nbytes == 3 * 3 * 16
    assert s.read(2, 6)[:, 0, 0].tolist() == [2.0, 3.0, 4.0, 5.0]


def test_memory_budget_error_is_clear():
    model, opt = small()
    per_step = (4 * 5 + 4 + 4 + 1) * 4  # all parameters, float32
    tracker = FeatureTracker(model, optimizer=opt, memory_budget=per_step * 4)
    with pytest.raises(MemoryBudgetError, match="memory_budget") as info:
        run_steps(tracker, model, opt, 10)
    assert "downsample" in str(info.value)
    assert len(tracker.get_feature("0.weight")) == 4
    with pytest.raises(MemoryBudgetError, match="fewer than 2"):
        FeatureTracker(model, memory_budget=per_step).start()


def test_downsample_policy_keeps_whole_run_within_budget():
    model, opt = small()
    per_step = (4 * 5 + 4 + 4 + 1) * 4
    tracker = FeatureTracker(
        model, optimizer=opt, memory_budget=per_step * 8, budget_policy="downsample", chunk_size=4
    )
    run_steps(tracker, model, opt, 40)
    f = tracker.get_feature("0.weight")
    assert len(f) <= 8
    steps = f.steps
    assert steps[0] == 0 and steps[-1] >= 32  # spans the run
    assert np.all(np.diff(steps) == steps[1] - steps[0])  # uniform stride
    assert tracker.memory_nbytes <= per_step * 8
    # values still belong to their steps: replay the same run and compare
    model2, opt2 = small()
    ref = FeatureTracker(model2, optimizer=opt2)
    run_steps(ref, model2, opt2, 40)
    for s in steps:
        assert torch.equal(f.get_at_step(int(s)), ref.get_feature("0.weight").get_at_step(int(s)))


def test_downsample_refills_freed_rows_without_new_blocks():
    from flt_tracker.storage import MemoryStorage

    store = MemoryStorage((3,), torch.float32, capacity=8, chunk_size=4, policy="downsample")
    for i in range(8):
        store.append(torch.full((3,), float(i)), step=i, epoch=0, batch_idx=i)
    blocks = list(store._blocks)
    for i in range(8, 200):
        store.append(torch.full((3,), float(i)), step=i, epoch=0, batch_idx=i)
        assert len(store._blocks) == 2 and all(a is b for a, b in zip(store._blocks, blocks))
    steps = store.index()[:, 0]
    assert len(store) <= 8 and steps[0] == 0
    assert np.all(np.diff(steps) == steps[1] - steps[0])
    for j, s in enumerate(steps.tolist()):
        assert torch.equal(store.get(j), torch.full((3,), float(s)))


def test_reserve_allocates_the_capacity_up_front_and_recording_reuses_it():
    store = MemoryStorage((3,), torch.float32, capacity=10, chunk_size=4, policy="downsample")
    store.reserve()
    blocks = list(store._blocks)
    assert [b.shape[0] for b in blocks] == [4, 4, 2] and store.memory_nbytes == 10 * 12
    assert len(store) == 0 and store.read(0, 5).shape == (0, 3)
    for i in range(60):
        store.append(torch.full((3,), float(i)), step=i, epoch=0, batch_idx=i)
        assert len(store._blocks) == 3 and all(a is b for a, b in zip(store._blocks, blocks))
    for j, s in enumerate(store.index()[:, 0].tolist()):
        assert torch.equal(store.get(j), torch.full((3,), float(s)))
    with pytest.raises(ValueError, match="capacity"):
        MemoryStorage((3,), torch.float32).reserve()


def test_preallocated_tracker_records_what_a_lazy_one_does():
    model, opt = small()
    per_step = (4 * 5 + 4 + 4 + 1) * 4
    budget = per_step * 50
    tracker = FeatureTracker(
        model, optimizer=opt, memory_budget=budget, chunk_size=8, preallocate=True
    )
    tracker.start()
    held = tracker.memory_nbytes
    assert budget - per_step < held <= budget  # the whole budget, before any step
    tracker.stop()
    run_steps(tracker, model, opt, 30)
    assert tracker.memory_nbytes == held
    model2, opt2 = small()
    ref = FeatureTracker(model2, optimizer=opt2, memory_budget=budget, chunk_size=8)
    run_steps(ref, model2, opt2, 30)
    for name, f in ref.get_features().items():
        g = tracker.get_feature(name)
        assert torch.equal(g.as_tensor(), f.as_tensor())
        assert g.steps.tolist() == f.steps.tolist()
    assert ref.memory_nbytes < held  # the lazy store grew block by block: 4 of 7 blocks


def test_preallocate_needs_a_memory_budget(tmp_path):
    model, opt = small()
    with pytest.raises(ValueError, match="preallocate"):
        FeatureTracker(model, preallocate=True)
    with pytest.raises(ValueError, match="preallocate"):
        FeatureTracker(
            model, storage="disk", directory=tmp_path, memory_budget="1MB", preallocate=True
        )


def test_save_load_roundtrip_and_tamper(tmp_path):
    model, opt = small()
    tracker = FeatureTracker(model, optimizer=opt, track_gradients=True, dtype=torch.float16)
    run_steps(tracker, model, opt, 5)
    tracker.set_phase("clean")
    out = tracker.save(tmp_path / "run")
    run = load_run(out)
    assert run.complete and run.phases == [(5, "clean")]
    for name, f in tracker.get_features().items():
        g = run.get_feature(name)
        assert g.kind == f.kind and g.storage.dtype == torch.float16
        assert torch.equal(g.as_tensor(), f.as_tensor())
        assert g.steps.tolist() == f.steps.tolist()
    files = json.loads((out / "run.json").read_text())
    assert "pickle" not in (out / "run.json").read_text()
    chunk = out / files["features"][0]["folder"] / "chunk_000000.npy"
    data = chunk.read_bytes()
    chunk.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="checksum"):
        load_run(out)
    with pytest.raises(FileNotFoundError):
        load_run(tmp_path / "nothing")


def test_save_replaces_existing_run_atomically(tmp_path):
    model, opt = small()
    tracker = FeatureTracker(model, layers=["0"], optimizer=opt)
    run_steps(tracker, model, opt, 2)
    tracker.save(tmp_path / "run")
    run_steps(tracker, model, opt, 3)
    tracker.save(tmp_path / "run")
    assert len(load_run(tmp_path / "run").get_feature("0.weight")) == 6
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_save_failing_at_the_final_rename_keeps_the_earlier_run(tmp_path, monkeypatch):
    model, opt = small()
    tracker = FeatureTracker(model, layers=["0"], optimizer=opt)
    run_steps(tracker, model, opt, 2)
    tracker.save(tmp_path / "run")
    run_steps(tracker, model, opt, 3)
    real_replace = os.replace

    def crash_on_the_new_copy(src, dst):
        if Path(dst) == tmp_path / "run" and ".old-" not in Path(src).name:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_the_new_copy)
    with pytest.raises(OSError, match="disk full"):
        tracker.save(tmp_path / "run")
    monkeypatch.undo()
    # was: the earlier run left under a hidden ".run.old-PID" name and "run" gone
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    assert len(load_run(tmp_path / "run").get_feature("0.weight")) == 3


def test_save_refuses_to_replace_a_file_or_a_folder_that_is_not_a_run(tmp_path):
    # was: the folder and everything in it was replaced by the run (and then deleted)
    model, opt = small()
    tracker = FeatureTracker(model, layers=["0"], optimizer=opt)
    run_steps(tracker, model, opt, 2)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "notes.txt").write_text("keep me")
    (tmp_path / "file.txt").write_text("keep me too")
    for target in ("results", "file.txt"):
        with pytest.raises(FileExistsError, match="not a flt-tracker run"):
            tracker.save(tmp_path / target)
    assert (tmp_path / "results" / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "file.txt").read_text() == "keep me too"
    (tmp_path / "empty").mkdir()
    assert len(load_run(tracker.save(tmp_path / "empty")).get_feature("0.weight")) == 3


def test_disk_backend_reads_back_and_bounds_memory(tmp_path):
    model, opt = small()
    tracker = FeatureTracker(
        model, layers=["0"], optimizer=opt, storage="disk", directory=tmp_path / "d", chunk_size=4
    )
    mem = FeatureTracker(model, layers=["0"])  # reference recorded with explicit steps
    g = torch.Generator().manual_seed(1)
    with tracker, mem:
        for _ in range(10):
            opt.zero_grad()
            model(torch.randn(8, 5, generator=g)).pow(2).mean().backward()
            opt.step()
            mem._advance()
    live = tracker.get_feature("0.weight")
    assert torch.equal(live.as_tensor(), mem.get_feature("0.weight").as_tensor())
    assert live.storage.memory_nbytes <= DiskStorage.most_blocks() * 4 * 4 * 5 * 4
    tracker.close()
    run = load_run(tmp_path / "d")
    assert run.complete
    assert torch.equal(
        run.get_feature("0.weight").as_tensor(), mem.get_feature("0.weight").as_tensor()
    )
    with pytest.raises(FileExistsError):
        DiskStorage(tmp_path / "d" / "f0000", (4, 5), torch.float32)


CHILD = textwrap.dedent(
    """
    import sys, time, torch
    from torch import nn
    sys.path[:0] = {paths!r}
    from flt_tracker import FeatureTracker
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Linear(5, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(1)
    tracker = FeatureTracker(model, optimizer=opt, storage="disk", directory={directory!r}, chunk_size=4)
    tracker.start()
    while True:  # killed from outside
        opt.zero_grad()
        model(torch.randn(8, 5, generator=g)).pow(2).mean().backward()
        opt.step()
        time.sleep(0.002)
    """
)


def test_disk_run_survives_a_killed_writer(tmp_path):
    import flt_tracker

    src = str(Path(flt_tracker.__file__).parents[1])
    paths = [src] + [p for p in sys.path if p]
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(paths=paths, directory=str(tmp_path / "run")))
    proc = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 60
        while len(list((tmp_path / "run" / "f0000").glob("chunk_*.idx.npy"))) < 3:
            assert proc.poll() is None, "writer died on its own"
            assert time.monotonic() < deadline, "writer too slow"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with pytest.warns(UserWarning, match="unfinished"):
        run = load_run(tmp_path / "run")
    w = run.get_feature("weight")
    n = len(w)
    assert n >= 12 and n % 4 == 0  # whole chunks only
    assert w.steps.tolist() == list(range(n))
    # replay the same deterministic training and compare every flushed snapshot
    torch.manual_seed(0)
    model = nn.Linear(5, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(1)
    expected = [model.weight.detach().clone()]
    for _ in range(n - 1):
        opt.zero_grad()
        model(torch.randn(8, 5, generator=g)).pow(2).mean().backward()
        opt.step()
        expected.append(model.weight.detach().clone())
    assert torch.equal(w.as_tensor(), torch.stack(expected))


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: "[1, 2]",
        lambda m: m.pop("features") and None,
        lambda m: m["features"][0].pop("folder") and None,
        lambda m: m["features"][0].pop("dtype") and None,
        lambda m: m.__setitem__("format_version", "x"),
        lambda m: m.__setitem__("phases", [[1]]),
        lambda m: m["features"][0].__setitem__("folder", "../elsewhere"),
        # were: a hash of any file the path reached, a bare int() error, a series dropped
        lambda m: m["features"][0]["sha256"].__setitem__("../../outside.txt", "0" * 64),
        lambda m: m["features"][0].__setitem__("count", "abc"),
        lambda m: m["features"][1].__setitem__("name", m["features"][0]["name"]),
    ],
)
def test_malformed_manifest_is_a_clear_value_error(tmp_path, edit):
    model, opt = small()
    tracker = FeatureTracker(model, optimizer=opt)
    run_steps(tracker, model, opt, 2)
    out = tracker.save(tmp_path / "run")
    manifest = json.loads((out / "run.json").read_text())
    text = edit(manifest)
    (out / "run.json").write_text(text if isinstance(text, str) else json.dumps(manifest))
    with pytest.raises(ValueError, match="run.json"):
        load_run(out)
    (out / "run.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_run(out)


@pytest.mark.skipif(not getattr(os, "O_DIRECT", 0), reason="O_DIRECT is Linux-only")
def test_disk_chunks_are_written_direct_as_standard_npy(tmp_path):
    store = DiskStorage(tmp_path / "s", (3, 5), torch.float32, chunk_size=4)
    values = torch.randn(10, 3, 5)
    for i, v in enumerate(values):
        store.append(v, i, 0, i)
    store.close()
    assert torch.equal(store.read(0, 10), values)
    if not store._direct:
        pytest.skip(f"the file system of {tmp_path} refuses O_DIRECT (buffered writes were used)")
    chunk = tmp_path / "s" / "chunk_000000.npy"
    with open(chunk, "rb") as fh:  # a valid .npy whose data starts on a page boundary
        assert np.lib.format.read_magic(fh) == (1, 0)
        np.lib.format.read_array_header_1_0(fh)
        assert fh.tell() == 4096
    np.testing.assert_array_equal(np.load(chunk, allow_pickle=False), values[:4].numpy())
    assert chunk.stat().st_size == 4096 + 4 * 60


def test_disk_storage_allocates_two_blocks_up_front_and_reuses_them(tmp_path):
    store = DiskStorage(tmp_path / "s", (3, 5), torch.float32, chunk_size=2)
    block = 2 * 3 * 5 * 4
    assert store.memory_nbytes == 2 * block  # the block being filled and a spare, faulted in
    values = torch.randn(20, 3, 5)
    for i, v in enumerate(values):
        store.append(v, i, 0, i)
        if i % 2:
            store.flush()  # the writer has finished: the written block is back in the pool
    assert store.memory_nbytes == 2 * block
    store.close()
    assert torch.equal(store.read(0, 20), values)


def test_disk_storage_holds_at_most_most_blocks_with_a_slow_writer(tmp_path, monkeypatch):
    write = DiskStorage._write_values

    def slow(self, *args):
        time.sleep(0.01)
        write(self, *args)

    monkeypatch.setattr(DiskStorage, "_write_values", slow)
    store = DiskStorage(tmp_path / "s", (4,), torch.float32, chunk_size=1, max_pending=2)
    values = torch.randn(12, 4)
    held = []
    for i, v in enumerate(values):
        store.append(v, i, 0, i)
        held.append(store.memory_nbytes)
    store.close()
    assert max(held) <= DiskStorage.most_blocks(2) * 16 and max(held) > 2 * 16
    assert torch.equal(store.read(0, 12), values)


@pytest.mark.parametrize("populate", [False, True])
def test_anonymous_pages_are_whole_zeroed_aligned_pages(populate):
    pages = anonymous_pages(3 * 4096 + 5, populate=populate)
    assert pages.size == 4 * 4096 and pages.ctypes.data % 4096 == 0 and pages.flags.writeable
    assert not pages.any()
    pages[4096:8192] = 7
    assert int(pages.sum()) == 7 * 4096


def test_disk_storage_falls_back_to_buffered_writes(tmp_path, monkeypatch):
    import errno

    import flt_tracker.storage as storage

    def refuse(*args, **kwargs):
        raise OSError(errno.EINVAL, "direct I/O not supported")

    monkeypatch.setattr(storage, "_save_npy_direct", refuse)
    store = DiskStorage(tmp_path / "s", (6,), torch.float16, chunk_size=3)
    values = torch.randn(7, 6).half()
    for i, v in enumerate(values):
        store.append(v, i, 0, i)
    store.close()
    assert not store._direct
    assert torch.equal(store.read(0, 7), values)
    assert torch.equal(_chunk_values(tmp_path / "s"), values)


def _chunk_values(folder):
    chunks = sorted(folder.glob("chunk_*[0-9].npy"))
    return torch.from_numpy(np.concatenate([np.load(c, allow_pickle=False) for c in chunks]))


def test_save_refuses_to_replace_the_directory_its_series_are_read_from(tmp_path):
    model, opt = small()
    tracker = FeatureTracker(
        model, layers=["0"], optimizer=opt, storage="disk", directory=tmp_path / "d", chunk_size=2
    )
    run_steps(tracker, model, opt, 5)
    before = tracker.get_feature("0.weight").as_tensor()
    for target in (tmp_path / "d", tmp_path / "d" / "f0000", tmp_path):
        with pytest.raises(ValueError, match="holds the chunks"):
            tracker.save(target)
    assert torch.equal(tracker.get_feature("0.weight").as_tensor(), before)  # intact
    tracker.close()
    run = load_run(tmp_path / "d")
    with pytest.raises(ValueError, match="holds the chunks"):
        save_run(tmp_path / "d", run.manifest, run.features)
    save_run(tmp_path / "copy", run.manifest, run.features)  # elsewhere is fine
    assert torch.equal(load_run(tmp_path / "copy").get_feature("0.weight").as_tensor(), before)


def test_downsampled_gradients_keep_the_steps_of_their_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 1))
    model[2].requires_grad_(False)  # frozen: its gradients stay None
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    per_step = 2 * sum(p.numel() for p in model.parameters()) * 4
    tracker = FeatureTracker(
        model,
        optimizer=opt,
        track_gradients=True,
        memory_budget=per_step * 5,
        budget_policy="downsample",
    )
    with pytest.warns(RuntimeWarning, match="do not require gradients"):
        run_steps(tracker, model, opt, 37)
    weights = tracker.get_feature("0.weight").steps
    grads = tracker.get_feature("0.weight.grad").steps
    assert weights[-1] >= 32 and len(grads) >= 4
    assert set(grads.tolist()) <= set(weights.tolist())  # same grid, minus the initial step
    assert len(tracker.get_feature("2.weight.grad")) == 0


def test_gpu_copy_is_awaited_on_the_stream_of_the_values_device(monkeypatch):
    # a pinned non-blocking copy from cuda:1 runs on cuda:1's current stream, whatever the
    # current device: the event the readers wait on must be recorded there (no GPU needed)
    recorded = []

    class Event:
        def record(self, stream=None):
            recorded.append(stream)

        def synchronize(self):
            pass

    class PinnedRow:
        def copy_(self, value, non_blocking=False):
            self.copied = (value, non_blocking)

        def is_pinned(self):
            return True

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: ("stream", device))
    value = type("CudaValue", (), {"is_cuda": True, "device": torch.device("cuda", 1)})()
    store, row = MemoryStorage((2,), torch.float32), PinnedRow()
    store._copy_into(row, value)
    assert row.copied == (value, True)
    assert recorded == [("stream", torch.device("cuda", 1))]
    store.synchronize()
    assert store._events == []


def test_unfinished_run_warning_points_at_the_callers_line(tmp_path):
    model = nn.Linear(3, 2)
    tracker = FeatureTracker(model, storage="disk", directory=tmp_path / "run")
    tracker.start()  # never closed: run.json says the run is unfinished
    tracker.flush()
    with pytest.warns(UserWarning, match="unfinished") as record:
        run = load_run(tmp_path / "run")
    # stacklevel pointed into flt_tracker/run.py (load_run's own line), not the caller's
    assert [Path(w.filename).name for w in record] == [Path(__file__).name]
    assert len(run.get_feature("weight")) == 1
    tracker.close()


def test_save_run_of_own_features_with_a_settings_only_manifest(tmp_path):
    f = Feature("probe.norm")
    for i in range(3):
        f.append(torch.full((2,), float(i)), epoch=i)
    # {} was a KeyError; without "format" the run was written, then refused by load_run
    for i, manifest in enumerate(({}, {"phases": [[0, "clean"]]})):
        run = load_run(save_run(tmp_path / f"run{i}", manifest, {"probe.norm": f}))
        assert run.complete and run.phases == [(0, "clean")][:i]
        g = run.get_feature("probe.norm")
        assert torch.equal(g.as_tensor(), f.as_tensor()) and g.epochs.tolist() == [0, 1, 2]


def test_chunked_series_read_any_range_as_memory_does(tmp_path):
    # chunks of uneven lengths (flushes mid-chunk): each read finds its chunks by bisection
    from flt_tracker.storage import ChunkReader, write_chunks

    mem = MemoryStorage((2,), torch.float64)
    disk = DiskStorage(tmp_path / "disk", (2,), torch.float64, chunk_size=4)
    for i in range(23):
        value = torch.tensor([i, -0.5 * i], dtype=torch.float64)
        mem.append(value, i, 0, i)
        disk.append(value, i, 0, i)
        if i in (1, 2, 9):
            disk.flush()
    disk.flush()
    write_chunks(tmp_path / "saved", mem, chunk_size=5)
    reader = ChunkReader(tmp_path / "saved")
    for start in range(-1, 25):
        for stop in {start, start + 1, start + 3, start + 7, 26}:
            expected = mem.read(start, stop)
            assert torch.equal(disk.read(start, stop), expected), (start, stop)
            assert torch.equal(reader.read(start, stop), expected), (start, stop)
    assert [b.tolist() for _, b in disk.iter_blocks(3)] == [
        b.tolist() for _, b in mem.iter_blocks(3)
    ]
    disk.close()
