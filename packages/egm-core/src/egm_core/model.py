"""PyEGM: explosion-inspired sample growth around real seeds, decided by trend-path voting."""

from __future__ import annotations

import datetime as _dt
import math
import numbers
import os
import warnings
from pathlib import Path
from typing import Any, NoReturn

import blockops
import numpy as np
import torch
import yaml

from . import _checkpoint, _config
from .__about__ import __version__
from .kernels import (
    class_targets,
    deflect,
    local_basis,
    path_fractions,
    step_log_weights,
    trend_path_scores,
    warp_directions,
)

_FORMAT = "egm-core/1"
_RADIUS_QUERIES = 1024  # rows per class used to estimate its radius (median is robust)
_GOVERNOR_ROUNDS = 3
_SCHEDULE_POWER = {"inv_size": 1.0, "sqrt_inv_size": 0.5, "uniform": 0.0}
_ENERGY_CAP = 4.0
_SPREAD_BLOCK = 8192  # rows per block when checking the data's range
_BANK = ("bank_X_", "bank_y_", "bank_is_real_", "bank_generation_", "bank_energy_", "bank_seed_")


class PyEGM(blockops.ParamsMixin, blockops.ClassifierMixin):
    """Explosion Growth Model classifier: class-balanced sample growth plus trend-path voting.

    Every model parameter defaults to ``None``, meaning "take it from the preset"; a value given
    here overrides the preset. The preset is resolved once, in ``fit``: a parameter changed by
    ``set_params`` takes effect at the next ``fit``, while ``partial_fit``, ``continue_fit`` and
    ``predict`` keep the fitted values (``get_fitted_params()``); only ``torch_q_block`` and
    ``torch_db_block`` are read at every call.

    **Defaults.** A parameter set by neither the constructor nor the preset takes the package
    default (the shipped presets set only ``num_points``, ``num_iters``, ``points_schedule``,
    ``energy_schedule``, ``local_k``, ``anisotropy``, ``deflect_strength``, ``path_k``,
    ``path_steps`` and ``path_gamma``):
    ``num_points=48``, ``total_energy=0.5``, ``mass=1.0``, ``explosion_time=1.0``,
    ``noise_scale=0.05``, ``noise_decay=1.0``, ``dirichlet_alpha=1.0``, ``dynamic_energy=True``,
    ``adaptive_radius_mode='local'``, ``fixed_radius=None``, ``use_radius_clip=True``,
    ``shell_ratio=0.3``, ``shell_jitter=0.1``, ``local_k=5``, ``anisotropy=2.0``,
    ``deflect_rival=True``, ``deflect_strength=0.25``, ``momentum_conserve=True``,
    ``seed_mode='per_sample'``, ``path_steps=1``, ``path_step_size=0.3``, ``path_k=15``,
    ``path_gamma=0.4``, ``step_weight_mode='early'``, ``step_gamma=0.5``, ``real_weight=1.0``,
    ``points_schedule='inv_size'``, ``energy_schedule='uniform'``, ``num_iters=2``,
    ``energy_decay=0.8``, ``radius_growth=1.1``, ``governor=True``, ``max_samples=None``,
    ``random_state=None``. ``get_fitted_params()`` shows every value a fit used.

    **Growth.** Each class gets a radius ``r_c`` (median distance of its rows to their
    ``local_k``-th same-class neighbour, exact via blockops; over its distinct rows when
    duplicates make that median 0). In every growth iteration each class emits synthetic
    fragments from real seed rows: a random direction is stretched along the seed's local
    principal axes (``anisotropy``, a low-rank basis of its ``local_k`` neighbours), bent
    away from the nearest rival class centre (``deflect_rival``), and flown for
    ``explosion_time`` at speed ``sqrt(2 e / mass)`` where ``e`` is the fragment's share of
    the class energy (Dirichlet split). Lengths are in units of ``r_c``, noise is relative, so
    predictions do not change when ``X`` is multiplied by a positive constant (a negative one
    mirrors the random directions, so a few may). The governor shrinks or rejects fragments
    that land nearer a rival class's real rows than their own.

    **Voting.** A query's ``path_k`` nearest bank points (real and synthetic) are the
    candidates. For each candidate class the query walks ``path_steps`` steps toward that
    class's kernel-weighted local mean; at each step the class's neighbours vote with a Gaussian
    kernel of bandwidth ``path_gamma * r_c``. Votes are weighted per point (real rows:
    ``real_weight``; synthetic: their energy relative to the class mean) and normalised so every
    class has the same total vote mass (class-balanced, the "equal energy budget"). The class
    with the largest summed vote wins; ``predict_proba`` normalises the same scores. A query so
    far from the bank that its scores overflow the float range falls back to the majority of its
    ``path_k`` neighbours.

    Args:
        preset: ``"auto"``, ``"fscil"``, ``"balanced_kshot"``, ``"imbalanced_kshot"``,
            ``"extreme_lowshot"`` or a path to a YAML file (relative to the working directory),
            e.g. one written by :meth:`export_fixed_yaml`. ``"auto"`` picks from the training
            label counts (see ``get_fitted_params()["preset_resolved"]``).
        num_points: synthetic points per class and growth iteration, before the
            ``points_schedule`` (rounded up to even with ``momentum_conserve``).
        total_energy: mean energy of a fragment; its flight length is
            ``r * sqrt(2 * e / mass) * explosion_time``.
        mass: fragment mass: heavier fragments fly shorter and are deflected less
            (the deflection fraction is ``deflect_strength / mass``, at most 1).
        explosion_time: flight time: scales the ballistic length linearly and the diffusion
            noise by ``sqrt(explosion_time)``.
        noise_scale: norm of the isotropic diffusion noise, in units of the radius.
        noise_decay: noise factor applied per growth iteration of a class.
        dirichlet_alpha: concentration of the Dirichlet split of a class's energy among its
            fragments (large: equal energies; small: a few energetic fragments).
        dynamic_energy: lengths in units of each class's own radius (True) or of the median
            radius over classes (False).
        adaptive_radius_mode: ``"local"`` (per-class radius), ``"global"`` (the median of the
            per-class radii for every class) or ``"fixed"`` (``fixed_radius``, absolute units).
        fixed_radius: radius used by ``adaptive_radius_mode="fixed"``; the other modes ignore
            it, with a warning.
        use_radius_clip: cap every flight length at the iteration's radius
            ``r_c * radius_growth ** t``.
        shell_ratio: lengths are multiplied by a shell factor drawn in
            ``[1 - shell_ratio, 1]``.
        shell_jitter: standard deviation of a Gaussian jitter added to the shell factor.
        local_k: neighbours used for the radius and for a seed's local principal axes.
        anisotropy: exponent stretching directions along high local variance (0: isotropic).
        deflect_rival: bend fragments away from the nearest rival class centre.
        deflect_strength: how strongly the rival-ward component is bent, divided by ``mass``
            and capped at 1: 0 keeps it, 0.5 removes it, 1 reflects it.
        momentum_conserve: fragments come in pairs of equal energy flying in opposite
            directions (zero total momentum before deflection).
        seed_mode: ``"per_sample"`` (seeds drawn from the class's real rows) or ``"centroid"``
            (the class's most central real row is the only seed).
        path_steps: steps of each trend path (0: vote at the query only).
        path_step_size: fraction of the remaining way to the class's local mean covered by
            one step.
        path_k: neighbours retrieved per query (clamped to the bank size).
        path_gamma: kernel bandwidth in units of the class radius.
        step_weight_mode: ``"early"`` (step ``s`` weighs ``step_gamma ** s``), ``"late"``
            (``step_gamma ** (T - s)``) or ``"none"``.
        step_gamma: base of the step weights.
        real_weight: vote weight of a real row relative to an average synthetic point.
        points_schedule: ``"inv_size"`` (class ``c`` gets ``num_points * n_min / n_c``
            points), ``"sqrt_inv_size"`` (``* sqrt(n_min / n_c)``) or ``"uniform"``.
        energy_schedule: ``"inv_size"`` (class energy ``* n_max / n_c``, capped at 4),
            ``"sqrt_inv_size"`` (``* sqrt(n_max / n_c)``, also capped at 4) or ``"uniform"``:
            rare classes explode farther (up to the ``use_radius_clip`` bound).
        num_iters: growth iterations in ``fit`` and in each ``partial_fit``.
        energy_decay: energy factor per growth iteration of a class.
        radius_growth: radius factor per growth iteration of a class.
        governor: shrink fragments that land nearer a rival class's real rows than their own
            (halving the flight up to 3 times), then reject those still intruding.
        max_samples: bound on the bank size; ``None`` for no bound. Eviction: synthetic points
            first, keeping the newest of each class and the classes balanced (water-filling);
            real rows only when they alone exceed the bound (oldest first, largest class first).
        platform: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        torch_q_block: queries per block in neighbour search (``None``: from memory).
        torch_db_block: bank rows per block in neighbour search (``None``: from memory).
        random_state: seed (int) for the growth, or a numpy ``Generator`` / ``RandomState`` or
            ``torch.Generator`` to draw one from; ``None`` draws one (the seed used is
            recorded in ``get_fitted_params()["random_state"]``).

    Attributes:
        classes_: the labels, in code order (the order of ``predict_proba``'s columns): sorted
            at ``fit``, then each label new to ``partial_fit`` appended, even one that sorts
            earlier.
        n_features_in_: number of input features.
        bank_X_: ``(n_bank, d)`` float tensor of all bank points (real rows first).
        bank_y_: ``(n_bank,)`` long class codes (indices into ``classes_``).
        bank_is_real_: ``(n_bank,)`` bool, True for real training rows.
        bank_generation_: ``(n_bank,)`` long, 0 for real rows, else the global growth
            iteration that made the point (counting on across ``partial_fit``/``continue_fit``).
        bank_energy_: ``(n_bank,)`` float, the fragment's energy (0 for real rows).
        bank_seed_: ``(n_bank,)`` long, bank index of the seed row (-1 for real rows).
        radius_: ``(n_classes,)`` float tensor, the radius of each class.
        local_radius_: ``(n_classes,)`` float tensor, each class's own measured radius (the
            median distance to its ``local_k``-th same-class neighbour; NaN for a class with
            fewer than 2 distinct rows), from which ``radius_`` follows by
            ``adaptive_radius_mode``.
        class_count_: ``(n_classes,)`` long tensor, real rows seen per class (all sessions).
        class_sum_: ``(n_classes, d)`` float64 tensor, sum of the real rows per class (the rival
            centres are ``class_sum_ / class_count_``).
        class_iters_: ``(n_classes,)`` long tensor, growth iterations each class has run.
        device_: the ``torch.device`` the model lives on.
        preset_resolved_: the shipped preset name or YAML path actually used.
        dataset_stats_: label-count statistics of the first training set (what ``auto`` read).
        history_: one dict per growth iteration with keys ``"session"`` (0 for ``fit``, then
            one more per ``partial_fit``/``continue_fit``), ``"iteration"`` (global, from 1),
            ``"class_counts"`` (synthetic points kept per class), ``"radius"`` (per class, the
            clip radius of its latest growth iteration, so it changes only when the class grows
            or is re-measured), ``"energy"`` (per class; 0 for classes that did not grow),
            ``"rejected"`` (governor).
    """

    def __init__(
        self,
        preset: str | os.PathLike[str] = "auto",
        *,
        num_points: int | None = None,
        total_energy: float | None = None,
        mass: float | None = None,
        explosion_time: float | None = None,
        noise_scale: float | None = None,
        noise_decay: float | None = None,
        dirichlet_alpha: float | None = None,
        dynamic_energy: bool | None = None,
        adaptive_radius_mode: str | None = None,
        fixed_radius: float | None = None,
        use_radius_clip: bool | None = None,
        shell_ratio: float | None = None,
        shell_jitter: float | None = None,
        local_k: int | None = None,
        anisotropy: float | None = None,
        deflect_rival: bool | None = None,
        deflect_strength: float | None = None,
        momentum_conserve: bool | None = None,
        seed_mode: str | None = None,
        path_steps: int | None = None,
        path_step_size: float | None = None,
        path_k: int | None = None,
        path_gamma: float | None = None,
        step_weight_mode: str | None = None,
        step_gamma: float | None = None,
        real_weight: float | None = None,
        points_schedule: str | None = None,
        energy_schedule: str | None = None,
        num_iters: int | None = None,
        energy_decay: float | None = None,
        radius_growth: float | None = None,
        governor: bool | None = None,
        max_samples: int | None = None,
        platform: str | torch.device = "auto",
        torch_q_block: int | None = None,
        torch_db_block: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.preset = preset
        self.num_points = num_points
        self.total_energy = total_energy
        self.mass = mass
        self.explosion_time = explosion_time
        self.noise_scale = noise_scale
        self.noise_decay = noise_decay
        self.dirichlet_alpha = dirichlet_alpha
        self.dynamic_energy = dynamic_energy
        self.adaptive_radius_mode = adaptive_radius_mode
        self.fixed_radius = fixed_radius
        self.use_radius_clip = use_radius_clip
        self.shell_ratio = shell_ratio
        self.shell_jitter = shell_jitter
        self.local_k = local_k
        self.anisotropy = anisotropy
        self.deflect_rival = deflect_rival
        self.deflect_strength = deflect_strength
        self.momentum_conserve = momentum_conserve
        self.seed_mode = seed_mode
        self.path_steps = path_steps
        self.path_step_size = path_step_size
        self.path_k = path_k
        self.path_gamma = path_gamma
        self.step_weight_mode = step_weight_mode
        self.step_gamma = step_gamma
        self.real_weight = real_weight
        self.points_schedule = points_schedule
        self.energy_schedule = energy_schedule
        self.num_iters = num_iters
        self.energy_decay = energy_decay
        self.radius_growth = radius_growth
        self.governor = governor
        self.max_samples = max_samples
        self.platform = platform
        self.torch_q_block = torch_q_block
        self.torch_db_block = torch_db_block
        self.random_state = random_state

    # ------------------------------------------------------------------ setup helpers
    def _check_blocks(self) -> None:
        for name in ("torch_q_block", "torch_db_block"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1
            ):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")

    def _user_params(self) -> dict[str, Any]:
        user = {name: getattr(self, name) for name in _config.SPECS}
        rs = user["random_state"]
        if isinstance(rs, torch.Generator):
            user["random_state"] = int(blockops.make_generator(rs).initial_seed())
        elif isinstance(rs, np.random.Generator):
            user["random_state"] = int(rs.integers(0, 2**62))
        elif isinstance(rs, np.random.RandomState):  # scikit-learn's generator
            user["random_state"] = int(rs.randint(0, 2**62, dtype=np.int64))
        return user

    def _call_rng(self) -> tuple[torch.Generator, np.random.Generator]:
        """Fresh generators for one training call; the stream moves on with every call."""
        seed = (self.seed_ * 1_000_003 + self.n_growth_calls_) % (2**62)
        self.n_growth_calls_ += 1
        gen = torch.Generator(device="cpu")
        gen.manual_seed(seed)
        return gen, np.random.default_rng(seed)

    def _rand(self, gen: torch.Generator, *shape: int, normal: bool = False) -> torch.Tensor:
        """Random draws made on the CPU (same numbers on every device), moved to the model's."""
        draw = torch.randn if normal else torch.rand
        return draw(*shape, generator=gen, dtype=torch.float32).to(self.device_)

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any) -> PyEGM:
        """Fit the base session: resolve the preset, grow synthetic points, build the bank.

        Args:
            X: ``(n, d)`` training rows (numpy, list or tensor; float64 is computed in float32).
            y: ``(n,)`` labels of any hashable type; at least two classes.

        Returns:
            self.

        Raises:
            ValueError: parameters (``total_energy``, ``energy_decay``, ``noise_decay``, ...)
                whose fragment energies or synthetic points overflow float32; the model is
                left unfitted (``partial_fit`` and ``continue_fit`` keep the iterations grown
                before the one refused).
        """
        return self._fit_new(X, y, classes=None)

    def _fit_new(self, X: Any, y: Any, classes: Any) -> PyEGM:
        self._check_blocks()
        device = blockops.resolve_device(self.platform)
        if y is None:
            raise ValueError("PyEGM requires y to be passed, but the target y is None")
        _reject_sparse(X)
        Xt, y_arr = blockops.check_X_y(X, y, device=device)
        if Xt.shape[0] < 2:
            raise ValueError(f"n_samples={Xt.shape[0]}: PyEGM needs at least 2 samples")
        _check_spread(Xt)
        _reject_continuous(y_arr)
        enc = blockops.LabelEncoder()
        if classes is not None:
            extra = _labels_within(y_arr, classes)
            enc.fit(np.concatenate([np.asarray(y_arr, dtype=object), extra.astype(object)]))
            enc = blockops.LabelEncoder().fit(_homogeneous(enc.classes_))
            enc.classes_ = _label_dtype(enc.classes_, y_arr.dtype, extra.dtype)
        else:
            enc.fit(y_arr)
        codes = enc.transform(y_arr).to(device)
        n_classes = len(enc.classes_)
        if n_classes < 2:
            raise ValueError(
                f"y holds a single class ({enc.classes_.tolist()}); PyEGM needs at least 2 classes"
            )
        counts = torch.bincount(codes.cpu(), minlength=n_classes).numpy()
        params, resolved = _config.resolve(self.preset, self._user_params(), counts[counts > 0])
        if params["random_state"] is None:
            params["random_state"] = int(
                np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 2
            )
        self._params = params
        self.preset_resolved_ = resolved
        self.device_ = device
        self._enc = enc
        self.classes_ = enc.classes_
        self.n_features_in_ = int(Xt.shape[1])
        self.dataset_stats_ = _config.dataset_stats(counts[counts > 0])
        self.seed_ = int(params["random_state"])
        self.n_growth_calls_ = 0
        self.iteration_ = 0
        self.session_ = 0
        self.history_: list[dict[str, Any]] = []
        d = Xt.shape[1]
        n = Xt.shape[0]
        self.bank_X_ = Xt
        self.bank_y_ = codes
        self.bank_is_real_ = torch.ones(n, dtype=torch.bool, device=device)
        self.bank_generation_ = torch.zeros(n, dtype=torch.long, device=device)
        self.bank_energy_ = torch.zeros(n, dtype=torch.float32, device=device)
        self.bank_seed_ = torch.full((n,), -1, dtype=torch.long, device=device)
        self.class_sum_ = torch.zeros(n_classes, d, dtype=torch.float64, device=device)
        self.class_sum_.index_add_(0, codes, Xt.double())
        self.class_count_ = torch.bincount(codes, minlength=n_classes).long()
        self.class_iters_ = torch.zeros(n_classes, dtype=torch.long, device=device)
        self.local_radius_ = torch.full(
            (n_classes,), float("nan"), dtype=torch.float32, device=device
        )
        gen, rng = self._call_rng()
        self._update_radius(list(range(n_classes)), rng)
        pools = {c: torch.nonzero(codes == c).squeeze(1) for c in range(n_classes)}
        pools = {c: rows for c, rows in pools.items() if rows.numel()}
        points = self._points_per_class({c: 1.0 for c in pools})
        try:
            self._grow(pools, points, params["num_iters"], gen, rng)
        except ValueError:  # parameters out of the float32 range: no half-fitted model
            del self.bank_X_
            raise
        self._evict()
        self._refresh()
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> PyEGM:
        """Add a session of rows (new or known classes) and grow synthetic points for it.

        New classes get the same share of synthetic points as the base classes had (the
        ``points_schedule`` is computed over all real rows seen); a known class that receives
        rows grows in proportion to its new rows, so nothing is counted twice. Rival centres
        are the real class centres of all sessions. The random stream moves on with every call.

        Args:
            X: ``(n, d)`` rows of this session.
            y: ``(n,)`` their labels.
            classes: optional labels this call may hold; labels of ``y`` not among them are
                a ``ValueError`` (as in scikit-learn), and those the model does not know yet
                are registered even without rows. Left out, every label of ``y`` is accepted
                and new ones are added (class-incremental sessions).

        Returns:
            self.
        """
        if not hasattr(self, "bank_X_"):
            return self._fit_new(X, y, classes)
        self._check_blocks()
        if y is None:
            raise ValueError("PyEGM requires y to be passed, but the target y is None")
        _reject_sparse(X)
        Xt, y_arr = blockops.check_X_y(X, y, device=self.device_)
        self._check_width(Xt)
        _check_spread(self.bank_X_[: int(self.bank_is_real_.sum())], Xt)  # real rows first
        _reject_continuous(y_arr)
        # classes, checked before any state changes, hold every new label of y
        labels = y_arr if classes is None else _labels_within(y_arr, classes)
        _check_label_kinds(labels, self.classes_)
        old_c = len(self._enc.classes_)
        old_dtype = self._enc.classes_.dtype
        self._enc.partial_fit(labels)
        if len(self._enc.classes_) > old_c:  # merged labels keep their dtype (uint8 stays)
            self._enc.classes_ = _label_dtype(self._enc.classes_, old_dtype, labels.dtype)
        self.classes_ = self._enc.classes_
        codes = self._enc.transform(y_arr).to(self.device_)
        n_classes = len(self.classes_)
        if n_classes > old_c:
            grow = n_classes - old_c
            dev = self.device_
            self.class_sum_ = torch.cat(
                [self.class_sum_, torch.zeros(grow, Xt.shape[1], dtype=torch.float64, device=dev)]
            )
            self.class_count_ = torch.cat(
                [self.class_count_, torch.zeros(grow, dtype=torch.long, device=dev)]
            )
            self.class_iters_ = torch.cat(
                [self.class_iters_, torch.zeros(grow, dtype=torch.long, device=dev)]
            )
            self.local_radius_ = torch.cat(
                [self.local_radius_, torch.full((grow,), float("nan"), device=dev)]
            )
        n_real_old = int(self.bank_is_real_.sum())
        n_new = Xt.shape[0]
        real = slice(0, n_real_old)
        syn = slice(n_real_old, self.bank_X_.shape[0])
        dev = self.device_
        self.bank_X_ = torch.cat([self.bank_X_[real], Xt, self.bank_X_[syn]])
        self.bank_y_ = torch.cat([self.bank_y_[real], codes, self.bank_y_[syn]])
        self.bank_is_real_ = torch.cat(
            [
                self.bank_is_real_[real],
                torch.ones(n_new, dtype=torch.bool, device=dev),
                self.bank_is_real_[syn],
            ]
        )
        self.bank_generation_ = torch.cat(
            [
                self.bank_generation_[real],
                torch.zeros(n_new, dtype=torch.long, device=dev),
                self.bank_generation_[syn],
            ]
        )
        self.bank_energy_ = torch.cat(
            [self.bank_energy_[real], torch.zeros(n_new, device=dev), self.bank_energy_[syn]]
        )
        self.bank_seed_ = torch.cat(
            [
                self.bank_seed_[real],
                torch.full((n_new,), -1, dtype=torch.long, device=dev),
                self.bank_seed_[syn],
            ]
        )
        self.class_sum_.index_add_(0, codes, Xt.double())
        batch_counts = torch.bincount(codes, minlength=n_classes)
        self.class_count_ += batch_counts
        present = [int(c) for c in torch.nonzero(batch_counts).squeeze(1).tolist()]
        gen, rng = self._call_rng()
        self._update_radius(present, rng)
        new_idx = torch.arange(n_real_old, n_real_old + n_new, device=dev)
        pools = {c: new_idx[codes == c] for c in present}
        share = {c: float(batch_counts[c]) / float(self.class_count_[c]) for c in present}
        self.session_ += 1
        self._grow(pools, self._points_per_class(share), self._params["num_iters"], gen, rng)
        self._evict()
        self._refresh()
        return self

    def continue_fit(self, extra_iters: int = 1, reseed: int | None = None) -> PyEGM:
        """Run more growth iterations on the current state (no data is added or duplicated).

        Every class grows ``extra_iters`` more iterations from its real rows, continuing its
        radius/energy/noise schedules and the global iteration count.

        Args:
            extra_iters: iterations to add (0 does nothing, ``reseed`` included).
            reseed: a new seed for the random stream (changes the draw); ``None`` continues it.

        Returns:
            self.
        """
        self._check_fitted()
        self._check_blocks()
        if isinstance(extra_iters, bool) or not isinstance(extra_iters, numbers.Integral):
            raise TypeError(f"extra_iters must be an int, got {extra_iters!r}")
        if extra_iters < 0:
            raise ValueError(f"extra_iters must be >= 0, got {extra_iters}")
        if reseed is not None and (
            isinstance(reseed, bool) or not isinstance(reseed, numbers.Integral) or reseed < 0
        ):
            raise ValueError(f"reseed must be a non-negative int or None, got {reseed!r}")
        if extra_iters == 0:  # nothing at all, not even the reseed
            return self
        if reseed is not None:
            self.seed_ = int(reseed)
            self.n_growth_calls_ = 0
        gen, rng = self._call_rng()
        real_idx = torch.nonzero(self.bank_is_real_).squeeze(1)
        real_y = self.bank_y_[real_idx]
        pools = {}
        for c in range(len(self.classes_)):
            rows = real_idx[real_y == c]
            if rows.numel():
                pools[c] = rows
        self.session_ += 1
        self._grow(
            pools, self._points_per_class({c: 1.0 for c in pools}), int(extra_iters), gen, rng
        )
        self._evict()
        self._refresh()
        return self

    # ------------------------------------------------------------------ growth internals
    def _update_radius(self, classes: list[int], rng: np.random.Generator) -> None:
        """Measure ``classes``' radii (median distance to the local_k-th same-class neighbour,
        exact) into ``local_radius_``, then derive every class's ``radius_`` from all of them."""
        p = self._params
        mode = p["adaptive_radius_mode"]
        real = self.bank_is_real_
        for c in classes:
            rows = self.bank_X_[real & (self.bank_y_ == c)]
            r = self._kth_distance_median(rows, rng)
            if r == 0.0:  # duplicated rows: measure the class on its distinct rows
                r = self._kth_distance_median(torch.unique(rows, dim=0), rng)
            self.local_radius_[c] = r if r > 0 else float("nan")
        if mode == "fixed":  # no fallback (and no warning about one) for unmeasured classes
            self.radius_ = torch.full_like(self.local_radius_, float(p["fixed_radius"]))
            return
        radius = self.local_radius_
        finite = torch.isfinite(radius)
        if bool(finite.any()):
            fallback = _median(radius[finite])
            source = "the median radius of the other classes"
        else:
            fallback = self._global_scale()
            source = "the median distance of the distinct training rows to their nearest other one"
        if not bool(finite.all()):
            warnings.warn(
                f"some classes have fewer than 2 distinct rows; their radius is {source} "
                f"({fallback:.4g})",
                stacklevel=3,
            )
        radius = torch.where(finite, radius, torch.full_like(radius, fallback))
        if mode == "global":
            radius = torch.full_like(radius, _median(radius))
        self.radius_ = radius

    def _kth_distance_median(self, rows: torch.Tensor, rng: np.random.Generator) -> float:
        """Median distance of ``rows (n, d)`` to their ``local_k``-th neighbour among them
        (at most 1,024 of them as queries); NaN below 2 rows."""
        n = rows.shape[0]
        if n < 2:
            return float("nan")
        k = min(self._params["local_k"], n - 1)
        if n > _RADIUS_QUERIES:
            pick = np.sort(rng.choice(n, _RADIUS_QUERIES, replace=False))
            q = rows[torch.as_tensor(pick, device=rows.device)]
        else:
            q = rows
        dist, _ = blockops.knn(
            q, rows, k + 1, q_block=self.torch_q_block, db_block=self.torch_db_block
        )
        return _median(dist[:, -1].clamp_min(0).sqrt())

    def _global_scale(self) -> float:
        rows = torch.unique(self.bank_X_[self.bank_is_real_], dim=0)
        if rows.shape[0] >= 2:
            dist, _ = blockops.knn(rows, rows, 1, exclude_self=True)
            med = _median(dist[:, 0].clamp_min(0).sqrt())
            if med > 0:
                return med
        warnings.warn(
            "all training rows coincide in float32 (identical rows, or X so small that its "
            "squared distances underflow: rescale X); using radius 1.0",
            stacklevel=4,
        )
        return 1.0

    def _points_per_class(self, share: dict[int, float]) -> dict[int, int]:
        """Synthetic points per iteration for each growing class (``points_schedule``)."""
        p = self._params
        counts = self.class_count_.double()
        n_min = float(counts[counts > 0].min())
        power = _SCHEDULE_POWER[p["points_schedule"]]
        out = {}
        for c, frac in share.items():
            base = p["num_points"] * (n_min / float(counts[c])) ** power
            out[c] = int(max(1, round(base)) if frac >= 1.0 else round(base * frac))
        return out

    def _grow(
        self,
        pools: dict[int, torch.Tensor],
        points: dict[int, int],
        iters: int,
        gen: torch.Generator,
        rng: np.random.Generator,
    ) -> None:
        """Run ``iters`` growth iterations for the classes in ``pools`` (vectorised per iteration)."""
        p = self._params
        classes = [c for c in sorted(pools) if points.get(c, 0) > 0 and pools[c].numel() > 0]
        n_classes = len(self.classes_)
        dev, d = self.device_, self.n_features_in_
        counts = self.class_count_.double()
        e_power = _SCHEDULE_POWER[p["energy_schedule"]]
        n_max = float(counts.max())
        for _ in range(iters):
            entry_counts = [0] * n_classes
            entry_energy = [0.0] * n_classes
            if not classes:
                self.iteration_ += 1
                self.history_.append(
                    self._entry(entry_counts, self._grown_radius(), entry_energy, 0)
                )
                continue
            real_mask = self.bank_is_real_
            unit_all = (
                self.radius_
                if p["dynamic_energy"]
                else torch.full_like(self.radius_, _median(self.radius_))
            )
            seeds, frag_class, bases, variances, energies = [], [], [], [], []
            for c in classes:
                pool = pools[c]
                n_frag = points[c]
                n_pairs = math.ceil(n_frag / 2) if p["momentum_conserve"] else n_frag
                class_rows = torch.nonzero(real_mask & (self.bank_y_ == c)).squeeze(1)
                if p["seed_mode"] == "centroid":
                    centre = self.bank_X_[pool].mean(dim=0, keepdim=True)
                    _, j = blockops.nearest(centre, self.bank_X_[pool])
                    seed_rows = pool[j].expand(n_pairs)
                else:
                    pick = torch.floor(self._rand(gen, n_pairs).cpu() * pool.numel()).long()
                    seed_rows = pool[pick.clamp_max(pool.numel() - 1).to(dev)]
                k = min(p["local_k"], class_rows.numel())
                _, nb = blockops.knn(
                    self.bank_X_[seed_rows],
                    self.bank_X_[class_rows],
                    k,
                    q_block=self.torch_q_block,
                    db_block=self.torch_db_block,
                )
                basis, var = local_basis(self.bank_X_[class_rows][nb])
                if k < p["local_k"]:
                    pad = p["local_k"] - k
                    basis = torch.cat([basis, basis.new_zeros(n_pairs, pad, d)], dim=1)
                    var = torch.cat([var, var.new_zeros(n_pairs, pad)], dim=1)
                level = int(self.class_iters_[c])
                try:
                    decay = p["energy_decay"] ** level
                except OverflowError:  # Python floats raise rather than give inf
                    decay = math.inf
                budget = (
                    p["total_energy"]
                    * min(_ENERGY_CAP, (n_max / float(counts[c])) ** e_power)
                    * decay
                )
                g = rng.gamma(p["dirichlet_alpha"], size=n_pairs)
                share = g / g.sum() * n_pairs if g.sum() > 0 else np.ones(n_pairs)
                frag_energy = torch.as_tensor(budget * share, dtype=torch.float32, device=dev)
                if not bool(torch.isfinite(frag_energy).all()):
                    self._refuse_growth(
                        f"total_energy={p['total_energy']!r} with energy_decay="
                        f"{p['energy_decay']!r} gives fragment energies beyond the float32 "
                        f"range (max 3.4e38) at growth level {level} of class "
                        f"{self.classes_.tolist()[c]!r}; lower total_energy (or energy_decay)"
                    )
                seeds.append(seed_rows)
                frag_class.append(torch.full((n_pairs,), c, dtype=torch.long, device=dev))
                bases.append(basis)
                variances.append(var)
                energies.append(frag_energy)
                entry_energy[c] = float(budget)
            seed_rows = torch.cat(seeds)
            cls = torch.cat(frag_class)
            energy = torch.cat(energies)
            P = seed_rows.numel()
            z = self._rand(gen, P, d, normal=True)
            u = warp_directions(z, torch.cat(bases), torch.cat(variances), p["anisotropy"])
            if p["momentum_conserve"]:
                u = torch.stack([u, -u], dim=1).reshape(2 * P, d)
                seed_rows = seed_rows.repeat_interleave(2)
                cls = cls.repeat_interleave(2)
                energy = energy.repeat_interleave(2)
            F = seed_rows.numel()
            origins = self.bank_X_[seed_rows]
            if p["deflect_rival"]:
                known = self.class_count_ > 0
                centres = (self.class_sum_ / self.class_count_.clamp_min(1)[:, None]).float()
                frac = min(1.0, p["deflect_strength"] / p["mass"])
                u = deflect(u, origins, cls, centres, known, frac)
            level = self.class_iters_[cls].float()
            unit = unit_all[cls]
            speed = torch.sqrt(2.0 * energy / p["mass"])
            shell = (1.0 - p["shell_ratio"]) + p["shell_ratio"] * self._rand(gen, F)
            shell = (shell + p["shell_jitter"] * self._rand(gen, F, normal=True)).clamp_min(0.0)
            length = unit * speed * p["explosion_time"] * shell
            radius_t = self.radius_[cls] * p["radius_growth"] ** level
            if p["use_radius_clip"]:
                length = torch.minimum(length, radius_t)
            noise_sd = (
                p["noise_scale"]
                * p["noise_decay"] ** level
                * unit
                * math.sqrt(p["explosion_time"])
                / math.sqrt(d)
            ).nan_to_num(nan=0.0)  # noise_scale=0 times an overflowed decay: no noise
            noise = self._rand(gen, F, d, normal=True) * noise_sd[:, None]
            new = origins + length[:, None] * u + noise
            if not bool(torch.isfinite(new).all()):
                self._refuse_growth(
                    "synthetic points overflow float32 (max 3.4e38): lower total_energy="
                    f"{p['total_energy']!r}, explosion_time={p['explosion_time']!r}, "
                    f"noise_scale={p['noise_scale']!r} or noise_decay={p['noise_decay']!r}, "
                    f"raise mass={p['mass']!r}, or keep use_radius_clip=True"
                )
            keep = torch.ones(F, dtype=torch.bool, device=dev)
            rejected = 0
            if p["governor"] and int((self.class_count_ > 0).sum()) >= 2:
                new, keep = self._govern(new, origins, cls)
                rejected = int((~keep).sum())
            for c in classes:
                entry_counts[c] = int((keep & (cls == c)).sum())
            self.iteration_ += 1  # only now: a refused iteration leaves no trace
            self._append_synthetic(new[keep], cls[keep], energy[keep], seed_rows[keep])
            for c in classes:
                self.class_iters_[c] += 1
            self.history_.append(
                self._entry(entry_counts, self._grown_radius(), entry_energy, rejected)
            )

    def _refuse_growth(self, message: str) -> NoReturn:
        """Stop a growth whose numbers overflow float32: the iterations already grown stay,
        evicted and weighted as after a complete call, so the model stays usable and saveable.

        Raises:
            ValueError: always, with ``message``.
        """
        self._evict()
        self._refresh()
        raise ValueError(message)

    def _grown_radius(self) -> list[float]:
        """Each class's clip radius at its last growth level (``radius_growth`` applied once
        per iteration it has grown, the current one included; level 0 before any growth)."""
        level = (self.class_iters_ - 1).clamp_min(0).float()
        return [float(r) for r in (self.radius_ * self._params["radius_growth"] ** level).tolist()]

    def _entry(
        self, counts: list[int], radius: list[float], energy: list[float], rejected: int
    ) -> dict[str, Any]:
        return {
            "session": int(self.session_),
            "iteration": int(self.iteration_),
            "class_counts": counts,
            "radius": radius,
            "energy": energy,
            "rejected": int(rejected),
        }

    def _govern(
        self, new: torch.Tensor, origins: torch.Tensor, cls: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shrink fragments landing nearer a rival's real rows than their own; reject the rest."""
        real = self.bank_is_real_
        Xr, yr = self.bank_X_[real], self.bank_y_[real]
        n_classes = len(self.classes_)
        todo = torch.arange(new.shape[0], device=new.device)
        keep = torch.ones(new.shape[0], dtype=torch.bool, device=new.device)
        for round_ in range(_GOVERNOR_ROUNDS + 1):
            mins = blockops.label_min(
                new[todo],
                Xr,
                yr,
                n_classes,
                q_block=self.torch_q_block,
                db_block=self.torch_db_block,
            )
            own = mins.gather(1, cls[todo][:, None]).squeeze(1)
            mins.scatter_(1, cls[todo][:, None], float("inf"))
            bad = mins.min(dim=1).values < own
            todo = todo[bad]
            if todo.numel() == 0:
                break
            if round_ == _GOVERNOR_ROUNDS:
                keep[todo] = False
                break
            new[todo] = origins[todo] + 0.5 * (new[todo] - origins[todo])
        return new, keep

    def _append_synthetic(
        self, X: torch.Tensor, y: torch.Tensor, energy: torch.Tensor, seeds: torch.Tensor
    ) -> None:
        n = X.shape[0]
        dev = self.device_
        self.bank_X_ = torch.cat([self.bank_X_, X.to(self.bank_X_.dtype)])
        self.bank_y_ = torch.cat([self.bank_y_, y])
        self.bank_is_real_ = torch.cat(
            [self.bank_is_real_, torch.zeros(n, dtype=torch.bool, device=dev)]
        )
        self.bank_generation_ = torch.cat(
            [self.bank_generation_, torch.full((n,), self.iteration_, dtype=torch.long, device=dev)]
        )
        self.bank_energy_ = torch.cat([self.bank_energy_, energy.float()])
        self.bank_seed_ = torch.cat([self.bank_seed_, seeds])

    def _evict(self) -> None:
        """Apply ``max_samples``: synthetic first (balanced, newest kept), then real rows."""
        cap = self._params["max_samples"]
        n = self.bank_X_.shape[0]
        if cap is None or n <= cap:
            return
        keep = torch.ones(n, dtype=torch.bool, device=self.device_)
        n_real = int(self.bank_is_real_.sum())
        n_classes = len(self.classes_)
        if n_real <= cap:
            _water_fill(keep, ~self.bank_is_real_, self.bank_y_, n_classes, cap - n_real)
        else:
            warnings.warn(
                f"max_samples={cap} is below the {n_real} real rows: all synthetic points and "
                "the oldest real rows of the largest classes are evicted",
                stacklevel=3,
            )
            keep &= self.bank_is_real_
            _water_fill(keep, self.bank_is_real_.clone(), self.bank_y_, n_classes, cap)
            self._warn_lost_classes(keep, cap)
        if bool(keep.all()):
            return
        new_index = torch.cumsum(keep.long(), 0) - 1
        seeds = self.bank_seed_[keep]
        seeds = torch.where(seeds >= 0, new_index[seeds.clamp_min(0)], seeds)
        for name in _BANK:
            setattr(self, name, getattr(self, name)[keep])
        self.bank_seed_ = seeds

    def _warn_lost_classes(self, keep: torch.Tensor, cap: int) -> None:
        """Warn when eviction (``keep``, ``(bank,)`` bool) leaves a class without any row."""
        held = torch.bincount(self.bank_y_, minlength=len(self.classes_))
        kept = torch.bincount(self.bank_y_[keep], minlength=len(self.classes_))
        lost = ((held > 0) & (kept == 0)).nonzero().flatten().tolist()
        if lost:
            warnings.warn(
                f"max_samples={cap} holds fewer rows than there are classes: classes "
                f"{self.classes_[lost].tolist()} lose every row of the bank and can no longer "
                "be predicted; raise max_samples to at least the number of classes",
                stacklevel=4,
            )

    def _refresh(self) -> None:
        """Recompute the per-point log vote weights (class-balanced)."""
        p = self._params
        n_classes = len(self.classes_)
        y = self.bank_y_
        syn = ~self.bank_is_real_
        e = self.bank_energy_.double()
        e_sum = torch.zeros(n_classes, dtype=torch.float64, device=y.device).index_add_(
            0, y[syn], e[syn]
        )
        e_cnt = torch.bincount(y[syn], minlength=n_classes).double()
        e_mean = (e_sum / e_cnt.clamp_min(1)).clamp_min(1e-30)
        w = torch.where(syn, (e / e_mean[y]).clamp_min(1e-12), torch.full_like(e, p["real_weight"]))
        mass = torch.zeros(n_classes, dtype=torch.float64, device=y.device).index_add_(0, y, w)
        self._vote_logw = (w.log() - mass.clamp_min(1e-30).log()[y]).float()

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self) -> None:
        blockops.check_is_fitted(self, ["bank_X_", "classes_"])

    def _check_width(self, Xt: torch.Tensor) -> None:
        if Xt.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {Xt.shape[1]} features, but PyEGM is expecting "
                f"{self.n_features_in_} features as input"
            )

    def _scores(
        self, X: Any, steps: int | None, with_paths: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        self._check_fitted()
        self._check_blocks()  # used live: set_params after fit must not slip through
        _reject_sparse(X)
        Q = blockops.as_tensor(X, name="X", device=self.device_)
        self._check_width(Q)
        p = self._params
        T = p["path_steps"] if steps is None else steps
        n, d = Q.shape
        N = self.bank_X_.shape[0]
        K = min(p["path_k"], N)
        C = len(self.classes_)
        fr = path_fractions(T, p["path_step_size"], Q.device, Q.dtype)
        sw = step_log_weights(T, p["step_weight_mode"], p["step_gamma"], Q.device, Q.dtype)
        bandwidth = (p["path_gamma"] * self.radius_).to(Q.dtype)
        per_row = K * (3 * d + 2 * C + 3 * (T + 1) + 4 * K)  # 4 K: the (K, K) class weights
        per_row += C * d * (T + 2 if with_paths else 1)
        block = self.torch_q_block or max(1, min(n, (64 * 2**20) // max(per_row, 1)))
        out = torch.empty(n, C, dtype=Q.dtype, device=Q.device)
        paths = torch.empty(n, C, T + 1, d, dtype=Q.dtype, device=Q.device) if with_paths else None
        for start in range(0, n, block):
            q = Q[start : start + block]
            d2, idx = blockops.knn(
                q, self.bank_X_, K, q_block=self.torch_q_block, db_block=self.torch_db_block
            )
            flat = idx.reshape(-1)
            nb_y = self.bank_y_.index_select(0, flat).view(idx.shape)
            nb_X = self.bank_X_.index_select(0, flat).view(*idx.shape, d)
            nb_logw = self._vote_logw.index_select(0, flat).view(idx.shape)
            nb_bw = bandwidth[nb_y]
            logs = trend_path_scores(q, nb_X, d2, nb_y, nb_logw, nb_bw, C, fr, sw)
            bad = torch.isnan(logs).any(dim=1) | torch.isneginf(logs).all(dim=1)
            if bool(bad.any()):  # distances overflowed (far queries): K-NN majority instead
                votes = torch.zeros(int(bad.sum()), C, dtype=logs.dtype, device=logs.device)
                votes.scatter_add_(1, nb_y[bad], torch.ones_like(nb_y[bad], dtype=logs.dtype))
                logs[bad] = votes.log()
            out[start : start + block] = logs
            if paths is not None:
                logk0 = nb_logw - d2 * (0.5 / nb_bw.square())
                targets = class_targets(q, nb_X, nb_y, logk0, C)
                paths[start : start + block] = (
                    q[:, None, None, :]
                    + fr[None, None, :, None] * (targets - q[:, None, :])[:, :, None, :]
                )
        return out, paths, Q

    def trend_paths(self, X: Any, path_steps: int | None = None) -> dict[str, torch.Tensor]:
        """Trend paths of every query toward every class, with the scores predict uses.

        Args:
            X: ``(n, d)`` queries.
            path_steps: steps per path (``None``: the fitted ``path_steps``).

        Returns:
            dict with ``"paths"`` ``(n, n_classes, steps + 1, d)`` positions in input space
            (step 0 is the query; a class absent from the query's neighbours stays at the
            query, and so does every class of a query too far away for its kernel weights,
            which takes ``predict``'s neighbour-majority fallback), ``"scores"``
            ``(n, n_classes)`` trend-path scores scaled so each row's best is 1 (0 for classes
            absent from the neighbours), ``"log_scores"`` their natural log before scaling
            (``-inf`` where absent) and ``"winner"`` ``(n,)`` long class codes.
        """
        if path_steps is not None and (
            isinstance(path_steps, bool)
            or not isinstance(path_steps, numbers.Integral)
            or path_steps < 0
        ):
            raise ValueError(f"path_steps must be a non-negative int or None, got {path_steps!r}")
        logs, paths, _ = self._scores(X, None if path_steps is None else int(path_steps), True)
        scores = torch.exp(logs - logs.max(dim=1, keepdim=True).values)
        return {
            "paths": paths,
            "scores": scores,
            "log_scores": logs,
            "winner": logs.argmax(dim=1),
        }

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``: the trend-path scores normalised per row."""
        logs, _, _ = self._scores(X, None, False)
        return torch.softmax(logs.double(), dim=1).cpu().numpy()

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba` ``(n, n_classes)``, computed in log space (``-inf``
        for classes absent from a query's neighbours), as scikit-learn classifiers offer."""
        logs, _, _ = self._scores(X, None, False)
        return torch.log_softmax(logs.double(), dim=1).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels ``(n,)``: the class with the largest trend-path score."""
        logs, _, _ = self._scores(X, None, False)
        return self._enc.inverse_transform(logs.argmax(dim=1).cpu())

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy of ``predict(X)`` against ``y``, optionally weighted by ``sample_weight``.

        As scikit-learn's ``accuracy_score``: a row whose label was never seen in training
        counts as an error (it cannot be predicted), not as an exception.

        Raises:
            ValueError: ``y`` is not 1-D with one label per row of ``X``, holds NaN, continuous
                (non-integer) or complex values, or mixes strings with the model's numeric
                labels (or numbers with its string labels); ``sample_weight`` is not 1-D of
                that length, not finite, or sums to 0; ``X`` is invalid as for ``predict``.
        """
        self._check_fitted()
        self._check_blocks()
        _reject_sparse(X)
        Q = blockops.as_tensor(X, name="X", device=self.device_)
        self._check_width(Q)
        truth = blockops.as_labels(y, name="y", n_samples=Q.shape[0])
        _reject_continuous(truth)
        _check_label_kinds(truth, self.classes_)
        logs, _, _ = self._scores(Q, None, False)
        hits = logs.argmax(dim=1).cpu().numpy() == self._codes_or_unseen(truth)
        return self._weighted_accuracy(hits, sample_weight)

    def _codes_or_unseen(self, labels: np.ndarray) -> np.ndarray:
        """Class codes of ``labels (n,)``, ``-1`` for labels never seen in training."""
        classes = set(self.classes_.tolist())
        known = np.fromiter((v in classes for v in labels.tolist()), bool, len(labels))
        codes = np.full(len(labels), -1, dtype=np.int64)
        if known.any():
            codes[known] = self._enc.transform(labels[known]).numpy()
        return codes

    # ------------------------------------------------------------------ introspection
    def get_fitted_params(self) -> dict[str, Any]:
        """The effective parameters after preset resolution, plus the preset used.

        ``"random_state"`` is the seed actually used; ``"preset_resolved"`` is the shipped
        preset name (what ``"auto"`` picked) or the YAML path.
        """
        self._check_fitted()
        out = dict(self._params)
        out["preset"] = self.preset if isinstance(self.preset, str) else os.fspath(self.preset)
        out["preset_resolved"] = self.preset_resolved_
        return out

    def export_fixed_yaml(self, path: str | os.PathLike[str], include_meta: bool = True) -> Path:
        """Write the effective parameters as a YAML preset.

        Passing the file back as ``PyEGM(preset=path)`` and fitting on the same data on the same
        device reproduces this model's predictions exactly (the seed is included).

        Args:
            path: file to write (parent directories are created).
            include_meta: add a ``_meta`` block (package version, preset, dataset statistics,
                time); it is ignored when the file is read back.

        Returns:
            the path written.

        Raises:
            IsADirectoryError: ``path`` is an existing directory (name the file inside it).
        """
        self._check_fitted()
        _check_path("path", path)
        if Path(path).is_dir():
            raise IsADirectoryError(
                f"path {os.fspath(path)!r} is a directory; export_fixed_yaml writes one YAML "
                f"file, e.g. {os.fspath(Path(path) / 'pyegm_fixed.yaml')!r}"
            )
        data: dict[str, Any] = dict(self._params)
        if include_meta:
            data["_meta"] = {
                "package": "egm-core",
                "version": __version__,
                "preset": self.get_fitted_params()["preset"],
                "preset_resolved": self.preset_resolved_,
                "dataset": dict(self.dataset_stats_),
                "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                yaml.safe_dump(data, fh, sort_keys=False)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Save to ``directory`` (atomic): ``config.yaml`` + ``tensors.pt`` + ``meta.json``.

        Labels must be ints, floats, strings or bools to be saved. No pickle is used.
        """
        self._check_fitted()
        _check_path("directory", directory)
        labels = [c.item() if isinstance(c, np.generic) else c for c in self.classes_.tolist()]
        for c in labels:
            if not isinstance(c, (int, float, str, bool)):
                raise TypeError(
                    f"cannot save label {c!r} of type {type(c).__name__}; labels must be "
                    "int, float, str or bool"
                )
        params = {k: _plain_value(v) for k, v in self.get_params(deep=False).items()}
        params["platform"] = str(params["platform"])
        if params["random_state"] is not None and not isinstance(
            params["random_state"], numbers.Integral
        ):
            params["random_state"] = None
        if isinstance(params["preset"], os.PathLike):
            params["preset"] = os.fspath(params["preset"])
        config = {
            "format": _FORMAT,
            "params": params,
            "resolved": dict(self._params),
            "preset_resolved": self.preset_resolved_,
            "classes": labels,
            "classes_dtype": None if self.classes_.dtype == object else self.classes_.dtype.str,
            "n_features_in": int(self.n_features_in_),
            "dataset_stats": dict(self.dataset_stats_),
            "state": {
                "seed": int(self.seed_),
                "n_growth_calls": int(self.n_growth_calls_),
                "iteration": int(self.iteration_),
                "session": int(self.session_),
            },
            "history": self.history_,
        }
        tensors = {name: getattr(self, name) for name in _checkpoint.TENSOR_SPECS}
        meta = {
            "package": "egm-core",
            "version": __version__,
            "model": "PyEGM",
            "device": str(self.device_),
        }
        return blockops.save_checkpoint(directory, config, tensors, meta)

    @classmethod
    def load(cls, directory: str | os.PathLike[str], platform: str = "auto") -> PyEGM:
        """Load a model saved by :meth:`save` onto ``platform`` (a GPU model loads on CPU).

        ``platform="auto"`` uses CUDA when available; asking for CUDA where there is none warns
        and loads on the CPU.

        Raises:
            FileNotFoundError: no checkpoint there.
            ValueError: truncated, edited or inconsistent checkpoint, or not an egm-core one.
            TypeError: ``directory`` is not a path.
        """
        _check_path("directory", directory)
        try:
            device = blockops.resolve_device(platform)
        except ValueError:
            if "cuda" not in str(platform).lower():
                raise
            warnings.warn(
                f"platform={platform!r} asks for CUDA, which is not available here; "
                "loading the model on the CPU",
                stacklevel=2,
            )
            device = torch.device("cpu")
            platform = "cpu"
        config, tensors, meta = blockops.load_checkpoint(directory, map_location=device)
        if meta.get("package") != "egm-core" or config.get("format") != _FORMAT:
            raise ValueError(f"{str(directory)!r} is not an egm-core PyEGM checkpoint")
        try:
            model = cls._from_checkpoint(config, tensors, device, platform)
        except KeyError as exc:
            raise ValueError(f"checkpoint {str(directory)!r} is incomplete: no {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise ValueError(f"checkpoint {str(directory)!r} is invalid: {exc}") from exc
        model._refresh()
        return model

    @classmethod
    def _from_checkpoint(
        cls,
        config: dict[str, Any],
        tensors: dict[str, torch.Tensor],
        device: torch.device,
        platform: str,
    ) -> PyEGM:
        """A model from a checkpoint's config and tensors, every entry checked first."""
        _checkpoint.check_config(config)
        params = dict(config["params"])
        params["platform"] = platform
        model = cls(**params)
        if not isinstance(model.preset, str):
            raise TypeError(f"params.preset must be a string, got {model.preset!r}")
        model._check_blocks()
        resolved = config["resolved"]
        unknown = set(resolved) - set(_config.SPECS)
        missing = set(_config.SPECS) - set(resolved)
        if unknown or missing:
            raise ValueError(
                f"resolved parameters: unknown {sorted(unknown)}, missing {sorted(missing)}"
            )
        resolved = {k: _config.check_value(k, v) for k, v in resolved.items()}
        if resolved["adaptive_radius_mode"] == "fixed" and resolved["fixed_radius"] is None:
            raise ValueError("resolved adaptive_radius_mode='fixed' needs a fixed_radius")
        model._params = resolved
        model.preset_resolved_ = config["preset_resolved"]
        model.device_ = device
        enc = blockops.LabelEncoder()
        labels = config["classes"]
        enc.fit(labels[:1])
        for lab in labels[1:]:
            enc.partial_fit([lab])
        dtype = config.get("classes_dtype")  # the labels' own (int32, ...), not int64
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype.kind not in "biufU":
                raise ValueError(f"unsupported classes_dtype {dtype.str!r}")
            enc.classes_ = enc.classes_.astype(dtype)
        model._enc = enc
        model.classes_ = enc.classes_
        model.n_features_in_ = int(config["n_features_in"])
        model.dataset_stats_ = dict(config["dataset_stats"])
        state = config["state"]
        model.seed_ = int(state["seed"])
        model.n_growth_calls_ = int(state["n_growth_calls"])
        model.iteration_ = int(state["iteration"])
        model.session_ = int(state["session"])
        model.history_ = list(config["history"])
        checked = _checkpoint.check_tensors(tensors, len(labels), model.n_features_in_)
        for name, value in checked.items():
            setattr(model, name, value.to(device))
        return model

    # ------------------------------------------------------------------ faces
    def visualize_explosion(self, X: Any = None, y: Any = None, **kwargs: Any) -> Any:
        """Draw the growth and trend paths with egm-viz (``pip install egm-viz``).

        Returns whatever ``egm_viz.visualize_explosion(self, X, y, **kwargs)`` returns. The
        model is not modified.
        """
        try:
            import egm_viz
        except ImportError as exc:
            raise ImportError(
                "visualize_explosion needs the egm-viz package: pip install egm-viz"
            ) from exc
        return egm_viz.visualize_explosion(self, X, y, **kwargs)


def _plain_value(value: Any) -> Any:
    """numpy scalars to Python ones so the YAML config stays safe."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def _median(values: torch.Tensor) -> float:
    """The median of ``values`` as numpy computes it: the mean of the two middle values for an
    even count (``torch.median`` returns the lower one)."""
    ordered = values.flatten().sort().values
    n = ordered.numel()
    return (float(ordered[(n - 1) // 2]) + float(ordered[n // 2])) / 2.0


def _check_path(name: str, value: Any) -> None:
    """Refuse a ``value`` that is not a ``str`` or ``os.PathLike`` (``None``, say)."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike path, got {type(value).__name__}")


def _reject_sparse(X: Any) -> None:
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError("sparse input is not supported by PyEGM; pass a dense array (X.toarray())")


def _check_spread(*parts: torch.Tensor) -> None:
    """Refuse rows (the ``(n_i, d)`` parts together) whose squared distances would overflow
    float32, or would all underflow it (below its smallest normal, 1.2e-38, though the rows
    differ); computed in float64 blocks of rows (never a full-size copy)."""
    blocks = [p[i : i + _SPREAD_BLOCK] for p in parts for i in range(0, p.shape[0], _SPREAD_BLOCK)]
    centre = sum(b.double().sum(dim=0) for b in blocks) / sum(b.shape[0] for b in blocks)
    bound = 4.0 * max(float((b.double() - centre).square().sum(dim=1).max()) for b in blocks)
    if bound > torch.finfo(torch.float32).max:  # bound >= every squared distance
        raise ValueError(
            f"X spans too large a range: squared distances up to {bound:.3g} overflow float32 "
            "(max 3.4e38); rescale X, e.g. divide it by its standard deviation (PyEGM is "
            "scale-equivariant, so the predictions do not change)"
        )
    if 0.0 < bound < torch.finfo(torch.float32).tiny:  # bound / 4 <= the largest one
        raise ValueError(
            f"X spans too small a range: squared distances of at most {bound:.3g} underflow "
            "float32 (below its smallest normal number, 1.2e-38, they lose precision or "
            "vanish); rescale X, e.g. divide it by its standard deviation (PyEGM is "
            "scale-equivariant, so the predictions do not change)"
        )


def _reject_continuous(y: np.ndarray) -> None:
    """Labels must not be complex, and float labels must be whole numbers (not a regression)."""
    if y.dtype.kind == "c":
        raise ValueError(f"y: Complex data not supported (dtype {y.dtype}); pass class labels")
    if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
        raise ValueError(
            "Unknown label type: continuous target (non-integer float labels); PyEGM is a "
            "classifier, pass class labels"
        )


def _label_kind(labels: np.ndarray) -> str:
    """``"str"`` when every label is a string, ``"num"`` when every one is a number, else
    ``"mixed"``."""
    if labels.dtype.kind in "US":
        return "str"
    if labels.dtype.kind in "biuf":
        return "num"
    items = labels.tolist()
    if all(isinstance(v, (str, bytes, np.str_, np.bytes_)) for v in items):
        return "str"
    if all(isinstance(v, (numbers.Number, np.number, np.bool_)) for v in items):
        return "num"
    return "mixed"


def _check_label_kinds(y: np.ndarray, classes: np.ndarray) -> None:
    """Refuse string labels for a model with numeric classes and the reverse (what
    scikit-learn's metrics call a mix of label input types, in ``score`` and ``partial_fit``);
    unseen labels of the right kind are fine."""
    kind = _label_kind(y)
    if {kind, _label_kind(classes)} == {"str", "num"}:
        held = "strings" if kind == "str" else "numbers"
        raise ValueError(
            f"Mix of label input types (string and number): y holds {held}, the model's "
            f"classes_ are {classes.tolist()}"
        )


def _labels_within(y: np.ndarray, classes: Any) -> np.ndarray:
    """``classes`` as a label array, refusing labels of ``y`` that are not among them."""
    extra = blockops.as_labels(classes, name="classes")
    allowed = {v.item() if isinstance(v, np.generic) else v for v in extra.tolist()}
    missing = [v for v in dict.fromkeys(y.tolist()) if v not in allowed]
    if missing:
        raise ValueError(
            f"y contains labels not in classes: {missing}; classes={extra.tolist()} must "
            "hold every label of y (leave classes out to add new labels)"
        )
    return extra


def _homogeneous(values: np.ndarray) -> np.ndarray:
    """Labels from an object array back to a plain array when they share one type."""
    items = [v.item() if isinstance(v, np.generic) else v for v in values.tolist()]
    if len({type(v) for v in items}) == 1:
        return np.array(items)
    return values


def _label_dtype(labels: np.ndarray, *dtypes: np.dtype) -> np.ndarray:
    """``labels (C,)`` cast to the dtype the given label dtypes promote to (uint8 labels stay
    uint8 rather than int64), else to the first of ``dtypes`` that holds them exactly: integer
    labels never become floats (uint64 and int64 promote to float64). Labels of mixed types
    (object) are returned as they are, except ints mixed with whole floats (an int model
    given ``7.0``), which take the first dtype holding them all exactly, the model's own first:
    numeric labels in an object array are "unknown" targets to scikit-learn's metrics."""
    if any(np.dtype(dt).kind == "O" for dt in dtypes):
        return labels
    if labels.dtype.kind == "O":  # ints met (whole) floats: 3 and 3.0, not a mixed-type set
        items = labels.tolist()
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            return labels
        for dtype in dict.fromkeys((np.dtype(dtypes[0]), np.result_type(*dtypes), *dtypes)):
            try:
                with np.errstate(all="ignore"):
                    cast = labels.astype(dtype)
            except (OverflowError, ValueError):  # e.g. 300 for uint8 labels
                continue
            if all(a == b for a, b in zip(cast.tolist(), items)):  # exact, big ints included
                return cast
        return labels
    for dtype in (np.result_type(*dtypes), *dtypes):
        if np.dtype(dtype).kind == "f" and labels.dtype.kind != "f":
            continue
        cast = labels.astype(dtype)
        if np.array_equal(cast, labels):
            return cast
    return labels


def _water_fill(
    keep: torch.Tensor, candidates: torch.Tensor, labels: torch.Tensor, n_classes: int, budget: int
) -> None:
    """Keep at most ``budget`` candidates: the same cap per class, newest (highest index) kept."""
    counts = torch.bincount(labels[candidates], minlength=n_classes).tolist()
    lo, hi = 0, max(counts) if counts else 0
    while lo < hi:  # largest cap L with sum(min(count, L)) <= budget
        mid = (lo + hi + 1) // 2
        if sum(min(c, mid) for c in counts) <= budget:
            lo = mid
        else:
            hi = mid - 1
    caps = [min(c, lo) for c in counts]
    leftover = budget - sum(caps)
    for c in sorted(range(n_classes), key=lambda i: -counts[i]):  # one more for the largest
        if leftover <= 0:
            break
        if counts[c] > caps[c]:
            caps[c] += 1
            leftover -= 1
    idx = torch.nonzero(candidates).squeeze(1)
    lab = labels[idx]
    n = idx.numel()
    # within each class, rank 0 is the newest (highest bank index)
    order = torch.argsort(lab * (n + 1) + (n - torch.arange(n, device=idx.device)), stable=True)
    ranked_lab = lab[order]
    first = torch.searchsorted(ranked_lab, ranked_lab, right=False)
    rank = torch.arange(n, device=idx.device) - first
    cap_t = torch.as_tensor(caps, dtype=torch.long, device=idx.device)
    drop = idx[order][rank >= cap_t[ranked_lab]]
    keep[drop] = False
