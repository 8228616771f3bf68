"""The one-call API: ``solve_subspaces``, ``combined_loss``, ``solve_dims`` and ``Space``."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import blockops
import torch
from torch import Tensor

from . import util
from .__about__ import __version__
from ._checks import numeric_tensor
from ._find_subspaces import _unit, bases_from_moments, decoders_from_moments
from ._stats import Moments, check_targets
from .data import pool
from .loss import alignment_loss, disentanglement_loss, isotropy_loss, stability_loss
from .optim import k_per_q, optimal_bins

LOSS_TERMS = ("alignment", "disentanglement", "isotropy", "stability")

PARTITIONED_WEIGHTS = MappingProxyType(
    {"alignment": 1.0, "disentanglement": 0.0, "isotropy": 0.0, "stability": 0.0}
)
"""Loss weights recommended with ``method="joint"`` subspaces (with ``normalize=True``): once
the subspaces are mutually orthogonal the alignment term alone does the partitioning."""


@dataclass(eq=False)
class Space:
    """Result of :func:`solve_subspaces`: per-quantity bases, decoders and target directions.

    Attributes:
        W: ``{q: (k_q, D)}`` orthonormal rows spanning quantity ``q``'s latent subspace.
        A: ``{q: (k_q, P_q)}`` least-squares decoders, ``Y_hat = (Z - Z_fit.mean(0)) @ W.T @ A
            + Y_fit.mean(0)`` with the means of the data it was solved on (not stored).
        V: ``{q: (P_q,)}`` top target-space direction (the 0.1.0 value; see
            :func:`spacelearn.principal_directions`).
        method: the solve that produced ``W``.

    ``space[q]`` is the triple ``(W[q], A[q], V[q])``, in that order. ``keys()``, ``values()``
    and ``items()`` return lists, as in 0.1.0. :meth:`save` / :meth:`load` persist it.
    """

    W: dict[str, Tensor]
    A: dict[str, Tensor]
    V: dict[str, Tensor]
    method: str = field(default="independent", kw_only=True)
    _names: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not (set(self.W) == set(self.A) == set(self.V)):
            raise ValueError(
                "W, A and V must have the same quantities, got "
                f"{sorted(map(str, self.W))}, {sorted(map(str, self.A))}, {sorted(map(str, self.V))}"
            )
        self._names = list(self.W)

    def __getitem__(self, q: str) -> tuple[Tensor, Tensor, Tensor]:
        return self.W[q], self.A[q], self.V[q]

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __contains__(self, q: object) -> bool:
        return q in self.W

    def keys(self) -> list[str]:
        return list(self._names)

    def values(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        return [self[q] for q in self._names]

    def items(self) -> list[tuple[str, tuple[Tensor, Tensor, Tensor]]]:
        return [(q, self[q]) for q in self._names]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Space):
            return NotImplemented
        if self._names != other._names or self.method != other.method:
            return False
        return all(
            torch.equal(a, b) for q in self._names for a, b in zip(self[q], other[q], strict=True)
        )

    __hash__ = None  # type: ignore[assignment]

    def to(self, device=None, dtype=None) -> Space:
        """A copy with every tensor moved / cast; ``space.to(torch.float64)`` casts, as
        ``Tensor.to`` and ``nn.Module.to`` do."""
        if isinstance(device, torch.dtype) and dtype is None:
            device, dtype = None, device

        def mv(d):
            return {q: t.to(device=device, dtype=dtype) for q, t in d.items()}

        return Space(W=mv(self.W), A=mv(self.A), V=mv(self.V), method=self.method)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the space to the directory ``path`` (``blockops.save_checkpoint``: safe YAML
        config with the quantity names and ``method``, plain tensors, no pickle, atomic).

        Every tensor is saved as is (dtype and values; detached, on the CPU).
        """
        config = {"model": "Space", "method": self.method, "quantities": list(self._names)}
        tensors = {
            f"{part}.{i}": getattr(self, part)[q]
            for i, q in enumerate(self._names)
            for part in ("W", "A", "V")
        }
        meta = {"package": "spacelearn", "version": __version__, "model": "Space"}
        return blockops.save_checkpoint(path, config, tensors, meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Space:
        """Read a space written by :meth:`save`, its tensors on ``device`` (``"auto"``: CUDA
        when available, else CPU).

        Raises:
            FileNotFoundError: ``path`` is not a checkpoint directory or lacks a file.
            ValueError: the checkpoint is corrupted (checksum mismatch) or is not a
                spacelearn ``Space`` (another package's checkpoint).
        """
        config, tensors, meta = blockops.load_checkpoint(path, map_location=device)
        if meta.get("package") != "spacelearn" or config.get("model") != "Space":
            raise ValueError(
                f"{str(path)!r} is not a spacelearn Space checkpoint (package="
                f"{meta.get('package')!r}, model={config.get('model')!r})"
            )
        names = config.get("quantities")
        if not isinstance(names, list) or set(tensors) != {
            f"{part}.{i}" for i in range(len(names)) for part in "WAV"
        }:
            raise ValueError(
                f"{str(path)!r}: the quantities in config.yaml do not match tensors.pt "
                f"({names!r} vs {sorted(tensors)})"
            )
        parts = {part: {q: tensors[f"{part}.{i}"] for i, q in enumerate(names)} for part in "WAV"}
        return cls(**parts, method=config.get("method", "independent"))


class SubspaceAccumulator:
    """Streaming :func:`solve_subspaces`: feed batches, solve once.

    Centred second moments (``Z^T Z``, ``Z^T Y`` per quantity) are merged in float64, blocked by
    rows, so reference sets larger than memory (or than one forward pass) can be used::

        acc = SubspaceAccumulator()
        with torch.no_grad():
            for x, y in loader:
                acc.update(model(x), y)
        space = acc.solve(k=K, method="joint")

    Args:
        device: where the moments live (``None``: the first batch's device; strings go through
            ``blockops.resolve_device``).
        block_size: rows per block inside one ``update``.
    """

    def __init__(
        self, *, device: str | torch.device | None = None, block_size: int | None = None
    ) -> None:
        self._moments = Moments(device=device, block_size=block_size)

    @property
    def n_samples(self) -> int:
        return self._moments.n

    def update(self, Z, Y: Mapping[str, Tensor]) -> SubspaceAccumulator:
        """Add a batch: latents ``(B, D)`` and targets ``{q: (B, ...)}`` (same keys each time)."""
        self._moments.update(Z, Y)
        return self

    def solve(
        self, k: int | dict[str, int] = 32, *, method: str = "independent", ridge: float = 1e-3
    ) -> Space:
        """The :class:`Space` of everything seen so far (see :func:`solve_subspaces`)."""
        mom = self._moments
        if mom.n == 0:
            raise ValueError("no batch was added; call update(Z, Y) first")
        W = bases_from_moments(mom, k, method, ridge)
        A = decoders_from_moments(mom, W)
        V = {}
        for q in mom.names:
            U, _, Vh = util.full(mom.Szy[q].to(mom.dtype), rank=1)
            w, v = U[:, 0], Vh[0]
            idx = w.abs().argmax()
            sign = torch.sign(w[idx]) if w[idx] != 0 else torch.ones((), dtype=w.dtype)
            v = v * sign
            V[q] = _unit(v).detach()
        return Space(W=W, A=A, V=V, method=method)


def solve_subspaces(
    Z: Tensor,
    Y: dict[str, Tensor],
    *,
    k: int | dict[str, int] = 32,
    method: str = "independent",
    ridge: float = 1e-3,
    device: str | torch.device | None = None,
    block_size: int | None = None,
) -> Space:
    """Solve every quantity's latent subspace and its least-squares decoder.

    Args:
        Z: latents ``(B, D)`` (detached; float64 stays float64, everything else is float32).
        Y: targets ``{q: (B, P) or (B, ...)}``, flattened.
        k: subspace size (int for all, or ``{q: k_q}``). A ``k`` larger than ``min(D, P)`` is
            reduced **with a warning** (0.1.0 reduced it silently).
        method: ``"independent"`` (0.1.0 default): each quantity's top covariance directions,
            solved separately; different quantities' subspaces typically share directions
            (max principal cosine near 1). ``"whitened"``: least-squares optimal subspace of
            each quantity (reduced-rank regression in the whitened latent metric).
            ``"joint"`` (recommended): the whitened subspaces made mutually orthogonal together
            (needs ``sum(k) <= D``), so each quantity owns its own latent directions.
        ridge: relative ridge of the whitening metric.
            It is relative to the mean latent variance ``trace(Z_c^T Z_c) / D``, so latent
            directions whose variance is far below ``ridge`` times that mean are damped out of
            the solve: standardise latents whose columns differ by orders of magnitude.
        device: where to compute, and where the returned tensors live (``"auto"``, ``"cpu"``,
            ``"cuda"``, ...; ``None``: ``Z``'s device).
        block_size: rows per block of the moment accumulation.

    Returns:
        :class:`Space` with ``W``, ``A`` and ``V`` (target-space direction, as in 0.1.0).
    """
    check_targets(Y, "Y")
    acc = SubspaceAccumulator(device=device, block_size=block_size)
    acc.update(Z, Y)
    return acc.solve(k, method=method, ridge=ridge)


def _weights(weights) -> dict[str, float]:
    out = dict.fromkeys(LOSS_TERMS, 1.0)
    if weights is None:
        return out
    if not isinstance(weights, Mapping):
        raise TypeError(
            f"weights must be a dict {{term: weight}} over {LOSS_TERMS} or None, got "
            f"{type(weights).__name__}"
        )
    unknown = set(weights) - set(LOSS_TERMS)
    if unknown:
        raise ValueError(f"unknown loss terms {sorted(unknown)} in weights; expected {LOSS_TERMS}")
    for term, value in weights.items():
        try:
            weight = math.nan if isinstance(value, bool) else float(value)
        except (TypeError, ValueError):  # a string, None: reported below, naming the term
            weight = math.nan
        if not math.isfinite(weight) or weight < 0:  # a negative weight maximises its term
            raise ValueError(f"weights[{term!r}] must be a finite number >= 0, got {value!r}")
        out[term] = weight
    return out


def combined_loss(
    Z: Tensor,
    W: dict[str, Tensor],
    A: dict[str, Tensor],
    Y: dict[str, Tensor],
    W_prev: dict[str, Tensor] | None,
    *,
    n_dir: int = 32,
    weights: Mapping[str, float] | None = None,
    normalize: bool = False,
) -> Tensor:
    """Weighted sum of the four SPACE terms (unweighted by default, as in 0.1.0).

    Args:
        Z: latents ``(B, D)``; see :func:`spacelearn.loss.alignment_loss`.
        W: per-quantity bases; see :func:`spacelearn.loss.alignment_loss`.
        A: per-quantity decoders; see :func:`spacelearn.loss.alignment_loss`.
        Y: targets ``{q: (B, ...)}``; see :func:`spacelearn.loss.alignment_loss`.
        W_prev: previous bases for the stability term, or ``None``.
        n_dir: number of leading residual singular values of the isotropy term (reduced, with
            a warning, to the residual dimension).
        weights: ``{term: weight}`` over ``"alignment"``, ``"disentanglement"``, ``"isotropy"``,
            ``"stability"`` (finite, >= 0); unnamed terms keep weight 1, a zero weight skips
            the term. With
            ``method="joint"`` subspaces use :data:`PARTITIONED_WEIGHTS` and ``normalize=True``.
        normalize: scale-free alignment (each quantity's error over its target variance,
            floored relative to the target's scale; see :func:`spacelearn.loss.alignment_loss`).
    """
    w = _weights(weights)
    total = (Z * 0).sum()
    if w["alignment"]:
        total = total + w["alignment"] * alignment_loss(Z, W, A, Y, normalize=normalize)
    if w["disentanglement"]:
        total = total + w["disentanglement"] * disentanglement_loss(Z, W)
    if w["isotropy"]:
        total = total + w["isotropy"] * isotropy_loss(Z, W, n_dir)
    if w["stability"]:
        total = total + w["stability"] * stability_loss(W, W_prev).to(total)
    return total


def solve_dims(
    Y: dict[str, Tensor],
    max_bins: int,
    bin_thresholds: float | dict[str, float],
    k_thresholds: float | dict[str, float],
    *,
    bin_default_threshold: float | None = None,
    k_default_threshold: float | None = None,
    pooling_mode: str = "avg",
    pool_per_quantity: bool = False,
    k_per_quantity: bool = False,
) -> dict[str, tuple[int, int]]:
    """Pooling side ``n`` and subspace size ``k`` per quantity from raw targets.

    Runs :func:`spacelearn.optim.optimal_bins` on the raw ``Y`` (``(B, C, H, W)`` or
    ``(B, S)``), pools each quantity to ``n`` with ``pooling_mode``, then
    :func:`spacelearn.optim.k_per_q` on the pooled targets. Spectra are exact in every solver
    mode (0.1.0 capped ``n <= 3`` and ``k <= 6`` on large inputs in ``"auto"`` mode).

    Returns:
        ``{q: (n_q, k_q)}``; a shared ``n`` or ``k`` is repeated for every quantity.

    Raises:
        ValueError: a ``Y[q]`` that is not ``(B, C, H, W)`` or ``(B, S)`` (it cannot be pooled),
            naming the quantity, before any spectrum is computed.
    """
    check_targets(Y, "Y")
    for q, y in Y.items():
        shape = tuple(numeric_tensor(y, f"Y[{q!r}]").shape)
        if len(shape) not in (2, 4):
            raise ValueError(
                f"Y[{q!r}] must be (B, C, H, W) or (B, S) to be pooled, got shape {shape}"
            )
    n = optimal_bins(
        Y,
        max_bins,
        bin_thresholds,
        default_threshold=bin_default_threshold,
        per_quantity=pool_per_quantity,
    )
    pooled = {q: pool(y, n[q] if isinstance(n, dict) else n, pooling_mode) for q, y in Y.items()}
    k = k_per_q(
        pooled, k_thresholds, default_threshold=k_default_threshold, per_quantity=k_per_quantity
    )
    return {q: (n[q] if isinstance(n, dict) else n, k[q] if isinstance(k, dict) else k) for q in Y}


__all__ = [
    "PARTITIONED_WEIGHTS",
    "Space",
    "SubspaceAccumulator",
    "combined_loss",
    "solve_dims",
    "solve_subspaces",
]
