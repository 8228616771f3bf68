"""``compute_Q``: one keyword call that evaluates several quantity functions."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def _name(fn: Callable) -> str:
    return getattr(fn, "__name__", None) or str(id(fn))


def compute_Q(*arg_functions: Callable, **kwarg_functions: Callable) -> Callable[..., dict]:
    """Build ``wrapped(**kwargs) -> {name: fn(**subset)}`` from quantity functions.

    Positional functions are named by ``__name__``; keyword functions by their keyword (a keyword
    entry replaces a positional one of the same name). Each function receives the keyword
    arguments its signature names; a function with ``**kwargs`` receives all of them. Unknown
    keywords are ignored.

    Raises:
        TypeError: a function is not callable, or two functions annotate the same parameter
            with different (non-empty) types; unannotated parameters never conflict.
        ValueError: two positional functions share a name (two lambdas, say): pass them as
            keyword arguments instead.
    """
    registry: dict[str, Callable] = {}
    for fn in arg_functions:
        if not callable(fn):
            raise TypeError(f"compute_Q arguments must be callable, got {type(fn).__name__}")
        name = _name(fn)
        if name in registry:
            raise ValueError(
                f"two positional functions are both named {name!r}; pass them as keyword "
                "arguments (compute_Q(a=f, b=g)) so each quantity has its own name"
            )
        registry[name] = fn
    for name, fn in kwarg_functions.items():
        if not callable(fn):
            raise TypeError(f"compute_Q({name}=...) must be callable, got {type(fn).__name__}")
        registry[name] = fn

    annotations: dict[str, Any] = {}
    plans: dict[str, tuple[Callable, frozenset[str], bool]] = {}
    for name, fn in registry.items():
        params = inspect.signature(fn).parameters
        takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        named = frozenset(
            p.name
            for p in params.values()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        )
        for p in params.values():
            if p.name not in named or p.annotation is inspect.Parameter.empty:
                continue
            seen = annotations.get(p.name, inspect.Parameter.empty)
            if seen is not inspect.Parameter.empty and seen != p.annotation:
                raise TypeError(
                    f"Type mismatch for argument '{p.name}': {seen!r} vs {p.annotation!r} "
                    f"(in {name!r})"
                )
            annotations[p.name] = p.annotation
        plans[name] = (fn, named, takes_all)

    def wrapped(**kwargs: Any) -> dict:
        out = {}
        for name, (fn, named, takes_all) in plans.items():
            if takes_all:
                out[name] = fn(**kwargs)
            else:
                out[name] = fn(**{k: v for k, v in kwargs.items() if k in named})
        return out

    wrapped.functions = dict(registry)  # type: ignore[attr-defined]
    return wrapped


__all__ = ["compute_Q"]
