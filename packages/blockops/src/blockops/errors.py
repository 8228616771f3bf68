"""Exceptions shared by every package of the monorepo."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from functools import cache
from typing import Any


class NotFittedError(ValueError, AttributeError):
    """Raised when an estimator is used before ``fit``."""


@cache
def _with_sklearn(sklearn_error: type[Exception]) -> type[NotFittedError]:
    return type("NotFittedError", (NotFittedError, sklearn_error), {"__module__": __name__})


def _not_fitted_class() -> type[NotFittedError]:
    """:class:`NotFittedError`, also a scikit-learn ``NotFittedError`` when scikit-learn is
    loaded (so its tools recognise it); scikit-learn is never imported here."""
    exceptions = sys.modules.get("sklearn.exceptions")
    sklearn_error = getattr(exceptions, "NotFittedError", None)
    return NotFittedError if sklearn_error is None else _with_sklearn(sklearn_error)


def check_is_fitted(estimator: Any, attributes: str | Iterable[str] | None = None) -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` holds its learned state.

    Args:
        estimator: the object to check.
        attributes: names that must exist; by default any public attribute ending in ``_``.
    """
    if attributes is None:
        fitted = any(k.endswith("_") and not k.startswith("_") for k in vars(estimator))
    else:
        names = [attributes] if isinstance(attributes, str) else list(attributes)
        fitted = all(hasattr(estimator, n) for n in names)
    if not fitted:
        raise _not_fitted_class()(
            f"This {type(estimator).__name__} instance is not fitted yet: call 'fit' first."
        )
