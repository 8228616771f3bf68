"""Exact k-nearest neighbours with blockops, checked against a float64 brute force.

python examples/blockops_knn.py            # 5,000 queries x 50,000 rows
python examples/blockops_knn.py --smoke    # a few seconds
"""

from __future__ import annotations

import argparse
import time

import blockops
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--platform", default="auto", help="auto | cpu | cuda | cuda:N")
    args = parser.parse_args()
    n_q, n_db, d, k = (500, 5_000, 32, 10) if args.smoke else (5_000, 50_000, 64, 10)

    device = blockops.resolve_device(args.platform)
    gen = blockops.make_generator(0, device)
    database = torch.randn(n_db, d, device=device, generator=gen)
    queries = torch.randn(n_q, d, device=device, generator=gen)

    start = time.perf_counter()
    dist, idx = blockops.knn(queries, database, k)
    elapsed = time.perf_counter() - start

    check = slice(0, 200)
    ref = torch.cdist(queries[check].double(), database.double()) ** 2
    ref_idx = ref.topk(k, largest=False).indices
    agree = (idx[check] == ref_idx).float().mean().item()
    max_err = (dist[check].double() - ref.gather(1, ref_idx)).abs().max().item()

    labels = torch.arange(n_db, device=device) % 10
    per_label = blockops.label_min(queries, database, labels, 10)
    nearest_label = per_label.argmin(1)
    consistent = bool((nearest_label == labels[idx[:, 0]]).all())

    print(f"device={device} queries={n_q} database={n_db} d={d} k={k}")
    print(f"knn time: {elapsed:.3f} s  ({n_q * n_db / elapsed / 1e9:.2f} Gpairs/s)")
    print(
        f"agreement with float64 brute force on 200 queries: {agree:.4f}, max |err| {max_err:.2e}"
    )
    print(f"label_min's nearest label equals the label of the nearest row: {consistent}")


if __name__ == "__main__":
    main()
