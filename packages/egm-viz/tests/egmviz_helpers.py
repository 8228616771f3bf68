"""Helpers of the egm-viz tests: data, model snapshots and checks on rendered files."""

from __future__ import annotations

import copy

import numpy as np
import torch
from PIL import Image


def blobs(n_per_class=20, n_classes=3, d=5, seed=0, labels=None):
    """Well separated Gaussian blobs: X float32 (n, d), y labels (codes or ``labels[code]``)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 4.0, (n_classes, d))
    X = np.concatenate([rng.normal(c, 1.0, (n_per_class, d)) for c in centres]).astype(np.float32)
    codes = np.repeat(np.arange(n_classes), n_per_class)
    y = codes if labels is None else np.asarray(labels)[codes]
    return X, y


def snapshot(model):
    """Deep copy of every attribute of ``model`` (tensors cloned, arrays copied)."""
    out = {}
    for key, value in vars(model).items():
        if isinstance(value, torch.Tensor):
            out[key] = value.detach().clone()
        elif isinstance(value, torch.Generator):
            out[key] = value.get_state().clone()
        else:
            try:
                out[key] = copy.deepcopy(value)
            except Exception:  # objects that cannot be copied are compared by identity
                out[key] = value
    return out


def assert_same_state(before, model):
    after = snapshot(model)
    assert set(after) == set(before), "attributes were added or removed"
    for key, old in before.items():
        new = after[key]
        if isinstance(old, torch.Tensor):
            assert old.dtype == new.dtype and old.shape == new.shape, key
            assert torch.equal(old, new), f"{key} changed"
        elif isinstance(old, np.ndarray):
            np.testing.assert_array_equal(old, new, err_msg=key)
        else:
            assert _equal(old, new), f"{key} changed"


def _equal(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, z) for x, z in zip(a, b))
    if isinstance(a, np.random.Generator):
        return _equal(a.bit_generator.state, b.bit_generator.state)
    if isinstance(a, torch.Generator):
        return torch.equal(a.get_state(), b.get_state())
    if hasattr(a, "__dict__") and type(a) is type(b) and not isinstance(a, type):
        return _equal(vars(a), vars(b))
    try:
        return bool(a == b)
    except Exception:
        return a is b


def load_rgb(path):
    """(h, w, 3) uint8 pixels of a PNG/GIF frame file."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def non_background_fraction(rgb):
    """Share of pixels that are not (near) white."""
    return float((rgb.astype(int).sum(axis=2) < 3 * 245).mean())


def colour_pixels(rgb, rgba, tol=6):
    """Number of pixels within ``tol`` of the colour ``rgba`` (floats in [0, 1])."""
    target = np.round(np.asarray(rgba[:3]) * 255).astype(int)
    return int((np.abs(rgb.astype(int) - target).max(axis=2) <= tol).sum())


def gif_frames(path):
    """All frames of a GIF as (h, w, 3) uint8 arrays."""
    frames = []
    with Image.open(path) as im:
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB")))
    return frames
