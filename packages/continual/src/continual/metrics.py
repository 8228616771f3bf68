r"""Continual-learning metrics on the result matrix ``R``.

``R[i, j]`` is the metric (accuracy, or a loss for regression) on the test set of experience
``j`` after training on experiences ``0..i``. With ``T`` experiences trained:

* average accuracy ``A = (1/T) sum_j R[T-1, j]``;
* forgetting (Chaudhry et al. 2018) ``F = 1/(T-1) sum_{j<T-1} max_{l in [j, T-2]} R[l, j] - R[T-1, j]``
  (for a loss, ``R[T-1, j] - min_l R[l, j]``: positive always means worse than the best seen);
* backward transfer (Lopez-Paz and Ranzato 2017) ``BWT = 1/(T-1) sum_{j<T-1} R[T-1, j] - R[j, j]``
  (negated for a loss: negative always means forgetting);
* forward transfer ``FWT = 1/(T-1) sum_{j>0} R[j-1, j] - b_j`` where ``b_j`` is the metric of the
  untrained model on experience ``j`` (negated for a loss).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ._checks import check_count

__all__ = ["ResultMatrix", "average_metric", "backward_transfer", "forgetting", "forward_transfer"]


def _square(R: Any) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(f"R must be a non-empty square matrix, got shape {R.shape}")
    return R


def average_metric(R: Any) -> float:
    """Mean of the last row: the metric over all experiences after training on all of them."""
    R = _square(R)
    return float(R[-1].mean())


def forgetting(R: Any, higher_is_better: bool = True) -> float:
    """Average forgetting over the experiences before the last (0.0 with one experience)."""
    R = _square(R)
    T = R.shape[0]
    if T < 2:
        return 0.0
    vals = []
    for j in range(T - 1):
        past = R[j : T - 1, j]
        vals.append(past.max() - R[-1, j] if higher_is_better else R[-1, j] - past.min())
    return float(np.mean(vals))


def backward_transfer(R: Any, higher_is_better: bool = True) -> float:
    """BWT: mean change on earlier experiences between learning them and the end."""
    R = _square(R)
    T = R.shape[0]
    if T < 2:
        return 0.0
    sign = 1.0 if higher_is_better else -1.0
    return float(sign * np.mean([R[-1, j] - R[j, j] for j in range(T - 1)]))


def forward_transfer(R: Any, baseline: Any, higher_is_better: bool = True) -> float:
    """FWT: metric on experience ``j`` before training on it, minus the untrained baseline."""
    R = _square(R)
    b = np.asarray(baseline, dtype=np.float64)
    T = R.shape[0]
    if b.shape != (T,):
        raise ValueError(f"baseline must have shape ({T},), got {b.shape}")
    if T < 2:
        return 0.0
    sign = 1.0 if higher_is_better else -1.0
    return float(sign * np.mean([R[j - 1, j] - b[j] for j in range(1, T)]))


class ResultMatrix:
    """The matrix ``R`` filled row by row while a stream is trained, with its summaries.

    Args:
        n_experiences: number of experiences ``T``.
        metric: name of the metric (``"accuracy"`` or a loss name).
        higher_is_better: False for losses.
    """

    def __init__(self, n_experiences: int, metric: str = "accuracy", higher_is_better: bool = True):
        check_count("n_experiences", n_experiences)
        self.n_experiences = int(n_experiences)
        self.metric = metric
        self.higher_is_better = bool(higher_is_better)
        self.R = np.full((self.n_experiences, self.n_experiences), np.nan)
        self.baseline: np.ndarray | None = None
        self.rows_done = 0

    def set_row(self, i: int, values: Any) -> None:
        """Store the metric on every test experience after training experience ``i``.

        Rows are filled in order: ``i`` is a row already filled (overwritten) or the next one;
        a gap would leave NaN rows inside the summaries.
        """
        T = self.n_experiences
        row = np.asarray(values, dtype=np.float64)
        if not isinstance(i, numbers.Integral) or isinstance(i, bool) or not 0 <= i < T:
            raise ValueError(f"i must be an integer in [0, {T - 1}], got {i!r}")
        if row.shape != (T,):
            raise ValueError(f"values must hold {T} numbers (one per experience), got {row.shape}")
        if i > self.rows_done:  # row 2 before row 1 made every summary NaN without a word
            raise ValueError(
                f"i must be at most {self.rows_done} (rows are filled in order, rows "
                f"0..{self.rows_done - 1} are done), got {i}"
            )
        self.R[i] = row
        self.rows_done = max(self.rows_done, i + 1)

    def _done(self) -> np.ndarray:
        if self.rows_done == 0:
            raise ValueError("no row of the result matrix has been filled yet")
        return self.R[: self.rows_done, : self.rows_done]

    def average(self) -> float:
        """:func:`average_metric` over the experiences trained so far."""
        return average_metric(self._done())

    def forgetting(self) -> float:
        """:func:`forgetting` over the experiences trained so far."""
        return forgetting(self._done(), self.higher_is_better)

    def bwt(self) -> float:
        """:func:`backward_transfer` over the experiences trained so far."""
        return backward_transfer(self._done(), self.higher_is_better)

    def fwt(self) -> float:
        """:func:`forward_transfer` (needs the untrained baseline, ``Trainer(eval_initial=True)``)."""
        if self.baseline is None:
            raise ValueError("no untrained baseline: train with eval_initial=True to get FWT")
        t = self.rows_done
        if t == 0:
            raise ValueError("no row of the result matrix has been filled yet")
        R = self.R[:t, :t]
        return forward_transfer(R, self.baseline[:t], self.higher_is_better)

    def summary(self) -> dict[str, float]:
        """Average, forgetting, BWT (and FWT when the baseline exists)."""
        out = {"average": self.average(), "forgetting": self.forgetting(), "bwt": self.bwt()}
        if self.baseline is not None:
            out["fwt"] = self.fwt()
        return out

    def to_markdown(self, digits: int = 3) -> str:
        """The matrix as a markdown table (rows: after training; columns: tested on)."""
        T = self.n_experiences
        head = "| after \\ on | " + " | ".join(str(j) for j in range(T)) + " |"
        sep = "|---" * (T + 1) + "|"
        rows = [
            f"| {i} | "
            + " | ".join("" if np.isnan(v) else f"{v:.{digits}f}" for v in self.R[i])
            + " |"
            for i in range(T)
        ]
        return "\n".join([head, sep, *rows])

    def state_dict(self) -> dict[str, Any]:
        """Plain values (safe for YAML)."""
        return {
            "n_experiences": self.n_experiences,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "R": [[None if np.isnan(v) else float(v) for v in row] for row in self.R],
            "baseline": None if self.baseline is None else [float(v) for v in self.baseline],
            "rows_done": self.rows_done,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> ResultMatrix:
        """Rebuild from :meth:`state_dict`."""
        out = cls(state["n_experiences"], state["metric"], state["higher_is_better"])
        out.R = np.array(
            [[np.nan if v is None else v for v in row] for row in state["R"]], dtype=np.float64
        )
        out.baseline = (
            None if state["baseline"] is None else np.asarray(state["baseline"], dtype=np.float64)
        )
        out.rows_done = int(state["rows_done"])
        return out
