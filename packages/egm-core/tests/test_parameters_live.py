"""No dead parameter: changing any model parameter changes the bank or the predictions."""

import numpy as np
import pytest
import torch
from egm_core import PyEGM, _config

BASE = dict(num_points=8, num_iters=2, path_steps=2, platform="cpu", random_state=3)

# parameter -> (value a, value b, extra settings that make it matter)
CASES = {
    "num_points": (4, 8, {}),
    "total_energy": (0.2, 0.4, {}),
    "mass": (1.0, 2.0, {}),
    "explosion_time": (0.5, 1.0, {}),
    "noise_scale": (0.0, 0.3, {}),
    "noise_decay": (1.0, 0.5, {"noise_scale": 0.3}),
    "dirichlet_alpha": (0.5, 5.0, {}),
    "dynamic_energy": (True, False, {}),
    "adaptive_radius_mode": ("local", "global", {}),
    "fixed_radius": (0.5, 1.5, {"adaptive_radius_mode": "fixed"}),
    "use_radius_clip": (True, False, {"total_energy": 3.0}),
    "shell_ratio": (0.0, 0.6, {}),
    "shell_jitter": (0.0, 0.3, {}),
    "local_k": (3, 6, {}),
    "anisotropy": (0.0, 2.0, {}),
    "deflect_rival": (True, False, {"deflect_strength": 1.0}),
    "deflect_strength": (0.1, 1.0, {}),
    "momentum_conserve": (True, False, {}),
    "seed_mode": ("per_sample", "centroid", {}),
    "path_steps": (0, 3, {}),
    "path_step_size": (0.2, 0.8, {}),
    "path_k": (5, 15, {}),
    "path_gamma": (0.3, 1.0, {}),
    "step_weight_mode": ("early", "none", {}),
    "step_gamma": (0.3, 0.9, {}),
    "real_weight": (0.5, 3.0, {}),
    "points_schedule": ("inv_size", "uniform", {}),
    "energy_schedule": ("uniform", "inv_size", {}),
    "num_iters": (1, 3, {}),
    "energy_decay": (1.0, 0.5, {}),
    "radius_growth": (1.0, 1.5, {"total_energy": 3.0}),
    "governor": (True, False, {"total_energy": 2.0, "use_radius_clip": False}),
    "max_samples": (None, 60, {}),
    "random_state": (1, 2, {}),
}


def test_every_parameter_is_covered():
    assert set(CASES) == set(_config.SPECS)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    parts, labels = [], []
    for i, (n, spread) in enumerate([(30, 1.0), (12, 0.6), (5, 1.6)]):
        parts.append(np.array([1.5 * i, -i, 0.5 * i, 0, 0]) + spread * rng.normal(size=(n, 5)))
        labels.append(np.full(n, i))
    X = np.concatenate(parts).astype(np.float32)
    Q = rng.normal(size=(40, 5)).astype(np.float32) * 1.5
    return X, np.concatenate(labels), Q


def _fingerprint(model, Q):
    return model.bank_X_.double(), torch.as_tensor(model.predict_proba(Q))


@pytest.mark.parametrize("name", sorted(CASES))
def test_parameter_changes_the_model(name, data):
    X, y, Q = data
    a, b, extra = CASES[name]
    settings = {**BASE, **extra}
    m1 = PyEGM(**{**settings, name: a}).fit(X, y)
    m2 = PyEGM(**{**settings, name: b}).fit(X, y)
    (b1, p1), (b2, p2) = _fingerprint(m1, Q), _fingerprint(m2, Q)
    same_bank = b1.shape == b2.shape and torch.allclose(b1, b2, atol=1e-6)
    same_pred = torch.allclose(p1, p2, atol=1e-6)
    assert not (same_bank and same_pred), f"{name}={a!r} and {name}={b!r} give the same model"
