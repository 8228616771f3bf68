"""Label encoding: any hashable labels to contiguous integer codes and back."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from .errors import check_is_fitted
from .validation import as_labels


class LabelEncoder:
    """Map labels (ints, strings, numpy scalars) to codes ``0..n_classes-1``.

    Classes are sorted when they are mutually comparable, else kept in first-seen order.
    """

    def fit(self, y: Any) -> LabelEncoder:
        arr = as_labels(y)
        if arr.shape[0] == 0:
            raise ValueError("y is empty; at least one label is required")
        if arr.dtype != object:
            classes = np.unique(arr)
        else:  # distinct by hash first: np.unique's sort dedups only neighbours, and a partial
            # order (frozensets compare by inclusion) left duplicated classes
            seen = list(dict.fromkeys(arr.tolist()))
            with contextlib.suppress(TypeError):  # mixed types that do not compare: first seen
                seen = sorted(seen)
            classes = _object_array(seen)
        self.classes_ = classes
        self._index = {self._key(c): i for i, c in enumerate(classes.tolist())}
        return self

    def partial_fit(self, y: Any) -> LabelEncoder:
        """Append labels not seen before (their codes follow the existing ones)."""
        if not hasattr(self, "classes_"):
            return self.fit(y)
        arr = as_labels(y)
        new = [v for v in dict.fromkeys(arr.tolist()) if self._key(v) not in self._index]
        if new:
            try:
                new = sorted(new)
            except TypeError:
                pass
            old = self.classes_.tolist()
            merged = old + new
            classes = (
                _exact_array(merged, (self.classes_.dtype, arr.dtype))
                if _homogeneous(merged)
                else _object_array(merged)
            )
            self.classes_ = classes
            self._index = {self._key(c): i for i, c in enumerate(merged)}
        return self

    @staticmethod
    def _key(value: Any) -> Any:
        return value.item() if isinstance(value, np.generic) else value

    def transform(self, y: Any, *, name: str = "y") -> torch.Tensor:
        check_is_fitted(self, "classes_")
        arr = as_labels(y, name=name)
        fast = self._transform_sorted(arr)
        if fast is not None:
            return fast
        try:
            codes = [self._index[self._key(v)] for v in arr.tolist()]
        except KeyError as exc:
            raise ValueError(
                f"{name} contains label {exc.args[0]!r} not seen during fit; "
                f"known labels: {self.classes_.tolist()}"
            ) from None
        return torch.tensor(codes, dtype=torch.long)

    def _transform_sorted(self, arr: np.ndarray) -> torch.Tensor | None:
        """Vectorised codes when the classes are one sorted numeric or string array, else None."""
        classes = self.classes_
        if classes.dtype == object or arr.dtype == object or arr.dtype.kind != classes.dtype.kind:
            return None
        if arr.dtype.kind not in "biufU" or classes.size == 0:
            return None
        if classes.size > 1 and not bool(np.all(classes[:-1] < classes[1:])):
            return None  # partial_fit appended codes out of sorted order
        pos = np.clip(np.searchsorted(classes, arr), 0, classes.size - 1)
        if not bool(np.all(classes[pos] == arr)):
            return None  # an unseen label: the slow path names it
        return torch.from_numpy(pos.astype(np.int64))

    def fit_transform(self, y: Any) -> torch.Tensor:
        return self.fit(y).transform(y)

    def inverse_transform(self, codes: Any) -> np.ndarray:
        check_is_fitted(self, "classes_")
        if isinstance(codes, torch.Tensor):
            codes = codes.detach().cpu().numpy()
        raw = np.asarray(codes)
        whole = raw.dtype.kind in "iub" or (
            raw.dtype.kind == "f" and bool(np.all(np.isfinite(raw) & (raw == np.round(raw))))
        )
        if not whole:  # a float code such as 0.7 must not be truncated to a class
            raise ValueError(f"codes must be integer codes, got {raw.tolist()!r:.200}")
        codes = raw.astype(np.int64)
        if codes.size and (codes.min() < 0 or codes.max() >= len(self.classes_)):
            raise ValueError(
                f"codes must lie in [0, {len(self.classes_)}), got {codes.min()}..{codes.max()}"
            )
        return self.classes_[codes]


def _homogeneous(values: list[Any]) -> bool:
    return len({type(v) for v in values}) == 1


def _exact_array(values: list[Any], dtypes: tuple[np.dtype, ...]) -> np.ndarray:
    """``values`` in the narrowest of the labels' own dtypes (or their promotion) that holds
    every one exactly: uint8 classes extended by uint8 labels stay uint8, and integers are never
    rounded through float64 (which is what numpy promotes uint64 with int64 to)."""
    candidates = [np.result_type(*dtypes), *dtypes] if object not in dtypes else []
    for dtype in candidates:
        if dtype.kind in "iub" or dtype.kind == dtypes[0].kind:
            try:
                out = np.array(values, dtype=dtype)
            except (OverflowError, ValueError):
                continue
            if out.tolist() == values:
                return out
    return _object_array(values)  # e.g. -1 and 2**63: no numpy integer holds both


def _object_array(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
