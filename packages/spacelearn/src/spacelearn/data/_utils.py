"""Decorators that reshape or move tensor arguments."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch
from blockops import resolve_device

from .._checks import check_int


def _selected(names: Iterable[str] | None, empty_means_all: bool) -> Callable[[str | None], bool]:
    if names is None:
        return lambda name: True
    # a single string is one argument name, not the set of its characters
    try:
        chosen = {names} if isinstance(names, str) else set(names)
    except TypeError:
        raise TypeError(
            f"targets must be an argument name, a list of names or None, got {names!r}"
        ) from None
    if not chosen:
        return (lambda name: True) if empty_means_all else (lambda name: False)
    return lambda name: name in chosen


def _apply(func: Callable, transform: Callable[[Any], Any], wanted: Callable) -> Callable:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        sig = None

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if sig is not None:
            try:
                bound = sig.bind_partial(*args, **kwargs)
            except TypeError:
                bound = None
            if bound is not None:
                for name, value in list(bound.arguments.items()):
                    kind = sig.parameters[name].kind
                    if kind is inspect.Parameter.VAR_POSITIONAL:
                        if wanted(name):
                            bound.arguments[name] = tuple(transform(v) for v in value)
                    elif kind is inspect.Parameter.VAR_KEYWORD:
                        bound.arguments[name] = {
                            k: transform(v) if wanted(k) else v for k, v in value.items()
                        }
                    elif wanted(name):
                        bound.arguments[name] = transform(value)
                return func(*bound.args, **bound.kwargs)
        args = tuple(transform(a) for a in args)
        kwargs = {k: transform(v) if wanted(k) else v for k, v in kwargs.items()}
        return func(*args, **kwargs)

    return wrapper


def ensure_dim(func: Callable | None = None, *, dims: int, targets: str | list[str] | None = None):
    """Decorator: prepend size-1 dims until each tensor argument has ``dims`` dims.

    ``targets`` names the arguments (positional or keyword) to expand (a string is one name);
    ``None`` or an empty list means all tensor arguments. Non-tensors and tensors with enough
    dims are untouched.
    Use as ``@ensure_dim(dims=3)`` or ``ensure_dim(f, dims=3)``.
    """
    dims = check_int(dims, "dims", low=0)  # numpy ints too, as everywhere in the package

    def expand(x):
        if isinstance(x, torch.Tensor) and x.ndim < dims:
            return x.view(*([1] * (dims - x.ndim)), *x.shape)
        return x

    def decorate(f: Callable) -> Callable:
        return _apply(f, expand, _selected(targets, empty_means_all=True))

    return decorate if func is None else decorate(func)


def to_device(
    func: Callable | None = None,
    *,
    device: str | torch.device = "cpu",
    targets: str | list[str] | None = None,
):
    """Decorator: move tensor arguments to ``device`` (resolved by ``blockops.resolve_device``,
    so ``"auto"`` works and asking for a missing CUDA device is a clear ``ValueError``).

    ``targets`` names the arguments (positional or keyword) to move (a string is one name);
    ``None`` means all, an empty list means none (as in 0.1.0). Works bare (``@to_device``) or
    configured.
    """
    dev = resolve_device(device)

    def move(x):
        return x.to(dev) if isinstance(x, torch.Tensor) else x

    def decorate(f: Callable) -> Callable:
        return _apply(f, move, _selected(targets, empty_means_all=False))

    return decorate if func is None else decorate(func)


__all__ = ["ensure_dim", "to_device"]
