"""Tracking overhead: MLP 784-512-512-10 on random data, batch 128.

Compares a plain training step with FeatureTracker modes (both hidden layers' weights,
2.65 MB per snapshot) and with two baselines: naive per-step clones of the tracked tensors into a
list, and a histogram logger doing what ``wandb.watch(log="all")`` does (a histogram of every
parameter and every gradient, each step, moved to the CPU).

Each mode trains in lockstep with a plain twin (same model, data and optimizer; one step of
each in turn, the order alternating), so both see the same moments of a shared machine; the
overhead is the mode's total step time over the twin's, with the quartiles over 50-step blocks
as its spread. A mode with a background thread (disk writer, async copies) slows its twin too,
so a column compares every mode with the median twin of the run. Preallocating modes do their
page faults in ``start()``: its time is printed, and the overhead with it added to the steps.
A floor row copies the
tensors into memory written before (the least any in-RAM tracker can cost), and the machine's
copy bandwidth into written memory, fresh memory and files is printed first. A last table
runs one pass per mode for the snapshot memory and RSS growth.

    python packages/flt-tracker/benchmarks/overhead.py --steps 500 --repeats 3 --threads 2

With ``--device cuda`` the model and batches live on the GPU, every step ends with a
``torch.cuda.synchronize()`` (in the plain twin too) so a step's time includes the snapshot's
device-to-host copy (``async_copy`` cannot hide it behind the next step here), and the floor
row copies into pinned host memory.
"""

from __future__ import annotations

import argparse
import gc
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from flt_tracker import FeatureTracker
from torch import nn

LAYERS = ["0.weight", "2.weight"]
DEVICE = torch.device("cpu")  # set from --device in main()


def snapshot_bytes() -> int:
    """Bytes of one snapshot of the tracked tensors (float32)."""
    state = make()[0].state_dict()
    return sum(state[k].numel() * state[k].element_size() for k in LAYERS)


def rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def make(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
    ).to(DEVICE)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return model, opt


class Mode:
    """One way of training: setup() -> per-step hook -> teardown() -> memory figure."""

    def __init__(self, name: str):
        self.name = name
        self.start_s = 0.0  # set-up time outside the steps (a preallocating tracker's start())

    def setup(self, model, opt, tmp: Path) -> None:
        self.model, self.opt = model, opt

    def after_step(self) -> None:
        pass

    def stored_mb(self) -> float:
        return 0.0

    def teardown(self) -> None:
        pass


class TrackerMode(Mode):
    def __init__(self, name: str, **kwargs):
        super().__init__(name)
        self.kwargs = kwargs

    def setup(self, model, opt, tmp):
        super().setup(model, opt, tmp)
        kwargs = dict(self.kwargs)
        if kwargs.get("storage") == "disk":
            kwargs["directory"] = tmp / "run"
        self.tracker = FeatureTracker(model, layers=LAYERS, optimizer=opt, **kwargs)
        t0 = time.perf_counter()
        self.tracker.start()
        self.start_s = time.perf_counter() - t0

    def stored_mb(self) -> float:
        return self.tracker.memory_nbytes / 2**20

    def teardown(self):
        self.tracker.close()


class CloneMode(Mode):
    def setup(self, model, opt, tmp):
        super().setup(model, opt, tmp)
        self.snaps = []

    def after_step(self):
        state = self.model.state_dict()
        self.snaps.append({k: state[k].detach().clone() for k in LAYERS})

    def stored_mb(self) -> float:
        return sum(t.numel() * t.element_size() for s in self.snaps for t in s.values()) / 2**20


class WrittenCopyMode(Mode):
    """The least any in-RAM tracker can cost: copy the tensors into rows written before."""

    def setup(self, model, opt, tmp):
        super().setup(model, opt, tmp)
        state = model.state_dict()
        pin = DEVICE.type == "cuda"
        self.rows = {k: torch.zeros(2, *state[k].shape, pin_memory=pin) for k in LAYERS}
        self.i = 0

    def after_step(self):
        state = self.model.state_dict()
        for k in LAYERS:
            self.rows[k][self.i % 2].copy_(state[k])
        self.i += 1


class HistogramMode(Mode):
    """What wandb.watch(log="all", log_freq=1) computes: 64-bin histograms of params and grads."""

    def after_step(self):
        out = {}
        for name, p in self.model.named_parameters():
            for key, t in ((name, p.detach()), (name + ".grad", p.grad)):
                lo, hi = float(t.min()), float(t.max())
                out[key] = (torch.histc(t.float(), bins=64, min=lo, max=hi).cpu(), lo, hi)
        self.last = out


def make_batches(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    X, Y = torch.randn(16, batch, 784, generator=g), torch.randint(0, 10, (16, batch), generator=g)
    return X.to(DEVICE), Y.to(DEVICE)


class Runner:
    """One model, optimizer and mode, advanced one timed training step at a time."""

    def __init__(self, mode: Mode, batch: int, tmp: Path) -> None:
        self.mode = mode
        self.model, self.opt = make()
        self.X, self.Y = make_batches(batch)
        self.loss_fn = nn.CrossEntropyLoss()
        self.i = 0
        mode.setup(self.model, self.opt, tmp)

    def step(self) -> float:
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        k = self.i % 16
        self.loss_fn(self.model(self.X[k]), self.Y[k]).backward()
        self.opt.step()
        self.mode.after_step()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        self.i += 1
        return time.perf_counter() - t0


def run_mode(mode: Mode, steps: int, batch: int, tmp: Path) -> tuple[float, float, float]:
    """One continuous pass: (ms per step, stored MiB, RSS growth MiB)."""
    gc.collect()
    rss0 = rss_mb()
    runner = Runner(mode, batch, tmp)
    elapsed = sum(runner.step() for _ in range(steps))
    stored = mode.stored_mb()
    rss = rss_mb() - rss0
    mode.teardown()
    return elapsed / steps * 1e3, stored, rss


def run_paired(
    mode: Mode, steps: int, batch: int, tmp: Path
) -> tuple[list[float], list[float], float]:
    """``steps`` steps of a plain model and of ``mode``'s model in lockstep, order alternating.

    Returns the per-step seconds of the plain model and of the mode (both see the same
    moment of a shared machine, so their ratio is far less noisy than separate runs') and the
    seconds of the mode's set-up outside the steps.
    """
    plain, tracked = Runner(Mode("plain"), batch, tmp), Runner(mode, batch, tmp)
    t_plain, t_mode = [], []
    for i in range(steps):
        if i % 2:
            t_mode.append(tracked.step())
            t_plain.append(plain.step())
        else:
            t_plain.append(plain.step())
            t_mode.append(tracked.step())
    mode.teardown()
    return t_plain, t_mode, mode.start_s


def overhead(
    t_plain: list[float], t_mode: list[float], block: int = 50
) -> tuple[float, float, float]:
    """Total-time overhead and the quartiles of the per-block overheads."""
    total = sum(t_mode) / sum(t_plain) - 1
    blocks = [
        sum(t_mode[i : i + block]) / sum(t_plain[i : i + block]) - 1
        for i in range(0, len(t_plain) - block + 1, block)
    ]
    if len(blocks) < 2:
        return total, total, total
    q1, _, q3 = statistics.quantiles(blocks, n=4)
    return total, q1, q3


def copy_bandwidth(nbytes: int, repeat: int = 40) -> dict[str, float]:
    """GB/s of copying ``nbytes`` into memory already written, into fresh memory, into a file."""
    src = torch.rand(nbytes // 4)
    warm = torch.zeros_like(src)
    out = {}
    t0 = time.perf_counter()
    for _ in range(repeat):
        warm.copy_(src)
    out["written memory"] = repeat * nbytes / (time.perf_counter() - t0) / 1e9
    keep = []
    t0 = time.perf_counter()
    for _ in range(repeat):
        keep.append(torch.empty_like(src).copy_(src))
    out["fresh memory"] = repeat * nbytes / (time.perf_counter() - t0) / 1e9
    del keep
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for i in range(repeat):
            with open(Path(tmp) / f"{i}.bin", "wb") as fh:
                fh.write(src.numpy().tobytes())
        out["file (page cache)"] = repeat * nbytes / (time.perf_counter() - t0) / 1e9
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=500, help="steps per mode (and of its plain twin)")
    ap.add_argument("--repeats", type=int, default=1, help="passes per mode (median reported)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda: where the model trains")
    ap.add_argument("--budget", default="256MiB", help="memory_budget of the budgeted mode")
    ap.add_argument("--smoke", action="store_true", help="tiny run (checks the script)")
    ap.add_argument(
        "--only", default=None, help="comma-separated substrings: run the matching modes"
    )
    ap.add_argument(
        "--memory-steps", type=int, default=500, help="steps of the one-pass memory table (0: skip)"
    )
    args = ap.parse_args()
    if args.smoke:
        args.steps, args.repeats, args.memory_steps = 20, 1, 20
    torch.set_num_threads(args.threads)
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    nbytes = snapshot_bytes()
    modes = [
        TrackerMode("tracker, every step, memory"),
        TrackerMode(
            "tracker, every step, memory, preallocated (budget of the whole run)",
            memory_budget=(args.steps + 1) * nbytes,
            preallocate=True,
        ),
        TrackerMode("tracker, every step, memory, float16", dtype=torch.float16),
        TrackerMode("tracker, every step, memory, async_copy", async_copy=True),
        TrackerMode(
            f"tracker, every step, memory, budget {args.budget} (downsample)",
            memory_budget=args.budget,
            budget_policy="downsample",
        ),
        TrackerMode(
            f"tracker, every step, memory, budget {args.budget} (downsample), preallocated",
            memory_budget=args.budget,
            budget_policy="downsample",
            preallocate=True,
        ),
        TrackerMode("tracker, every step, disk (16 MiB chunks, writer thread)", storage="disk"),
        TrackerMode("tracker, every 10 steps, memory", track_frequency=10),
        TrackerMode("tracker, every step, weights + gradients", track_gradients=True),
        WrittenCopyMode("copy into already-written memory every step (floor)"),
        CloneMode("naive state_dict clones every step"),
        HistogramMode("wandb.watch-style histograms every step"),
    ]
    if args.only:
        keys = [k.strip() for k in args.only.split(",")]
        modes = [m for m in modes if any(k in m.name for k in keys)]
    results = {}
    tmp_root = Path(tempfile.mkdtemp(prefix="flt-bench-"))
    try:
        run_mode(Mode("warmup"), 10, args.batch, tmp_root)
        bandwidth = copy_bandwidth(nbytes)
        for r in range(args.repeats):
            for m in modes:
                tmp = tmp_root / f"{r}-{abs(hash(m.name))}"
                tmp.mkdir()
                results.setdefault(m.name, []).append(run_paired(m, args.steps, args.batch, tmp))
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    print(
        f"MLP 784-512-512-10, batch {args.batch}, {args.steps} steps per mode in lockstep with a "
        f"plain twin, {args.repeats} pass(es), {args.threads} torch threads, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}"
        + (f", {torch.cuda.get_device_name(DEVICE)}" if DEVICE.type == "cuda" else "")
    )
    print()
    print(
        f"Copy bandwidth of this machine (one {nbytes / 1e6:.2f} MB snapshot): "
        + ", ".join(f"{k} {v:.1f} GB/s" for k, v in bandwidth.items())
    )
    print()
    print(
        "| mode | plain ms / step | mode ms / step | steps / s | overhead vs plain twin | "
        "spread (quartiles of 50-step blocks) | vs median plain step of the run | "
        "start() ms | overhead incl. start() |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for m in modes:
        runs = results[m.name]
        stats = sorted((overhead(p, t), p, t, s0) for p, t, s0 in runs)
        (over, q1, q3), p, t, s0 = stats[len(stats) // 2]  # the median pass
        rows.append((m.name, 1e3 * sum(p) / len(p), 1e3 * sum(t) / len(t), over, q1, q3, s0, p, t))
    # A mode with a background thread (disk writer, async copies) slows its twin too; the
    # median twin over all modes is the plain step such a mode should be read against.
    ms_ref = statistics.median(r[1] for r in rows)
    for name, ms_plain, ms_mode, over, q1, q3, s0, p, t in rows:
        print(
            f"| {name} | {ms_plain:.2f} | {ms_mode:.2f} | {1e3 / ms_mode:.0f} | "
            f"{100 * over:+.1f}% | {100 * q1:+.1f}% .. {100 * q3:+.1f}% | "
            f"{100 * (ms_mode / ms_ref - 1):+.1f}% | {1e3 * s0:.0f} | "
            f"{100 * ((sum(t) + s0) / sum(p) - 1):+.1f}% |"
        )
    if args.memory_steps:
        memory_table(args.memory_steps, args.batch, args.budget, nbytes)


def memory_table(steps: int, batch: int, budget: str, nbytes: int) -> None:
    """One continuous pass per mode: does memory follow the budget or the step count?"""
    mb = nbytes / 1e6
    modes = [
        TrackerMode("tracker, every step, memory, no budget"),
        TrackerMode(
            "tracker, every step, memory, preallocated (budget of the whole run)",
            memory_budget=(steps + 1) * nbytes,
            preallocate=True,
        ),
        TrackerMode(
            f"tracker, every step, memory, budget {budget} (downsample)",
            memory_budget=budget,
            budget_policy="downsample",
        ),
        TrackerMode("tracker, every step, disk", storage="disk"),
        CloneMode("naive state_dict clones every step"),
    ]
    print()
    print(
        f"One pass of {steps} steps per mode ({mb:.2f} MB per snapshot, {steps * mb:.0f} MB in all):"
    )
    print()
    print(
        "| mode | ms / step | start() ms | snapshots kept | snapshot RAM (MiB) | RSS growth (MiB) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    tmp_root = Path(tempfile.mkdtemp(prefix="flt-bench-mem-"))
    try:
        for i, m in enumerate(modes):
            tmp = tmp_root / str(i)
            tmp.mkdir()
            ms, mb, growth = run_mode(m, steps, batch, tmp)
            kept = (
                len(m.snaps) if isinstance(m, CloneMode) else len(m.tracker.get_feature("0.weight"))
            )
            print(
                f"| {m.name} | {ms:.2f} | {1e3 * m.start_s:.0f} | {kept} | {mb:.0f} | "
                f"{growth:.0f} |"
            )
            del m
            gc.collect()
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)


if __name__ == "__main__":
    main()
