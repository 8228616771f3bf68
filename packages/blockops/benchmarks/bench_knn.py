"""Exact k-NN speed of ``blockops.knn`` against the strongest baselines, as markdown tables.

CPU (2 threads), the issue's size::

    PYTHONPATH=packages/blockops/src python packages/blockops/benchmarks/bench_knn.py \\
        --device cpu --threads 2 --nq 20000 --nd 200000 --d 64 --k 10

GPU (one H100)::

    PYTHONPATH=packages/blockops/src python packages/blockops/benchmarks/bench_knn.py \\
        --device cuda --nq 100000 --nd 1000000 --d 64 256 --k 10

Baselines: row-blocked ``torch.cdist`` + ``topk`` (always), the ``|q|^2 + |x|^2 - 2 q.x`` form
+ ``topk`` (GPU), faiss-cpu ``IndexFlatL2`` and scikit-learn's brute-force ``NearestNeighbors``
(CPU, where installed). Every method is checked on a subset of queries against a float64
brute force ranked by (distance, index); timings are the best and the median of ``--repeat``
runs after one warm-up, taken round-robin so that load on a shared machine hits all alike.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import resource
import statistics
import time
from collections.abc import Callable

import blockops
import torch

BANDWIDTH = {"H100": 3.35e12, "H200": 4.8e12}  # bytes/s, datasheet HBM bandwidth


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cdist_topk(Q: torch.Tensor, D: torch.Tensor, k: int, block_bytes: int):
    """Baseline: ``torch.cdist`` over row blocks of about ``block_bytes``, then ``topk``."""
    qb = max(1, block_bytes // (4 * D.shape[0]))
    vals, idx = [], []
    for q0 in range(0, Q.shape[0], qb):
        v, i = torch.topk(torch.cdist(Q[q0 : q0 + qb], D), k, dim=1, largest=False)
        vals.append(v.square_())
        idx.append(i)
    return torch.cat(vals), torch.cat(idx)


def mm_topk(Q: torch.Tensor, D: torch.Tensor, k: int, block_bytes: int):
    """Baseline: ``|q|^2 + |x|^2 - 2 q.x`` by ``addmm`` over row blocks, then ``topk``."""
    qb = max(1, block_bytes // (4 * D.shape[0]))
    dsq = (D * D).sum(1)
    vals, idx = [], []
    for q0 in range(0, Q.shape[0], qb):
        Qb = Q[q0 : q0 + qb]
        dist = torch.addmm(dsq[None, :], Qb, D.T, alpha=-2.0).add_((Qb * Qb).sum(1)[:, None])
        v, i = torch.topk(dist, k, dim=1, largest=False)
        vals.append(v)
        idx.append(i)
    return torch.cat(vals), torch.cat(idx)


def reference(Q: torch.Tensor, D: torch.Tensor, k: int, block: int = 32768):
    """float64 squared distances, top-k by (distance, index): blocks of D, exact merge."""
    Q64 = Q.double()
    best_v = best_i = None
    for d0 in range(0, D.shape[0], block):
        Db = D[d0 : d0 + block].double()
        dist = torch.cdist(Q64, Db).square_()
        v, i = torch.sort(dist, dim=1, stable=True)
        v, i = v[:, :k], i[:, :k] + d0
        if best_v is not None:
            v, i = torch.cat([best_v, v], 1), torch.cat([best_i, i], 1)
            i, order = torch.sort(i, dim=1)
            v, order2 = torch.sort(v.gather(1, order), dim=1, stable=True)
            v, i = v[:, :k], i.gather(1, order2)[:, :k]
        best_v, best_i = v, i
    return best_v, best_i


def check(got, ref) -> tuple[float, float]:
    """(fraction of indices equal to the float64 answer, max relative distance error)."""
    gv, gi = got
    rv, ri = ref
    same = (gi.cpu() == ri.cpu()).double().mean().item()
    err = ((gv.double().cpu() - rv.cpu()).abs() / rv.cpu().abs().clamp_min(1e-12)).max().item()
    return same, err


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def time_round_robin(methods: dict[str, Callable[[], object]], repeat: int, device: torch.device):
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeat):
        for name, fn in methods.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def run_size(args, d: int, device: torch.device) -> list[str]:
    gen = torch.Generator().manual_seed(d)
    Q = torch.randn(args.nq, d, generator=gen).to(device)
    D = torch.randn(args.nd, d, generator=gen).to(device)
    k = args.k
    block_bytes = args.baseline_block_mib * 2**20
    methods: dict[str, Callable[[], object]] = {"blockops.knn": lambda: blockops.knn(Q, D, k)}
    for db_block in args.db_blocks:
        methods[f"blockops.knn db_block={db_block}"] = lambda b=db_block: blockops.knn(
            Q, D, k, db_block=b
        )
    methods["torch cdist+topk (row blocks)"] = lambda: cdist_topk(Q, D, k, block_bytes)
    if device.type == "cuda":
        methods["torch mm-trick+topk (row blocks)"] = lambda: mm_topk(Q, D, k, block_bytes)
    else:
        try:
            import faiss

            faiss.omp_set_num_threads(args.threads)
            index = faiss.IndexFlatL2(d)
            index.add(D.numpy())

            def faiss_search():
                v, i = index.search(Q.numpy(), k)
                return torch.from_numpy(v), torch.from_numpy(i)

            methods["faiss-cpu IndexFlatL2"] = faiss_search
        except ImportError:
            print("faiss not installed: skipped")
        try:
            from sklearn.neighbors import NearestNeighbors
            from threadpoolctl import threadpool_limits

            nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(D.numpy())

            def sklearn_search():
                with threadpool_limits(limits=args.threads):
                    v, i = nn.kneighbors(Q.numpy())
                return torch.from_numpy(v).square_(), torch.from_numpy(i)

            methods["scikit-learn brute NearestNeighbors"] = sklearn_search
        except ImportError:
            print("scikit-learn not installed: skipped")

    # Memory and correctness: one warm-up run of each, blockops first (peak RSS is monotone).
    ref = reference(Q[: args.check], D, k)
    results, mem = {}, {}
    for name, fn in methods.items():
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            out = fn()
            torch.cuda.synchronize()
            mem[name] = f"{(torch.cuda.max_memory_allocated() - base) / 2**30:.2f} GiB"
        else:
            before = rss_bytes()
            out = fn()
            if name == "blockops.knn":
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                mem[name] = (
                    f"{peak / 2**30:.2f} GiB process peak (+{(peak - before) / 2**20:.0f} MiB)"
                )
            else:
                mem[name] = "-"
        results[name] = check((out[0][: args.check], out[1][: args.check]), ref)
        del out
    times = time_round_robin(methods, args.repeat, device)

    pairs = args.nq * args.nd
    base_name = "torch cdist+topk (row blocks)"
    base_best = min(times[base_name])
    gpu_name = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    bw = next((v for key, v in BANDWIDTH.items() if key in gpu_name), None)
    head = "| method | best s | median s | Gpairs/s | speed-up vs cdist+topk |"
    sep = "| --- | ---: | ---: | ---: | ---: |"
    if bw:
        head += " fraction of bandwidth bound |"
        sep += " ---: |"
    head += " same indices as float64 | max rel. error | peak memory |"
    sep += " ---: | ---: | ---: |"
    lines = [f"### nq={args.nq}, nd={args.nd}, d={d}, k={k}", "", head, sep]
    for name, ts in times.items():
        best, med = min(ts), statistics.median(ts)
        row = f"| {name} | {best:.3f} | {med:.3f} | {pairs / best / 1e9:.1f} | {base_best / best:.2f}x |"
        if bw:
            row += f" {8 * pairs / bw / best:.2f} |"
        same, err = results[name]
        row += f" {same:.5f} | {err:.1e} | {mem[name]} |"
        lines.append(row)
    if bw:
        lines += [
            "",
            f"Bandwidth bound: 8 bytes/pair at {bw / 1e12:.2f} TB/s = "
            f"{8 * pairs / bw:.3f} s for writing and reading the distance matrix once.",
        ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=2, help="torch/faiss/BLAS threads on CPU")
    ap.add_argument("--nq", type=int, default=20000)
    ap.add_argument("--nd", type=int, default=200000)
    ap.add_argument("--d", type=int, nargs="+", default=[64])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--check", type=int, default=256, help="queries checked against float64")
    ap.add_argument("--db-blocks", type=int, nargs="*", default=[], help="extra db_block values")
    ap.add_argument(
        "--baseline-block-mib", type=int, default=0, help="row-block size of the torch baselines"
    )
    ap.add_argument("--profile", action="store_true", help="print the top kernels of one knn")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    if not args.baseline_block_mib:
        args.baseline_block_mib = 2048 if device.type == "cuda" else 256
    if device.type == "cuda":
        machine = f"{torch.cuda.get_device_name(device)} (lent GPU)"
    else:
        machine = f"{platform.processor() or platform.machine()}, {args.threads} threads"
    out = [
        f"Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; machine: {machine}; "
        f"torch {torch.__version__}; float32 inputs, squared Euclidean distances.",
        "",
    ]
    for d in args.d:
        out += run_size(args, d, device) + [""]
    print("\n".join(out))
    if args.profile:
        profile(args, device)


def profile(args, device: torch.device) -> None:
    """Where one ``blockops.knn`` call spends its time (first ``--d``)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    gen = torch.Generator().manual_seed(0)
    Q = torch.randn(args.nq, args.d[0], generator=gen).to(device)
    D = torch.randn(args.nd, args.d[0], generator=gen).to(device)
    blockops.knn(Q, D, args.k)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with torch_profile(activities=activities) as prof:
        blockops.knn(Q, D, args.k)
        _sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=15, max_name_column_width=60))


if __name__ == "__main__":
    main()
