"""Prototype initializers: ``(X, y, counts, generator) -> (prototypes (P, d), labels (P,))``.

``X`` is the training tensor ``(n, d)``, ``y`` the class codes ``(n,)``, ``counts`` the number of
prototypes of every class code (list, in code order). Prototypes are laid out class by class.
A callable with the same signature may be passed as ``prototypes_initializer``; a dict
``{"name": ..., **kwargs}`` passes keyword arguments (``{"name": "fill_value", "value": 2.0}``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

Init = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def _layout(counts: list[int], device) -> torch.Tensor:
    return torch.repeat_interleave(
        torch.arange(len(counts), device=device), torch.tensor(counts, device=device)
    )


def _class_rows(X, y, c):
    rows = X[y == c]
    if rows.shape[0] == 0:
        raise ValueError(f"class code {c} has no training samples; cannot place its prototypes")
    return rows


def stratified_random(X, y, counts, gen, **kw):
    """Random training samples of each class (with replacement where a class is too small)."""
    out = []
    for c, k in enumerate(counts):
        rows = _class_rows(X, y, c)
        if rows.shape[0] >= k:
            idx = torch.randperm(rows.shape[0], generator=gen)[:k]
        else:
            idx = torch.randint(rows.shape[0], (k,), generator=gen)
        out.append(rows[idx.to(rows.device)])
    return torch.cat(out), _layout(counts, X.device)


def class_mean(X, y, counts, gen, noise: float = 0.01, **kw):
    """Class means; extra prototypes of a class get ``noise`` x class-std jitter."""
    out = []
    for c, k in enumerate(counts):
        rows = _class_rows(X, y, c)
        mean = rows.mean(0, keepdim=True).expand(k, -1).clone()
        if k > 1:
            std = rows.std(0, unbiased=False) if rows.shape[0] > 1 else torch.ones_like(mean[0])
            jitter = torch.randn(k - 1, X.shape[1], generator=gen).to(X) * std * noise
            mean[1:] += jitter
        out.append(mean)
    return torch.cat(out), _layout(counts, X.device)


def class_conditional_mean(X, y, counts, gen, n_iter: int = 10, **kw):
    """Per class, the means of ``k`` sub-clusters (a few k-means steps inside the class)."""
    out = []
    for c, k in enumerate(counts):
        rows = _class_rows(X, y, c)
        if k == 1 or rows.shape[0] <= k:
            sub, _ = stratified_random(rows, torch.zeros(rows.shape[0], dtype=torch.long), [k], gen)
            out.append(rows.mean(0, keepdim=True) if k == 1 else sub)
            continue
        centres = rows[torch.randperm(rows.shape[0], generator=gen)[:k].to(rows.device)].clone()
        for _ in range(n_iter):
            assign = torch.cdist(rows, centres).argmin(1)
            for j in range(k):
                members = rows[assign == j]
                if members.shape[0]:
                    centres[j] = members.mean(0)
        out.append(centres)
    return torch.cat(out), _layout(counts, X.device)


def stratified_noise(X, y, counts, gen, noise: float = 0.1, **kw):
    """Class mean plus Gaussian noise scaled by ``noise`` x the class standard deviation."""
    out = []
    for c, k in enumerate(counts):
        rows = _class_rows(X, y, c)
        std = rows.std(0, unbiased=False) if rows.shape[0] > 1 else torch.ones(X.shape[1]).to(X)
        eps = torch.randn(k, X.shape[1], generator=gen).to(X)
        out.append(rows.mean(0) + eps * std * noise)
    return torch.cat(out), _layout(counts, X.device)


def random_normal(X, y, counts, gen, **kw):
    """Gaussian draws with the data's per-feature mean and standard deviation."""
    P = sum(counts)
    eps = torch.randn(P, X.shape[1], generator=gen).to(X)
    return X.mean(0) + eps * X.std(0, unbiased=False), _layout(counts, X.device)


def uniform(X, y, counts, gen, **kw):
    """Uniform draws inside the data's bounding box."""
    P = sum(counts)
    u = torch.rand(P, X.shape[1], generator=gen).to(X)
    lo, hi = X.min(0).values, X.max(0).values
    return lo + u * (hi - lo), _layout(counts, X.device)


def zeros(X, y, counts, gen, **kw):
    """All prototypes at the origin."""
    return torch.zeros(sum(counts), X.shape[1]).to(X), _layout(counts, X.device)


def ones(X, y, counts, gen, **kw):
    """All prototype coordinates 1."""
    return torch.ones(sum(counts), X.shape[1]).to(X), _layout(counts, X.device)


def fill_value(X, y, counts, gen, value: float | None = None, **kw):
    """All prototype coordinates ``value`` (required keyword)."""
    if value is None:
        raise ValueError(
            "prototypes_initializer 'fill_value' needs a value: pass "
            "{'name': 'fill_value', 'value': 0.5}"
        )
    return torch.full((sum(counts), X.shape[1]), float(value)).to(X), _layout(counts, X.device)


INITIALIZERS: dict[str, Init] = {
    "stratified_random": stratified_random,
    "class_mean": class_mean,
    "class_conditional_mean": class_conditional_mean,
    "stratified_noise": stratified_noise,
    "random_normal": random_normal,
    "uniform": uniform,
    "zeros": zeros,
    "ones": ones,
    "fill_value": fill_value,
}


def resolve_initializer(spec: Any) -> tuple[Init, dict[str, Any]]:
    """``prototypes_initializer`` -> ``(function, kwargs)``."""
    if spec is None:
        return stratified_random, {}
    if isinstance(spec, str):
        if spec not in INITIALIZERS:
            raise ValueError(
                f"prototypes_initializer={spec!r} is not known; use one of {sorted(INITIALIZERS)}, "
                "a dict {'name': ..., **kwargs} or a callable (X, y, counts, generator)"
            )
        return INITIALIZERS[spec], {}
    if isinstance(spec, dict):
        kwargs = dict(spec)
        if "name" not in kwargs:
            raise ValueError(
                f"prototypes_initializer dict {spec!r} has no 'name'; pass e.g. "
                "{'name': 'fill_value', 'value': 0.5}"
            )
        name = kwargs.pop("name")
        fn, _ = resolve_initializer(name)
        if fn in INITIALIZERS.values():  # a typo would otherwise vanish into **kw
            known = [
                p.name
                for p in list(inspect.signature(fn).parameters.values())[4:]
                if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
            ]
            unknown = sorted(set(kwargs) - set(known))
            if unknown:
                raise ValueError(
                    f"prototypes_initializer {name!r} takes no keyword(s) {unknown}; "
                    f"it accepts {known}"
                )
        return fn, kwargs
    if callable(spec):
        return spec, {}
    raise TypeError(
        f"prototypes_initializer must be None, a name, a dict or a callable, got {type(spec).__name__}"
    )
