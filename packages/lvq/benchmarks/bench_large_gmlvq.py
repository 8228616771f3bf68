"""Large-scale GMLVQ: time per epoch and peak memory with mini-batches (GPU target).

Issue 5's scale goal: GMLVQ on 1,000,000 x 256 with 100 prototypes, one epoch in seconds on a
GPU, memory bounded by the batch size. Synthetic data (10 Gaussian classes) is generated on the
device; the script reports the epoch time of ``fit(max_iter=1)`` (after a warm-up epoch), the
peak extra device memory (on the CPU: resident memory above that after the warm-up) and the memory of one ``(batch, p, d)`` difference tensor that the
``(n + p) d l`` kernel avoids.

    python packages/lvq/benchmarks/bench_large_gmlvq.py --device cuda            # 1M x 256
    python packages/lvq/benchmarks/bench_large_gmlvq.py --device cpu --n 50000   # small check
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import lvq
import torch


def _rss() -> int:
    """Resident memory of this process in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Peak resident memory during a ``with`` block, sampled every millisecond (CPU runs)."""

    def __enter__(self) -> PeakRSS:
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--per-class", type=int, default=10, help="prototypes per class")
    ap.add_argument("--batch-size", type=int, default=65536)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    dev = torch.device(args.device)
    if dev.type == "cpu":
        torch.set_num_threads(1)
    g = torch.Generator(device=dev).manual_seed(0)
    centres = torch.randn(args.classes, args.d, device=dev, generator=g) * 0.5
    y = torch.randint(args.classes, (args.n,), device=dev, generator=g)
    X = centres[y] + torch.randn(args.n, args.d, device=dev, generator=g)
    y_np = y.cpu().numpy()
    model = lvq.GMLVQ(
        n_prototypes_per_class=args.per_class,
        max_iter=1,
        lr=0.01,
        batch_size=args.batch_size,
        prototypes_initializer="class_mean",
        device=str(dev),
    )
    model.fit(X, y_np)  # warm-up epoch (allocator, kernels)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss()
    times = []
    with PeakRSS() as rss:
        for _ in range(args.epochs):
            t = time.perf_counter()
            model.fit(X, y_np, resume=True)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    p = args.classes * args.per_class
    diff_gb = args.batch_size * p * args.d * 4 / 2**30
    print(f"device: {torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu (1 thread)'}")
    print("| n | d | prototypes | batch | epoch (s, median) | peak extra memory (MiB) | "
          "(batch, p, d) tensor avoided (GiB) | train acc (first 100k) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    peak = (torch.cuda.max_memory_allocated() if dev.type == "cuda" else rss.peak) - base
    peak /= 2**20
    acc = model.score(X[:100_000], y_np[:100_000])
    print(
        f"| {args.n} | {args.d} | {p} | {args.batch_size} | {sorted(times)[len(times) // 2]:.2f} | "
        f"{peak:.0f} | {diff_gb:.1f} | {acc:.3f} |"
    )


if __name__ == "__main__":
    main()
