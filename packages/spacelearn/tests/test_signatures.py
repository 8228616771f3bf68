"""Code written against the published spacelearn 0.1.0 must run unchanged.

The table below is derived from the reference (every public function of 0.1.0 with its module
path, parameter names, kinds and defaults). Our functions must list the same parameters in the
same order with the same kinds and defaults; anything we add must be keyword-only with a
default (so no existing call changes meaning).
"""

import dataclasses
import importlib
import inspect

import pytest
import torch

P, K, VAR, VARKW = "positional", "keyword", "var", "varkw"
REQ = object()

PUBLISHED = [
    ("spacelearn", "principal_directions", [("z", P, REQ), ("pooled_targets", P, REQ)]),
    ("spacelearn", "subspaces", [("Z", P, REQ), ("pooled_global", P, REQ), ("k", P, REQ)]),
    ("spacelearn", "solve_subspaces", [("Z", P, REQ), ("Y", P, REQ), ("k", K, 32)]),
    (
        "spacelearn",
        "combined_loss",
        [
            ("Z", P, REQ),
            ("W", P, REQ),
            ("A", P, REQ),
            ("Y", P, REQ),
            ("W_prev", P, REQ),
            ("n_dir", K, 32),
        ],
    ),
    (
        "spacelearn",
        "solve_dims",
        [
            ("Y", P, REQ),
            ("max_bins", P, REQ),
            ("bin_thresholds", P, REQ),
            ("k_thresholds", P, REQ),
            ("bin_default_threshold", K, None),
            ("k_default_threshold", K, None),
            ("pooling_mode", K, "avg"),
            ("pool_per_quantity", K, False),
            ("k_per_quantity", K, False),
        ],
    ),
    ("spacelearn._combined", "Space", [("W", P, REQ), ("A", P, REQ), ("V", P, REQ)]),
    (
        "spacelearn.data",
        "input_to_quantity",
        [
            ("n_bins", P, REQ),
            ("mode", P, REQ),
            ("arg_functions", VAR, REQ),
            ("kwarg_functions", VARKW, REQ),
        ],
    ),
    ("spacelearn.data", "pool", [("chunks", P, REQ), ("n_bins", P, REQ), ("mode", P, "avg")]),
    (
        "spacelearn.data",
        "ensure_dim",
        [("func", P, None), ("dims", K, REQ), ("targets", K, None)],
    ),
    (
        "spacelearn.data",
        "to_device",
        [("func", P, None), ("device", K, "cpu"), ("targets", K, None)],
    ),
    (
        "spacelearn.data._compute_Q",
        "compute_Q",
        [("arg_functions", VAR, REQ), ("kwarg_functions", VARKW, REQ)],
    ),
    (
        "spacelearn.loss",
        "alignment_loss",
        [("Z", P, REQ), ("W", P, REQ), ("A", P, REQ), ("Y", P, REQ)],
    ),
    ("spacelearn.loss", "disentanglement_loss", [("Z", P, REQ), ("W", P, REQ)]),
    ("spacelearn.loss", "isotropy_loss", [("Z", P, REQ), ("W", P, REQ), ("n_dir", P, 32)]),
    ("spacelearn.loss", "stability_loss", [("W", P, REQ), ("W_prev", P, REQ)]),
    (
        "spacelearn.loss._disentanglement_loss",
        "disentanglement_loss_original",
        [("Z", P, REQ), ("W", P, REQ)],
    ),
    (
        "spacelearn.optim",
        "fit_decoders",
        [("W", P, REQ), ("Z", P, REQ), ("pooled_global", P, REQ)],
    ),
    (
        "spacelearn.optim",
        "optimal_bins",
        [
            ("pooled_targets_coarse", P, REQ),
            ("max_bins", P, 16),
            ("variance_threshold", P, 0.95),
            ("default_threshold", K, None),
            ("per_quantity", K, False),
        ],
    ),
    (
        "spacelearn.optim",
        "k_per_q",
        [
            ("pooled_global", P, REQ),
            ("threshold", P, 0.90),
            ("default_threshold", K, None),
            ("per_quantity", K, True),
        ],
    ),
    (
        "spacelearn.optim",
        "minimal_latent_dim",
        [("k", P, REQ), ("Q", K, None), ("free_frac", K, 0.30), ("num_heads", K, None)],
    ),
    ("spacelearn.optim", "subspace_change", [("W_old", P, REQ), ("W_new", P, REQ)]),
    (
        "spacelearn.optim._optimize_latent",
        "_align_latent_dim",
        [("dim", P, REQ), ("num_heads", P, REQ)],
    ),
    ("spacelearn.util", "left", [("A", P, REQ)]),
    ("spacelearn.util", "right", [("A", P, REQ)]),
    ("spacelearn.util", "full", [("A", P, REQ)]),
    ("spacelearn.util", "singular_values", [("A", P, REQ)]),
    ("spacelearn.util.svd_util", "left", [("A", P, REQ)]),
    ("spacelearn.util.svd_util", "right", [("A", P, REQ)]),
    ("spacelearn.util.svd_util", "full", [("A", P, REQ)]),
    ("spacelearn.util.svd_util", "singular_values", [("A", P, REQ)]),
    ("spacelearn.util.svd_util", "resolve", [("A", P, REQ), ("op", P, REQ)]),
    (
        "spacelearn.util._eigen_fallback",
        "compute_condition_number",
        [("eigvals", P, REQ), ("eps", P, 1e-12)],
    ),
]

PUBLISHED_ALL = {
    "spacelearn": [
        "principal_directions",
        "subspaces",
        "combined_loss",
        "solve_subspaces",
        "solve_dims",
    ],
    "spacelearn.data": ["input_to_quantity", "pool", "ensure_dim", "to_device"],
    "spacelearn.loss": [
        "alignment_loss",
        "disentanglement_loss",
        "isotropy_loss",
        "stability_loss",
    ],
    "spacelearn.optim": [
        "optimal_bins",
        "minimal_latent_dim",
        "fit_decoders",
        "subspace_change",
        "k_per_q",
    ],
    "spacelearn.util": ["left", "right", "full", "singular_values"],
}

KINDS = {
    inspect.Parameter.POSITIONAL_OR_KEYWORD: P,
    inspect.Parameter.KEYWORD_ONLY: K,
    inspect.Parameter.VAR_POSITIONAL: VAR,
    inspect.Parameter.VAR_KEYWORD: VARKW,
}


def _described(fn):
    out = []
    for p in inspect.signature(fn).parameters.values():
        default = REQ if p.default is inspect.Parameter.empty else p.default
        out.append((p.name, KINDS[p.kind], default))
    return out


@pytest.mark.parametrize(("module", "name", "expected"), PUBLISHED, ids=lambda x: str(x)[:40])
def test_signature_matches_published(module, name, expected):
    fn = getattr(importlib.import_module(module), name)
    actual = _described(fn)
    assert actual[: len(expected)] == expected, f"{module}.{name}: {actual}"
    for extra in actual[len(expected) :]:
        assert extra[1] == K and extra[2] is not REQ, f"{module}.{name} adds {extra}"


@pytest.mark.parametrize(("module", "names"), list(PUBLISHED_ALL.items()))
def test_published_all_names_exported(module, names):
    mod = importlib.import_module(module)
    assert set(names) <= set(mod.__all__)
    for n in names:
        assert callable(getattr(mod, n))


def test_settings_fields_and_defaults():
    from spacelearn import settings

    fields = {f.name: f for f in dataclasses.fields(settings.Settings)}
    defaults = settings.Settings()
    assert list(fields)[:5] == [
        "solver_mode",
        "use_cpu_fallback",
        "device",
        "n_lowrank_iters",
        "use_full_matrix",
    ]
    assert defaults.solver_mode == "auto"
    assert defaults.use_cpu_fallback is False
    assert defaults.n_lowrank_iters == 2
    assert defaults.use_full_matrix is False
    assert isinstance(defaults.device, torch.device)
    assert isinstance(settings.config, settings.Settings)


def test_space_lives_in_combined_and_is_returned():
    from spacelearn._combined import Space

    Z = torch.randn(20, 5)
    space = __import__("spacelearn").solve_subspaces(Z, {"a": torch.randn(20, 3)}, k=2)
    assert isinstance(space, Space)
    assert list(vars(space))[:3] == ["W", "A", "V"]


def test_private_compute_q_module_path():
    mod = importlib.import_module("spacelearn.data._compute_Q")
    assert callable(mod.compute_Q)
    import spacelearn.data

    assert spacelearn.data._compute_Q is mod
