"""Partition a CNN's latent space among four quantities of a 2-D field (spacelearn).

Story: an encoder sees smooth 64x64 fields. We want its latent to hold, each in its *own*
subspace, two spatial gradients, a smoothed field and the gradient energy (pooled to 5x5), so
that each can be read back linearly. The published 0.1.0 recipe solves every quantity's
subspace independently, and the subspaces end up sharing directions; ``method="joint"`` gives
each quantity mutually orthogonal directions, trained with the (normalised) alignment term.

    python examples/spacelearn_fields.py            # about 30 s on one CPU core
    python examples/spacelearn_fields.py --smoke    # seconds
"""

from __future__ import annotations

import argparse
import warnings

import spacelearn as sl
import torch
from spacelearn.data import pool
from spacelearn.metrics import decoding_r2, max_principal_cosine, mean_own_r2
from spacelearn.optim import k_per_q, minimal_latent_dim, resolve_epochs
from torch import nn


def encoder(size: int, latent_dim: int) -> nn.Module:
    return nn.Sequential(
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


def run(method, loss_kwargs, data, K, D, epochs, seed=0, batch=128):
    x_tr, y_tr, x_te, y_te = data
    torch.manual_seed(seed)
    model = encoder(x_tr.shape[-1], D)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = set(resolve_epochs(epochs))
    for epoch in range(epochs):
        if epoch in schedule:  # re-solve often early, rarely later
            with torch.no_grad():
                y_ref = {q: v[:512] for q, v in y_tr.items()}
                space = sl.solve_subspaces(model(x_tr[:512]), y_ref, k=K, method=method)
        perm = torch.randperm(len(x_tr))
        for i in range(0, len(x_tr), batch):
            idx = perm[i : i + batch]
            y = {q: v[idx] for q, v in y_tr.items()}
            loss = sl.combined_loss(model(x_tr[idx]), space.W, space.A, y, space.W, **loss_kwargs)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        Z_tr, Z_te = model(x_tr), model(x_te)
    final = sl.solve_subspaces(Z_tr, y_tr, k=K, method=method)
    r2 = decoding_r2(final.W, Z_tr, y_tr, Z_te, y_te)
    return r2, max_principal_cosine(final.W)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (seconds)")
    parser.add_argument("--epochs", type=int, default=16)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="isotropy_loss")  # n_dir reduced: expected here
    n_train, n_test, size, epochs = (1024, 256, 64, args.epochs)
    if args.smoke:
        n_train, n_test, size, epochs = 128, 64, 32, 2

    fields, raw = sl.synthetic.smooth_fields(n_train + n_test, size, noise=0.05, random_state=0)
    Y = {q: pool(v, 5).flatten(1) for q, v in raw.items()}
    Y = {q: (v - v[:n_train].mean()) / v[:n_train].std() for q, v in Y.items()}
    data = (
        fields[:n_train],
        {q: v[:n_train] for q, v in Y.items()},
        fields[n_train:],
        {q: v[n_train:] for q, v in Y.items()},
    )
    K = k_per_q(data[1], 0.9)
    D = minimal_latent_dim(K, free_frac=0.3)
    print(f"quantities {list(K)}, k = {list(K.values())}, latent D = {D}, {epochs} epochs")

    recipes = {
        "0.1.0 recipe (independent + combined_loss)": ("independent", {}),
        "joint + alignment (recommended)": (
            "joint",
            {"weights": sl.PARTITIONED_WEIGHTS, "normalize": True},
        ),
    }
    for name, (method, kwargs) in recipes.items():
        r2, cos = run(method, kwargs, data, K, D, epochs)
        own = ", ".join(f"{q} {r2[q][q]:.2f}" for q in r2)
        print(f"{name}:\n  held-out R^2 own subspace: {own}")
        print(f"  mean {mean_own_r2(r2):.3f}, max principal cosine between quantities {cos:.3f}")


if __name__ == "__main__":
    main()
