"""ContinualLearner: EWC and A-GEM for any ``nn.Module``, any loss and any device."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ._checks import check_count, check_number
from .kernels import agem_project, per_sample_squared_grads

__all__ = ["ContinualLearner", "EWCTerms", "empirical_fisher", "iter_batches", "split_batch"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_TARGETS = ("auto", "label", "input")


def _from_numpy(data: Any) -> Any:
    """numpy arrays, alone or as the items of a tuple / list, as tensors; anything else as is
    (a tuple of arrays was read as two batches, and a reference batch failed with an
    ``AttributeError``)."""
    if isinstance(data, np.ndarray):
        return torch.as_tensor(np.ascontiguousarray(data))  # negative strides: torch refuses
    if isinstance(data, (tuple, list)) and any(isinstance(d, np.ndarray) for d in data):
        kind = list if isinstance(data, list) else tuple
        return kind(_from_numpy(d) if isinstance(d, np.ndarray) else d for d in data)
    return data


def split_batch(batch: Any, target: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Split a batch into ``(inputs, targets)``.

    Args:
        batch: a tensor (inputs only) or a tuple/list ``(inputs, labels, ...)``; numpy arrays
            are read as tensors.
        target: ``"label"`` (second element), ``"input"`` (reconstruction: the inputs
            themselves) or ``"auto"`` (the labels when the batch has them, else the inputs).

    Returns:
        ``(x, t)``.

    Raises:
        ValueError: unknown ``target``, no labels for ``target="label"``, or inputs and targets
            with different first dimensions.
        TypeError: the inputs or targets are not tensors (a list, a Python number).
    """
    if target not in _TARGETS:
        raise ValueError(f"target={target!r} is not understood; expected one of {_TARGETS}")
    batch = _from_numpy(batch)
    if isinstance(batch, torch.Tensor):
        if target == "label":
            raise ValueError("target='label' but the batch is a single tensor without labels")
        return batch, batch
    if not isinstance(batch, (tuple, list)) or len(batch) == 0:
        raise TypeError(
            f"a batch must be a tensor or a non-empty tuple/list of tensors, got {type(batch).__name__}"
        )
    x = batch[0]
    _check_field("inputs", x, None)
    if target == "input" or (target == "auto" and len(batch) < 2):
        return x, x
    if len(batch) < 2:
        raise ValueError("target='label' but the batch has no second element")
    t = batch[1]
    _check_field("targets", t, x)
    if x.dim() == 0 or t.dim() == 0 or x.shape[0] != t.shape[0]:
        raise ValueError(
            f"the inputs and targets of a batch must share the first dimension, got shapes "
            f"{tuple(x.shape)} and {tuple(t.shape)}{_ONE_SAMPLE if t.dim() == 0 else ''}"
        )
    return x, t


_ONE_SAMPLE = (
    ": a single label makes (x, y) one sample, not a batch (a list of per-sample pairs is "
    "read as a list of batches); pass a Dataset, a DataLoader or stacked tensors (X, y)"
)


def _check_field(name: str, value: Any, x: torch.Tensor | None) -> None:
    """Refuse a batch field that is not a tensor (a list or a Python number failed later with
    "'list' object has no attribute 'is_floating_point'")."""
    if isinstance(value, torch.Tensor):
        return
    hint = _ONE_SAMPLE if x is not None and isinstance(value, numbers.Number) else ""
    raise TypeError(
        f"the {name} of a batch must be a tensor or a numpy array, got {type(value).__name__}{hint}"
    )


def _to_target(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Targets ``(n, ...)`` on ``device``; integer labels of any dtype (int32, uint8, bool)
    become int64, the dtype torch's classification losses take; floating targets are kept."""
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.long:
        return t.to(device)
    return t.to(device, torch.long)


def _to_input(x: torch.Tensor, like: torch.Tensor | None) -> torch.Tensor:
    """Inputs on the device of the parameter ``like``; floating inputs in its dtype (float64
    data for a float32 model, as the Trainer does)."""
    if like is None:
        return x
    if x.is_floating_point() and like.is_floating_point():
        return x.to(like.device, like.dtype)
    return x.to(like.device)


def _takes_classes(loss_fn: Any) -> bool:
    """Whether ``loss_fn`` is a cross-entropy / NLL loss (its integer targets are classes)."""
    if loss_fn in (F.cross_entropy, F.nll_loss):
        return True
    return isinstance(loss_fn, nn.CrossEntropyLoss | nn.NLLLoss)


def _is_labels(y: torch.Tensor) -> bool:
    """Whether ``y`` reads as class labels: 1-D, integer, not empty."""
    return y.dim() == 1 and y.numel() > 0 and not (y.is_floating_point() or y.is_complex())


def _check_label_range(y: torch.Tensor, n_outputs: int, where: str) -> None:
    """Refuse labels ``y`` outside ``0..n_outputs - 1`` (one host synchronisation on the GPU):
    ``cross_entropy`` failed with "Target 12 is out of bounds" (a device-side assert on CUDA)."""
    lo, hi = (int(v) for v in torch.aminmax(y.long()))
    if lo < 0 or hi >= n_outputs:
        raise ValueError(
            f"y holds the label {lo if lo < 0 else hi} in {where} but the model has {n_outputs} "
            f"outputs: labels must be in 0..{n_outputs - 1}; build the model with one output "
            "per class (scenario.n_classes)"
        )


def _collate_samples(data: Any) -> Any:
    """A map-style ``Dataset`` or a list of per-sample ``(x, y, ...)`` tuples (the original's
    memory format) as one batch ``[X, Y, ...]``; anything else as is (a list of pairs failed
    with "'tuple' object has no attribute 'shape'")."""
    if isinstance(data, Dataset) and not isinstance(data, torch.utils.data.IterableDataset):
        data = [data[i] for i in range(len(data))]  # type: ignore[arg-type]
    elif not (isinstance(data, list) and data and all(isinstance(s, (tuple, list)) for s in data)):
        return data
    if not data:
        raise ValueError("the reference batch is empty: no reference gradient to compute")
    return torch.utils.data.default_collate(data)


def _is_tensor_list(data: Any) -> bool:
    return isinstance(data, list) and bool(data) and all(isinstance(t, torch.Tensor) for t in data)


def _tensor_list_kind(data: list[torch.Tensor]) -> str:
    """Whether a list of tensors is the fields of one data set or a list of input batches.

    A list ``[x, y]`` reads naturally as the pair ``(x, y)``, but a list is also the plainest
    iterable of batches. The rule:

    * ``"fields"``: the tensors share the first dimension and differ in dtype or in their other
      dimensions (``[x (n, d) float, y (n,) int]``): they cannot be batches of one model's
      inputs, so the list is read as the tuple ``(x, y, ...)``.
    * ``"batches"``: the tensors have the same dtype and the same dimensions after the first
      (``list(x.split(64))``), except for the ambiguous case below.

    Raises:
        ValueError: exactly two tensors of the same shape and dtype (``[x, y]`` of a regression
            with as many outputs as inputs, or two equal batches: say which with a tuple
            ``(x, y)`` or a ``DataLoader`` / an iterator of batches), tensors differing both in
            their first and in their other dimensions, or a 0-d tensor.
    """
    if any(t.dim() == 0 for t in data):
        raise ValueError("data is a list holding a 0-d tensor: neither a batch nor a data set")
    first = data[0]
    homogeneous = all(t.dtype == first.dtype and t.shape[1:] == first.shape[1:] for t in data)
    same_n = all(t.shape[0] == first.shape[0] for t in data)
    if homogeneous:
        if len(data) == 2 and same_n:
            raise ValueError(
                "data is a list of two tensors of the same shape and dtype "
                f"{tuple(first.shape)}: it could be one (inputs, targets) pair or two batches. "
                "Pass a tuple (x, y) for one data set, or a DataLoader / an iterator "
                "(iter([...])) for batches"
            )
        return "batches"
    if not same_n:
        raise ValueError(
            "data is a list of tensors that are neither batches of one kind (same dtype and "
            "dimensions after the first) nor the fields of one data set (same first dimension): "
            f"shapes {[tuple(t.shape) for t in data]}"
        )
    return "fields"


def iter_batches(data: Any, batch_size: int = 64) -> Iterator[Any]:
    """Iterate over batches of ``data`` without worker processes.

    Args:
        data: a ``Dataset`` (batched with a ``DataLoader``, ``num_workers=0``), a tuple of tensors
            sharing the first dimension (chunked; numpy arrays are read as tensors, here and in
            a list), a single tensor or array (chunked) or any iterable of
            batches (a ``DataLoader``, a list of batches), passed through. A list of tensors is
            read by one rule: tensors sharing the first dimension but of different dtypes or
            other dimensions (``[x, y]`` with integer labels ``y``) are the fields of one data
            set, exactly like the tuple ``(x, y)``; tensors of one dtype and one shape after the
            first dimension (``list(x.split(64))``) are batches; exactly two tensors of the same
            shape and dtype are refused as ambiguous (pass a tuple or a ``DataLoader``).
        batch_size: rows per batch for datasets and tensors (>= 1).

    Raises:
        ValueError: ``batch_size`` is not an integer >= 1, the tensors of a tuple differ in
            their first dimension, or a list of tensors is ambiguous (two tensors of the same
            shape and dtype) or fits neither reading.
        TypeError: a tuple mixes tensors with other values (``(X, y.tolist())``).
    """
    check_count("batch_size", batch_size)
    data = _from_numpy(data)
    if _is_tensor_list(data) and _tensor_list_kind(data) == "fields":
        data = tuple(data)
    if isinstance(data, torch.Tensor):
        yield from data.split(batch_size)
    elif isinstance(data, tuple) and any(isinstance(t, torch.Tensor) for t in data):
        if not all(isinstance(t, torch.Tensor) for t in data):  # (X, y.tolist()): X was a batch
            raise TypeError(
                "the items of a tuple data set must all be tensors or numpy arrays, got "
                f"{[type(t).__name__ for t in data]}"
            )
        n = data[0].shape[0]
        if any(t.shape[0] != n for t in data):
            raise ValueError(
                "the tensors of data must share the first dimension, got "
                f"{[t.shape[0] for t in data]}"
            )
        for start in range(0, n, batch_size):
            yield tuple(t[start : start + batch_size] for t in data)
    elif isinstance(data, Dataset) and not isinstance(data, torch.utils.data.IterableDataset):
        yield from DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0)
    elif isinstance(data, Iterable):
        yield from data
    else:
        raise TypeError(
            "data must be a Dataset, a DataLoader/iterable of batches, a tensor or a tuple of "
            f"tensors, got {type(data).__name__}"
        )


# per-sample gradients held at once by a Fisher estimate: rows * parameters (* classes for the
# expected Fisher) stays under this many elements (32 MiB in float32; chunks of 256 MiB spent
# most of their time faulting in fresh pages and were slower than one backward per sample)
_FISHER_CHUNK_ELEMENTS = 2**23


def _fisher_rows(n_params: int, per_row: int, most: int) -> int:
    """Rows of one vectorised Fisher chunk: at most ``most``, and at most
    ``_FISHER_CHUNK_ELEMENTS`` per-sample gradient elements (``per_row`` gradients of
    ``n_params`` each per row), at least one."""
    return max(1, min(most, _FISHER_CHUNK_ELEMENTS // max(1, n_params * per_row)))


def empirical_fisher(
    module: nn.Module,
    data_set: Any,
    loss_func: LossFn,
    *,
    output_fn: Callable[[Any], torch.Tensor] | None = None,
    is_mlp: bool = False,
    batch_size: int = 64,
    target: str = "auto",
    method: str = "vmap",
    max_samples: int | None = None,
) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher of ``module`` on ``data_set``.

    ``F_i = mean over samples of (d loss(sample) / d theta_i)^2``: the true per-sample empirical
    Fisher, computed in batches with ``torch.func.vmap`` (``method="vmap"``) or with one backward
    per sample (``method="loop"``, for modules ``vmap`` cannot trace). The module runs in eval
    mode and is put back in its previous mode. Under ``torch.distributed`` the sums and the sample
    count are all-reduced, so every rank gets the Fisher of the union of the shards.

    Args:
        module: any module; every parameter that requires grad gets an entry.
        data_set: a Dataset, a DataLoader / iterable of batches, a tensor or a tuple of
            tensors (see :func:`iter_batches`). A list ``[x, y]`` of inputs and integer labels
            is one data set, like the tuple ``(x, y)``; a list of tensors of one shape and dtype
            is a list of batches; a list of exactly two same-shape tensors is refused as
            ambiguous (pass a tuple for one data set, a ``DataLoader`` for batches).
        loss_func: ``loss_func(output, target) -> scalar``.
        output_fn: maps the raw forward output to the tensor the loss takes.
        is_mlp: flatten each input to ``(n, -1)`` before the forward pass (the original's flag
            for MLPs on images).
        batch_size: rows per vectorised batch (fewer when ``batch_size`` per-sample gradients
            would hold more than ``2**23`` elements: a large model gets smaller chunks).
        target: ``"auto"``, ``"label"`` or ``"input"`` (see :func:`split_batch`).
        method: ``"vmap"`` or ``"loop"``.
        max_samples: use at most this many samples (all if None).

    Returns:
        ``{parameter name: Fisher diagonal}``.

    Raises:
        ValueError: unknown method, no samples, a non-finite estimate (NaN/inf data), an
            ambiguous list of tensors (see :func:`iter_batches`) or, with a cross-entropy / NLL
            ``loss_func``, labels outside ``0..outputs - 1`` (checked per batch).
    """
    if method not in ("vmap", "loop"):
        raise ValueError(f"method={method!r} is not understood; expected 'vmap' or 'loop'")
    check_count("max_samples", max_samples, none_ok=True)
    params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    device = params[0][1].device if params else torch.device("cpu")
    names = [n for n, _ in params]
    sums = {n: torch.zeros_like(p) for n, p in params}
    count = 0
    classes = _takes_classes(loss_func)  # a custom loss may take integer targets of any range
    n_outputs: int | None = None
    was_training = module.training
    module.eval()
    try:
        for batch in iter_batches(data_set, batch_size):
            x, t = split_batch(batch, target)
            recon = t is x
            x = _to_input(x, params[0][1] if params else None)
            if is_mlp:
                x = x.reshape(x.shape[0], -1)
            t = x if recon else _to_target(t, device)
            if max_samples is not None:
                keep = max(0, max_samples - count)
                x, t = x[:keep], t[:keep]
            if x.shape[0] == 0:
                break
            if classes and not recon and _is_labels(t):
                if n_outputs is None:  # one row's forward, once: the logits' width
                    with torch.no_grad():
                        o = module(x[:1])
                        n_outputs = int((output_fn(o) if output_fn else o).shape[-1])
                _check_label_range(t, n_outputs, "data_set")
            if method == "vmap":  # a batch of 64 rows held 64 gradients of a large model
                rows = _fisher_rows(sum(p.numel() for _, p in params), 1, x.shape[0])
                for xc, tc in zip(x.split(rows), t.split(rows)):
                    part = per_sample_squared_grads(
                        module, xc, tc, loss_func, output_fn=output_fn, names=names
                    )
                    for n in names:
                        sums[n] += part[n]
            else:
                part = _squared_grads_loop(module, params, x, t, loss_func, output_fn)
                for n in names:
                    sums[n] += part[n]
            count += x.shape[0]
    finally:
        module.train(was_training)
    total = torch.tensor(float(count), device=device)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        for n in names:
            torch.distributed.all_reduce(sums[n])
        torch.distributed.all_reduce(total)
    if total.item() == 0:
        raise ValueError("the Fisher estimate got no samples: data_set is empty")
    bad = [n for n, s in sums.items() if not bool(torch.isfinite(s).all())]
    if bad:
        raise ValueError(
            f"the Fisher estimate is not finite for {bad}: data_set holds NaN/inf values or the "
            "loss overflowed"
        )
    return {n: s / total for n, s in sums.items()}


def _squared_grads_loop(
    module: nn.Module,
    params: list[tuple[str, nn.Parameter]],
    x: torch.Tensor,
    t: torch.Tensor,
    loss_func: LossFn,
    output_fn: Callable[[Any], torch.Tensor] | None,
) -> dict[str, torch.Tensor]:
    out = {n: torch.zeros_like(p) for n, p in params}
    for i in range(x.shape[0]):
        o = module(x[i : i + 1])
        loss = loss_func(output_fn(o) if output_fn else o, t[i : i + 1])
        grads = torch.autograd.grad(loss, [p for _, p in params], allow_unused=True)
        for (n, _), g in zip(params, grads):
            if g is not None:
                out[n] += g.detach().pow(2)
    return out


def _check_ewc_tensors(
    config: dict[str, Any], tensors: dict[str, torch.Tensor], params: dict[str, nn.Parameter]
) -> None:
    """Raise ValueError unless every ``ewc.<i>.<anchor|fisher>.<name>`` tensor belongs to a
    term ``i < n_terms`` and has the shape of the parameter ``name`` (both kinds present)."""
    n_terms = config.get("n_terms")
    if not isinstance(n_terms, int) or isinstance(n_terms, bool) or n_terms < 0:
        raise ValueError(f"the EWC state's n_terms must be an integer >= 0, got {n_terms!r}")
    kinds: dict[tuple[str, str], set[str]] = {}
    for key, t in tensors.items():
        if not key.startswith("ewc."):
            continue
        parts = key.split(".", 3)
        if len(parts) != 4 or not parts[1].isdigit() or int(parts[1]) >= n_terms:
            raise ValueError(f"the EWC state's tensor {key!r} is not of a term < {n_terms}")
        _, i, kind, name = parts
        p = params.get(name)
        if kind not in ("anchor", "fisher") or p is None or t.shape != p.shape:
            raise ValueError(
                f"the EWC state's tensor {key!r} {tuple(t.shape)} fits no parameter of the model"
                f" (expected ewc.<term>.anchor|fisher.<parameter name> of the parameter's shape)"
            )
        kinds.setdefault((i, name), set()).add(kind)
    lone = sorted(f"ewc.{i}.*.{n}" for (i, n), k in kinds.items() if len(k) != 2)
    if lone:
        raise ValueError(f"the EWC state has a Fisher without anchor or the reverse: {lone}")


class EWCTerms:
    """EWC penalty terms: (anchor, Fisher) pairs, separate or online.

    Args:
        online: keep one term ``F = gamma * F_old + F_new`` anchored at the newest parameters
            (online EWC, Schwarz et al. 2018) instead of one term per task (Kirkpatrick et al.
            2017).
        gamma: decay of the previous Fisher in online mode, in ``[0, 1]``.
    """

    def __init__(self, online: bool = False, gamma: float = 1.0) -> None:
        check_number("gamma", gamma, upper=1.0)
        self.online = bool(online)
        self.gamma = float(gamma)
        self.terms: list[dict[str, dict[str, torch.Tensor]]] = []

    def __len__(self) -> int:
        return len(self.terms)

    def consolidate(self, module: nn.Module, fisher: dict[str, torch.Tensor]) -> None:
        """Add ``fisher`` with the current parameters of ``module`` as anchor.

        Online, every stored term is folded in, oldest first, ``F = gamma * F_old + F_new``:
        after a switch from separate to online mode the ``k`` separate terms weigh
        ``gamma**(k - i)`` each (the recursion run over them) and keep no anchor of their own
        (the original folded only the first term and dropped the others). A switch from
        online to separate keeps the online term and appends one term per call.

        Raises:
            ValueError: a key of ``fisher`` is not a parameter name of ``module``.
        """
        params = dict(module.named_parameters())
        unknown = [n for n in fisher if n not in params]
        if unknown:  # failed later, in penalty(), with a bare KeyError
            raise ValueError(
                f"fisher names {unknown} that are not parameters of the module; expected keys "
                f"among {list(params)}"
            )
        fisher = {n: f.detach().clone() for n, f in fisher.items()}
        if self.online and self.terms:
            old: dict[str, torch.Tensor] = {}
            for term in self.terms:  # oldest first: old <- gamma * old + F_i
                for n, f in term["fisher"].items():
                    old[n] = f if n not in old else self.gamma * old[n] + f.to(old[n].device)
            for n, f in old.items():
                f = self.gamma * f
                fisher[n] = fisher[n] + f.to(fisher[n].device) if n in fisher else f
            self.terms = []
        anchor = {n: params[n].detach().clone() for n in fisher}
        self.terms.append({"anchor": anchor, "fisher": fisher})

    def penalty(self, module: nn.Module) -> torch.Tensor:
        """``0.5 * sum_terms sum_i F_i (theta_i - anchor_i)^2`` on the module's device, in the
        dtype of its first floating parameter (also the zero before any term)."""
        params = dict(module.named_parameters())
        device = next(iter(params.values())).device if params else torch.device("cpu")
        floats = [p.dtype for p in params.values() if p.is_floating_point()]
        total = torch.zeros((), device=device, dtype=floats[0] if floats else None)
        for term in self.terms:
            for n, f in term["fisher"].items():
                p = params[n]
                a = term["anchor"][n]
                if a.device != p.device:
                    a = term["anchor"][n] = a.to(p.device)
                    f = term["fisher"][n] = f.to(p.device)
                total = total + (f * (p - a).pow(2)).sum()
        return 0.5 * total

    def state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """``(config, tensors)``."""
        tensors: dict[str, torch.Tensor] = {}
        for i, term in enumerate(self.terms):
            for kind in ("anchor", "fisher"):
                for n, t in term[kind].items():
                    tensors[f"ewc.{i}.{kind}.{n}"] = t
        return {"online": self.online, "gamma": self.gamma, "n_terms": len(self.terms)}, tensors

    def load_state_dict(
        self,
        config: dict[str, Any],
        tensors: dict[str, torch.Tensor],
        device: str | torch.device = "cpu",
    ) -> None:
        """Restore :meth:`state_dict` output."""
        self.online = bool(config["online"])
        self.gamma = float(config["gamma"])
        terms: list[dict[str, dict[str, torch.Tensor]]] = [
            {"anchor": {}, "fisher": {}} for _ in range(int(config["n_terms"]))
        ]
        for key, t in tensors.items():
            if not key.startswith("ewc."):
                continue
            _, i, kind, name = key.split(".", 3)
            terms[int(i)][kind][name] = t.to(device)
        self.terms = terms


class ContinualLearner(nn.Module):
    """Base class (or mixin) adding EWC and A-GEM to a module.

    Subclass it instead of ``nn.Module`` (``class MLP(ContinualLearner)``), or mix it in front
    of another module class (``class Net(ContinualLearner, nn.Sequential)``): positional and
    unknown keyword arguments are passed on to the next class.

    The continual-learning state (EWC anchors and Fisher diagonals, reference gradients) lives
    outside ``state_dict()``, so checkpoints of the weights stay clean; use
    :meth:`cl_state_dict` / :meth:`load_cl_state_dict` to save and restore the EWC state (the
    reference gradients are transient: recompute them before the next projection). Every
    tensor is created on the device of the parameters; nothing assumes CUDA.

    Args:
        *args: passed to the next base class (for mixin use).
        onlineEWC: online EWC (one running Fisher, decayed by ``gamma``) instead of separate
            EWC (one penalty term per task). Read at each consolidation, so it may be switched
            mid-stream: switching on folds every separate term into the running Fisher (see
            :meth:`EWCTerms.consolidate`), switching off keeps the running term.
        ewc_lambda: EWC strength for your own loop, ``loss + model.ewc_lambda *
            model.ewc_loss()`` (``ewc_loss()`` itself is unweighted). The Trainer's ``EWC``
            strategy does not read it: it has its own ``ewc_lambda`` and penalty terms.
        gamma: decay of the previous Fisher in online EWC, ``F = gamma * F_old + F_new``, in
            ``[0, 1]`` (a decay: larger values would weigh old tasks above the newest).
        **kwargs: passed to the next base class.

    Attributes:
        output_index: when ``forward`` returns a tuple, the element the losses use (an
            autoencoder returning ``(encoded, decoded, extra)`` sets 1). ``None`` means the
            output is a tensor.
        EWC_task_count: number of Fisher estimates consolidated so far.
    """

    output_index: int | None = None

    def __init__(
        self,
        *args: Any,
        onlineEWC: bool = False,
        ewc_lambda: float = 0.0,
        gamma: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        check_number("gamma", gamma, upper=1.0)
        check_number("ewc_lambda", ewc_lambda)
        self.onlineEWC = bool(onlineEWC)
        self.ewc_lambda = float(ewc_lambda)
        self.gamma = float(gamma)
        self.EWC_task_count = 0
        self._ewc = EWCTerms(online=self.onlineEWC, gamma=self.gamma)
        self._ref_grad: torch.Tensor | None = None
        self._ref_grads_layerwise: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ helpers
    def model_output(self, out: Any) -> torch.Tensor:
        """The tensor the losses take from a raw ``forward`` output (see ``output_index``)."""
        if isinstance(out, torch.Tensor):
            return out
        if isinstance(out, (tuple, list)):
            if self.output_index is None:
                raise TypeError(
                    f"{type(self).__name__}.forward returned a {type(out).__name__}; set the "
                    "class attribute output_index to the element the loss should use"
                )
            return out[self.output_index]
        raise TypeError(f"forward must return a tensor or a tuple, got {type(out).__name__}")

    def _trainable(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def _device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    # ------------------------------------------------------------------ EWC
    def estimate_fisher(
        self,
        data_set: Any,
        loss_func: LossFn,
        is_mlp: bool = False,
        *,
        batch_size: int = 64,
        target: str = "auto",
        method: str = "vmap",
        max_samples: int | None = None,
        consolidate: bool = True,
    ) -> dict[str, torch.Tensor]:
        """Estimate the diagonal empirical Fisher on ``data_set`` and consolidate it for EWC.

        See :func:`empirical_fisher` for the estimate. With ``consolidate`` the estimate is
        stored with the current parameters as anchor: separate EWC appends one penalty term per
        call, online EWC keeps one term ``F = gamma * F_old + F_new`` anchored at the newest
        parameters.

        Args:
            data_set: a Dataset, a DataLoader / iterable of batches, a tensor or a tuple of
                tensors (see :func:`iter_batches`); a list ``[x, y]`` of inputs and integer
                labels is one data set, like ``(x, y)`` (see :func:`empirical_fisher`).
            loss_func: ``loss_func(output, target) -> scalar``, for classification
                (``F.cross_entropy``), regression or reconstruction (``F.mse_loss``).
            is_mlp: flatten each input to ``(n, -1)`` before the forward pass.
            batch_size: rows per vectorised batch.
            target: ``"auto"``, ``"label"`` or ``"input"`` (see :func:`split_batch`).
            method: ``"vmap"`` or ``"loop"``.
            max_samples: use at most this many samples (all if None).
            consolidate: store the estimate as an EWC term.

        Returns:
            ``{parameter name: Fisher diagonal}``.
        """
        fisher = empirical_fisher(
            self,
            data_set,
            loss_func,
            output_fn=self.model_output,
            is_mlp=is_mlp,
            batch_size=batch_size,
            target=target,
            method=method,
            max_samples=max_samples,
        )
        if consolidate:
            self.consolidate(fisher)
        return fisher

    def consolidate(self, fisher: dict[str, torch.Tensor]) -> None:
        """Store ``fisher`` with the current parameters as anchor (see ``estimate_fisher``)."""
        self._ewc.online = self.onlineEWC
        self._ewc.gamma = self.gamma
        self._ewc.consolidate(self, fisher)
        self.EWC_task_count += 1

    def ewc_loss(self) -> torch.Tensor:
        """EWC penalty ``0.5 * sum_terms sum_i F_i (theta_i - theta*_i)^2`` (unweighted).

        Zero (on the parameters' device) before the first Fisher estimate. Multiply by your
        regularisation strength (``model.ewc_lambda``) when adding it to the loss.
        """
        return self._ewc.penalty(self)

    # ------------------------------------------------------------------ A-GEM
    def _reference_loss(
        self,
        reference_data: Any,
        loss_func: LossFn,
        b_size: int | None,
        target: str,
        store_encoded: bool = False,
    ) -> torch.Tensor:
        from .memory import EpisodicMemory

        check_count("b_size", b_size, none_ok=True)
        if isinstance(reference_data, EpisodicMemory):
            if len(reference_data) == 0:
                raise ValueError("the episodic memory is empty: no reference gradient to compute")
            reference_data = reference_data.sample(
                len(reference_data) if b_size is None else b_size
            )
        else:
            reference_data = _collate_samples(reference_data)
        x, t = split_batch(reference_data, target)
        if x.shape[0] == 0:
            raise ValueError("the reference batch is empty: no reference gradient to compute")
        device = self._device()
        like = next(iter(self.parameters()), None)
        if store_encoded:  # the memory holds codes: the loss of their decode-encode round trip
            round_trip = getattr(self, "from_dec_to_enc", None)
            if round_trip is None:
                raise TypeError(
                    f"store_encoded=True needs {type(self).__name__}.from_dec_to_enc(codes)"
                )
            z = _to_input(x, like)
            return loss_func(round_trip(z), z)
        recon = t is x
        x = _to_input(x, like)
        t = x if recon else _to_target(t, device)
        out = self.model_output(self(x))
        # labels outside the outputs failed inside the loss: "Target 6 is out of bounds"
        if _takes_classes(loss_func) and not recon and _is_labels(t):
            _check_label_range(t, int(out.shape[-1]), "reference_data")
        return loss_func(out, t)

    def _reference_grads(
        self,
        reference_data: Any,
        loss_func: LossFn,
        b_size: int | None,
        target: str,
        store_encoded: bool = False,
    ) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
        loss = self._reference_loss(reference_data, loss_func, b_size, target, store_encoded)
        params = self._trainable()
        grads = torch.autograd.grad(loss, [p for _, p in params], allow_unused=True)
        flat = [
            (n, torch.zeros_like(p) if g is None else g.detach())
            for (n, p), g in zip(params, grads)
        ]
        finite = torch.stack([g.isfinite().all() for _, g in flat]).tolist() if flat else []
        bad = [n for (n, _), ok in zip(flat, finite) if not ok]  # one host sync
        if bad:
            raise ValueError(
                f"the reference gradient is not finite for {bad}: the reference batch holds "
                "NaN/inf values or the loss overflowed"
            )
        return loss.detach(), flat

    def calculate_ref_gradients(
        self,
        reference_data: Any,
        loss_func: LossFn,
        b_size: int | None = None,
        *,
        store_encoded: bool = False,
        target: str = "auto",
    ) -> torch.Tensor:
        """Compute and keep the A-GEM reference gradient on a memory batch.

        Uses ``torch.autograd.grad``, so the ``.grad`` of the parameters is left untouched;
        parameters that the reference loss does not reach get a zero reference gradient. The
        forward pass runs in the module's current mode, as the Trainer's ``AGEM`` does (in a
        training loop batch-norm statistics see the reference batch and dropout is active); the
        original switched to eval mode: wrap the call in ``model.eval()`` / ``model.train()``
        for that.

        Args:
            reference_data: a batch (tensor or ``(x, y, ...)`` tuple), a map-style
                ``Dataset`` or a list of per-sample ``(x, y)`` tuples (the original's memory
                format; either is used whole, as one batch), or an
                :class:`~continual.EpisodicMemory` to sample ``b_size`` rows from.
            loss_func: ``loss_func(output, target) -> scalar``.
            b_size: reference batch size when sampling from a memory (all of it if None).
            store_encoded: the memory holds latent codes ``z`` (its first field): the reference
                loss is ``loss_func(self.from_dec_to_enc(z), z)``, as in the original.
            target: ``"auto"``, ``"label"`` or ``"input"``.

        Returns:
            The reference loss (detached), for logging.

        Raises:
            ValueError: the reference batch or memory is empty, or, with a cross-entropy / NLL
                ``loss_func``, it holds labels outside ``0..outputs - 1``.
        """
        loss, grads = self._reference_grads(
            reference_data, loss_func, b_size, target, store_encoded
        )
        self._ref_grad = torch.cat([g.reshape(-1) for _, g in grads])
        return loss

    def overwrite_grad(self) -> bool:
        """A-GEM step: project the current ``.grad`` if it conflicts with the reference gradient.

        Call after ``loss.backward()`` and before ``optimizer.step()``.

        Returns:
            True when the gradient was projected (``g . g_ref < 0``).
        """
        if self._ref_grad is None:
            raise RuntimeError("call calculate_ref_gradients before overwrite_grad")
        params = self._trainable()
        g = torch.cat(
            [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for _, p in params]
        )
        ref = self._ref_grad.to(g.device)
        new = agem_project(g, ref)
        if new is g:
            return False
        offset = 0
        for _, p in params:
            k = p.numel()
            piece = new[offset : offset + k].view_as(p)
            if p.grad is None:
                p.grad = piece.clone()
            else:
                p.grad.copy_(piece)
            offset += k
        return True

    def calculate_ref_gradients_layerwise(
        self,
        reference_data: Any,
        loss_func: LossFn,
        b_size: int | None = None,
        loss_lambda: float = 1.0,
        *,
        store_encoded: bool = False,
        target: str = "auto",
    ) -> torch.Tensor:
        """Like :meth:`calculate_ref_gradients` but keeps one reference gradient per parameter.

        Args:
            reference_data: a batch, a ``Dataset``, a list of per-sample tuples or an
                :class:`~continual.EpisodicMemory` (see :meth:`calculate_ref_gradients`).
            loss_func: ``loss_func(output, target) -> scalar``.
            b_size: reference batch size when sampling from a memory.
            loss_lambda: scale of the memory loss, > 0 (changes the reported loss, not the
                projection direction).
            store_encoded: the memory holds latent codes (see :meth:`calculate_ref_gradients`).
            target: ``"auto"``, ``"label"`` or ``"input"``.

        Returns:
            The scaled reference loss (detached).
        """
        if isinstance(loss_lambda, bool):  # the original's 4th argument was store_encoded
            raise ValueError(
                f"loss_lambda must be a finite number > 0, got {loss_lambda!r} (store_encoded "
                "is keyword-only: store_encoded=True)"
            )
        check_number("loss_lambda", loss_lambda, positive=True)  # inf made the projection NaN
        loss, grads = self._reference_grads(
            reference_data, loss_func, b_size, target, store_encoded
        )
        self._ref_grads_layerwise = {n: (loss_lambda * g).reshape(-1) for n, g in grads}
        return loss_lambda * loss

    def overwrite_grad_layerwise(self) -> int:
        """Layer-wise A-GEM: project each parameter's gradient separately.

        Each parameter tensor is constrained on its own not to increase the memory loss to first
        order, which is stricter than the joint constraint of :meth:`overwrite_grad`.

        Returns:
            The number of parameter tensors whose gradient was projected.
        """
        if not self._ref_grads_layerwise:
            raise RuntimeError(
                "call calculate_ref_gradients_layerwise before overwrite_grad_layerwise"
            )
        projected = 0
        for n, p in self._trainable():
            if p.grad is None or n not in self._ref_grads_layerwise:
                continue
            g = p.grad.reshape(-1)
            new = agem_project(g, self._ref_grads_layerwise[n].to(g.device))
            if new is not g:
                p.grad.copy_(new.view_as(p))
                projected += 1
        return projected

    # ------------------------------------------------------------------ state
    def cl_state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """The continual-learning state as ``(config, tensors)`` (plain values and tensors)."""
        config, tensors = self._ewc.state_dict()
        config.update(
            onlineEWC=self.onlineEWC,
            ewc_lambda=self.ewc_lambda,
            gamma=self.gamma,
            EWC_task_count=self.EWC_task_count,
        )
        return config, tensors

    def load_cl_state_dict(self, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`cl_state_dict` returned (tensors moved to the model's device).

        Raises:
            ValueError: an EWC term does not fit this model's parameters (checked before
                anything is loaded).
        """
        _check_ewc_tensors(config, tensors, dict(self.named_parameters()))
        self.onlineEWC = bool(config["onlineEWC"])
        self.ewc_lambda = float(config["ewc_lambda"])
        self.gamma = float(config["gamma"])
        self.EWC_task_count = int(config["EWC_task_count"])
        self._ewc.load_state_dict(config, tensors, self._device())
