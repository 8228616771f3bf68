"""SPACE on synthetic 2-D fields: partitioned (joint) subspaces vs the 0.1.0 recipe.

A small CNN encodes 64x64 smooth fields; four pooled quantities (two gradients, a smoothed
field, the gradient energy) are aligned to latent subspaces re-solved on a decaying schedule.
For every configuration and epoch it measures, on held-out fields, the R^2 of decoding each
quantity from its own subspace, the cross-R^2 from the other subspaces, the max principal cosine
between different quantities' subspaces, and the training CPU time per epoch (process time: the machine is shared).

    python packages/spacelearn/benchmarks/bench_fields.py            # full run (~15 min, 1 core)
    python packages/spacelearn/benchmarks/bench_fields.py --smoke    # seconds

Prints markdown tables; ``--out DIR`` also writes results.json and the plots.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import spacelearn as sl
import torch
from spacelearn.data import pool
from spacelearn.metrics import decoding_r2, max_principal_cosine, mean_own_r2
from spacelearn.optim import k_per_q, minimal_latent_dim, resolve_epochs
from torch import nn

CONFIGS = {
    # name: (method of the training solve, combined_loss keyword arguments)
    "0.1.0 recipe (independent + combined_loss)": ("independent", {}),
    "alignment only (independent)": (
        "independent",
        {"weights": {"disentanglement": 0, "isotropy": 0, "stability": 0}},
    ),
    "joint + combined_loss": ("joint", {"normalize": True}),
    "joint + alignment (recommended)": (
        "joint",
        {"weights": sl.PARTITIONED_WEIGHTS, "normalize": True},
    ),
}


class Encoder(nn.Module):
    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 5, stride=2, padding=2),
            nn.GELU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.GELU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(64 * 16, latent_dim),
        )

    def forward(self, x):
        return self.net(x)


def make_data(n_train: int, n_test: int, n_bins: int, seed: int):
    fields, raw = sl.synthetic.smooth_fields(n_train + n_test, noise=0.05, random_state=seed)
    pooled = {q: pool(v, n_bins).flatten(1) for q, v in raw.items()}
    tr, te = slice(0, n_train), slice(n_train, n_train + n_test)
    mean = {q: v[tr].mean() for q, v in pooled.items()}
    std = {q: v[tr].std() for q, v in pooled.items()}
    Y = {q: (v - mean[q]) / std[q] for q, v in pooled.items()}
    return (
        fields[tr],
        {q: v[tr] for q, v in Y.items()},
        fields[te],
        {q: v[te] for q, v in Y.items()},
    )


@torch.no_grad()
def encode(model, x, batch=512):
    return torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)])


def evaluate(model, x_fit, y_fit, x_eval, y_eval, K, method):
    Zf, Ze = encode(model, x_fit), encode(model, x_eval)
    space = sl.solve_subspaces(Zf, y_fit, k=K, method=method)
    r2 = decoding_r2(space.W, Zf, y_fit, Ze, y_eval)
    # per-quantity optimal (unconstrained) subspaces: do the quantities live apart in the latent?
    free = sl.solve_subspaces(Zf, y_fit, k=K, method="whitened")
    return {
        "r2": r2,
        "mean_r2": mean_own_r2(r2),
        "max_cos": max_principal_cosine(space.W),
        "max_cos_whitened": max_principal_cosine(free.W),
        "W": space.W,
        "W_free": free.W,
    }


def train(config, data, K, D, epochs, seed, eval_every=1, batch_size=128, ref_size=512, lr=2e-3):
    method, loss_kwargs = CONFIGS[config]
    x_tr, y_tr, x_te, y_te = data
    torch.manual_seed(seed)
    model = Encoder(D)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = set(resolve_epochs(epochs))
    gen = torch.Generator().manual_seed(seed)
    x_ref, y_ref = x_tr[:ref_size], {q: v[:ref_size] for q, v in y_tr.items()}
    history = [dict(evaluate(model, x_tr, y_tr, x_te, y_te, K, method), epoch=0, seconds=0.0)]
    W_prev = None
    seconds = []
    for epoch in range(epochs):
        start = time.process_time()
        if epoch in schedule:
            with torch.no_grad():
                space = sl.solve_subspaces(model(x_ref), y_ref, k=K, method=method)
            W, A = space.W, space.A
            W_prev = W if W_prev is None else W_prev
        perm = torch.randperm(len(x_tr), generator=gen)
        for i in range(0, len(x_tr), batch_size):
            idx = perm[i : i + batch_size]
            Z = model(x_tr[idx])
            loss = sl.combined_loss(
                Z, W, A, {q: v[idx] for q, v in y_tr.items()}, W_prev, **loss_kwargs
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
        W_prev = W
        seconds.append(time.process_time() - start)
        if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
            row = evaluate(model, x_tr, y_tr, x_te, y_te, K, method)
            history.append(dict(row, epoch=epoch + 1, seconds=sum(seconds) / len(seconds)))
    return history


def fmt(x):
    return f"{x:.3f}"


def tables(results, names):
    lines = []
    lines.append(
        "| configuration | epoch | mean own R^2 | "
        + " | ".join(f"R^2 {q}" for q in names)
        + " | mean cross R^2 | max cos (solved W) | max cos (per-quantity optimal) | CPU s / epoch |"
    )
    lines.append("|---" * (6 + len(names)) + "|")
    for config, hist in results.items():
        for row in (hist[0], hist[-1]):
            r2 = row["r2"]
            cross = [r2[q][p] for q in names for p in names if p != q]
            secs = hist[-1]["seconds"]
            lines.append(
                f"| {config} | {row['epoch']} | {fmt(row['mean_r2'])} | "
                + " | ".join(fmt(r2[q][q]) for q in names)
                + f" | {fmt(sum(cross) / len(cross))} | {fmt(row['max_cos'])} | "
                f"{fmt(row['max_cos_whitened'])} | "
                + (f"{secs:.2f}" if row["epoch"] else "-")
                + " |"
            )
    return "\n".join(lines)


def plots(results, names, out: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.4), sharey=True)
    for ax, q in zip(axes, names, strict=True):
        for config, hist in results.items():
            ax.plot(
                [h["epoch"] for h in hist],
                [h["r2"][q][q] for h in hist],
                marker="o",
                ms=3,
                label=config,
            )
        ax.set_title(f"{q}: held-out R^2 (own subspace)")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylim(0, 1)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "r2_per_quantity.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), sharey=True)
    picks = [
        ("0.1.0 recipe (independent + combined_loss)", "W", "0.1.0 recipe: independent solve"),
        ("joint + alignment (recommended)", "W", "recommended: joint solve"),
        (
            "joint + alignment (recommended)",
            "W_free",
            "recommended, each quantity's own optimum\n(unconstrained whitened solve)",
        ),
    ]
    for ax, (config, key, title) in zip(axes, picks, strict=True):
        W = results[config][-1][key]
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                cos = sl.optim.principal_cosines(W[a], W[b]).numpy()
                deg = torch.rad2deg(torch.acos(torch.as_tensor(cos))).numpy()
                ax.plot(range(1, len(deg) + 1), deg, marker="o", ms=3, label=f"{a} / {b}")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("principal angle index")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("principal angle (degrees)")
    axes[0].set_ylim(-3, 93)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "principal_angles.png", dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--eval-every", type=int, default=4)
    parser.add_argument("--n-train", type=int, default=2048)
    parser.add_argument("--n-test", type=int, default=512)
    parser.add_argument("--bins", type=int, default=5)
    parser.add_argument("--k-threshold", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write results.json and plots here")
    parser.add_argument("--smoke", action="store_true", help="tiny run (seconds)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs, args.n_train, args.n_test = 2, 256, 128
    torch.set_num_threads(args.threads)

    data = make_data(args.n_train, args.n_test, args.bins, args.seed)
    names = list(data[1])
    K = k_per_q(data[1], args.k_threshold)
    D = minimal_latent_dim(K, free_frac=0.3)
    print(
        f"# SPACE on synthetic fields: {args.n_train} train / {args.n_test} held-out 64x64 fields,"
    )
    print(
        f"# pooled to {args.bins}x{args.bins}, k = {K}, D = {D}, {args.epochs} epochs, re-solve at"
    )
    print(
        f"# epochs {resolve_epochs(args.epochs)}; torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} thread(s)\n"
    )

    results = {}
    for config in CONFIGS:
        results[config] = train(config, data, K, D, args.epochs, args.seed, args.eval_every)
        print(
            f"# {config}: done, final mean own R^2 {results[config][-1]['mean_r2']:.3f}", flush=True
        )
    print(tables(results, names))
    print()
    print("Cross R^2 (final epoch): rows = quantity decoded, columns = subspace used\n")
    for config in ("0.1.0 recipe (independent + combined_loss)", "joint + alignment (recommended)"):
        r2 = results[config][-1]["r2"]
        print(f"{config}\n")
        print("| quantity | " + " | ".join(names) + " |")
        print("|---" * (len(names) + 1) + "|")
        for q in names:
            print(f"| {q} | " + " | ".join(fmt(r2[q][p]) for p in names) + " |")
        print()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        plots(results, names, args.out)
        dump = {
            c: [{k: v for k, v in h.items() if k not in ("W", "W_free")} for h in hist]
            for c, hist in results.items()
        }
        (args.out / "results.json").write_text(
            json.dumps({"K": K, "D": D, "results": dump}, indent=1)
        )


if __name__ == "__main__":
    main()
