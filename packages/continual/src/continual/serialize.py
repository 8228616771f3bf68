"""Nested state (dicts, lists, tuples, tensors, plain values) as safe YAML plus a flat tensor dict."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["flatten_state", "unflatten_state"]

_PLAIN = (str, int, float, bool, type(None))


def flatten_state(obj: Any, prefix: str) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split ``obj`` into a YAML-safe skeleton and ``{key: tensor}``.

    Tensors become ``{"__tensor__": key}``; tuples ``{"__tuple__": [...]}``; dicts with
    non-string keys ``{"__items__": [[key, value], ...]}``.

    Args:
        obj: the nested state (an optimizer ``state_dict()``, for example).
        prefix: prefix of the tensor keys.

    Returns:
        ``(skeleton, tensors)``.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(o: Any, path: str) -> Any:
        if isinstance(o, torch.Tensor):
            tensors[path] = o
            return {"__tensor__": path}
        if isinstance(o, bool) or isinstance(o, _PLAIN):
            return o
        if isinstance(o, tuple):
            return {"__tuple__": [walk(v, f"{path}.{i}") for i, v in enumerate(o)]}
        if isinstance(o, list):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(o)]
        if isinstance(o, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in o):
                return {k: walk(v, f"{path}.{k}") for k, v in o.items()}
            return {"__items__": [[k, walk(v, f"{path}.{k}")] for k, v in o.items()]}
        if hasattr(o, "item") and callable(o.item):  # numpy scalars
            return o.item()
        raise TypeError(f"cannot serialise a {type(o).__name__} at {path!r}")

    return walk(obj, prefix), tensors


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor], prefix: str = "optim") -> Any:
    """Inverse of :func:`flatten_state`; ``tensors`` keys may have ``prefix.`` stripped."""

    def get(key: str) -> torch.Tensor:
        if key in tensors:
            return tensors[key]
        short = key[len(prefix) + 1 :] if key.startswith(prefix + ".") else key
        return tensors[short]

    def walk(o: Any) -> Any:
        if isinstance(o, dict):
            if set(o) == {"__tensor__"}:
                return get(o["__tensor__"])
            if set(o) == {"__tuple__"}:
                return tuple(walk(v) for v in o["__tuple__"])
            if set(o) == {"__items__"}:
                return {k: walk(v) for k, v in o["__items__"]}
            return {k: walk(v) for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v) for v in o]
        return o

    return walk(skeleton)
