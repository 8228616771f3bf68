"""PyEGM on a GPU: fit 1,000,000 rows, predict, and check CPU/GPU agreement.

    PYTHONPATH=packages/blockops/src:packages/egm-core/src \
        python packages/egm-core/benchmarks/bench_gpu.py [--n 1000000] [--d 256]

Prints a markdown table. Needs CUDA (without it, says so and exits 0, so `nox -s bench` passes). The agreement check fits
the same small problem on the CPU and on the GPU: the random draws are made on the CPU, and
neighbour search is exact on both, so predictions should agree up to float32 rounding ties.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from egm_core import PyEGM


def blobs(n: int, d: int, n_classes: int, seed: int, device: str):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_classes, d, generator=gen) * 3.0
    y = torch.randint(0, n_classes, (n,), generator=gen)
    X = centres[y] + torch.randn(n, d, generator=gen)
    return X.to(device), y.numpy()


def timed(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--queries", type=int, default=20_000)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu.py: no CUDA device, nothing measured (run it on a GPU machine)")
        return 0
    rows = []
    X, y = blobs(args.n, args.d, args.classes, 0, "cuda")
    Q, _ = blobs(args.queries, args.d, args.classes, 1, "cuda")
    model = PyEGM(platform="cuda", random_state=0)
    _, fit_s = timed(lambda: model.fit(X, y))
    pred, pred_s = timed(lambda: model.predict(Q))
    rows.append(
        (
            f"fit {args.n:,} x {args.d}, {args.classes} classes",
            f"{fit_s:.1f} s",
            f"bank {model.bank_X_.shape[0]:,}, peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB",
        )
    )
    rows.append(
        (
            f"predict {args.queries:,} queries",
            f"{pred_s:.2f} s",
            f"{args.queries / pred_s:,.0f} queries/s",
        )
    )
    # CPU/GPU agreement on a problem small enough for the CPU
    Xs, ys = blobs(20_000, 64, args.classes, 2, "cpu")
    Qs, _ = blobs(2_000, 64, args.classes, 3, "cpu")
    cpu = PyEGM(platform="cpu", random_state=0).fit(Xs, ys)
    gpu = PyEGM(platform="cuda", random_state=0).fit(Xs.cuda(), ys)
    agree = float(np.mean(cpu.predict(Qs) == gpu.predict(Qs.cuda())))
    bank_diff = (
        float((cpu.bank_X_ - gpu.bank_X_.cpu()).abs().max())
        if (cpu.bank_X_.shape == gpu.bank_X_.shape)
        else float("nan")
    )
    rows.append(
        (
            "CPU vs GPU predictions (20,000 x 64 fit, 2,000 queries)",
            f"{agree:.4f} agree",
            f"max bank difference {bank_diff:.2e}",
        )
    )
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}\n")
    print("| measurement | result | note |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
