"""Speed of egm-core's PyEGM on the CPU: predict on digits, fit at 100,000 x 512.

The original PyEGM's CPU predict took about 1 s for the 540 digits test queries (reference
study); scikit-learn's kNN(5) is timed in the same run for scale.

    python packages/egm-core/benchmarks/bench_speed.py [--n 100000] [--d 512] [--threads 2]

With ``--threads 2`` the digits predict is also timed on two threads (wall time).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from egm_core import PyEGM
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

ORIGINAL_PREDICT_S = 1.0  # original PyEGM, 540 digits queries, CPU (hnswlib path)


def best_of(fn, repeats: int) -> float:
    """Best CPU time (process time, all threads) of ``repeats`` calls: robust on a shared box."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def best_wall(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls (multi-threaded rows; needs an idle machine)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def blobs(n: int, d: int, n_classes: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_classes, d, generator=gen) * 3.0
    y = torch.randint(0, n_classes, (n,), generator=gen)
    X = centres[y] + torch.randn(n, d, generator=gen)
    return X, y.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="training rows for the fit test")
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)  # digits rows: one thread, so CPU time is wall time unloaded

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(
        X.astype(np.float32), y, test_size=0.3, random_state=0, stratify=y
    )
    model = PyEGM(platform="cpu", random_state=0)
    fit_s = best_of(lambda: model.fit(Xtr, ytr), 3)
    pred_s = best_of(lambda: model.predict(Xte), 10)
    knn = KNeighborsClassifier(5).fit(Xtr, ytr)
    knn_s = best_of(lambda: knn.predict(Xte), 10)
    rows = [
        ("digits: fit (1,257 x 64)", f"{fit_s * 1e3:.1f} ms", ""),
        (
            f"digits: predict {len(Xte)} queries",
            f"{pred_s * 1e3:.2f} ms",
            f"{ORIGINAL_PREDICT_S / pred_s:.0f}x faster than the original (~1 s)",
        ),
        (f"digits: scikit-learn kNN(5) predict {len(Xte)}", f"{knn_s * 1e3:.2f} ms", ""),
    ]
    if args.threads > 1:  # torch's default on the 2-core box, as the original ran
        torch.set_num_threads(args.threads)
        pred_mt = best_wall(lambda: model.predict(Xte), 30)
        rows.append(
            (
                f"digits: predict {len(Xte)} queries, {args.threads} threads",
                f"{pred_mt * 1e3:.2f} ms (best wall time)",
                f"{ORIGINAL_PREDICT_S / pred_mt:.0f}x faster than the original (~1 s)",
            )
        )

    torch.set_num_threads(args.threads)
    Xb, yb = blobs(args.n, args.d, args.classes)
    Qb, _ = blobs(2000, args.d, args.classes, seed=1)
    big = PyEGM(platform="cpu", random_state=0)
    t0, c0 = time.perf_counter(), time.process_time()
    big.fit(Xb, yb)
    big_fit, big_fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    big.predict(Qb)
    big_pred, big_pred_cpu = time.perf_counter() - t0, time.process_time() - c0
    rows += [
        (
            f"fit {args.n:,} x {args.d} ({args.classes} classes)",
            f"{big_fit:.1f} s wall, {big_fit_cpu:.1f} s CPU",
            f"bank {big.bank_X_.shape[0]:,} points",
        ),
        (
            "predict 2,000 queries against that bank",
            f"{big_pred:.2f} s wall, {big_pred_cpu:.2f} s CPU",
            "",
        ),
    ]
    print(f"torch {torch.__version__}; digits rows 1 thread, fit rows {args.threads} thread(s)\n")
    print("| measurement | time (digits rows: best CPU time) | note |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
