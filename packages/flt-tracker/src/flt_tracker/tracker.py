"""`FeatureTracker`: snapshots of parameters, gradients and probe activations after optimizer steps."""

from __future__ import annotations

import numbers
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .feature import Feature, _as_int, widen_overflowed
from .storage import (
    DiskStorage,
    MemoryBudgetError,
    MemoryStorage,
    Storage,
    auto_chunk_size,
    check_dtype,
    float16_overflows,
    parse_bytes,
    storage_dtype,
)

__all__ = ["FeatureTracker", "float_dtype", "unwrap_model"]


def _is_compiled(model: nn.Module) -> bool:
    """Whether ``model`` is a ``torch.compile`` wrapper (``OptimizedModule``)."""
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")  # loaded by any torch.compile
    wrapper = getattr(eval_frame, "OptimizedModule", None)
    return wrapper is not None and isinstance(model, wrapper)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside ``DistributedDataParallel`` / ``DataParallel`` / ``torch.compile``
    wrappers, however nested (else ``model`` itself)."""
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    while True:
        if isinstance(model, wrappers):
            model = model.module
        elif _is_compiled(model):
            model = model._orig_mod
        else:
            return model


def float_dtype(model: nn.Module) -> torch.dtype | None:
    """The one floating dtype of ``model``'s parameters now (None: none, or several)."""
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    return dtypes.pop() if len(dtypes) == 1 else None


def _as_input(x: torch.Tensor, device: torch.device, dtype: torch.dtype | None) -> torch.Tensor:
    """``x`` on ``device``; a floating ``x`` cast to ``dtype`` when given."""
    return x.to(device, dtype if dtype is not None and x.is_floating_point() else None)


# folders (with the separator: "torch" is a prefix of "torchvision" too)
_INTERNAL = tuple(str(Path(f).parent) + os.sep for f in (__file__, torch.__file__))


def _outside_depth() -> int:
    """Frames between the caller and the first frame outside flt_tracker and torch (whose
    optimizer wrapper runs the step hooks): 1 for the caller's caller."""
    frame, depth = sys._getframe(2), 1
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame, depth = frame.f_back, depth + 1
    return depth


def _listing(names: list[str], limit: int = 60) -> str:
    shown = names[:limit]
    more = f" ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(repr(n) for n in shown) + more


class FeatureTracker:
    """Record how chosen layers' parameters evolve during training, one snapshot per optimizer step.

    Snapshots are taken **after** the optimizer step: either automatically (pass ``optimizer``;
    the tracker registers an optimizer step post-hook while tracking) or by calling
    :meth:`step` right after ``optimizer.step()``. Forwards never record, so validation,
    ``torch.no_grad`` evaluation and adversarial-attack forwards leave no trace. Every snapshot
    is tagged with the global step (optimizer steps since tracking began; the initial weights are
    step 0), the epoch and the batch index within the epoch.

    Args:
        model: the model (``DistributedDataParallel``, ``DataParallel`` and ``torch.compile``
            wrappers are looked through: names are those of the wrapped module).
        layers: module names (all their parameters are tracked) and/or parameter names from
            ``model.named_parameters()`` (e.g. a raw ``nn.Parameter`` ``"W"``); a single string
            is one name; ``None`` tracks every parameter. Unknown names raise ``ValueError``
            listing the valid ones.
        track_weights: record parameter values, features ``"<param>"``.
        track_gradients: record the gradients the step used, features ``"<param>.grad"``.
        track_frequency: record every N-th optimizer step (steps N, 2N, ...).
        track_activations: ``True`` records the outputs of the modules named in ``layers``
            on ``probe`` (there a module without parameters, such as a ReLU, may be named);
            a list names the modules; features ``"<module>.output"``. The probe forward runs in
            eval mode under ``torch.no_grad`` and restores each module's training flag.
        probe: fixed input batch (tensor, or tuple of tensors) for ``track_activations``; moved
            to the model's device and its floating tensors cast to the model's floating dtype
            at each recording. Given without ``track_activations`` it is a ``ValueError``.
        optimizer: attach step post-hooks to this optimizer (see :meth:`attach_optimizer`).
        storage: ``"memory"`` (preallocated CPU blocks) or ``"disk"`` (chunk files in
            ``directory``, readable after a crash with :func:`flt_tracker.load_run`).
        directory: folder of the disk backend.
        dtype: storage dtype (``torch.float16`` halves memory); ``None`` keeps the tensors'
            own (float32 for bfloat16), also when the model is cast to a wider dtype after
            :meth:`start` (``model.double()``): those series are widened from that snapshot on,
            earlier ones converted exactly, with a ``RuntimeWarning``. With float16, each
            recording checks the values first (their peak magnitudes, one host synchronisation
            per device for all series): a
            series about to store a finite value beyond float16's range (``|x| > 65504``, which
            float16 turns into ``inf``) is switched to float32 from that snapshot on, earlier
            snapshots converted exactly, and a
            :class:`~flt_tracker.storage.Float16OverflowWarning` names the series, its layer
            and the step. A diverging run thus keeps its values; such a series takes twice the
            memory per snapshot, beyond its share of ``memory_budget``.
        memory_budget: most bytes of snapshot memory (int or ``"512MB"``); shared equally in
            snapshot count between the tracked series. ``None`` keeps every recorded snapshot
            in RAM (a 4096 x 4096 float32 weight is 64 MiB per recorded step). With
            ``storage="disk"`` it bounds the backend's RAM buffers instead (checked at
            :meth:`start`; every snapshot is kept on disk).
        budget_policy: at the budget, ``"error"`` raises
            :class:`~flt_tracker.storage.MemoryBudgetError`; ``"downsample"`` halves the
            resolution (keeps every other snapshot) so the series still span the whole run
            (up to the last step on the stride, not necessarily the final weights).
            ``"downsample"`` needs ``storage="memory"`` and a ``memory_budget`` (the disk
            backend keeps every snapshot with bounded RAM; without a budget nothing is ever
            thinned), else it is a ``ValueError``.
        preallocate: memory storage with a ``memory_budget`` only: allocate and write the whole
            budget in :meth:`start`, so recording never lands in fresh memory (whose page faults
            can cost several times the copy itself) and a shortage of RAM fails at the start,
            not mid-run. The start then takes about ``memory_budget`` / fresh-memory bandwidth.
        chunk_size: snapshots per preallocated block / per chunk file; ``None`` picks about
            16 MiB per block for each series.
        record_initial: record the weights (and probe activations) at :meth:`start` as step 0.
        fsync: disk backend only (with ``storage="memory"`` a ``ValueError``): ``fsync`` every
            chunk before it is renamed into place.
        async_copy: CPU parameters only: copy weight and activation snapshots on a helper
            thread, overlapping the next forward and backward; the tracker waits for the copies
            in an optimizer step *pre*-hook, before the parameters change. Needs ``optimizer``
            and parameters that change only in ``optimizer.step()`` (gradients are always
            copied synchronously). Off by default.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> tracker = FeatureTracker(model, layers=["0"], optimizer=opt)
        >>> with tracker:
        ...     model(torch.randn(8, 4)).sum().backward()
        ...     opt.step()
        >>> torch.equal(tracker.get_feature("0.weight").get_latest(), model[0].weight.detach())
        True
    """

    def __init__(
        self,
        model: nn.Module,
        layers: list[str] | str | None = None,
        track_weights: bool = True,
        track_gradients: bool = False,
        track_frequency: int = 1,
        *,
        track_activations: bool | list[str] = False,
        probe: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        storage: str = "memory",
        directory: str | os.PathLike[str] | None = None,
        dtype: torch.dtype | None = None,
        memory_budget: int | str | None = None,
        budget_policy: str = "error",
        preallocate: bool = False,
        chunk_size: int | None = None,
        record_initial: bool = True,
        fsync: bool = False,
        async_copy: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(track_frequency, bool) or not isinstance(track_frequency, numbers.Integral):
            raise TypeError(f"track_frequency must be a positive int, got {track_frequency!r}")
        if track_frequency < 1:
            raise ValueError(f"track_frequency={track_frequency} must be >= 1")
        track_frequency = int(track_frequency)  # a numpy integer is accepted
        if probe is not None and not (
            isinstance(probe, torch.Tensor)
            or (
                isinstance(probe, tuple | list)
                and probe
                and all(isinstance(t, torch.Tensor) for t in probe)
            )
        ):
            raise TypeError(
                "probe must be a tensor or a tuple of tensors (the model's positional inputs), "
                f"got {type(probe).__name__}; convert arrays with torch.as_tensor"
            )
        if storage not in ("memory", "disk"):
            raise ValueError(f"storage={storage!r} is not supported; use 'memory' or 'disk'")
        if storage == "disk" and directory is None:
            raise ValueError("storage='disk' needs a directory")
        if storage == "memory" and directory is not None:  # was ignored: nothing written there
            raise ValueError(
                f"directory={os.fspath(directory)!r} is only used with storage='disk'; "
                "with storage='memory' save the run with tracker.save(directory)"
            )
        if storage == "memory" and fsync:  # was ignored: nothing is written to sync
            raise ValueError(
                "fsync=True is only used with storage='disk' (it syncs each chunk file); "
                "tracker.save(directory) of a memory run writes its files atomically"
            )
        if budget_policy not in ("error", "downsample"):
            raise ValueError(f"budget_policy={budget_policy!r}; use 'error' or 'downsample'")
        if budget_policy == "downsample" and storage == "disk":
            raise ValueError(
                "budget_policy='downsample' needs storage='memory': storage='disk' keeps every "
                "snapshot on disk with RAM bounded by a few chunks (memory_budget checks that "
                "bound), so there is nothing to downsample; use storage='memory' with a "
                "memory_budget, or record less often with track_frequency"
            )
        if budget_policy == "downsample" and memory_budget is None:
            raise ValueError(
                "budget_policy='downsample' needs a memory_budget: it thins the series when "
                "they reach the budget, and without one they grow unbounded and are never "
                "downsampled; pass memory_budget (e.g. '512MB'), or record less often with "
                "track_frequency"
            )
        if preallocate and (storage != "memory" or memory_budget is None):
            raise ValueError(
                "preallocate=True needs storage='memory' and a memory_budget (what to reserve)"
            )
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral)
        ):
            raise TypeError(f"chunk_size={chunk_size!r} must be a positive integer or None")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size={chunk_size!r} must be a positive integer or None")
        self.model = model
        self.module = unwrap_model(model)
        self.track_weights = bool(track_weights)
        self.track_gradients = bool(track_gradients)
        self.track_frequency = track_frequency
        self.storage_kind = storage
        self.directory = None if directory is None else Path(directory)
        self.dtype = check_dtype(dtype)
        self.memory_budget = parse_bytes(memory_budget)
        self.budget_policy = budget_policy
        self.preallocate = bool(preallocate)
        self.chunk_size = None if chunk_size is None else int(chunk_size)
        self.record_initial = bool(record_initial)
        self.fsync = bool(fsync)
        self.async_copy = bool(async_copy)
        self._executor: Any = None
        self._pre_handle: Any = None

        self.layers = [layers] if isinstance(layers, str) else layers
        self._params = self._resolve_params(self.layers, outputs_only=track_activations is True)
        self._act_modules = self._resolve_activations(track_activations)
        if self._act_modules and probe is None:
            raise ValueError("track_activations needs a fixed probe batch: pass probe=...")
        if probe is not None and not self._act_modules:  # was ignored: no activation recorded
            raise ValueError(
                "probe is only used with track_activations: pass track_activations=True (the "
                "modules named in layers) or a list of module names, or leave probe out"
            )
        self.probe = probe
        if not (self.track_weights or self.track_gradients or self._act_modules):
            raise ValueError(
                "nothing to track: enable track_weights, track_gradients or track_activations"
            )

        self._features: dict[str, Feature] = {}
        self._param_of: dict[str, nn.Parameter] = {}
        self.phases: list[tuple[int, str]] = []
        self.global_step = 0
        self.epoch = 0
        self.batch_idx = 0
        self.is_tracking = False
        self._initialised = False
        self._closed = False  # a disk run finished by close()
        self._weight_jobs: list[tuple[Storage, nn.Parameter]] = []
        self._grad_jobs: list[tuple[Storage, nn.Parameter]] = []
        self._half_jobs: list[tuple[Feature, nn.Parameter, bool]] = []
        self._half = False
        self._param_dtypes: list[torch.dtype] = []  # the tracked parameters' dtypes last seen
        self._optimizer: torch.optim.Optimizer | None = None
        self._hook_handle: Any = None
        self._stepped_this_batch = False
        if optimizer is not None:
            self.attach_optimizer(optimizer)

    # -- name resolution -------------------------------------------------------------------
    def _resolve_params(
        self, layers: list[str] | None, outputs_only: bool = False
    ) -> dict[str, tuple[str, nn.Parameter]]:
        """The tracked parameters by name; with ``outputs_only`` a module without parameters
        (a ReLU) may be named: ``track_activations=True`` records its outputs."""
        # every name, aliases included: a tied parameter or a shared module answers to each of
        # its names (``None`` still tracks each parameter once, under its first name)
        modules = dict(self.module.named_modules(remove_duplicate=False))
        params = dict(self.module.named_parameters(remove_duplicate=False))
        if not params:
            raise ValueError("model has no parameters to track")
        if layers is None:
            return {
                n: (n.rsplit(".", 1)[0] if "." in n else n, p)
                for n, p in self.module.named_parameters()
            }
        if not isinstance(layers, list | tuple) or not all(isinstance(n, str) for n in layers):
            raise TypeError(f"layers must be a list of names, a name or None, got {layers!r}")
        if not layers:
            raise ValueError(
                f"layers={layers!r} names nothing to track; pass None to track every parameter"
            )
        unknown = [n for n in layers if n not in params and (n not in modules or n == "")]
        if unknown:
            raise ValueError(
                f"unknown layer name(s) {unknown}; valid module names: "
                f"{_listing([n for n in modules if n])}; valid parameter names: "
                f"{_listing(list(params))}"
            )
        chosen: dict[str, tuple[str, nn.Parameter]] = {}
        for name in layers:
            if name in params:
                chosen[name] = (name.rsplit(".", 1)[0] if "." in name else name, params[name])
                continue
            found = list(modules[name].named_parameters())
            if not found and not outputs_only:
                raise ValueError(
                    f"module {name!r} has no parameters to track; to record its outputs on a "
                    "probe batch pass track_activations=True and probe=..."
                )
            for pname, p in found:
                chosen[f"{name}.{pname}"] = (name, p)
        return chosen

    def _resolve_activations(self, spec: bool | list[str]) -> dict[str, nn.Module]:
        modules = dict(self.module.named_modules(remove_duplicate=False))
        if spec is False or spec is None:
            return {}
        if spec is True:
            names = [n for n in (self.layers or []) if n in modules and n]
            if not names:
                raise ValueError(
                    "track_activations=True needs module names in layers; "
                    "or pass track_activations=[module names]"
                )
        else:
            names = [spec] if isinstance(spec, str) else list(spec)
            unknown = [n for n in names if n not in modules or n == ""]
            if unknown:
                raise ValueError(
                    f"unknown module name(s) {unknown} in track_activations; valid module names: "
                    f"{_listing([n for n in modules if n])}"
                )
        return {n: modules[n] for n in names}

    # -- lifecycle -------------------------------------------------------------------------
    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> FeatureTracker:
        """Record automatically after every ``optimizer.step()`` while tracking.

        Uses ``optimizer.register_step_post_hook``; with an optimizer attached, calling
        :meth:`step` by hand is an error (it would count the step twice).
        """
        if not hasattr(optimizer, "register_step_post_hook"):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if self._hook_handle is not None:
            self._hook_handle.remove()
            self._hook_handle = None
        if self._pre_handle is not None:
            self._pre_handle.remove()
            self._pre_handle = None
        self._optimizer = optimizer
        if self.is_tracking:
            self._hook_handle = optimizer.register_step_post_hook(self._on_optimizer_step)
            if self._executor is not None:
                self._pre_handle = optimizer.register_step_pre_hook(self._wait_copies)
        return self

    def _on_optimizer_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self._advance()

    def start(self) -> FeatureTracker:
        """Begin (or resume) tracking. Resuming keeps every recorded snapshot and the step count.

        Raises:
            RuntimeError: a disk-backed tracker was closed (its run is finished on disk).
        """
        if self.is_tracking:
            return self
        if self._closed:
            raise RuntimeError(
                f"cannot start: the disk run at {self.directory} was finished by close(); "
                "track a new run with a new FeatureTracker and a fresh directory"
            )
        if not self._initialised:
            self._initialise()
        self.is_tracking = True
        if self._optimizer is not None:
            self._hook_handle = self._optimizer.register_step_post_hook(self._on_optimizer_step)
            if self._executor is not None:
                self._pre_handle = self._optimizer.register_step_pre_hook(self._wait_copies)
        if self.record_initial and not any(len(f) for f in self._features.values()):
            self._record(batch_idx=-1, initial=True)
        return self

    def stop(self) -> FeatureTracker:
        """Stop tracking (hooks removed, pending copies and disk chunks flushed); history is kept."""
        if self._hook_handle is not None:
            self._hook_handle.remove()
            self._hook_handle = None
        if self._pre_handle is not None:
            self._pre_handle.remove()
            self._pre_handle = None
        self.is_tracking = False
        self.flush()
        return self

    def _wait_copies(self, *args: Any) -> None:
        for f in self._features.values():
            if f.storage is not None:
                f.storage.synchronize()

    def __enter__(self) -> FeatureTracker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def on_epoch_start(self, epoch: int) -> None:
        """Set the epoch of the following snapshots and reset the batch index to 0."""
        self.epoch = _as_int(epoch, "epoch")  # 2.5 is an error, not epoch 2
        self.batch_idx = 0
        self._stepped_this_batch = False

    def on_batch_end(self, batch_idx: int) -> None:
        """Mark batch ``batch_idx`` as done; the next batch is ``batch_idx + 1``.

        With no optimizer attached and no :meth:`step` call during this batch, this counts as
        the optimizer step (call it after ``optimizer.step()``), as in the classic loop.
        """
        batch_idx = _as_int(batch_idx, "batch_idx")
        if self.is_tracking and self._optimizer is None and not self._stepped_this_batch:
            self.batch_idx = batch_idx
            self._advance()
        self.batch_idx = batch_idx + 1
        self._stepped_this_batch = False

    def set_phase(self, name: str) -> None:
        """Start a named phase (e.g. ``"clean"``, ``"adversarial"``) at the current global step."""
        if self.phases and self.phases[-1][1] == str(name):
            return
        self.phases.append((self.global_step, str(name)))
        self._write_manifest()

    def step(self, batch_idx: int | None = None) -> bool:
        """Count one optimizer step and record if it is a tracked step. Call after ``optimizer.step()``.

        Args:
            batch_idx: batch index within the epoch (default: the tracker's own count).

        Returns:
            Whether snapshots were recorded.

        Raises:
            RuntimeError: an optimizer is attached (its hook already counts the step).
        """
        if self._optimizer is not None:
            raise RuntimeError(
                "an optimizer is attached: its step hook records automatically; "
                "do not also call tracker.step()"
            )
        if batch_idx is not None:
            self.batch_idx = _as_int(batch_idx, "batch_idx")
        return self._advance()

    def _advance(self) -> bool:
        if not self.is_tracking:
            return False
        self.global_step += 1
        self._stepped_this_batch = True
        if self.global_step % self.track_frequency:
            return False
        self._record(batch_idx=self.batch_idx)
        return True

    # -- storage ---------------------------------------------------------------------------
    def _probe_outputs(self) -> dict[str, torch.Tensor]:
        outputs: dict[str, torch.Tensor] = {}

        def hook_for(name: str):
            def hook(module: nn.Module, inputs: Any, output: Any) -> None:
                while isinstance(output, tuple | list):
                    output = output[0]
                outputs[name] = output.detach()

            return hook

        handles = [m.register_forward_hook(hook_for(n)) for n, m in self._act_modules.items()]
        modes = {m: m.training for m in self.module.modules()}
        try:
            self.module.eval()
            # the model's device and floating dtype now (it may have been cast since start)
            device = next(self.module.parameters()).device
            dtype = float_dtype(self.module)
            probe = self.probe
            with torch.no_grad():
                if isinstance(probe, tuple | list):
                    self.module(*[_as_input(p, device, dtype) for p in probe])
                else:
                    self.module(_as_input(probe, device, dtype))
        finally:
            for h in handles:
                h.remove()
            for m, mode in modes.items():
                m.training = mode
        return outputs

    def _specs(self) -> list[tuple[str, str, str, tuple[int, ...], torch.dtype, torch.device]]:
        specs = []
        for name, (layer, p) in self._params.items():
            if self.track_weights:
                specs.append((name, layer, "weight", tuple(p.shape), p.dtype, p.device))
            if self.track_gradients:
                specs.append((f"{name}.grad", layer, "grad", tuple(p.shape), p.dtype, p.device))
        if self._act_modules:
            outputs = self._probe_outputs()
            silent = [n for n in self._act_modules if n not in outputs]
            if silent:
                raise ValueError(
                    f"track_activations: module(s) {silent} did not run on the probe batch "
                    "(no output to record)"
                )
            for name, out in outputs.items():
                specs.append(
                    (f"{name}.output", name, "activation", tuple(out.shape), out.dtype, out.device)
                )
        return specs

    @staticmethod
    def _snapshot_sizes(specs: list, dtypes: list[torch.dtype]) -> list[int]:
        return [
            int(torch.Size(s[3]).numel()) * torch.empty((), dtype=d).element_size()
            for s, d in zip(specs, dtypes)
        ]

    def _initialise(self) -> None:
        specs = self._specs()
        dtypes = [storage_dtype(s[4], self.dtype) for s in specs]
        per_step = sum(self._snapshot_sizes(specs, dtypes))
        capacity = None
        if self.memory_budget is not None:
            if self.storage_kind == "memory":
                capacity = self.memory_budget // max(per_step, 1)
                if capacity < 2:
                    raise MemoryBudgetError(
                        f"memory_budget={self.memory_budget} B holds fewer than 2 snapshots of the "
                        f"tracked series ({per_step} B per recorded step); raise it, track fewer "
                        "layers or use dtype=torch.float16"
                    )
            else:
                blocks = DiskStorage.most_blocks()
                needed = blocks * sum(
                    auto_chunk_size(n, self.chunk_size) * n
                    for n in self._snapshot_sizes(specs, dtypes)
                )
                if needed > self.memory_budget:
                    raise MemoryBudgetError(
                        f"the disk backend buffers up to {blocks} chunks per series "
                        f"({needed} B in all), more than memory_budget={self.memory_budget} B; "
                        "lower chunk_size"
                    )
        if self.storage_kind == "disk":
            self.directory.mkdir(parents=True, exist_ok=True)
        if self.async_copy:
            if self._optimizer is None:
                raise ValueError(
                    "async_copy=True needs optimizer=... (its pre-step hook waits for copies)"
                )
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flt-copy")
        for i, ((name, layer, kind, shape, _, device), dtype) in enumerate(zip(specs, dtypes)):
            pin = device.type == "cuda"
            store: Storage
            if self.storage_kind == "memory":
                store = MemoryStorage(
                    shape,
                    dtype,
                    chunk_size=self.chunk_size,
                    capacity=capacity,
                    policy=self.budget_policy,
                    pin=pin,
                )
                if self.preallocate:
                    store.reserve()
            else:
                store = DiskStorage(
                    self.directory / f"f{i:04d}",
                    shape,
                    dtype,
                    chunk_size=self.chunk_size,
                    fsync=self.fsync,
                    pin=pin,
                )
            if self._executor is not None and device.type == "cpu" and kind != "grad":
                store.executor = self._executor
            self._features[name] = Feature(name, layer, kind=kind, storage=store)
        self._folders = {name: f"f{i:04d}" for i, (name, *_rest) in enumerate(specs)}
        # what each recorded step copies, resolved once: (storage, parameter) pairs
        self._weight_jobs = [
            (self._features[name].storage, p)
            for name, (_, p) in self._params.items()
            if self.track_weights
        ]
        self._grad_jobs = [
            (self._features[f"{name}.grad"].storage, p)
            for name, (_, p) in self._params.items()
            if self.track_gradients
        ]
        # float16 series whose values are checked for overflow before each recording
        self._half_jobs = [
            (self._features[name], p, False)
            for name, (_, p) in self._params.items()
            if self.track_weights
        ] + [
            (self._features[f"{name}.grad"], p, True)
            for name, (_, p) in self._params.items()
            if self.track_gradients
        ]
        self._half = any(f.storage.dtype == torch.float16 for f in self._features.values())
        self._param_dtypes = [p.dtype for _, p in self._params.values()]
        frozen = [n for n, (_, p) in self._params.items() if not p.requires_grad]
        if self.track_gradients and frozen:
            warnings.warn(
                f"track_gradients: {_listing(frozen)} do not require gradients (frozen), so "
                "their '.grad' series record nothing",
                RuntimeWarning,
                stacklevel=_outside_depth() + 1,  # + this method
            )
        self._initialised = True
        self._write_manifest()

    def _write_manifest(self) -> None:
        if self.storage_kind != "disk" or not self._initialised:
            return
        from .run import write_manifest

        write_manifest(self.directory, self._manifest(complete=False))

    def _manifest(self, complete: bool) -> dict[str, Any]:
        from .__about__ import __version__

        return {
            "format": "flt-tracker-run",
            "format_version": 1,
            "package": "flt-tracker",
            "package_version": __version__,
            "complete": complete,
            "track_frequency": self.track_frequency,
            "phases": [[s, n] for s, n in self.phases],
            "features": [
                {
                    "name": f.name,
                    "layer_name": f.layer_name,
                    "kind": f.kind,
                    "shape": list(f.storage.shape),
                    "dtype": str(f.storage.dtype).replace("torch.", ""),
                    "folder": self._folders[f.name],
                    **({"count": len(f)} if complete else {}),
                }
                for f in self._features.values()
            ],
        }

    def _widen_overflowing(
        self, step: int, initial: bool, outputs: dict[str, torch.Tensor] | None
    ) -> None:
        """Switch to float32 the float16 series whose next value overflows float16 (checked
        together: one host synchronisation per device), warning for each."""
        half = torch.float16
        offered: list[tuple[Feature, torch.Tensor]] = []
        for feature, p, is_grad in self._half_jobs:
            value = (None if initial else p.grad) if is_grad else p
            if feature.storage.dtype == half and value is not None and value.dtype != half:
                offered.append((feature, value))
        for name, out in (outputs or {}).items():
            feature = self._features[f"{name}.output"]
            if feature.storage.dtype == half and out.dtype != half:
                offered.append((feature, out))
        flags = float16_overflows([v for _, v in offered])
        widened = [f for (f, _), flag in zip(offered, flags) if flag]
        # warn at the user's line: a fixed stacklevel named tracker.py (the optimizer hook,
        # step(), start() and on_batch_end sit at different depths, under torch's step wrapper)
        level = _outside_depth() + 2  # + widen_overflowed and this method
        for feature in widened:
            widen_overflowed(feature, step, stacklevel=level)
        if widened:
            self._half = any(f.storage.dtype == half for f in self._features.values())
            self._write_manifest()  # a disk run's run.json names the new dtype before any chunk

    def _follow_casts(self, step: int, outputs: dict[str, torch.Tensor] | None) -> None:
        """With ``dtype=None`` (keep the tensors' own): widen the series whose parameter (or
        probe output) was cast to a wider float dtype since :meth:`start` (``model.double()``
        after a float32 start was rounded to float32 without a word), with one warning."""
        dtypes = [p.dtype for _, p in self._params.values()]
        if dtypes == self._param_dtypes and not outputs:
            return
        self._param_dtypes = dtypes
        offered = [(f, p.dtype) for f, p, _ in self._half_jobs] + [
            (self._features[f"{name}.output"], out.dtype) for name, out in (outputs or {}).items()
        ]
        widened = []
        for feature, source in offered:
            want = storage_dtype(source, None)
            if want.itemsize > feature.storage.dtype.itemsize:  # a narrower one is stored exactly
                widened.append(f"{feature.name!r} ({feature.storage.dtype} -> {want})")
                feature.storage.promote(want)
        if widened:
            warnings.warn(
                f"the model was cast to a wider dtype after tracking started: series "
                f"{', '.join(widened)} are stored in the new dtype from step {step} on, earlier "
                "snapshots converted exactly (more memory per snapshot, beyond the share of "
                "memory_budget); pass dtype= to fix the storage dtype",
                RuntimeWarning,
                stacklevel=_outside_depth() + 1,  # + this method
            )
            self._half = any(f.storage.dtype == torch.float16 for f in self._features.values())
            self._write_manifest()

    def _check_order(self, step: int) -> None:
        """Refuse to record ``step`` into a series whose last step is not below it (a snapshot
        appended with ``Feature.append``, or ``global_step`` set back), as ``Feature.append``
        refuses it: ``get_at_step`` and the plots read a series' steps as sorted."""
        taken = {
            name: last
            for name, f in self._features.items()
            if (last := f.storage.last_step()) is not None and last >= step
        }
        if taken:
            raise ValueError(
                f"the tracker cannot record global step {step}: the series {taken} (name: last "
                "step) already reach it, and a series is ordered by step. Keep the tracker's "
                "series to the tracker (append your own snapshots to a Feature of your own) "
                "and do not set global_step back"
            )

    def _record(self, batch_idx: int, initial: bool = False) -> None:
        step, epoch = self.global_step, self.epoch
        self._check_order(step)
        outputs = self._probe_outputs() if self._act_modules else None
        if self.dtype is None:
            self._follow_casts(step, outputs)
        if self._half:
            self._widen_overflowing(step, initial, outputs)
        for store, p in self._weight_jobs:
            store.append(p.detach(), step, epoch, batch_idx)
        for store, p in self._grad_jobs:
            grad = None if initial else p.grad
            if grad is None:  # counted all the same: a downsampled series keeps the weights' steps
                store.skip()
            else:
                store.append(grad.detach(), step, epoch, batch_idx)
        if outputs:
            for name, out in outputs.items():
                self._features[f"{name}.output"].storage.append(out, step, epoch, batch_idx)

    # -- access ----------------------------------------------------------------------------
    def get_features(self) -> dict[str, Feature]:
        """Every tracked series by name (a new dict; the Feature objects are live)."""
        return dict(self._features)

    def get_feature(self, name: str) -> Feature:
        """One series by name, e.g. ``"0.weight"``, ``"0.weight.grad"``, ``"2.output"``.

        Raises:
            KeyError: unknown name (the message lists the tracked ones).
        """
        try:
            return self._features[name]
        except KeyError:
            if not self._initialised:
                raise KeyError(f"{name!r}: tracking has not started yet (call start())") from None
            raise KeyError(
                f"no tracked feature {name!r}; tracked: {list(self._features)}"
            ) from None

    @property
    def memory_nbytes(self) -> int:
        """Bytes of snapshot buffers currently held in RAM."""
        return sum(f.storage.memory_nbytes for f in self._features.values() if f.storage)

    def flush(self) -> None:
        """Wait for pending GPU copies; the disk backend writes its partial chunks."""
        for f in self._features.values():
            if isinstance(f.storage, DiskStorage):
                f.storage.flush()
            elif f.storage is not None:
                f.storage.synchronize()

    def close(self) -> None:
        """Stop, flush and close the disk writer threads (the run stays readable).

        A closed disk-backed tracker cannot :meth:`start` again.
        """
        self.stop()
        for f in self._features.values():
            if f.storage is not None:
                f.storage.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
            for f in self._features.values():
                if f.storage is not None:
                    f.storage.executor = None
        if self.storage_kind == "disk" and self._initialised:
            from .run import write_manifest

            write_manifest(self.directory, self._manifest(complete=True))
            self._closed = True

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Save every series, the phases and the settings to ``directory`` (atomic, no pickle).

        Read it back with :func:`flt_tracker.load_run`.

        Raises:
            RuntimeError: tracking never started (there is no series to save).
        """
        from .run import save_run

        if not self._initialised:  # was an empty run.json, read back as a run of no series
            raise RuntimeError(
                "nothing to save: tracking has not started (call start(), or train with the "
                "tracker, first)"
            )

        if self.is_tracking:
            warnings.warn(
                "saving while tracking: later snapshots are not in the saved copy", stacklevel=2
            )
        self.flush()
        return save_run(directory, self._manifest(complete=True), self._features)
