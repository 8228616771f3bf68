"""Model parameters: their checks, the shipped presets and the one place they are resolved.

Resolution order for every model parameter: the constructor value when it is not ``None``, else
the value in the preset (a shipped YAML or the user's YAML file), else the hard default below.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

PRESET_NAMES = ("auto", "fscil", "balanced_kshot", "imbalanced_kshot", "extreme_lowshot")


@dataclass(frozen=True)
class Spec:
    """How one model parameter is checked: kind, bounds and accepted choices."""

    kind: str  # "int" | "float" | "bool" | "choice"
    default: Any
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low bound excluded (strictly greater)
    choices: tuple[str, ...] = ()
    optional: bool = False  # None is a valid resolved value
    doc: str = ""


SPECS: dict[str, Spec] = {
    # generation (the explosion analogy)
    "num_points": Spec("int", 48, 1, doc="synthetic points per class per growth iteration"),
    "total_energy": Spec("float", 0.5, 0, low_open=True, doc="mean energy per fragment"),
    "mass": Spec("float", 1.0, 0, low_open=True, doc="fragment mass (speed, deflection)"),
    "explosion_time": Spec("float", 1.0, 0, low_open=True, doc="flight time (distance, noise)"),
    "noise_scale": Spec("float", 0.05, 0, doc="diffusion noise, in radius units"),
    "noise_decay": Spec("float", 1.0, 0, low_open=True, doc="noise factor per iteration"),
    "dirichlet_alpha": Spec("float", 1.0, 0, low_open=True, doc="energy split concentration"),
    "dynamic_energy": Spec("bool", True, doc="distances in the class radius (else global)"),
    # radius / shells
    "adaptive_radius_mode": Spec("choice", "local", choices=("local", "global", "fixed")),
    "fixed_radius": Spec("float", None, 0, low_open=True, optional=True),
    "use_radius_clip": Spec("bool", True),
    "shell_ratio": Spec("float", 0.3, 0, 1),
    "shell_jitter": Spec("float", 0.1, 0),
    # geometry / rivalry
    "local_k": Spec("int", 5, 1),
    "anisotropy": Spec("float", 2.0, 0),
    "deflect_rival": Spec("bool", True),
    "deflect_strength": Spec("float", 0.25, 0),
    "momentum_conserve": Spec("bool", True),
    "seed_mode": Spec("choice", "per_sample", choices=("per_sample", "centroid")),
    # trend-path voting
    "path_steps": Spec("int", 1, 0),
    "path_step_size": Spec("float", 0.3, 0, 1, low_open=True),
    "path_k": Spec("int", 15, 1),
    "path_gamma": Spec("float", 0.4, 0, low_open=True),
    "step_weight_mode": Spec("choice", "early", choices=("early", "late", "none")),
    "step_gamma": Spec("float", 0.5, 0, 1, low_open=True),
    "real_weight": Spec("float", 1.0, 0, low_open=True),
    # scheduling / stability
    "points_schedule": Spec("choice", "inv_size", choices=("inv_size", "sqrt_inv_size", "uniform")),
    "energy_schedule": Spec("choice", "uniform", choices=("inv_size", "sqrt_inv_size", "uniform")),
    "num_iters": Spec("int", 2, 1),
    "energy_decay": Spec("float", 0.8, 0, low_open=True),
    "radius_growth": Spec("float", 1.1, 0, low_open=True),
    "governor": Spec("bool", True),
    "max_samples": Spec("int", None, 1, optional=True),
    "random_state": Spec("int", None, 0, optional=True),
}

#: parameters that describe the environment, never written to or read from a preset file
ENV_PARAMS = ("platform", "torch_q_block", "torch_db_block")


def check_value(name: str, value: Any, *, source: str = "parameter") -> Any:
    """Validate one resolved model parameter; returns it normalised (int/float/bool/str)."""
    spec = SPECS[name]
    where = f"{source} {name}"
    if value is None:
        if spec.optional:
            return None
        raise ValueError(f"{where} must not be None")
    if spec.kind == "bool":
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise TypeError(f"{where} must be True or False, got {value!r}")
    if spec.kind == "choice":
        if isinstance(value, str) and value in spec.choices:
            return value
        raise ValueError(f"{where} must be one of {list(spec.choices)}, got {value!r}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where} must be a number, got {type(value).__name__} {value!r}")
    if spec.kind == "int":
        if not isinstance(value, numbers.Integral):
            if float(value).is_integer():
                value = int(value)
            else:
                raise TypeError(f"{where} must be an integer, got {value!r}")
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{where} must be finite, got {value!r}")
    if spec.low is not None:
        if (spec.low_open and value <= spec.low) or value < spec.low:
            bound = f"> {spec.low:g}" if spec.low_open else f">= {spec.low:g}"
            raise ValueError(f"{where} must be {bound}, got {value!r}")
    if spec.high is not None and value > spec.high:
        raise ValueError(f"{where} must be <= {spec.high:g}, got {value!r}")
    return value


def _package_preset(name: str) -> dict[str, Any]:
    text = resources.files("egm_core").joinpath("presets", f"{name}.yaml").read_text("utf-8")
    return _parse(yaml.safe_load(text), f"preset {name!r}")


def _parse(data: Any, source: str) -> dict[str, Any]:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{source} must hold a mapping of parameter names to values")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "_meta":
            continue
        if key in ENV_PARAMS or key == "preset":
            continue
        if key not in SPECS:
            raise ValueError(f"{source} has unknown parameter {key!r}; known: {sorted(SPECS)}")
        out[key] = check_value(key, value, source=source)
    return out


def dataset_stats(counts: np.ndarray) -> dict[str, Any]:
    """Statistics of the training label counts that ``preset="auto"`` reads."""
    counts = np.asarray(counts, dtype=np.int64)
    return {
        "n_samples": int(counts.sum()),
        "n_classes": int(counts.size),
        "min_per_class": int(counts.min()),
        "max_per_class": int(counts.max()),
        "mean_per_class": float(counts.mean()),
        "imbalance_ratio": float(counts.max() / max(counts.min(), 1)),
    }


def auto_preset(counts: np.ndarray) -> str:
    """The shipped preset ``"auto"`` picks for these per-class training counts.

    ``extreme_lowshot`` when some class has at most 2 rows, else ``imbalanced_kshot`` when the
    largest class is at least 3 times the smallest, else ``balanced_kshot``.
    """
    stats = dataset_stats(counts)
    if stats["min_per_class"] <= 2:
        return "extreme_lowshot"
    if stats["imbalance_ratio"] >= 3.0:
        return "imbalanced_kshot"
    return "balanced_kshot"


def _is_file(name: str) -> bool:
    """Whether ``name`` names an existing file; a string no path can be (too long, an unknown
    ``~user``) is not one, so it is reported as an unknown preset name."""
    try:
        return Path(name).expanduser().is_file()
    except (OSError, RuntimeError):
        return False


def resolve(preset: Any, user: dict[str, Any], counts: np.ndarray) -> tuple[dict[str, Any], str]:
    """Resolve every model parameter: user value, then preset, then default.

    Args:
        preset: a shipped preset name, ``None`` (same as ``"auto"``) or a path to a YAML file
            (an ``os.PathLike``, an existing file, or a string ending in ``.yaml``/``.yml`` or
            holding a ``/``; relative paths are taken from the current working directory).
        user: constructor values (``None`` means "not given").
        counts: training rows per class, read by ``"auto"``.

    Returns:
        ``(params, preset_resolved)``; ``preset_resolved`` is the shipped name or the file path.

    Raises:
        ValueError: unknown preset name, a preset file that is not valid YAML, or a bad value
            in it.
        FileNotFoundError: a preset path that does not exist.
    """
    if preset is None:
        preset = "auto"
    is_path = isinstance(preset, os.PathLike)  # a Path is a file whatever its name
    if is_path:
        preset = os.fspath(preset)
    if not isinstance(preset, str):
        raise TypeError(f"preset must be a preset name or a YAML path, got {type(preset).__name__}")
    if preset in PRESET_NAMES and not is_path:
        resolved = auto_preset(counts) if preset == "auto" else preset
        values = _package_preset(resolved)
    elif (
        is_path
        or preset.endswith((".yaml", ".yml"))
        or os.sep in preset
        or "/" in preset
        or _is_file(preset)
    ):
        path = Path(preset).expanduser()
        if not path.is_absolute():
            path = Path.cwd() / path
        if not path.is_file():
            raise FileNotFoundError(f"preset file {str(path)!r} does not exist")
        with open(path, encoding="utf-8") as fh:
            try:
                data = yaml.safe_load(fh)
            except yaml.YAMLError as exc:
                raise ValueError(f"preset file {str(path)!r} is not valid YAML: {exc}") from exc
        values = _parse(data, f"preset file {str(path)!r}")
        resolved = str(path)
    else:
        raise ValueError(
            f"preset must be one of {list(PRESET_NAMES)} or a path to a .yaml file, got {preset!r}"
        )
    params: dict[str, Any] = {}
    for name, spec in SPECS.items():
        value = user.get(name)
        if value is not None:
            params[name] = check_value(name, value)
        elif name in values:
            params[name] = values[name]
        else:
            params[name] = spec.default
    if params["adaptive_radius_mode"] == "fixed" and params["fixed_radius"] is None:
        raise ValueError("adaptive_radius_mode='fixed' needs fixed_radius (a positive number)")
    if params["adaptive_radius_mode"] != "fixed" and params["fixed_radius"] is not None:
        warnings.warn(
            f"fixed_radius={params['fixed_radius']!r} is ignored: adaptive_radius_mode is "
            f"{params['adaptive_radius_mode']!r}; pass adaptive_radius_mode='fixed' to use it",
            stacklevel=4,
        )
    return params, resolved
