"""Streaming centred second moments of a latent batch and its targets (float64, blocked)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from blockops import as_tensor, resolve_device
from torch import Tensor

from ._checks import check_int, numeric_tensor

DEFAULT_BLOCK = 4096


def working_dtype(Z) -> torch.dtype:
    """float64 for float64 latents (tensors or numpy arrays), float32 otherwise (the package's
    dtype policy)."""
    dtype = getattr(Z, "dtype", None)
    # a numpy dtype compares equal to its name; a torch dtype to neither
    return torch.float64 if dtype == torch.float64 or dtype == "float64" else torch.float32


def as_latent(Z, *, name: str = "Z", device=None, dtype=None) -> Tensor:
    """Validated, detached ``(B, D)`` latent tensor (float64 kept, everything else float32)."""
    dtype = dtype or working_dtype(Z)
    return as_tensor(Z, name=name, device=device, dtype=dtype, ndim=2)


def flat_target(
    y, *, name: str, n_rows: int, device, dtype, arg: str = "Y", rows_of: str = "Z"
) -> Tensor:
    """A target as ``(B, P)``: 1-D becomes ``(B, 1)``, more dims are flattened.

    Errors name the target as ``arg[name]`` and the latents it must match as ``rows_of``.
    """
    label = f"{arg}[{name!r}]"
    y = numeric_tensor(y, label)
    if y.ndim == 0:
        raise ValueError(f"{label} must have a batch dimension, got a scalar")
    y = y.reshape(y.shape[0], -1) if y.ndim != 1 else y.reshape(-1, 1)
    y = as_tensor(y, name=label, device=device, dtype=dtype, ndim=2)
    if y.shape[0] != n_rows:
        raise ValueError(
            f"{label} has {y.shape[0]} rows but {rows_of} has {n_rows}; they must match"
        )
    return y


def check_targets(Y, name: str = "targets") -> Mapping:
    """``Y`` itself if it is a non-empty dict; errors name the argument ``name``."""
    if not isinstance(Y, Mapping):
        raise TypeError(f"{name} must be a dict {{name: tensor}}, got {type(Y).__name__}")
    if len(Y) == 0:
        raise ValueError(f"{name} is an empty dict; give at least one quantity")
    return Y


class Moments:
    """Centred sums ``Szz = Z_c^T Z_c``, ``Szy[q] = Z_c^T Y_c``, ``syy[q] = ||Y_c||_F^2``.

    Batches are merged with the pairwise (Chan et al.) update in float64, in row blocks of
    ``block_size``, so the whole data set never needs to be in memory at once.
    """

    def __init__(self, device=None, block_size: int | None = None) -> None:
        self.device = None if device is None else resolve_device(device)
        if block_size is None:
            block_size = DEFAULT_BLOCK
        self.block_size = check_int(block_size, "block_size", or_none=True)
        self.n = 0
        self.dtype: torch.dtype | None = None
        self.mean_z: Tensor | None = None
        self.Szz: Tensor | None = None
        self.mean_y: dict[str, Tensor] = {}
        self.Szy: dict[str, Tensor] = {}
        self.syy: dict[str, Tensor] = {}

    @property
    def names(self) -> list[str]:
        return list(self.Szy)

    def update(self, Z, Y, *, names: tuple[str, str] = ("Z", "Y")) -> Moments:
        """Merge a batch; ``names`` are the caller's argument names used in error messages."""
        Y = check_targets(Y, names[1])
        Z = as_latent(Z, name=names[0], device=self.device)
        if self.Szz is not None and Z.shape[1] != self.Szz.shape[0]:
            raise ValueError(
                f"Z has {Z.shape[1]} columns but earlier batches had {self.Szz.shape[0]}"
            )
        if self.n and set(Y) != set(self.Szy):
            raise ValueError(
                f"targets {sorted(map(str, Y))} differ from earlier batches' {sorted(map(str, self.Szy))}"
            )
        ys = {
            q: flat_target(
                y,
                name=q,
                n_rows=Z.shape[0],
                device=Z.device,
                dtype=Z.dtype,
                arg=names[1],
                rows_of=names[0],
            )
            for q, y in Y.items()
        }
        for q, y in ys.items():  # validate everything before any state changes
            if q in self.Szy and y.shape[1] != self.Szy[q].shape[1]:
                raise ValueError(
                    f"target {q!r} has {y.shape[1]} columns but earlier batches had "
                    f"{self.Szy[q].shape[1]}"
                )
        if self.device is None:
            self.device = Z.device
        if self.dtype is None:
            self.dtype = Z.dtype
        elif Z.dtype != self.dtype and torch.float64 in (Z.dtype, self.dtype):
            self.dtype = torch.float64
        for start in range(0, Z.shape[0], self.block_size):
            stop = start + self.block_size
            self._merge(Z[start:stop], {q: y[start:stop] for q, y in ys.items()})
        return self

    def _merge(self, Z: Tensor, ys: dict[str, Tensor]) -> None:
        Z = Z.to(torch.float64)
        nb = Z.shape[0]
        mz = Z.mean(0)
        Zc = Z - mz
        if self.n == 0:
            self.mean_z = mz
            self.Szz = Zc.mT @ Zc
            for q, y in ys.items():
                y = y.to(torch.float64)
                my = y.mean(0)
                yc = y - my
                self.mean_y[q] = my
                self.Szy[q] = Zc.mT @ yc
                self.syy[q] = (yc * yc).sum()
            self.n = nb
            return
        n = self.n
        total = n + nb
        scale = n * nb / total
        dz = mz - self.mean_z
        self.Szz = self.Szz + Zc.mT @ Zc + scale * torch.outer(dz, dz)
        self.mean_z = self.mean_z + dz * (nb / total)
        for q, y in ys.items():
            y = y.to(torch.float64)
            my = y.mean(0)
            yc = y - my
            dy = my - self.mean_y[q]
            self.Szy[q] = self.Szy[q] + Zc.mT @ yc + scale * torch.outer(dz, dy)
            self.syy[q] = self.syy[q] + (yc * yc).sum() + scale * (dy * dy).sum()
            self.mean_y[q] = self.mean_y[q] + dy * (nb / total)
        self.n = total


def moments(
    Z, Y, *, device=None, block_size: int | None = None, names: tuple[str, str] = ("Z", "Y")
) -> Moments:
    """One-shot :class:`Moments` of a latent batch and its targets."""
    return Moments(device=device, block_size=block_size).update(Z, Y, names=names)
