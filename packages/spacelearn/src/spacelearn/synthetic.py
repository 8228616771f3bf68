"""Synthetic 2-D fields and derived quantities, for examples, tests and benchmarks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from blockops import make_generator
from torch import Tensor

from ._checks import check_int, check_real


def _pair(width) -> tuple:
    try:
        lo, hi = width
    except (TypeError, ValueError):
        raise ValueError(f"width must be a pair (low, high), got {width!r}") from None
    return lo, hi


def _gaussian_kernel(sigma: float, dtype: torch.dtype) -> Tensor:
    radius = max(int(3 * sigma), 1)
    x = torch.arange(-radius, radius + 1, dtype=dtype)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def blur(fields: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``(B, 1, H, W)`` fields (reflect padding).

    Raises:
        ValueError: ``fields`` is not ``(B, 1, H, W)``, ``sigma`` is not a finite number
            ``> 0``, or the kernel radius ``max(int(3 * sigma), 1)`` is not below ``H`` and
            ``W`` (reflect padding needs it).
    """
    if not isinstance(fields, Tensor) or fields.ndim != 4 or fields.shape[1] != 1:
        shape = tuple(fields.shape) if isinstance(fields, Tensor) else type(fields).__name__
        raise ValueError(f"fields must be a (B, 1, H, W) tensor, got {shape}")
    try:
        positive = check_real(sigma, "sigma") > 0  # a zero width divides by zero: NaN fields
    except ValueError:
        positive = False
    if not positive:
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
    g = _gaussian_kernel(sigma, fields.dtype).to(fields.device)
    r = g.numel() // 2
    if r >= min(fields.shape[-2:]):
        raise ValueError(
            f"sigma={sigma!r} gives a kernel radius {r} that is not below the field size "
            f"{tuple(fields.shape[-2:])}; use a smaller sigma"
        )
    x = F.pad(fields, (r, r, 0, 0), mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, r, r), mode="reflect")
    return F.conv2d(x, g.view(1, 1, -1, 1))


def gradients(fields: Tensor) -> tuple[Tensor, Tensor]:
    """Central-difference spatial gradients ``(d/dx, d/dy)`` of ``(B, 1, H, W)`` fields."""
    gy, gx = torch.gradient(fields, dim=(2, 3))
    return gx, gy


def smooth_fields(
    n: int,
    size: int = 64,
    *,
    n_sources: int = 6,
    width: tuple[float, float] = (0.06, 0.18),
    noise: float = 0.0,
    random_state: int | None | torch.Generator = 0,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Random smooth fields (sums of Gaussian sources) and four quantities derived from them.

    Args:
        n: number of fields (``>= 0``).
        size: side of the square grid (``>= 2``).
        n_sources: Gaussian sources per field (random position, width, signed amplitude).
        width: range of source widths as a fraction of ``size``.
        noise: standard deviation of white noise added to the returned *input* fields (the
            quantities are computed from the clean field).
        random_state: seed (int, None, numpy or torch generator; see ``blockops.make_generator``).
        dtype: a floating-point dtype.

    Raises:
        ValueError: naming the argument, for a non-integer ``n`` / ``size`` / ``n_sources``,
            ``size < 2``, a negative or non-finite ``noise``, or ``width`` not ``0 < low <= high``.
        TypeError: a non-floating ``dtype``.

    Returns:
        ``(fields (n, 1, size, size), {"grad_x", "grad_y", "smooth", "energy"})``, every quantity
        ``(n, 1, size, size)``: the two spatial gradients, the field blurred with ``sigma =
        size / 16``, and the gradient energy ``|grad f|^2`` (nonlinear).
    """
    n = check_int(n, "n", low=0)
    size = check_int(size, "size", low=2)  # central differences need two points per side
    n_sources = check_int(n_sources, "n_sources")
    noise = check_real(noise, "noise")
    lo, hi = (check_real(v, "width") for v in _pair(width))
    if not 0 < lo <= hi:
        raise ValueError(f"width must be (low, high) with 0 < low <= high, got {width!r}")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    gen = make_generator(random_state)
    coords = (torch.arange(size, dtype=dtype) + 0.5) / size
    cx = torch.rand(n, n_sources, 1, 1, generator=gen, dtype=dtype)
    cy = torch.rand(n, n_sources, 1, 1, generator=gen, dtype=dtype)
    sig = lo + (hi - lo) * torch.rand(n, n_sources, 1, 1, generator=gen, dtype=dtype)
    amp = torch.randn(n, n_sources, 1, 1, generator=gen, dtype=dtype)
    dx = coords.view(1, 1, 1, -1) - cx
    dy = coords.view(1, 1, -1, 1) - cy
    clean = (amp * torch.exp(-(dx**2 + dy**2) / (2 * sig**2))).sum(1, keepdim=True)
    gx, gy = gradients(clean)
    gx, gy = gx * size, gy * size
    quantities = {
        "grad_x": gx,
        "grad_y": gy,
        "smooth": blur(clean, size / 16),
        "energy": gx**2 + gy**2,
    }
    fields = clean
    if noise > 0:
        fields = clean + noise * torch.randn(clean.shape, generator=gen, dtype=dtype)
    return fields, quantities


__all__ = ["blur", "gradients", "smooth_fields"]
