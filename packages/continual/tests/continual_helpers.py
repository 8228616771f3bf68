"""Small shared fixtures for the continual tests."""

from __future__ import annotations

import numpy as np
import torch


def digits(n_per_class: int | None = None):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    if n_per_class is not None:
        keep = np.concatenate([np.flatnonzero(y == c)[:n_per_class] for c in range(10)])
        X, y = X[keep], y[keep]
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def tiny_net(d_in=4, d_out=3, hidden=8, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(d_in, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, d_out)
    )
