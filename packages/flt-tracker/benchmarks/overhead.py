"""Tracking overhead: MLP 784-512-512-10 on random data, batch 128.

Compares a plain training step with FeatureTracker modes (both hidden layers' weights,
2.66 MB per snapshot) and with two baselines: naive per-step clones of the tracked tensors into a
list, and a histogram logger doing what ``wandb.watch(log="all")`` does (a histogram of every
parameter and every gradient, each step, moved to the CPU).

Modes run in interleaved rounds (each round runs every mode for ``--steps / --rounds`` steps);
the table reports the median per-round time per step, the overhead against the plain step
of the same rounds (median and quartiles over rounds: a wide spread means a noisy machine),
snapshot memory and the process RSS growth (Linux).

    python packages/flt-tracker/benchmarks/overhead.py --steps 500 --rounds 5 --threads 2
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
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return model, opt


class Mode:
    """One way of training: setup() -> per-step hook -> teardown() -> memory figure."""

    def __init__(self, name: str):
        self.name = name

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
        self.tracker.start()

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


class HistogramMode(Mode):
    """What wandb.watch(log="all", log_freq=1) computes: 64-bin histograms of params and grads."""

    def after_step(self):
        out = {}
        for name, p in self.model.named_parameters():
            for key, t in ((name, p.detach()), (name + ".grad", p.grad)):
                lo, hi = float(t.min()), float(t.max())
                out[key] = (torch.histc(t.float(), bins=64, min=lo, max=hi).cpu(), lo, hi)
        self.last = out


def run_mode(mode: Mode, steps: int, batch: int, tmp: Path) -> tuple[float, float, float]:
    model, opt = make()
    g = torch.Generator().manual_seed(1)
    X = torch.randn(16, batch, 784, generator=g)
    Y = torch.randint(0, 10, (16, batch), generator=g)
    loss_fn = nn.CrossEntropyLoss()
    gc.collect()
    rss0 = rss_mb()
    mode.setup(model, opt, tmp)
    t0 = time.perf_counter()
    for i in range(steps):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(X[i % 16]), Y[i % 16]).backward()
        opt.step()
        mode.after_step()
    elapsed = time.perf_counter() - t0
    stored = mode.stored_mb()
    rss = rss_mb() - rss0
    mode.teardown()
    return elapsed / steps * 1e3, stored, rss


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=500, help="steps per mode (split over rounds)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", default="256MiB", help="memory_budget of the budgeted mode")
    ap.add_argument("--smoke", action="store_true", help="tiny run (checks the script)")
    ap.add_argument(
        "--only", default=None, help="comma-separated substrings: run matching modes (+ plain)"
    )
    ap.add_argument(
        "--memory-steps", type=int, default=500, help="steps of the one-pass memory table (0: skip)"
    )
    args = ap.parse_args()
    if args.smoke:
        args.steps, args.rounds, args.memory_steps = 20, 2, 20
    torch.set_num_threads(args.threads)
    per_round = max(1, args.steps // args.rounds)
    modes = [
        Mode("plain step"),
        TrackerMode("tracker, every step, memory"),
        TrackerMode("tracker, every step, memory, float16", dtype=torch.float16),
        TrackerMode("tracker, every step, memory, async_copy", async_copy=True),
        TrackerMode(
            f"tracker, every step, memory, budget {args.budget} (downsample)",
            memory_budget=args.budget,
            budget_policy="downsample",
        ),
        TrackerMode("tracker, every step, disk (16 MiB chunks, writer thread)", storage="disk"),
        TrackerMode("tracker, every 10 steps, memory", track_frequency=10),
        TrackerMode("tracker, every step, weights + gradients", track_gradients=True),
        CloneMode("naive state_dict clones every step"),
        HistogramMode("wandb.watch-style histograms every step"),
    ]
    if args.only:
        keys = [k.strip() for k in args.only.split(",")]
        modes = [m for m in modes if m.name == "plain step" or any(k in m.name for k in keys)]
    times = {m.name: [] for m in modes}
    stored = {m.name: 0.0 for m in modes}
    rss = {m.name: 0.0 for m in modes}
    tmp_root = Path(tempfile.mkdtemp(prefix="flt-bench-"))
    try:
        run_mode(Mode("warmup"), 10, args.batch, tmp_root)
        for r in range(args.rounds):
            for m in modes:
                tmp = tmp_root / f"{r}-{len(times[m.name])}-{abs(hash(m.name))}"
                tmp.mkdir()
                ms, mb, growth = run_mode(m, per_round, args.batch, tmp)
                times[m.name].append(ms)
                stored[m.name] = max(stored[m.name], mb)
                rss[m.name] = max(rss[m.name], growth)
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    print(
        f"MLP 784-512-512-10, batch {args.batch}, {args.rounds} rounds x {per_round} steps per mode, "
        f"{args.threads} torch threads, torch {torch.__version__}, {platform.processor() or platform.machine()}"
    )
    print()
    print(
        "| mode | ms / step (median of rounds) | steps / s | overhead vs plain | "
        "spread (quartiles of rounds) | snapshot RAM (MiB) | RSS growth (MiB) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for m in modes:
        # per-round overhead against the plain step of the same round, then the median
        ratios = [t / p - 1 for t, p in zip(times[m.name], times["plain step"])]
        ms = statistics.median(times[m.name])
        over = spread = "-"
        if m.name != "plain step":
            over = f"{100 * statistics.median(ratios):+.1f}%"
            if len(ratios) > 1:
                q1, _, q3 = statistics.quantiles(ratios, n=4)
                spread = f"{100 * q1:+.1f}% .. {100 * q3:+.1f}%"
        print(
            f"| {m.name} | {ms:.2f} | {1e3 / ms:.0f} | {over} | {spread} | "
            f"{stored[m.name]:.0f} | {rss[m.name]:.0f} |"
        )
    if args.memory_steps:
        memory_table(args.memory_steps, args.batch, args.budget)


def memory_table(steps: int, batch: int, budget: str) -> None:
    """One continuous pass per mode: does memory follow the budget or the step count?"""
    modes = [
        TrackerMode("tracker, every step, memory, no budget"),
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
        f"One pass of {steps} steps per mode (2.66 MB per snapshot, {steps * 2.66:.0f} MB in all):"
    )
    print()
    print("| mode | ms / step | snapshots kept | snapshot RAM (MiB) | RSS growth (MiB) |")
    print("| --- | --- | --- | --- | --- |")
    tmp_root = Path(tempfile.mkdtemp(prefix="flt-bench-mem-"))
    try:
        for i, m in enumerate(modes):
            tmp = tmp_root / str(i)
            tmp.mkdir()
            ms, mb, growth = run_mode(m, steps, batch, tmp)
            kept = (
                len(m.snaps) if isinstance(m, CloneMode) else len(m.tracker.get_feature("0.weight"))
            )
            print(f"| {m.name} | {ms:.2f} | {kept} | {mb:.0f} | {growth:.0f} |")
            del m
            gc.collect()
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)


if __name__ == "__main__":
    main()
