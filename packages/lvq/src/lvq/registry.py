"""One registry of every estimator: name -> class, family and the settings the shared test
harness uses (small iteration counts). A new model is covered by the harness by registering it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its class, family letter (as in the spec) and harness settings."""

    name: str
    cls: type
    family: str
    #: parameters the shared harness uses (fast settings)
    test_params: dict[str, Any] = field(default_factory=dict)
    #: "classifier" (fit(X, y)), later "one_class" or "clusterer"
    kind: str = "classifier"
    #: trained by the shared gradient loop (all training options apply)
    gradient: bool = True


REGISTRY: dict[str, ModelSpec] = {}
"""Every registered model: class name -> :class:`ModelSpec` (class, family, kind, settings)."""


def register(
    family: str,
    test_params: dict[str, Any] | None = None,
    kind: str = "classifier",
    gradient: bool = True,
) -> Callable[[type], type]:
    """Class decorator adding a model to :data:`REGISTRY` under its class name.

    Defining the same class again (same module and qualified name: a re-run notebook cell, a
    reloaded module) replaces its entry; another class of a registered name is an error.
    """

    def deco(cls: type) -> type:
        name = cls.__name__
        old = REGISTRY[name].cls if name in REGISTRY else cls
        if (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(
                f"a model named {name!r} is already registered ({old.__module__}.{old.__qualname__})"
            )
        REGISTRY[name] = ModelSpec(name, cls, family, dict(test_params or {}), kind, gradient)
        return cls

    return deco


def get_model_class(name: str) -> type:
    """The registered class called ``name``."""
    try:
        return REGISTRY[name].cls
    except KeyError:
        raise ValueError(f"no lvq model named {name!r}; known: {sorted(REGISTRY)}") from None


def list_models(family: str | None = None, kind: str | None = None) -> list[str]:
    """Registered model names, optionally of one family / kind."""
    return sorted(
        n
        for n, s in REGISTRY.items()
        if (family is None or s.family == family) and (kind is None or s.kind == kind)
    )
