"""Checks of a loaded checkpoint's contents before they become a model's state.

The checksums in ``meta.json`` catch truncated or accidentally edited files; these checks catch
a checkpoint whose checksums were recomputed after an edit (or written by a buggy tool): every
entry must have the type, dtype, shape and value range that ``PyEGM`` itself produces, so a bad
file is refused at ``load`` with a message naming the entry, never later inside ``predict``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

#: name -> (dtype, shape) of the saved tensors, the shape in terms of ``n`` (bank size),
#: ``C`` (classes) and ``d`` (features)
TENSOR_SPECS: dict[str, tuple[torch.dtype, tuple[str, ...]]] = {
    "bank_X_": (torch.float32, ("n", "d")),
    "bank_y_": (torch.long, ("n",)),
    "bank_is_real_": (torch.bool, ("n",)),
    "bank_generation_": (torch.long, ("n",)),
    "bank_energy_": (torch.float32, ("n",)),
    "bank_seed_": (torch.long, ("n",)),
    "class_sum_": (torch.float64, ("C", "d")),
    "class_count_": (torch.long, ("C",)),
    "class_iters_": (torch.long, ("C",)),
    "local_radius_": (torch.float32, ("C",)),
    "radius_": (torch.float32, ("C",)),
}
_STATE_KEYS = ("seed", "n_growth_calls", "iteration", "session")


def _count(value: Any, name: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _expect(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def check_config(config: dict[str, Any]) -> None:
    """Validate the plain entries of ``config.yaml`` (labels, sizes, counters, history).

    Raises:
        ValueError: an entry has the wrong type or value (the message names it).
    """
    labels = config["classes"]
    _expect(
        isinstance(labels, list) and len(labels) >= 2,
        f"classes must be a list of at least 2 labels, got {labels!r}",
    )
    for lab in labels:
        _expect(
            isinstance(lab, (int, float, str, bool))
            and not (isinstance(lab, float) and not math.isfinite(lab)),
            f"classes holds {lab!r}; labels must be finite ints, floats, strings or bools",
        )
    _expect(len(set(labels)) == len(labels), f"classes holds duplicate labels: {labels!r}")
    _count(config["n_features_in"], "n_features_in", low=1)
    state = config["state"]
    _expect(isinstance(state, dict), f"state must be a mapping, got {state!r}")
    for key in _STATE_KEYS:
        _count(state[key], f"state.{key}")
    history = config["history"]
    _expect(
        isinstance(history, list) and all(isinstance(h, dict) for h in history),
        "history must be a list of mappings",
    )
    for key in ("params", "resolved", "dataset_stats"):
        _expect(isinstance(config[key], dict), f"{key} must be a mapping, got {config[key]!r}")
    _expect(
        isinstance(config["preset_resolved"], str),
        f"preset_resolved must be a string, got {config['preset_resolved']!r}",
    )


def check_tensors(
    tensors: dict[str, torch.Tensor], n_classes: int, n_features: int
) -> dict[str, torch.Tensor]:
    """Validate the saved tensors: dtypes, shapes, and the values ``PyEGM`` can produce.

    Floating tensors of another floating dtype are cast to the model's; integer and bool
    tensors must have their exact dtype.

    Args:
        tensors: name -> tensor, as loaded from ``tensors.pt``.
        n_classes: ``C``, the number of labels in the config.
        n_features: ``d``, the config's ``n_features_in``.

    Returns:
        the tensors of :data:`TENSOR_SPECS`, with the model's dtypes.

    Raises:
        KeyError: a tensor is missing.
        ValueError: a tensor has the wrong dtype, shape or values (the message names it).
    """
    X = tensors["bank_X_"]
    sizes = {"n": X.shape[0] if X.ndim else -1, "C": n_classes, "d": n_features}
    out = {}
    for name, (dtype, dims) in TENSOR_SPECS.items():
        t = tensors[name]
        shape = tuple(sizes[k] for k in dims)
        same_kind = t.dtype == dtype or (t.is_floating_point() and dtype.is_floating_point)
        _expect(
            same_kind and tuple(t.shape) == shape,
            f"{name} must be a {dtype} tensor of shape {shape}, got {t.dtype} {tuple(t.shape)}",
        )
        out[name] = t.to(dtype)
    tensors = out
    n = sizes["n"]
    X = tensors["bank_X_"]
    real, y, seed = tensors["bank_is_real_"], tensors["bank_y_"], tensors["bank_seed_"]
    gen = tensors["bank_generation_"]
    n_real = int(real.sum())
    _expect(
        n_real > 0 and bool(real[:n_real].all()),
        "the bank must hold real rows, all of them before the synthetic points",
    )
    _expect(bool(torch.isfinite(X).all()), "bank_X_ holds NaN or infinite values")
    _expect(bool(((y >= 0) & (y < n_classes)).all()), "bank_y_ holds codes outside the classes")
    _expect(
        bool((gen[real] == 0).all() and (gen[~real] >= 1).all()),
        "bank_generation_ must be 0 for real rows and >= 1 for synthetic points",
    )
    energy = tensors["bank_energy_"]
    _expect(
        bool(torch.isfinite(energy).all() and (energy >= 0).all()),
        "bank_energy_ must hold finite values >= 0",
    )
    _expect(bool((seed[real] == -1).all()), "bank_seed_ must be -1 for real rows")
    syn_seed = seed[~real]
    ok = bool(((syn_seed >= 0) & (syn_seed < n)).all())
    _expect(
        ok and bool(real[syn_seed].all() and (y[syn_seed] == y[~real]).all()),
        "bank_seed_ of a synthetic point must index a real row of its class",
    )
    radius = tensors["radius_"]
    _expect(
        bool(torch.isfinite(radius).all() and (radius > 0).all()),
        "radius_ must hold finite values > 0",
    )
    local = tensors["local_radius_"]
    _expect(
        bool((torch.isnan(local) | (torch.isfinite(local) & (local > 0))).all()),
        "local_radius_ must hold NaN or finite values > 0",
    )
    _expect(bool((tensors["class_count_"] >= 0).all()), "class_count_ must hold counts >= 0")
    _expect(bool((tensors["class_iters_"] >= 0).all()), "class_iters_ must hold counts >= 0")
    _expect(
        bool(torch.isfinite(tensors["class_sum_"]).all()),
        "class_sum_ holds NaN or infinite values",
    )
    return tensors
