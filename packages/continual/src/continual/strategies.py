"""Continual-learning strategies as plugins around the Trainer's plain training loop.

A strategy sees the loop through hooks (all optional):

``before_experience`` -> per batch: ``before_forward`` (may extend the batch),
``penalty`` (added to the loss), ``after_backward`` (may rewrite ``.grad``), ``after_step``
-> ``after_experience``. ``train_dataset`` chooses the data of an experience. Each strategy
returns its whole state from ``state_dict()`` as ``(config, tensors)`` so the Trainer can
checkpoint it safely; ``check_state_dict`` refuses a mismatched state before anything is loaded.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, Dataset, IterableDataset, TensorDataset

from ._checks import check_count, check_number
from .kernels import (
    agem_project,
    gem_project,
    per_sample_expected_fisher,
    per_sample_squared_grads,
)
from .learner import EWCTerms, _check_ewc_tensors, _fisher_rows
from .memory import EpisodicMemory, stratified_order
from .scenarios import Experience

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = [
    "AGEM",
    "DERPP",
    "EWC",
    "GEM",
    "LwF",
    "Joint",
    "Naive",
    "Replay",
    "SI",
    "Strategy",
]

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _check_memory_config(
    strategy: Strategy, config: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> None:
    """Refuse a checkpointed memory that is inconsistent (``EpisodicMemory.check_state_dict``)
    or of another capacity or policy than ``strategy``'s."""
    config = config["memory"]
    memory_tensors = {k[len("memory.") :]: v for k, v in tensors.items() if k.startswith("memory.")}
    EpisodicMemory.check_state_dict(config, memory_tensors)
    saved = (int(config["total_mem_size"]), config["policy"])
    ours = (strategy.memory.capacity, strategy.memory.policy)  # type: ignore[attr-defined]
    if saved != ours:
        raise ValueError(
            f"the checkpoint's memory has mem_size={saved[0]}, policy={saved[1]!r}; "
            f"{type(strategy).__name__} has mem_size={ours[0]}, policy={ours[1]!r}"
        )


def _experience_tensors(exp: Experience) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` of every row of ``exp``; a stream (``IterableDataset``) is read once more."""
    tensors = exp.tensors()
    if tensors is not None:
        return tensors[0], tensors[1]
    data = exp.dataset
    rows = data if isinstance(data, IterableDataset) else (data[i] for i in range(len(exp)))
    pairs = [(row[0], row[1]) for row in rows]
    if not pairs:
        raise ValueError(f"experience {exp.task_id} has no samples")
    xs, ys = zip(*pairs)
    return torch.stack([torch.as_tensor(x) for x in xs]), torch.as_tensor(ys)


class Strategy:
    """Base class: plain fine-tuning. Subclasses override the hooks they need."""

    name = "naive"

    def setup(self, trainer: Trainer) -> None:
        """Called once, when the :class:`~continual.Trainer` is built with this strategy."""

    def train_dataset(self, trainer: Trainer, experience: Experience) -> Dataset:
        """The data to train on for ``experience`` (its own dataset by default)."""
        return experience.dataset

    def before_experience(self, trainer: Trainer, experience: Experience) -> None:
        """Called before the first epoch of an experience."""

    def before_forward(self, trainer: Trainer, batch: Batch) -> Batch:
        """May return an extended ``(x, y, task_ids)`` batch (replay)."""
        return batch

    def penalty(self, trainer: Trainer, batch: Batch, output: torch.Tensor) -> torch.Tensor | None:
        """A term added to the loss (None for no term)."""
        return None

    def after_backward(self, trainer: Trainer, batch: Batch) -> None:
        """Called after ``loss.backward()``, before ``optimizer.step()``."""

    def after_step(self, trainer: Trainer, batch: Batch, output: torch.Tensor) -> None:
        """Called after ``optimizer.step()``."""

    def after_experience(self, trainer: Trainer, experience: Experience) -> None:
        """Called after the last epoch of an experience."""

    def state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """The strategy's state as ``(config, tensors)``."""
        return {}, {}

    def check_state_dict(self, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Raise ValueError when :meth:`load_state_dict` would refuse this state (changes nothing).

        The Trainer calls it before loading anything, so a refused checkpoint leaves it unchanged.
        """

    def load_state_dict(
        self, config: dict[str, Any], tensors: dict[str, torch.Tensor], trainer: Trainer
    ) -> None:
        """Restore :meth:`state_dict` output."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    def _params(self) -> dict[str, Any]:
        return {}


class Naive(Strategy):
    """Fine-tuning on each experience in turn: the lower bound."""


class _MemoryParams:
    """``mem_size``, ``policy`` and ``random_state`` of a strategy's episodic memory.

    Assigning one rebuilds the memory with it while the memory is still empty; once it stores
    rows the assignment is a ValueError naming the attribute (an assignment used to be shown by
    ``repr`` but ignored, the memory being already built).
    """

    memory: EpisodicMemory
    _memory_params: dict[str, Any]

    def _build_memory(self, mem_size: int, policy: str, random_state: Any) -> None:
        check_count("mem_size", mem_size)
        self.memory = EpisodicMemory(mem_size, policy=policy, random_state=random_state)
        self._memory_params = {"mem_size": mem_size, "policy": policy, "random_state": random_state}

    def _set_memory_param(self, name: str, value: Any) -> None:
        old = self._memory_params[name]
        if value is old or (type(value) is type(old) and value == old):
            return
        if len(self.memory):
            raise ValueError(
                f"{type(self).__name__}.{name} cannot change from {old!r} to {value!r}: the "
                f"memory already stores {len(self.memory)} rows; set it before the first "
                f"experience or build a new {type(self).__name__}"
            )
        self._build_memory(**{**self._memory_params, name: value})

    @property
    def mem_size(self) -> int:
        """Memory capacity in samples."""
        return self._memory_params["mem_size"]

    @mem_size.setter
    def mem_size(self, value: int) -> None:
        self._set_memory_param("mem_size", value)

    @property
    def random_state(self) -> Any:
        """Seed of the memory."""
        return self._memory_params["random_state"]

    @random_state.setter
    def random_state(self, value: Any) -> None:
        self._set_memory_param("random_state", value)


class _MemoryStrategy(_MemoryParams, Strategy):
    """Strategies with an episodic memory filled with each experience after training on it."""

    def __init__(self, mem_size: int, policy: str, random_state: Any) -> None:
        self._build_memory(mem_size, policy, random_state)

    @property
    def policy(self) -> str:
        """Memory policy (see :class:`EpisodicMemory`)."""
        return self._memory_params["policy"]

    @policy.setter
    def policy(self, value: str) -> None:
        self._set_memory_param("policy", value)

    def _params(self) -> dict[str, Any]:
        return {"mem_size": self.mem_size, "policy": self.policy}

    def _store(self, experience: Experience) -> None:
        x, y = _experience_tensors(experience)
        if y.dim() == 1 and not y.is_floating_point():
            # a class-stratified random sample of the experience fills its quota
            order = stratified_order(y, self.memory.generator)
        else:
            order = torch.randperm(x.shape[0], generator=self.memory.generator)
        t = torch.full((x.shape[0],), experience.task_id, dtype=torch.long)
        self.memory.add(x[order], y[order], t, task_id=experience.task_id)

    def after_experience(self, trainer: Trainer, experience: Experience) -> None:
        self._store(experience)

    def state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        config, tensors = self.memory.state_dict()
        return {"memory": config}, {f"memory.{k}": v for k, v in tensors.items()}

    def check_state_dict(self, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        _check_memory_config(self, config, tensors)

    def load_state_dict(
        self, config: dict[str, Any], tensors: dict[str, torch.Tensor], trainer: Trainer
    ) -> None:
        self.check_state_dict(config, tensors)
        self.memory.load_state_dict(
            config["memory"],
            {k[len("memory.") :]: v for k, v in tensors.items() if k.startswith("memory.")},
        )


class Replay(_MemoryStrategy):
    """Experience replay: every batch is joined by a batch drawn from the episodic memory.

    The loss is the mean over the joined batch, so with ``batch_size=None`` (a memory batch as
    large as the training batch) the current data and the memory weigh the same.

    Args:
        mem_size: memory capacity in samples.
        batch_size: memory rows added to each batch (the training batch size if None).
        policy: memory policy (``"quota"``: equal share per experience, class-stratified; see
            EpisodicMemory).
        random_state: seed of the memory.
        sampling: ``"cycle"`` walks through shuffled passes over the memory
            (:meth:`EpisodicMemory.cycle`: every stored row is replayed equally often);
            ``"random"`` draws an independent random subset at every step
            (:meth:`EpisodicMemory.sample`).
    """

    name = "replay"

    def __init__(
        self,
        mem_size: int = 200,
        batch_size: int | None = None,
        policy: str = "quota",
        random_state: Any = 0,
        sampling: str = "cycle",
    ) -> None:
        if sampling not in ("cycle", "random"):
            raise ValueError(
                f"sampling={sampling!r} is not understood; expected 'cycle' or 'random'"
            )
        check_count("batch_size", batch_size, none_ok=True)
        super().__init__(mem_size, policy, random_state)
        self.batch_size = batch_size
        self.sampling = sampling

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "batch_size": self.batch_size, "sampling": self.sampling}

    def before_forward(self, trainer: Trainer, batch: Batch) -> Batch:
        if len(self.memory) == 0:
            return batch
        x, y, t = batch
        n = self.batch_size or x.shape[0]
        if self.sampling == "cycle":
            mx, my, mt = self.memory.cycle(n, device=x.device)
        else:
            mx, my, mt = self.memory.sample(n, device=x.device)
        return torch.cat([x, mx.to(x.dtype)]), torch.cat([y, my.to(y.dtype)]), torch.cat([t, mt])


class _ProjectingStrategy(_MemoryStrategy):
    """AGEM and GEM: ``n_projected`` counts the projected steps and is checkpointed with the
    memory (a resumed run counted from 0)."""

    n_projected: int

    def state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        config, tensors = super().state_dict()
        return {**config, "n_projected": self.n_projected}, tensors

    def check_state_dict(self, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        super().check_state_dict(config, tensors)
        count = config.get("n_projected", 0)  # absent from checkpoints of earlier versions
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f"the checkpoint has n_projected={count!r}, not an integer >= 0")

    def load_state_dict(
        self, config: dict[str, Any], tensors: dict[str, torch.Tensor], trainer: Trainer
    ) -> None:
        super().load_state_dict(config, tensors, trainer)
        self.n_projected = int(config.get("n_projected", 0))


class AGEM(_ProjectingStrategy):
    """Averaged GEM: project the gradient when it would increase the loss on a memory batch.

    Args:
        mem_size: memory capacity in samples.
        sample_size: reference batch size drawn from the memory at each step.
        layerwise: project each parameter tensor separately (the original's layer-wise variant)
            instead of the whole gradient vector.
        policy: memory policy.
        random_state: seed of the memory.
    """

    name = "agem"

    def __init__(
        self,
        mem_size: int = 200,
        sample_size: int = 64,
        layerwise: bool = False,
        policy: str = "quota",
        random_state: Any = 0,
    ) -> None:
        check_count("sample_size", sample_size)
        if not isinstance(layerwise, bool):  # layerwise="false" was truthy: layer-wise silently
            raise ValueError(f"layerwise must be True or False, got {layerwise!r}")
        super().__init__(mem_size, policy, random_state)
        self.sample_size = sample_size
        self.layerwise = layerwise
        self.n_projected = 0

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "sample_size": self.sample_size, "layerwise": self.layerwise}

    def after_backward(self, trainer: Trainer, batch: Batch) -> None:
        if len(self.memory) == 0:
            return
        ref = trainer.batch_grads(self.memory.sample(self.sample_size, device=trainer.device))
        params = trainer.trainable_parameters()
        if self.layerwise:
            for p, r in zip(params, ref):
                if p.grad is None:
                    continue
                g = p.grad.reshape(-1)
                new = agem_project(g, r.reshape(-1))
                if new is not g:
                    p.grad.copy_(new.view_as(p))
                    self.n_projected += 1
            return
        g = torch.cat(
            [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
        )
        new = agem_project(g, torch.cat([r.reshape(-1) for r in ref]))
        if new is not g:
            trainer.write_grads(new)
            self.n_projected += 1


class GEM(_ProjectingStrategy):
    """Gradient Episodic Memory: one constraint per previous experience, solved as a small QP.

    Args:
        mem_size: memory capacity in samples, shared equally by the experiences seen.
        margin: GEM's ``memory_strength`` (lower bound of the dual variables).
        random_state: seed of the memory.
    """

    name = "gem"

    def __init__(self, mem_size: int = 200, margin: float = 0.5, random_state: Any = 0) -> None:
        check_number("margin", margin)
        super().__init__(mem_size, "quota", random_state)
        self.margin = margin
        self.n_projected = 0

    def _params(self) -> dict[str, Any]:
        return {"mem_size": self.mem_size, "margin": self.margin}

    def after_backward(self, trainer: Trainer, batch: Batch) -> None:
        tasks = self.memory.tasks()
        if not tasks:
            return
        rows = []
        for task in tasks:
            grads = trainer.batch_grads(self.memory.task_data(task, device=trainer.device))
            rows.append(torch.cat([g.reshape(-1) for g in grads]))
        G = torch.stack(rows)
        params = trainer.trainable_parameters()
        g = torch.cat(
            [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
        )
        new = gem_project(g, G, self.margin)
        if new is not g:
            trainer.write_grads(new)
            self.n_projected += 1


class EWC(Strategy):
    """Elastic Weight Consolidation with the per-sample empirical Fisher.

    The objective is ``loss + ewc_lambda * 0.5 * sum_terms sum_i F_i (theta_i - theta*_i)^2``.

    ``solver="gradient"`` adds the penalty to the loss (the textbook form). With plain SGD this
    diverges once ``lr * ewc_lambda * max(F)`` exceeds 2, which caps the usable strength.
    ``solver="proximal"`` instead applies the penalty as an implicit (proximal) step after each
    optimizer step, ``theta <- (theta + lr * lam * sum F theta*) / (1 + lr * lam * sum F)``:
    the exact minimiser of the quadratic around the SGD iterate, stable for any strength, with the
    same fixed points, and cheaper per step. ``lr`` is read from the optimizer's parameter groups
    (for adaptive optimizers this is an approximation of the gradient form).

    Args:
        ewc_lambda: penalty strength.
        mode: ``"separate"`` (one term per experience) or ``"online"`` (one decayed term).
        gamma: decay of the old Fisher in online mode, in ``[0, 1]`` (``F = gamma F_old + F_new``,
            Schwarz et al. 2018; 1 keeps every task's Fisher, 0 only the newest). ``mode`` and
            ``gamma`` are read at each consolidation, so assigning them between experiences
            takes effect (a switch to online folds the separate terms, see
            :meth:`EWCTerms.consolidate`).
        fisher_samples: samples of each experience used for the Fisher, evenly spaced over it
            (all if None).
        solver: ``"gradient"`` or ``"proximal"``.
        fisher: ``"empirical"`` (squared per-sample gradients of the loss at the true labels) or
            ``"expected"`` (the exact Fisher of a softmax classifier under its own predictions,
            summed over the classes; classification only).
    """

    name = "ewc"

    def __init__(
        self,
        ewc_lambda: float = 100.0,
        mode: str = "separate",
        gamma: float = 1.0,
        fisher_samples: int | None = None,
        solver: str = "gradient",
        fisher: str = "empirical",
    ) -> None:
        if fisher not in ("empirical", "expected"):
            raise ValueError(
                f"fisher={fisher!r} is not understood; expected 'empirical' or 'expected'"
            )
        if mode not in ("separate", "online"):
            raise ValueError(f"mode={mode!r} is not understood; expected 'separate' or 'online'")
        if solver not in ("gradient", "proximal"):
            raise ValueError(
                f"solver={solver!r} is not understood; expected 'gradient' or 'proximal'"
            )
        check_number("ewc_lambda", ewc_lambda)
        check_number("gamma", gamma, upper=1.0)
        check_count("fisher_samples", fisher_samples, none_ok=True)
        self.ewc_lambda = ewc_lambda
        self.mode = mode
        self.gamma = gamma
        self.fisher_samples = fisher_samples
        self.solver = solver
        self.fisher = fisher
        self.terms = EWCTerms(online=mode == "online", gamma=gamma)
        self._sum_f: dict[str, torch.Tensor] = {}
        self._sum_fa: dict[str, torch.Tensor] = {}
        self._model_params: dict[str, torch.nn.Parameter] | None = None  # set by setup

    def setup(self, trainer: Trainer) -> None:
        if self.fisher == "expected" and not trainer.classifies:  # zero for one output
            raise ValueError(
                "EWC(fisher='expected') is the Fisher of a softmax classifier, but this trainer "
                "does not classify (a custom loss_fn with metric='loss'); use fisher='empirical'"
            )
        self._model_params = dict(trainer.model.named_parameters())

    def _params(self) -> dict[str, Any]:
        return {
            "ewc_lambda": self.ewc_lambda,
            "mode": self.mode,
            "gamma": self.gamma,
            "solver": self.solver,
            "fisher": self.fisher,
        }

    def _sync_terms(self) -> None:
        """Give the terms this EWC's current ``mode`` and ``gamma``: both are read at each
        consolidation, as ``ContinualLearner`` reads ``onlineEWC`` and ``gamma`` (an assignment
        after construction was shown by ``repr`` but ignored, and the checkpoint then refused
        an EWC built with that value)."""
        if self.mode not in ("separate", "online"):
            raise ValueError(
                f"mode={self.mode!r} is not understood; expected 'separate' or 'online'"
            )
        check_number("gamma", self.gamma, upper=1.0)
        self.terms.online = self.mode == "online"
        self.terms.gamma = float(self.gamma)

    def _cache(self, device: torch.device) -> None:
        self._sum_f, self._sum_fa = {}, {}
        for term in self.terms.terms:
            for n, f in term["fisher"].items():
                f = f.to(device)
                a = term["anchor"][n].to(device)
                self._sum_f[n] = self._sum_f.get(n, 0) + f
                self._sum_fa[n] = self._sum_fa.get(n, 0) + f * a

    def penalty(self, trainer: Trainer, batch: Batch, output: torch.Tensor) -> torch.Tensor | None:
        if not self.terms.terms or self.solver == "proximal":
            return None
        return self.ewc_lambda * self.terms.penalty(trainer.model)

    @torch.no_grad()
    def after_step(self, trainer: Trainer, batch: Batch, output: torch.Tensor) -> None:
        if self.solver != "proximal" or not self._sum_f:
            return
        lrs = {id(p): g["lr"] for g in trainer.optimizer.param_groups for p in g["params"]}
        for n, p in trainer.named_trainable():
            if n not in self._sum_f:
                continue
            k = lrs.get(id(p), 0.0) * self.ewc_lambda
            p.add_(k * self._sum_fa[n]).div_(1.0 + k * self._sum_f[n])

    def after_experience(self, trainer: Trainer, experience: Experience) -> None:
        fisher = fisher_on(trainer, experience, self.fisher_samples, kind=self.fisher)
        self._sync_terms()
        self.terms.consolidate(trainer.model, fisher)
        self._cache(trainer.device)

    def state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        return self.terms.state_dict()

    def check_state_dict(self, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        mode = "online" if config["online"] else "separate"
        if mode != self.mode:
            raise ValueError(
                f"the checkpoint holds {mode} EWC terms, this EWC has mode={self.mode!r}"
            )
        if mode == "online" and float(config["gamma"]) != float(self.gamma):
            raise ValueError(
                f"the checkpoint's online EWC decays its Fisher with gamma={config['gamma']!r}, "
                f"this EWC has gamma={self.gamma!r}"
            )
        if self._model_params is not None:
            _check_ewc_tensors(config, tensors, self._model_params)

    def load_state_dict(
        self, config: dict[str, Any], tensors: dict[str, torch.Tensor], trainer: Trainer
    ) -> None:
        self.check_state_dict(config, tensors)
        self.terms.load_state_dict(config, tensors, trainer.device)
        self._cache(trainer.device)


class SI(Strategy):
    """Synaptic Intelligence (Zenke et al. 2017): importance from the path integral of the loss.

    The penalty is ``si_lambda * sum_i omega_i (theta_i - theta*_i)^2`` (no factor 0.5, as in
    the paper). After each experience ``omega_i += max(0, w_i / (Delta_i^2 + eps))``, with
    ``w_i = -sum_steps g_i * (change of theta_i)`` and ``Delta_i`` the change of ``theta_i``
    over the experience; a negative contribution (a parameter that moved against its task
    gradient, as momentum can make it) is clipped at 0 so the penalty stays a pull towards the
    anchor.

    The path integral follows the gradient of the task loss alone (the SI penalty's own
    gradient is taken out), so consolidating a task does not count the pull towards the last
    anchor as importance.

    Args:
        si_lambda: penalty strength ``c``.
        eps: damping ``xi`` of the importance normalisation.
    """

    name = "si"

    def __init__(self, si_lambda: float = 1.0, eps: float = 1e-3) -> None:
        check_number("si_lambda", si_lambda)
        check_number("eps", eps, positive=True)
        self.si_lambda = si_lambda
        self.eps = eps
        self.omega: dict[str, torch.Tensor] = {}  # consolidated importance
        self.anchor: dict[str, torch.Tensor] = {}
        self._w: dict[str, torch.Tensor] = {}
        self._start: dict[str, torch.Tensor] = {}
        self._prev: dict[str, torch.Tensor] = {}
        self._grad: dict[str, torch.Tensor] = {}
        self._shapes: dict[str, torch.Size] | None = None  # set by setup

    def _params(self) -> dict[str, Any]:
        return {"si_lambda": self.si_lambda, "eps": self.eps}

    def before_experience(self, trainer: Trainer, experience: Experience) -> None:
        named = trainer.named_trainable()
        self._start = {n: p.detach().clone() for n, p in named}
        self._prev = {n: p.detach().clone() for n, p in named}
        self._w = {n: torch.zeros_like(p) for n, p in named}

    def penalty(self, trainer: Trainer, batch: Batch, output: torch.Tensor) -> torch.Tensor | None:
        if not self.omega:
            return None
        total = torch.zeros((), device=trainer.device)
        for n, p in trainer.named_trainable():
            total = total + (self.omega[n] * (p - self.anchor[n]).pow(2)).sum()
        return self.si_lambda * total

    def after_backward(self, trainer: Trainer, batch: Batch) -> None:
        # The path integral follows the task loss's gradient, as in the paper: the penalty's
        # own gradient, 2 c omega (theta - anchor), is subtracted in closed form.
        self._grad = {}
        for n, p in trainer.named_trainable():
            if p.grad is None:
                continue
            grad = p.grad.detach().clone()
            if n in self.omega:
                grad -= 2 * self.si_lambda * self.omega[n] * (p.detach() - self.anchor[n])
            self._grad[n] = grad

    def after_step(self, trainer: Trainer, batch: Batch, output: torch.Tensor) -> None:
        for n, p in trainer.named_trainable():
            new = p.detach()
            if n in self._grad:
                self._w[n] -= self._grad[n] * (new - self._prev[n])
            self._prev[n].copy_(new)

    def after_experience(self, trainer: Trainer, experience: Experience) -> None:
        for n, p in trainer.named_trainable():
            delta = p.detach() - self._start[n]
            add = self._w[n] / (delta.pow(2) + self.eps)
            self.omega[n] = self.omega.get(n, torch.zeros_like(add)) + add.clamp_min(0)
            self.anchor[n] = p.detach().clone()

    def setup(self, trainer: Trainer) -> None:
        self._shapes = {n: p.shape for n, p in trainer.named_trainable()}

    def state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        tensors = {f"omega.{n}": t for n, t in self.omega.items()}
        tensors.update({f"anchor.{n}": t for n, t in self.anchor.items()})
        return {}, tensors

    def check_state_dict(self, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        # a corrupted state used to load and fail at the next step (KeyError / shape error)
        shapes = self._shapes
        omega = {k[6:]: v for k, v in tensors.items() if k.startswith("omega.")}
        anchor = {k[7:]: v for k, v in tensors.items() if k.startswith("anchor.")}
        if not omega and not anchor:
            return
        if set(omega) != set(anchor) or (shapes is not None and set(omega) != set(shapes)):
            raise ValueError(
                "the SI state must hold omega.<name> and anchor.<name> for every trainable "
                f"parameter; got omega for {sorted(omega)}, anchor for {sorted(anchor)}"
            )
        for n in omega:
            want = shapes[n] if shapes is not None else omega[n].shape
            if omega[n].shape != want or anchor[n].shape != want:
                raise ValueError(
                    f"the SI state's tensors of {n!r} have shapes {tuple(omega[n].shape)} and "
                    f"{tuple(anchor[n].shape)}, the parameter {tuple(want)}"
                )

    def load_state_dict(
        self, config: dict[str, Any], tensors: dict[str, torch.Tensor], trainer: Trainer
    ) -> None:
        self.check_state_dict(config, tensors)
        self.omega = {
            k[6:]: v.to(trainer.device) for k, v in tensors.items() if k.startswith("omega.")
        }
        self.anchor = {
            k[7:]: v.to(trainer.device) for k, v in tensors.items() if k.startswith("anchor.")
        }


class LwF(Strategy):
    """Learning without Forgetting: distil the previous model's outputs on the current data.

    Class-incremental (one shared head): one softmax over the classes of the previous
    experiences. Task-incremental (masked experiences): one softmax per previous task over its
    own classes, on the unmasked logits, summed over the tasks (as for LwF's separate heads).

    Args:
        alpha: weight of the distillation loss.
        temperature: softmax temperature of the distillation.
    """

    name = "lwf"

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0) -> None:
        check_number("alpha", alpha)
        check_number("temperature", temperature, positive=True)
        self.alpha = alpha
        self.temperature = temperature
        self.old_model: torch.nn.Module | None = None
        self.old_classes: list[int] = []
        self.old_heads: list[list[int]] = []  # classes of each previous masked (task) experience
        self._shapes: dict[str, torch.Size] | None = None  # set by setup

    def _params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "temperature": self.temperature}

    def _distill(self, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
        T = self.temperature
        target = F.softmax(old / T, dim=1)
        return T * T * F.kl_div(F.log_softmax(new / T, dim=1), target, reduction="batchmean")

    def penalty(self, trainer: Trainer, batch: Batch, output: torch.Tensor) -> torch.Tensor | None:
        if self.old_model is None:
            return None
        x, _, t = batch
        with torch.no_grad():
            old = trainer.output(self.old_model(x))
        if self.old_heads:
            # the task mask sets every old head to the same constant: distil the raw logits
            new = trainer._raw_output
            if new is None or new.shape != output.shape:
                new = trainer.output(trainer.model(x))
            loss = sum(
                self._distill(new[:, h], old[:, h])
                for h in (torch.tensor(c, device=output.device) for c in self.old_heads)
            )
            return self.alpha * loss
        old, new = trainer.mask_output(old, t), output
        if self.old_classes:
            idx = torch.tensor(self.old_classes, device=output.device)
            old, new = old[:, idx], new[:, idx]
        return self.alpha * self._distill(new, old)

    def after_experience(self, trainer: Trainer, experience: Experience) -> None:
        self.old_model = copy.deepcopy(trainer.model).eval()
        for p in self.old_model.parameters():
            p.requires_grad_(False)
        if experience.classes is not None:
            self.old_classes = sorted(set(self.old_classes) | set(experience.classes))
            head = sorted(int(c) for c in experience.classes)
            if experience.masked and head and head not in self.old_heads:
                self.old_heads.append(head)

    def state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        config = {
            "old_classes": self.old_classes,
            "old_heads": self.old_heads,
            "has_old": self.old_model is not None,
        }
        if self.old_model is None:
            return config, {}
        return config, {f"old.{k}": v for k, v in self.old_model.state_dict().items()}

    def setup(self, trainer: Trainer) -> None:
        if not trainer.classifies:  # the softmax of one output is constant: no distillation
            raise ValueError(
                "LwF distils softmax outputs, but this trainer does not classify (a custom "
                "loss_fn with metric='loss'); for regression use Replay, DERPP, EWC or SI"
            )
        self._shapes = {k: v.shape for k, v in trainer.model.state_dict().items()}

    def check_state_dict(self, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        # a corrupted state used to fail half-loaded, in the old model's load_state_dict
        missing = [k for k in ("old_classes", "has_old") if k not in config]
        if missing:
            raise ValueError(f"the LwF state is missing {missing}")
        old = {k[4:]: v for k, v in tensors.items() if k.startswith("old.")}
        if not config["has_old"]:
            return
        shapes = self._shapes
        if shapes is None:
            return
        wrong = sorted(set(shapes) ^ set(old)) + [
            k for k in shapes if k in old and old[k].shape != shapes[k]
        ]
        if wrong:
            raise ValueError(
                f"the LwF state's previous model does not fit this model (missing, unexpected or "
                f"reshaped entries: {wrong[:5]})"
            )

    def load_state_dict(
        self, config: dict[str, Any], tensors: dict[str, torch.Tensor], trainer: Trainer
    ) -> None:
        self.check_state_dict(config, tensors)
        self.old_classes = [int(c) for c in config["old_classes"]]
        self.old_heads = [[int(c) for c in h] for h in config.get("old_heads", [])]
        if config["has_old"]:
            self.old_model = copy.deepcopy(trainer.model).eval()
            self.old_model.load_state_dict({k[4:]: v for k, v in tensors.items()})
            for p in self.old_model.parameters():
                p.requires_grad_(False)


class DERPP(_MemoryParams, Strategy):
    """Dark Experience Replay++ (Buzzega et al. 2020): replay logits and labels.

    The memory is a reservoir over every training batch, storing inputs, labels, task ids and
    the logits the model produced. The loss adds ``alpha * MSE(logits(x'), z')`` on one memory
    batch and ``beta * CE(logits(x''), y'')`` on another.

    Args:
        mem_size: memory capacity in samples.
        alpha: weight of the logit-matching term.
        beta: weight of the label term.
        batch_size: memory batch size (the training batch size if None).
        random_state: seed of the memory.
    """

    name = "der++"

    def __init__(
        self,
        mem_size: int = 200,
        alpha: float = 0.3,
        beta: float = 0.5,
        batch_size: int | None = None,
        random_state: Any = 0,
    ) -> None:
        check_number("alpha", alpha)
        check_number("beta", beta)
        check_count("batch_size", batch_size, none_ok=True)
        self.alpha = alpha
        self.beta = beta
        self.batch_size = batch_size
        self._build_memory(mem_size, "reservoir", random_state)

    def _params(self) -> dict[str, Any]:
        return {"mem_size": self.mem_size, "alpha": self.alpha, "beta": self.beta}

    def penalty(self, trainer: Trainer, batch: Batch, output: torch.Tensor) -> torch.Tensor | None:
        if len(self.memory) == 0:
            return None
        n = self.batch_size or batch[0].shape[0]
        x1, _, t1, z1 = self.memory.sample(n, device=trainer.device)
        x2, y2, t2, _ = self.memory.sample(n, device=trainer.device)
        out1 = trainer.mask_output(trainer.output(trainer.model(x1)), t1)
        term = self.alpha * F.mse_loss(out1, trainer.mask_output(z1, t1))
        out2 = trainer.mask_output(trainer.output(trainer.model(x2)), t2)
        return term + self.beta * trainer.loss_fn(out2, y2)

    def after_step(self, trainer: Trainer, batch: Batch, output: torch.Tensor) -> None:
        x, y, t = batch
        n = x.shape[0]
        self.memory.add(x, y, t, output[:n].detach(), task_id=int(t[0]))

    def state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        config, tensors = self.memory.state_dict()
        return {"memory": config}, {f"memory.{k}": v for k, v in tensors.items()}

    def check_state_dict(self, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        _check_memory_config(self, config, tensors)

    def load_state_dict(
        self, config: dict[str, Any], tensors: dict[str, torch.Tensor], trainer: Trainer
    ) -> None:
        self.check_state_dict(config, tensors)
        self.memory.load_state_dict(
            config["memory"],
            {k[len("memory.") :]: v for k, v in tensors.items() if k.startswith("memory.")},
        )


class Joint(Strategy):
    """Joint (cumulative) training: each experience is trained on the union of all seen so far.

    After the last experience the model has been trained on all the data together: the upper
    bound the other strategies are compared with. An experience is added once (the same task id
    and dataset); another stream's experience with a known task id is added too, its data is new.
    Map-style datasets only: a stream (``IterableDataset``) cannot be joined.
    """

    name = "joint"

    def __init__(self) -> None:
        self.seen: list[Experience] = []

    def train_dataset(self, trainer: Trainer, experience: Experience) -> Dataset:
        if isinstance(experience.dataset, IterableDataset):
            raise TypeError(
                f"Joint trains on the union of the datasets seen so far; experience "
                f"{experience.task_id} is a stream (IterableDataset), which cannot be joined: "
                "give a map-style dataset (a TensorDataset)"
            )
        if not any(
            e.task_id == experience.task_id and e.dataset is experience.dataset for e in self.seen
        ):
            self.seen.append(experience)
        datasets = [e.dataset for e in self.seen]
        if all(isinstance(d, TensorDataset) for d in datasets):
            tasks = [torch.full((len(e),), e.task_id, dtype=torch.long) for e in self.seen]
            n = len(datasets[0].tensors)
            cat = [torch.cat([d.tensors[i] for d in datasets]) for i in range(n)]
            return _TaskTensorDataset(*cat, task_ids=torch.cat(tasks))
        return _TaskTaggedConcat([_TaskTagged(e.dataset, e.task_id) for e in self.seen])

    def state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        tensors: dict[str, torch.Tensor] = {}
        meta = []
        for i, e in enumerate(self.seen):
            ts = e.tensors()
            if ts is None:
                raise TypeError("Joint can only checkpoint experiences backed by TensorDataset")
            for j, t in enumerate(ts):
                tensors[f"seen.{i}.{j}"] = t
            meta.append(
                {
                    "task_id": e.task_id,
                    "classes": None if e.classes is None else list(e.classes),
                    "task_label": e.task_label,
                    "n_tensors": len(ts),
                }
            )
        return {"seen": meta}, tensors

    def load_state_dict(
        self, config: dict[str, Any], tensors: dict[str, torch.Tensor], trainer: Trainer
    ) -> None:
        self.seen = []
        for i, m in enumerate(config["seen"]):
            ts = [tensors[f"seen.{i}.{j}"] for j in range(m["n_tensors"])]
            classes = None if m["classes"] is None else tuple(m["classes"])
            self.seen.append(Experience(TensorDataset(*ts), m["task_id"], classes, m["task_label"]))


class _TaskTagged(Dataset):
    """The rows of ``dataset`` as ``(x, y, task_id)``: Joint over datasets that are not tensors."""

    def __init__(self, dataset: Dataset, task_id: int) -> None:
        self.dataset = dataset
        self.task_id = torch.tensor(task_id, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Any, Any, torch.Tensor]:
        row = self.dataset[i]
        return row[0], row[1], self.task_id


class _TaskTaggedConcat(ConcatDataset):
    """Concatenated :class:`_TaskTagged` datasets: batches carry each row's own task id."""

    yields_task_ids = True


class _TaskTensorDataset(TensorDataset):
    """A TensorDataset whose rows carry their own task id (for Joint with task masks)."""

    def __init__(self, *tensors: torch.Tensor, task_ids: torch.Tensor) -> None:
        super().__init__(*tensors)
        self.task_ids = task_ids


def fisher_on(
    trainer: Trainer,
    experience: Experience,
    max_samples: int | None = None,
    kind: str = "empirical",
) -> dict[str, torch.Tensor]:
    """Per-sample Fisher of the trainer's model on an experience, with its task mask applied.

    ``kind="empirical"`` squares the per-sample loss gradients; ``"expected"`` uses the exact
    Fisher of the softmax outputs (see :func:`~continual.kernels.per_sample_expected_fisher`).
    ``max_samples`` rows evenly spaced over the experience are used (all if None). The rows
    are processed in chunks whose per-sample gradients hold at most ``2**23`` elements (a
    fixed 256 rows held 256 copies of the gradient: gigabytes for a model of a few million
    parameters).
    """
    check_count("max_samples", max_samples, none_ok=True)  # 0 read as "no samples"
    x, y = _experience_tensors(experience)
    trainer.check_labels(x, y, experience.task_id)
    if max_samples is not None and max_samples < x.shape[0]:
        # evenly spaced rows: the whole experience is covered even when it is sorted by class
        keep = torch.linspace(0, x.shape[0] - 1, max_samples).round().long()
        x, y = x[keep], y[keep]
    if x.shape[0] == 0:
        raise ValueError(f"experience {experience.task_id} has no samples: no Fisher to estimate")
    model = trainer.model
    names = [n for n, _ in trainer.named_trainable()]
    t_id = experience.task_id
    sums = {n: torch.zeros_like(p) for n, p in trainer.named_trainable()}
    was = model.training
    model.eval()
    try:
        n_params = sum(sums[n].numel() for n in names)
        if kind == "empirical":
            step = _fisher_rows(n_params, 1, 256)
        else:  # one gradient per class and row
            step = _fisher_rows(n_params, trainer._output_count(x), 16)
        for start in range(0, x.shape[0], step):
            xb = trainer.to_input(x[start : start + step])
            yb = trainer.to_target(y[start : start + step])
            tb = torch.full((1,), t_id, dtype=torch.long, device=trainer.device)

            def out_fn(o: Any, tb: torch.Tensor = tb) -> torch.Tensor:
                return trainer.mask_output(trainer.output(o), tb)

            if kind == "empirical":
                part = per_sample_squared_grads(
                    model, xb, yb, trainer.loss_fn, output_fn=out_fn, names=names
                )
            else:
                part = per_sample_expected_fisher(model, xb, output_fn=out_fn, names=names)
            for n in names:
                sums[n] += part[n]
    finally:
        model.train(was)
    total = torch.tensor(float(x.shape[0]), device=trainer.device)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        for n in names:
            torch.distributed.all_reduce(sums[n])
        torch.distributed.all_reduce(total)
    return {n: s / total for n, s in sums.items()}
