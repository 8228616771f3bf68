"""Seeding: one ``random_state`` argument to a ``torch.Generator``."""

from __future__ import annotations

import numbers

import numpy as np
import torch

from .device import resolve_device

RandomState = int | None | np.random.Generator | np.random.RandomState | torch.Generator


def _indexed(device: torch.device) -> torch.device:
    """``device`` with the current CUDA index filled in (a bare ``"cuda"``)."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def make_generator(
    random_state: RandomState = None, device: str | torch.device = "cpu"
) -> torch.Generator:
    """Return a ``torch.Generator`` on ``device`` seeded from ``random_state``.

    Args:
        random_state: ``None`` (fresh entropy), a non-negative int, a numpy ``Generator`` or
            ``RandomState`` (scikit-learn's; a seed is drawn from it) or a ``torch.Generator``
            (returned as is when it lives on ``device``, index included, else re-seeded from it).
        device: device of the generator (``"auto"``: CUDA when available, else CPU).
    """
    requested = device
    if isinstance(device, str) and device.strip().lower() == "auto":
        device = resolve_device(device, name="device")
    try:
        device = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device={device!r} is not understood; expected 'auto', 'cpu', 'cuda', 'cuda:N' "
            "or a torch.device"
        ) from exc
    if isinstance(random_state, torch.Generator):
        same_type = random_state.device.type == device.type
        if same_type and _indexed(random_state.device) == _indexed(device):
            return random_state
        # draw on the generator's own device: a CUDA generator cannot drive a CPU draw
        seed = int(
            torch.randint(0, 2**62, (1,), generator=random_state, device=random_state.device).item()
        )
    elif random_state is None:
        seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 2)
    elif isinstance(random_state, np.random.Generator):
        seed = int(random_state.integers(0, 2**62))
    elif isinstance(random_state, np.random.RandomState):
        seed = int(random_state.randint(0, 2**62, dtype=np.int64))
    elif isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if not 0 <= random_state < 2**64:
            raise ValueError(f"random_state must be an int in [0, 2**64), got {random_state}")
        seed = int(random_state)
    else:
        raise TypeError(
            "random_state must be None, an int, a numpy Generator or RandomState, or a "
            f"torch.Generator, got {type(random_state).__name__}"
        )
    if device.type == "cuda":  # a clear ValueError where there is no CUDA (or not that index)
        device = resolve_device(requested, name="device")
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen
