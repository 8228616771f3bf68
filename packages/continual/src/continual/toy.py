"""Time-dependent toy data: eight Gaussian clusters on an octagon that drift with time."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator
from typing import Any

import blockops
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset, get_worker_info

from ._checks import check_count, check_number
from .scenarios import Experience, Scenario

__all__ = [
    "TimeDependentIterDataset",
    "TimeDependentTensorDataset",
    "drifting_clusters",
    "generate_fake_toy",
    "generate_toy8",
    "label2color_toyN",
    "points_on_circle",
    "shift_x",
    "shift_y",
    "td_arrays",
    "td_gen",
    "tdds_arrays",
    "tdds_gen",
]

_LABEL_MAPS = {
    "all": (0, 1, 2, 3, 4, 5, 6, 7),
    "some": (0, 0, 0, 0, 1, 1, 2, 3),
    "none": (0, 0, 0, 0, 0, 0, 0, 0),
}
DriftFn = Callable[[torch.Tensor, float], torch.Tensor]
# matplotlib's "tab10" qualitative colormap (RGB), so that no matplotlib is needed for colours
_TAB10 = (
    (0.122, 0.467, 0.706),
    (1.000, 0.498, 0.055),
    (0.173, 0.627, 0.173),
    (0.839, 0.153, 0.157),
    (0.580, 0.404, 0.741),
    (0.549, 0.337, 0.294),
    (0.890, 0.467, 0.761),
    (0.498, 0.498, 0.498),
    (0.737, 0.741, 0.133),
    (0.090, 0.745, 0.812),
)


def _as_tensor(name: str, value: Any) -> torch.Tensor:
    """``value`` (a tensor, numpy array or nested list) as a tensor of at least one dimension
    (numpy arrays failed inside the default drift with a ``torch.where`` TypeError)."""
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(np.ascontiguousarray(value))
        except (TypeError, ValueError, RuntimeError):
            kind = getattr(value, "dtype", type(value).__name__)
            raise TypeError(f"{name} must be a numeric tensor or numpy array, got {kind}") from None
    if value.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension (one row per point), got 0-d")
    return value


def _time_axis(time: Any) -> torch.Tensor:
    """``time`` as a non-empty 1-D float tensor of finite values (default ``linspace(0, 10, 10)``)."""
    if time is None:
        return torch.linspace(0, 10, 10)
    if isinstance(time, torch.Tensor):
        time = time.detach().cpu()
    try:
        times = torch.as_tensor(np.asarray(time, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"time must be a 1-D sequence of numbers, got {time!r}") from None
    if times.dim() != 1 or times.numel() == 0 or not bool(torch.isfinite(times).all()):
        raise ValueError(
            f"time must be a non-empty 1-D sequence of finite numbers, got shape "
            f"{tuple(times.shape)}"
        )
    return times


def _octagon() -> torch.Tensor:
    a = 1.0 + math.sqrt(2.0)
    return torch.tensor(
        [[1, a], [a, 1], [a, -1], [1, -a], [-1, -a], [-a, -1], [-a, 1], [-1, a]],
        dtype=torch.float32,
    )


def generate_toy8(
    label_kind: str = "all", npoints: int = 400, scale: float = 0.04, random_state: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eight isotropic 2-D Gaussian clusters at the vertices of a regular octagon.

    Args:
        label_kind: ``"all"`` (one label per cluster), ``"some"`` (labels 0,0,0,0,1,1,2,3) or
            ``"none"`` (every point has label 0).
        npoints: number of points, a multiple of 8 (``npoints / 8`` per cluster, in order).
        scale: standard deviation of each cluster. The original's ``scale`` was the variance:
            its default 0.04 drew clusters of standard deviation 0.2 (``scale=0.2`` here), five
            times wider than this default.
        random_state: seed of the noise (the global RNG is never touched).

    Returns:
        ``X (npoints, 2)`` and one-hot ``Y (npoints, 8)``.
    """
    if label_kind not in _LABEL_MAPS:
        raise ValueError(
            f"label_kind={label_kind!r} is not understood; expected {list(_LABEL_MAPS)}"
        )
    check_count("npoints", npoints)
    check_number("scale", scale)  # NaN or a negative spread gave NaN / mirrored noise silently
    if npoints % 8:
        raise ValueError(f"npoints must be a positive multiple of 8, got {npoints}")
    gen = blockops.make_generator(random_state)
    per = npoints // 8
    centers = _octagon().repeat_interleave(per, dim=0)
    X = centers + scale * torch.randn(npoints, 2, generator=gen)
    cluster = torch.arange(8).repeat_interleave(per)
    labels = torch.tensor(_LABEL_MAPS[label_kind])[cluster]
    Y = torch.nn.functional.one_hot(labels, 8).float()
    return X, Y


def generate_fake_toy(npoints: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic data for tests: ``X (npoints, 1)`` holds the row index (0., 1., ...) and
    ``Y = 10 * X``."""
    check_count("npoints", npoints)
    X = torch.arange(int(npoints), dtype=torch.float32).unsqueeze(1)
    return X, 10.0 * X


def points_on_circle(radius: float, npoints: int) -> torch.Tensor:
    """``npoints`` equidistant points ``(npoints, 2)`` on the circle of ``radius`` around the
    origin, the first at angle 0, counter-clockwise."""
    check_number("radius", radius)
    check_count("npoints", npoints)
    angle = torch.arange(int(npoints), dtype=torch.float64) * (2 * math.pi / int(npoints))
    return (float(radius) * torch.stack([angle.cos(), angle.sin()], dim=1)).float()


def label2color_toyN(Y: Any) -> np.ndarray:
    """RGBA colours ``(n, 4)`` of drifting labels ``Y (n, C)`` (``C <= 10``), for matplotlib.

    The colour of a row is the ``"tab10"`` colour of its argmax (label ``k`` gets ``tab10(k)``);
    its alpha is the row's maximum (the label intensity, ``1 + t`` under :func:`shift_y`) over
    the maximum of ``Y``, clipped to ``[0, 1]`` (all 1 when ``Y``'s maximum is not positive), so
    later, stronger steps of a stacked stream are drawn more opaque. Needs no matplotlib.

    Raises:
        ValueError: ``Y`` is not 2-D with 1 to 10 columns and finite values.
        TypeError: ``Y`` is neither a tensor nor an array.
    """
    Y = _as_tensor("Y", Y).detach().cpu().double()
    if Y.dim() != 2 or not 1 <= Y.shape[1] <= len(_TAB10):
        raise ValueError(
            f"Y must be 2-D (n, C) with 1 <= C <= {len(_TAB10)} label columns, got shape "
            f"{tuple(Y.shape)}"
        )
    if not bool(torch.isfinite(Y).all()):
        raise ValueError("Y must hold finite values")
    rgba = np.ones((Y.shape[0], 4))
    if Y.shape[0] == 0:
        return rgba
    intensity = Y.max(dim=1).values.numpy()
    rgba[:, :3] = np.asarray(_TAB10)[Y.argmax(dim=1).numpy()]
    top = float(intensity.max())
    if top > 0:
        rgba[:, 3] = np.clip(intensity / top, 0.0, 1.0)
    return rgba


def shift_x(X: torch.Tensor, t: float) -> torch.Tensor:
    """Default input drift: every coordinate moves by ``+t``."""
    return X + t


def shift_y(Y: torch.Tensor, t: float) -> torch.Tensor:
    """Default label drift: the non-zero entries grow by ``+t`` (a real-valued intensity)."""
    return torch.where(Y != 0, Y + t, Y)


def td_gen(
    X: torch.Tensor,
    Y: torch.Tensor,
    time_x_func: DriftFn = shift_x,
    time_y_func: DriftFn = shift_y,
    time_func_mode: str = "abs",
    time: Any = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """An iterator of ``(X_t, Y_t)``, one pair per time value.

    Args:
        X: inputs at time 0.
        Y: targets at time 0.
        time_x_func: ``f(X, t)`` drift of the inputs.
        time_y_func: ``g(Y, t)`` drift of the targets.
        time_func_mode: ``"abs"`` applies ``f(X0, t)``; ``"rel"`` applies the drift
            step by step, ``X_k = f(X_{k-1}, t_k - t_{k-1})``, starting from ``X0`` at time 0
            (so ``X_0 = f(X0, t_0)``: the modes agree on any time axis for drifts that add up in
            time, like the default shifts, and differ for others).
        time: the time values, a non-empty 1-D sequence of finite numbers (default
            ``linspace(0, 10, 10)``).

    ``X`` and ``Y`` may be tensors or numpy arrays (read as tensors).

    Raises:
        ValueError: unknown ``time_func_mode`` or a ``time`` that is not a non-empty 1-D
            sequence of finite numbers.
        TypeError: ``X`` or ``Y`` is neither a tensor nor an array.
    """
    if time_func_mode not in ("abs", "rel"):
        raise ValueError(
            f"time_func_mode={time_func_mode!r} is not understood; expected 'abs' or 'rel'"
        )
    times = _time_axis(time)  # checked here, not at the first next()
    X, Y = _as_tensor("X", X), _as_tensor("Y", Y)
    return _drift_steps(X, Y, time_x_func, time_y_func, time_func_mode == "rel", times.tolist())


def _drift_steps(
    X: torch.Tensor,
    Y: torch.Tensor,
    time_x_func: DriftFn,
    time_y_func: DriftFn,
    rel: bool,
    times: list[float],
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The generator behind :func:`td_gen` (arguments already checked)."""
    Xc, Yc, prev = X, Y, 0.0
    for t in times:
        if not rel:
            yield time_x_func(X, t), time_y_func(Y, t)
        else:
            Xc, Yc = time_x_func(Xc, t - prev), time_y_func(Yc, t - prev)
            prev = t
            yield Xc, Yc


def td_arrays(
    X: torch.Tensor,
    Y: torch.Tensor,
    time_x_func: DriftFn = shift_x,
    time_y_func: DriftFn = shift_y,
    time_func_mode: str = "abs",
    time: Any = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`td_gen` stacked into ``(nsteps, npoints, d)`` tensors."""
    pairs = list(td_gen(X, Y, time_x_func, time_y_func, time_func_mode, time))
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


class TimeDependentTensorDataset(Dataset):
    """Map-style dataset whose items drift with an internal clock (one step = one task).

    Args:
        X: inputs at time 0.
        Y: targets at time 0.
        time_x_func: drift of the inputs ``f(X, t)``.
        time_y_func: drift of the targets ``g(Y, t)``.
        dt: clock increment of :meth:`step` (a finite number).

    ``X`` and ``Y`` may be tensors or numpy arrays (read as tensors).
    """

    def __init__(
        self,
        X: torch.Tensor,
        Y: torch.Tensor,
        time_x_func: DriftFn = shift_x,
        time_y_func: DriftFn = shift_y,
        dt: float = 1.0,
    ) -> None:
        X, Y = _as_tensor("X", X), _as_tensor("Y", Y)
        if X.shape[0] != Y.shape[0]:
            raise ValueError("X and Y must have the same number of rows")
        if not isinstance(dt, numbers.Real) or isinstance(dt, bool) or not math.isfinite(dt):
            raise ValueError(f"dt must be a finite number, got {dt!r}")  # NaN made time NaN
        self.X, self.Y = X, Y
        self.time_x_func, self.time_y_func = time_x_func, time_y_func
        self.dt = float(dt)
        self.time = 0.0

    def __len__(self) -> int:
        return self.X.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.time_x_func(self.X[index], self.time), self.time_y_func(
            self.Y[index], self.time
        )

    def step(self) -> float:
        """Advance the clock by ``dt``; returns the new time."""
        self.time += self.dt
        return self.time


class TimeDependentIterDataset(IterableDataset):
    """Iterable version of :class:`TimeDependentTensorDataset`: one pass over the rows per time
    step, at times ``0, dt, ..., (nsteps - 1) * dt``, yielding ``(x, y)`` one row at a time.

    Every iteration starts again at time 0 (the object holds no clock), so a ``DataLoader``
    epoch reads the same finite stream of ``nsteps * len(X)`` items, steps in order, rows in
    order within a step. With several ``DataLoader`` workers each reads every
    ``num_workers``-th row of each step. The original cycled over the rows forever without
    advancing time.

    Args:
        X: inputs at time 0, ``(n, ...)``.
        Y: targets at time 0, ``(n, ...)``.
        time_x_func: drift of the inputs ``f(X, t)``, applied to a block of rows.
        time_y_func: drift of the targets ``g(Y, t)``, applied to a block of rows.
        dt: time between steps (a finite number).
        nsteps: number of time steps (>= 1).

    Raises:
        ValueError: ``X`` and ``Y`` differ in rows, ``dt`` is not finite or ``nsteps`` is not
            an integer >= 1.
    """

    def __init__(
        self,
        X: torch.Tensor,
        Y: torch.Tensor,
        time_x_func: DriftFn = shift_x,
        time_y_func: DriftFn = shift_y,
        dt: float = 1.0,
        nsteps: int = 1,
    ) -> None:
        check_count("nsteps", nsteps)
        self._data = TimeDependentTensorDataset(X, Y, time_x_func, time_y_func, dt)
        self.nsteps = int(nsteps)

    @property
    def times(self) -> list[float]:
        """The time of each step."""
        return [k * self._data.dt for k in range(self.nsteps)]

    def __len__(self) -> int:
        return self.nsteps * len(self._data)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        data = self._data
        rows = slice(None)
        worker = get_worker_info()
        if worker is not None:
            rows = slice(worker.id, None, worker.num_workers)
        steps = _drift_steps(
            data.X[rows], data.Y[rows], data.time_x_func, data.time_y_func, False, self.times
        )
        for Xt, Yt in steps:
            yield from zip(Xt, Yt)


def tdds_gen(
    ds: TimeDependentTensorDataset, nsteps: int, batch_size: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Read a :class:`TimeDependentTensorDataset` over ``nsteps`` time steps, one task each.

    Yields every batch of the dataset in order at its current time, then calls ``ds.step()``;
    the first step is read at ``ds.time`` (0 for a new dataset) and the clock ends ``nsteps``
    steps later.

    Args:
        ds: the drifting dataset.
        nsteps: number of time steps (>= 1).
        batch_size: rows per batch (the whole dataset, one batch per step, if None).

    Raises:
        ValueError: ``nsteps`` or ``batch_size`` is not an integer >= 1.
        TypeError: ``ds`` is not a :class:`TimeDependentTensorDataset`.
    """
    if not isinstance(ds, TimeDependentTensorDataset):
        raise TypeError(f"ds must be a TimeDependentTensorDataset, got {type(ds).__name__}")
    check_count("nsteps", nsteps)
    check_count("batch_size", batch_size, none_ok=True)
    return _dataset_steps(ds, int(nsteps), len(ds) if batch_size is None else int(batch_size))


def _dataset_steps(
    ds: TimeDependentTensorDataset, nsteps: int, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The generator behind :func:`tdds_gen` (arguments already checked)."""
    for _ in range(nsteps):
        yield from DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)
        ds.step()


def tdds_arrays(ds: TimeDependentTensorDataset, nsteps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`tdds_gen` with whole-dataset batches stacked into ``(nsteps, npoints, d)`` tensors
    (advances ``ds`` by ``nsteps`` steps)."""
    pairs = list(tdds_gen(ds, nsteps))
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def drifting_clusters(
    n_steps: int = 10,
    npoints: int = 400,
    *,
    label_kind: str = "all",
    scale: float = 0.04,
    dt: float = 0.5,
    task: str = "classification",
    test_fraction: float = 0.25,
    random_state: Any = None,
) -> Scenario:
    """The drifting toy clusters as a stream: one experience per time step.

    Args:
        n_steps: number of time steps (experiences).
        npoints: points per step (a multiple of 8).
        label_kind: see :func:`generate_toy8`.
        scale: cluster standard deviation.
        dt: time between steps.
        task: ``"classification"`` (inputs drift, the cluster label stays; domain-incremental)
            or ``"regression"`` (targets are the drifting 8-dim intensities).
        test_fraction: fraction of each step held out for testing.
        random_state: seed.
    """
    if task not in ("classification", "regression"):
        raise ValueError(
            f"task={task!r} is not understood; expected 'classification' or 'regression'"
        )
    check_count("n_steps", n_steps)
    check_count("npoints", npoints)
    check_number("test_fraction", test_fraction, upper=1.0)  # "0.2" failed in a comparison
    if not 0.0 <= test_fraction < 1.0 or int(round(test_fraction * npoints)) >= npoints:
        raise ValueError(
            f"test_fraction must be in [0, 1) and leave training points, got {test_fraction}"
        )
    gen = blockops.make_generator(random_state)
    train, test = [], []
    for k in range(n_steps):
        X, Y = generate_toy8(label_kind, npoints, scale, random_state=gen)
        t = k * dt
        Xt, Yt = shift_x(X, t), shift_y(Y, t)
        target = Y.argmax(1) if task == "classification" else Yt
        perm = torch.randperm(npoints, generator=gen)
        n_test = int(round(test_fraction * npoints))
        te, tr = perm[:n_test], perm[n_test:]
        classes = tuple(sorted(set(_LABEL_MAPS[label_kind]))) if task == "classification" else None
        train.append(Experience(TensorDataset(Xt[tr], target[tr]), k, classes))
        test.append(Experience(TensorDataset(Xt[te], target[te]), k, classes))
    # the labels are 0..max of the map ("some": 0..3), not always the 8 clusters
    n_classes = max(_LABEL_MAPS[label_kind]) + 1 if task == "classification" else None
    return Scenario(train, test, n_classes, f"drifting clusters ({task}), {n_steps} steps")
