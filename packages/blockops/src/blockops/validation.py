"""Input conversion and validation shared by the estimators."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np
import torch

from .device import resolve_device

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def as_tensor(
    x: Any,
    *,
    name: str = "X",
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    ndim: int | None = 2,
    allow_empty: bool = False,
) -> torch.Tensor:
    """Convert numpy arrays, lists or tensors to a validated floating tensor.

    Args:
        x: the data.
        name: argument name used in error messages.
        device: target device (``None``: keep a tensor's device, CPU otherwise; strings go
            through :func:`resolve_device`).
        dtype: floating dtype; ``None`` computes in float32 (float64 input is cast down).
        ndim: required number of dimensions (``None``: any).
        allow_empty: accept zero rows.

    Returns:
        Tensor with ``ndim`` dimensions, finite values, of ``dtype`` on ``device``.

    Raises:
        TypeError: ``x`` is None or sparse, ``dtype`` is not a floating dtype, or an object
            array holds something that is not a number (object arrays of numbers are accepted).
        ValueError: non-numeric input (strings, ragged rows, complex), wrong number
            of dimensions, no rows or no features, NaN or inf.
    """
    if dtype is not None and dtype not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be a floating torch dtype, got {dtype}")
    target = dtype or torch.float32
    if (isinstance(x, torch.Tensor) and x.layout != torch.strided) or (
        hasattr(x, "toarray") or type(x).__module__.startswith("scipy.sparse")
    ):
        raise TypeError(
            f"{name} is sparse ({type(x).__name__}); dense data is required "
            f"(use {name}.toarray() or {name}.to_dense())"
        )
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        if x is None:
            raise TypeError(f"{name} must be array-like, got None")
        try:
            arr = np.asarray(x)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
        if arr.dtype == object:  # numbers stored as objects are accepted, as scikit-learn does
            try:
                arr = arr.astype(np.float64)
            except TypeError as exc:  # e.g. a dict among the numbers
                raise TypeError(f"{name} must hold numbers: {exc}") from exc
            except ValueError:  # strings: reported below
                pass
        if arr.dtype == object or arr.dtype.kind in "USVOMm":
            raise ValueError(
                f"{name} must hold numbers, got an array of dtype {arr.dtype} "
                "(strings, objects or ragged rows are not accepted)"
            )
        if arr.dtype.kind == "c":
            raise ValueError(f"{name}: Complex data not supported (dtype {arr.dtype})")
        if not arr.dtype.isnative:  # big-endian data ('>f4'): torch reads native order only
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:  # long double: no torch dtype
            arr = arr.astype(np.float64)
        if not arr.flags.writeable:  # torch cannot hold read-only memory (an mmap, a view)
            arr = arr.copy()
        # ascontiguousarray would turn a 0-d scalar into shape (1,)
        t = torch.from_numpy(arr if arr.flags.c_contiguous else np.ascontiguousarray(arr))
    if t.is_complex():
        raise ValueError(f"{name}: Complex data not supported (dtype {t.dtype})")
    if ndim is not None and t.ndim != ndim:
        hint = (
            ". Reshape your data with x.reshape(1, -1) for a single sample "
            "or x.reshape(-1, 1) for a single feature"
            if ndim == 2 and t.ndim == 1
            else ""
        )
        raise ValueError(f"{name} must be {ndim}-D, got an array of shape {tuple(t.shape)}{hint}")
    if t.ndim == 2 and t.shape[1] == 0:
        raise ValueError(
            f"{name} has 0 feature(s) (shape={tuple(t.shape)}) while a minimum of 1 is required."
        )
    if t.numel() == 0 and not (allow_empty and t.ndim >= 1 and t.shape[-1] > 0):
        raise ValueError(
            f"{name} is empty (shape {tuple(t.shape)}); at least one sample is required"
        )
    dev = t.device if device is None else resolve_device(device, name="device")
    source = t
    t = t.to(device=dev, dtype=target)
    if t.numel() and not _all_finite(t):
        if not source.is_floating_point() or bool(torch.isfinite(source).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise ValueError(
                f"{name} has {bad} value(s) too large for {target} (largest magnitude "
                f"{float(source.abs().max()):.3g}); rescale the data or pass dtype=torch.float64"
            )
        bad = int((~torch.isfinite(source)).sum())  # the input's own, not its overflows
        raise ValueError(
            f"{name} contains {bad} NaN or infinite value(s); clean or impute them first"
        )
    return t


#: elements per ``isfinite`` pass: a 16 MiB boolean temporary however large the data
_FINITE_BLOCK = 1 << 24


def _all_finite(t: torch.Tensor) -> bool:
    """Whether every value of ``t`` is finite, checked in row blocks (one host sync)."""
    if t.ndim == 0:
        return bool(torch.isfinite(t))
    rows = max(1, _FINITE_BLOCK // max(1, t[0].numel()))
    ok = torch.ones((), dtype=torch.bool, device=t.device)
    for part in t.split(rows):
        ok &= torch.isfinite(part).all()
    return bool(ok)


def _data_conversion_warning() -> type[Warning]:
    """scikit-learn's DataConversionWarning when scikit-learn is loaded (it is a UserWarning),
    so its estimator checks recognise it; plain UserWarning otherwise (never imports it)."""
    exceptions = sys.modules.get("sklearn.exceptions")
    return getattr(exceptions, "DataConversionWarning", UserWarning)


def as_labels(y: Any, *, name: str = "y", n_samples: int | None = None) -> np.ndarray:
    """Validate a 1-D label vector of any hashable values; returns a numpy array.

    ``None`` and NaN are refused (as in scikit-learn), and so is an unordered set. A sequence
    of mixed types (``[1, "a"]``) keeps its values (an object array, not numpy's strings); a
    sequence of tuples is read as rows, hence refused as 2-D.
    """
    if isinstance(y, (set, frozenset)):  # np.asarray makes a 0-d object array of it
        raise TypeError(
            f"{name} must be an ordered 1-D sequence of labels, got a {type(y).__name__} "
            f"(which has no order); pass a list, e.g. {name}=sorted(...)"
        )
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu()
        y = (y.float() if y.dtype == torch.bfloat16 else y).numpy()  # numpy has no bfloat16
    try:
        arr = np.asarray(y)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    if arr.dtype.kind in "US" and not isinstance(y, np.ndarray):
        arr = _keep_mixed_types(y, arr)
    if arr.ndim == 2 and arr.shape[1] == 1:
        warnings.warn(
            f"A column-vector {name} was passed when a 1d array was expected; "
            "it is flattened (use y.ravel())",
            _data_conversion_warning(),
            stacklevel=2,
        )
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if n_samples is not None and arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} labels but X has {n_samples} rows; they must match"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite labels")
    if arr.dtype == object:
        _check_object_labels(arr, name)
    return arr


def _keep_mixed_types(y: Any, arr: np.ndarray) -> np.ndarray:
    """``arr`` (numpy's string array of the sequence ``y``), or an object array of ``y``'s own
    values when they are not all strings: numpy turns ``[1, "a"]`` into ``["1", "a"]``, which
    would decode the label ``1`` as ``"1"``."""
    text = str if arr.dtype.kind == "U" else bytes
    values = np.asarray(y, dtype=object)
    if all(isinstance(v, text) for v in values.ravel().tolist()):
        return arr
    return values


def _check_object_labels(arr: np.ndarray, name: str) -> None:
    """ValueError for ``None`` or a float NaN/inf among object labels (a mixed-type ``y``)."""
    for i, v in enumerate(arr.tolist()):
        if v is None:
            raise ValueError(
                f"{name} contains None at position {i}; None is not a valid label "
                "(remove or impute the missing labels first)"
            )
        if isinstance(v, (float, np.floating)) and not np.isfinite(v):
            raise ValueError(f"{name} contains NaN or infinite labels (at position {i})")


def check_X_y(
    X: Any,
    y: Any,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, np.ndarray]:
    """Validate a training pair: ``X`` (n, d) tensor and labels ``y`` (n,) as numpy."""
    Xt = as_tensor(X, name="X", device=device, dtype=dtype)
    return Xt, as_labels(y, name="y", n_samples=Xt.shape[0])
