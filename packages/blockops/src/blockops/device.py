"""Device selection."""

from __future__ import annotations

import torch


def resolve_device(
    platform: str | torch.device | None = "auto", *, name: str = "platform"
) -> torch.device:
    """Turn a platform request into a ``torch.device``.

    Args:
        platform: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:N"`` or a ``torch.device``. ``None`` means ``"auto"``. ``"cuda"`` and
            ``"auto"`` on a GPU resolve to the current CUDA device with its index.
        name: argument name used in error messages.

    Raises:
        ValueError: unknown platform, or CUDA asked for where none (or not that index) exists.
    """
    if platform is None:
        platform = "auto"
    if isinstance(platform, str):
        request = platform.strip().lower()
        if request == "auto":
            request = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            device = torch.device(request)
        except RuntimeError as exc:
            raise ValueError(
                f"{name}={platform!r} is not understood; expected 'auto', 'cpu', 'cuda', "
                "'cuda:N' or a torch.device"
            ) from exc
    elif isinstance(platform, torch.device):
        device = platform
    else:
        raise TypeError(f"{name} must be a str or torch.device, got {type(platform).__name__}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{name}={platform!r} asks for CUDA but no CUDA device is available; "
                f"use {name}='cpu' or 'auto'"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"{name}={platform!r} asks for CUDA device {device.index} but only "
                f"{count} device(s) exist"
            )
        if device.index is None:
            # pin the current device now: a later torch.cuda.set_device must not move a model
            device = torch.device("cuda", torch.cuda.current_device())
    elif device.type != "cpu":
        raise ValueError(
            f"{name}={platform!r} is not supported; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
        )
    return device
