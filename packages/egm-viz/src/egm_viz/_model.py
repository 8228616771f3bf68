"""Read-only snapshot of what a fitted EGM model exposes.

Everything the pictures need is copied out of the model once, detached and on the CPU, so no
drawing code can touch the model's own tensors. The model is never written to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from blockops import check_is_fitted

#: Attributes of a fitted model that egm-viz reads (the egm-core contract).
BANK_ATTRIBUTES = (
    "bank_X_",
    "bank_y_",
    "bank_is_real_",
    "bank_generation_",
    "bank_energy_",
    "bank_seed_",
    "classes_",
    "n_features_in_",
    "history_",
)


def _numpy(value: Any, dtype: Any) -> np.ndarray:
    """A private numpy copy of a tensor or array-like."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu").clone().numpy().astype(dtype, copy=True)
    return np.array(value, dtype=dtype, copy=True)


@dataclass(frozen=True)
class BankView:
    """Detached CPU copy of a fitted model's bank and growth history.

    Attributes:
        X: ``(n_bank, d)`` float64 tensor of the bank points in input space.
        y: ``(n_bank,)`` class codes (index into ``classes``).
        is_real: ``(n_bank,)`` bool, True for real training rows.
        generation: ``(n_bank,)`` growth iteration of each point (0 for real rows).
        energy: ``(n_bank,)`` energy share of each synthetic point (0 for real rows).
        seed: ``(n_bank,)`` bank index of each synthetic point's seed (-1 for real rows).
        classes: the model's original labels.
        history: per growth iteration, a dict with ``session``, ``iteration``,
            ``class_counts``, ``radius`` and ``energy``.
    """

    X: torch.Tensor
    y: np.ndarray
    is_real: np.ndarray
    generation: np.ndarray
    energy: np.ndarray
    seed: np.ndarray
    classes: np.ndarray
    history: list[dict[str, Any]]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_iterations(self) -> int:
        """Number of growth iterations the model ran (over all sessions)."""
        top = int(self.generation.max()) if self.generation.size else 0
        return max(len(self.history), top)

    def session_of(self, iteration: int) -> int | None:
        """Session number of growth iteration ``iteration`` (1-based), if recorded."""
        if 1 <= iteration <= len(self.history):
            session = self.history[iteration - 1].get("session")
            return None if session is None else int(session)
        return None

    def code_of(self) -> dict[Any, int]:
        """Map from an original label to its class code."""
        return {_plain(c): i for i, c in enumerate(self.classes.tolist())}


def _plain(label: Any) -> Any:
    """numpy scalars to Python scalars so labels compare and hash like the user's."""
    return label.item() if isinstance(label, np.generic) else label


def _copy_history(history: Any) -> list[dict[str, Any]]:
    out = []
    for entry in list(history or []):
        row = {}
        for key, value in dict(entry).items():
            if isinstance(value, torch.Tensor):
                value = value.detach().to("cpu").clone().tolist()
            elif isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, (list, tuple)):
                value = [
                    v.item() if isinstance(v, (np.generic, torch.Tensor)) else v for v in value
                ]
            row[key] = value
        out.append(row)
    return out


def read_model(model: Any) -> BankView:
    """Snapshot a fitted model's bank; raises ``NotFittedError`` before ``fit``.

    Raises:
        TypeError: ``model`` is not an EGM model: it has neither ``trend_paths`` nor any
            ``bank_*`` attribute (a string, ``None``, another library's estimator).
        NotFittedError: the model has not been fitted.
        ValueError: the bank arrays disagree in length or the bank is empty.
    """
    if not hasattr(model, "trend_paths") and not any(
        name.startswith("bank_") and hasattr(model, name) for name in BANK_ATTRIBUTES
    ):
        raise TypeError(
            "model must be a fitted egm_core.PyEGM (or an object with its fitted bank_* "
            f"attributes), got {type(model).__name__}"
        )
    check_is_fitted(model, BANK_ATTRIBUTES)
    X = model.bank_X_
    X = (
        X.detach().to("cpu", torch.float64).clone()
        if isinstance(X, torch.Tensor)
        else torch.as_tensor(np.array(X, dtype=np.float64, copy=True))
    )
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(
            f"model.bank_X_ must be a non-empty (n, d) array, got shape {tuple(X.shape)}"
        )
    view = BankView(
        X=X,
        y=_numpy(model.bank_y_, np.int64),
        is_real=_numpy(model.bank_is_real_, bool),
        generation=_numpy(model.bank_generation_, np.int64),
        energy=_numpy(model.bank_energy_, np.float64),
        seed=_numpy(model.bank_seed_, np.int64),
        classes=np.array(model.classes_, copy=True),
        history=_copy_history(model.history_),
    )
    n = X.shape[0]
    for name in ("y", "is_real", "generation", "energy", "seed"):
        arr = getattr(view, name)
        if arr.shape != (n,):
            raise ValueError(
                f"model.bank_{name}_ has shape {arr.shape}, expected ({n},) like bank_X_"
            )
    if view.y.size and (view.y.min() < 0 or view.y.max() >= len(view.classes)):
        raise ValueError("model.bank_y_ holds codes outside range(len(classes_))")
    return view
