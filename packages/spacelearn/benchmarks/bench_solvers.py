"""Solve time of the subspace methods vs the number of samples and the latent size.

    python packages/spacelearn/benchmarks/bench_solvers.py

Four quantities of width 64, k = 8 each. The moments are accumulated in float64 in row blocks
(``block_size``), so memory does not grow with B beyond the inputs; the solve itself only sees
``D x D`` and ``D x P`` matrices. Prints a markdown table (median of 3 runs, CPU seconds of the process: the machine is shared).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import spacelearn as sl
import torch


def timed(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def lstsq_baseline(Z, Y):
    """Full least-squares decoders of every quantity from the whole latent (no subspaces)."""
    Zc = Z - Z.mean(0)
    return [torch.linalg.lstsq(Zc, y - y.mean(0)).solution for y in Y.values()]


def solve(spaces, method, Z, Y):
    spaces[method] = sl.solve_subspaces(Z, Y, k=8, method=method)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = [(2048, 64), (16384, 64), (2048, 256), (16384, 256), (4096, 1024)]
    if args.smoke:
        sizes = [(512, 32)]
    print(f"# torch {torch.__version__}, {platform.machine()}, {args.threads} thread(s)\n")
    print(
        "| B | D | lstsq decoders from the full latent (baseline) | independent | whitened | joint | joint max cos | independent max cos |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for B, D in sizes:
        g = torch.Generator().manual_seed(0)
        Z = torch.randn(B, D, generator=g)
        mix = torch.randn(D, 64, generator=g)  # overlapping column windows: shared directions
        Y = {
            f"q{i}": Z @ mix[:, 12 * i : 12 * i + 16] @ torch.randn(16, 64, generator=g)
            + torch.randn(B, 64, generator=g)
            for i in range(4)
        }

        row = [timed(lambda Z=Z, Y=Y: lstsq_baseline(Z, Y))]
        spaces = {}
        for method in ("independent", "whitened", "joint"):
            row.append(timed(lambda m=method, Z=Z, Y=Y, s=spaces: solve(s, m, Z, Y)))
        cj = sl.max_principal_cosine(spaces["joint"].W)
        ci = sl.max_principal_cosine(spaces["independent"].W)
        print(f"| {B} | {D} | " + " | ".join(f"{t:.3f}" for t in row) + f" | {cj:.3f} | {ci:.3f} |")


if __name__ == "__main__":
    main()
