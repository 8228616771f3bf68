"""``flt-train`` / ``python -m flt_tracker.train``: a configured, tracked training run.

With Hydra installed (``pip install flt-tracker[hydra]``) the configuration is composed from the
packaged YAML groups ``data``, ``model``, ``optimizer``, ``tracking`` and ``logging``
(``flt_tracker/conf``) and every Hydra feature works: overrides (``optimizer.lr=1``), group
choices (``model=mlp data=gaussian``), multirun sweeps (``-m optimizer.lr=0.5,1,2``).
``--no-hydra`` (or no Hydra installed) composes the same defaults with PyYAML and accepts
``key=value`` overrides only (``-h`` / ``--help`` prints this text).

wandb is on by default when installed (``logging.wandb=auto``); ``logging.wandb=false`` turns it
off, ``logging.wandb_mode=offline`` logs without an account. Each run writes into its output
directory: ``run/`` (the tracking run, :func:`flt_tracker.load_run`), ``metrics.csv`` and
``summary.json`` (strict JSON: a diverged metric is ``null``) and, with matplotlib installed,
the ``plots`` figures under ``figures/`` (``plots.enabled=false`` writes none;
``plots.formats=[png,pdf]`` picks the formats; ``plots.evolution`` / ``plots.heatmap`` pick
the figures). Hydra picks a new output
directory per run (``outputs/<date>/<time>``); without Hydra each run gets a new folder
``outputs/flt-train/<date>_<time>`` (``-1``, ``-2``, ... appended for runs started in the same
second). ``output_dir=PATH`` names the folder (under Hydra it stands for ``hydra.run.dir``, or
``hydra.sweep.dir`` with ``-m``). Under ``torchrun`` give ``output_dir=`` (or
``hydra.run.dir=``): the ranks must name the same folder, and each reads its own clock.

Under ``torchrun`` each rank trains on its own shard of the training set and validates on its
own part of the test set (see :func:`build`); rank 0 tracks, writes the files and
prints the final metrics.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import os
import re
import sys
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import blockops
import torch
import yaml
from torch import nn

__all__ = ["build", "compose_default", "main", "run"]

CONF_DIR = Path(__file__).parent / "conf"
GROUPS = ("data", "model", "optimizer", "tracking", "logging")
_EXP_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
_UNSAFE = re.compile(r"[^\w.-]")  # characters kept out of figure file names


def compose_default(overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The packaged configuration composed without Hydra, with ``key=value`` overrides
    (``group=option`` picks a group file; values are parsed as YAML, and ``1e-3`` is a float
    as in Hydra). Hydra flags (``-m``) and sweeps (``a=1,2``) are errors."""
    base = yaml.safe_load((CONF_DIR / "config.yaml").read_text(encoding="utf-8"))
    choices: dict[str, str] = {}
    for item in base.pop("defaults"):
        if isinstance(item, dict):
            choices.update(item)
    plain = []
    for ov in overrides:
        if ov.startswith("-"):
            raise ValueError(
                f"{ov!r}: flags such as -m (multirun) need Hydra: pip install "
                "'flt-tracker[hydra]' and leave out --no-hydra"
            )
        if "=" not in ov:
            raise ValueError(f"override {ov!r} must look like key=value")
        key, value = ov.split("=", 1)
        if "," in value and value.lstrip()[:1] not in "[{'\"":
            raise ValueError(
                f"override {ov!r} lists several values: a sweep needs Hydra's multirun "
                f"(flt-train -m {ov}); a list is written {key}=[{value}]"
            )
        if key in GROUPS:
            choices[key] = value
        elif _EXP_FLOAT.fullmatch(value.strip()):  # YAML 1.1 reads 1e-3 as a string
            plain.append((key, float(value)))
        else:
            plain.append((key, yaml.safe_load(value)))
    cfg: dict[str, Any] = {}
    for group in GROUPS:
        path = CONF_DIR / group / f"{choices[group]}.yaml"
        if not path.is_file():
            options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
            raise ValueError(
                f"{group}={choices[group]!r} is not a known option; choose from {options}"
            )
        cfg[group] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    cfg.update(base)
    for key, value in plain:
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):
                raise KeyError(f"override {key!r}: {p!r} is not a config section")
            node = node[p]
        if leaf not in node:
            raise KeyError(f"override {key!r}: unknown key {leaf!r}; known: {sorted(node)}")
        node[leaf] = value
    return cfg


class _MLP(nn.Sequential):
    def __init__(self, dim: int, hidden: Sequence[int], classes: int):
        layers: list[nn.Module] = []
        prev = dim
        for h in hidden:
            layers += [nn.Linear(prev, int(h)), nn.ReLU()]
            prev = int(h)
        layers.append(nn.Linear(prev, classes))
        super().__init__(*layers)


def _gaussian(cfg: dict[str, Any], seed: int) -> dict[str, torch.Tensor]:
    gen = blockops.make_generator(seed)
    centers = (
        torch.randn(cfg["classes"], cfg["dim"], generator=gen) * cfg["separation"] / math.sqrt(2)
    )
    out = {}
    for split in ("train", "test"):
        n = cfg[f"n_{split}"]
        y = torch.randint(0, cfg["classes"], (n,), generator=gen)
        out[f"X_{split}"] = centers[y] + torch.randn(n, cfg["dim"], generator=gen)
        out[f"y_{split}"] = y
    return out


def _rank_and_world() -> tuple[int, int]:
    """This process's rank and the world size of the running process group ((0, 1) without)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _print_final(summary: dict[str, Any]) -> None:
    """Print the final epoch metrics as one strict JSON line, on rank 0 only: under torchrun
    the other ranks stay quiet (``summary["final"]`` holds the same averaged metrics there)."""
    if _rank_and_world()[0] == 0:
        print(json.dumps(_strict(summary["final"]), allow_nan=False))


def _check_data_sizes(data_cfg: dict[str, Any], world: int) -> None:
    """Refuse data sizes that are not positive integers, or too few training samples for one
    full batch per process (incomplete batches are dropped)."""
    for key in ("n_train", "n_test", "batch_size"):
        value = data_cfg[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"data.{key}={value!r} must be a positive integer")
    if data_cfg["n_train"] // world < data_cfg["batch_size"]:
        raise ValueError(
            f"data.n_train={data_cfg['n_train']} leaves each of {world} process(es) fewer "
            f"samples than data.batch_size={data_cfg['batch_size']}; incomplete batches are "
            "dropped, so nothing would train: lower data.batch_size or raise data.n_train"
        )


def build(cfg: dict[str, Any]) -> dict[str, Any]:
    """Data loaders, model, loss, optimizer and metric for a configuration.

    In a process group of several processes (torchrun) the loaders are sharded by rank: training
    by a ``DistributedSampler`` (seed ``seed + 2``, reshuffled every epoch by the Trainer; the
    uneven tail is dropped, so every rank runs the same steps), validation on every
    ``world_size``-th test sample from ``rank`` (disjoint and unpadded: the Trainer sums the
    metrics over ranks, so they are those of the whole test set)."""
    from torch.utils.data import DataLoader, DistributedSampler, Subset, TensorDataset

    from .purification import TwoLayerSReLU, logistic_loss, make_sparse_coding
    from .trainer import accuracy

    data_cfg, model_cfg, opt_cfg = cfg["data"], cfg["model"], cfg["optimizer"]
    seed = int(cfg["seed"])
    rank, world = _rank_and_world()
    _check_data_sizes(data_cfg, world)
    if data_cfg["name"] == "sparse_coding":
        d = make_sparse_coding(
            data_cfg["n_train"],
            data_cfg["n_test"],
            data_cfg["d"],
            data_cfg["k"],
            data_cfg["noise"],
            data_cfg["margin"],
            seed,
        )
        tensors = {
            "X_train": d.X_train,
            "y_train": d.y_train,
            "X_test": d.X_test,
            "y_test": d.y_test,
        }
        dim, classes = data_cfg["d"], 2
    elif data_cfg["name"] == "gaussian":
        tensors = _gaussian(data_cfg, seed)
        dim, classes = data_cfg["dim"], data_cfg["classes"]
    else:
        raise ValueError(f"data.name={data_cfg['name']!r}; use 'sparse_coding' or 'gaussian'")
    gen = blockops.make_generator(seed + 1)
    if model_cfg["name"] == "two_layer_srelu":
        if classes != 2:
            raise ValueError(
                "model two_layer_srelu is a binary (+-1) model; use data=sparse_coding"
            )
        model: nn.Module = TwoLayerSReLU(
            dim, model_cfg["m"], model_cfg["rho"], model_cfg["threshold"], generator=gen
        )
        loss_fn = logistic_loss
    elif model_cfg["name"] == "mlp":
        torch.manual_seed(seed + 1)
        model = _MLP(dim, model_cfg["hidden"], classes)
        if classes == 2 and data_cfg["name"] == "sparse_coding":
            tensors = {k: ((v > 0).long() if k.startswith("y") else v) for k, v in tensors.items()}
        loss_fn = nn.CrossEntropyLoss()
    else:
        raise ValueError(f"model.name={model_cfg['name']!r}; use 'two_layer_srelu' or 'mlp'")
    if opt_cfg["name"] == "sgd":
        opt = torch.optim.SGD(
            model.parameters(),
            lr=opt_cfg["lr"],
            momentum=opt_cfg.get("momentum", 0.0),
            weight_decay=opt_cfg.get("weight_decay", 0.0),
        )
    elif opt_cfg["name"] == "adam":
        opt = torch.optim.Adam(
            model.parameters(), lr=opt_cfg["lr"], weight_decay=opt_cfg.get("weight_decay", 0.0)
        )
    else:
        raise ValueError(f"optimizer.name={opt_cfg['name']!r}; use 'sgd' or 'adam'")
    train_set = TensorDataset(tensors["X_train"], tensors["y_train"])
    test_set = TensorDataset(tensors["X_test"], tensors["y_test"])
    shuffle_gen = torch.Generator().manual_seed(seed + 2)
    if world > 1:
        sampler = DistributedSampler(
            train_set, num_replicas=world, rank=rank, shuffle=True, seed=seed + 2, drop_last=True
        )
        train = DataLoader(
            train_set,
            batch_size=data_cfg["batch_size"],
            sampler=sampler,
            generator=shuffle_gen,  # the loader's per-epoch seed draw leaves torch's RNG alone
            drop_last=True,
        )
        test_set = Subset(test_set, range(rank, len(test_set), world))
    else:
        train = DataLoader(
            train_set,
            batch_size=data_cfg["batch_size"],
            shuffle=True,
            generator=shuffle_gen,
            drop_last=True,
        )
    test = DataLoader(test_set, batch_size=1024)
    return {
        "train": train,
        "test": test,
        "model": model,
        "loss_fn": loss_fn,
        "optimizer": opt,
        "metric": accuracy,
    }


def _wandb_wanted(setting: Any) -> bool:
    """``logging.wandb``: ``auto`` (on when wandb is installed), true / on / yes, or
    false / off / no / null."""
    choice = setting if isinstance(setting, bool) or setting is None else str(setting).lower()
    if choice in (False, None, "false", "off", "no"):
        return False
    if choice not in (True, "true", "on", "yes", "auto"):
        raise ValueError(f"logging.wandb={setting!r} is not understood; use auto, true or false")
    try:
        import wandb  # noqa: F401
    except ImportError:
        if choice != "auto":
            raise ImportError(
                "logging.wandb=true needs wandb: pip install 'flt-tracker[wandb]'"
            ) from None
        return False
    return True


def _wandb_login_error(exc: BaseException) -> bool:
    """Whether ``exc`` is wandb's "No API key configured" (installed, online, not logged in)."""
    return type(exc).__module__.startswith("wandb") and "API key" in str(exc)


def _plot_formats(pcfg: dict[str, Any]) -> list[str]:
    """The figure formats ``plots`` asks for: none when disabled, or, with a warning, without
    matplotlib. Formats matplotlib cannot write are refused before training."""
    if not pcfg.get("enabled", True):
        return []
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        warnings.warn(
            "plots.enabled=true needs matplotlib (pip install 'flt-tracker[plot]'): no figures "
            "are written; plots.enabled=false silences this",
            stacklevel=3,
        )
        return []
    formats = pcfg.get("formats") or []
    formats = [formats] if isinstance(formats, str) else formats
    known = FigureCanvasBase.get_supported_filetypes()
    unknown = [f for f in formats if str(f).lower() not in known]
    if unknown:
        raise ValueError(f"plots.formats: {unknown} cannot be written; use some of {sorted(known)}")
    return [str(f).lower() for f in formats]


def _write_figures(
    run_dir: str | Path, out: Path, pcfg: dict[str, Any], formats: list[str]
) -> list[str]:
    """Write the ``plots`` figures of the tracking run in ``run_dir`` into ``out/figures`` (each
    file renamed into place once complete); returns their paths."""
    from .plot import _save, visualize_feature_evolution, visualize_features_heatmap
    from .run import load_run

    tracked = load_run(run_dir)
    weights = {n: f for n, f in tracked.get_features().items() if f.kind == "weight" and len(f)}
    figures = {}
    if pcfg.get("evolution", True):
        for name, feature in weights.items():
            figures[f"evolution_{_UNSAFE.sub('_', name)}"] = visualize_feature_evolution(
                feature, phases=tracked.phases
            )
    if pcfg.get("heatmap", True) and weights:
        figures["heatmap"] = visualize_features_heatmap(tracked)
    paths = []
    for stem, fig in figures.items():
        for fmt in formats:
            path = out / "figures" / f"{stem}.{fmt}"
            _save(fig, path)
            paths.append(str(path))
    return paths


def _strict(value: Any) -> Any:
    """``value`` with NaN / infinite floats (a diverged loss) as ``None``, for strict JSON."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def run(cfg: dict[str, Any], output_dir: str | Path) -> dict[str, Any]:
    """Train once as configured; writes ``run/``, ``metrics.csv``, ``summary.json`` and the
    ``plots`` figures (``figures/``) into ``output_dir`` and returns the summary.

    Raises:
        RuntimeError: wandb is on (``logging.wandb``) but not logged in; the message names
            ``logging.wandb=false`` and ``logging.wandb_mode=offline``.
    """
    from .attacks import make_attack
    from .callbacks import CSVLogger, FeatureTrackingCallback, WandbCallback
    from .storage import atomic_path
    from .tracker import FeatureTracker
    from .trainer import Trainer, _init_distributed

    cfg = copy.deepcopy(cfg)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun: the group first, so build shards
        _init_distributed(cfg["device"])
    acfg = cfg["adversarial"]
    if acfg["enabled"]:  # checked before the data is built, by the names the CLI uses
        eps = acfg["eps"]
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real):  # was a bare float() error
            raise TypeError(f"adversarial.eps={eps!r} must be a number (the attack radius)")
        if acfg["attack"] not in ("fgm", "pgd"):  # was "kind='xyz' is not supported"
            raise ValueError(f"adversarial.attack={acfg['attack']!r}; use 'fgm' or 'pgd'")
    formats = _plot_formats(cfg.get("plots", {}))
    torch.manual_seed(int(cfg["seed"]))
    parts = build(cfg)
    model, opt = parts["model"], parts["optimizer"]
    callbacks: list[Any] = []
    tracker = None
    tcfg = cfg["tracking"]
    if tcfg.get("enabled", True):
        dtypes = {"float32": None, "float16": torch.float16}
        name = tcfg.get("dtype") or "float32"
        if name not in dtypes:
            raise ValueError(f"tracking.dtype={name!r} is not supported; use one of {list(dtypes)}")
        dtype = dtypes[name]
        tracker = FeatureTracker(
            model,
            layers=tcfg.get("layers"),
            track_gradients=bool(tcfg.get("gradients", False)),
            track_frequency=tcfg.get("frequency", 1),
            optimizer=opt,
            storage=tcfg.get("storage", "memory"),
            directory=out / "run" if tcfg.get("storage") == "disk" else None,
            dtype=dtype,
            memory_budget=tcfg.get("memory_budget"),
            budget_policy=tcfg.get("budget_policy", "error"),
            preallocate=bool(tcfg.get("preallocate", False)),
        )
        callbacks.append(
            FeatureTrackingCallback(
                tracker, phase="adversarial" if cfg["adversarial"]["enabled"] else "clean"
            )
        )
    lcfg = cfg["logging"]
    if lcfg.get("csv", True):
        callbacks.append(CSVLogger(out / "metrics.csv"))
    wandb_on = _wandb_wanted(lcfg.get("wandb", "auto"))
    if wandb_on:
        callbacks.append(
            WandbCallback(
                project=lcfg.get("wandb_project"),
                config=cfg,
                tracker=tracker,
                mode=lcfg.get("wandb_mode"),
                dir=str(out),
            )
        )
    inner = None
    if acfg["enabled"]:
        kwargs = {"steps": acfg["steps"]} if acfg["attack"] == "pgd" else {}  # 2.5 refused
        inner = make_attack(acfg["attack"], parts["loss_fn"], float(acfg["eps"]), **kwargs)
    trainer = Trainer(
        model,
        opt,
        callbacks=callbacks,
        device=cfg["device"],
        loss_fn=parts["loss_fn"],
        inner_max=inner,
        grad_clip=cfg.get("grad_clip"),
        seed=int(cfg["seed"]),
        metrics={"accuracy": parts["metric"]},
        progress=bool(lcfg.get("progress", False)),
    )
    try:
        history = trainer.fit(parts["train"], cfg["epochs"], val_loader=parts["test"])
    except Exception as exc:
        if wandb_on and _wandb_login_error(exc):  # wandb.init's error named no CLI option
            raise RuntimeError(
                f"wandb is installed but not logged in ({exc}): run `wandb login`, turn wandb "
                "off with logging.wandb=false, or log without an account with "
                "logging.wandb_mode=offline"
            ) from exc
        raise
    summary: dict[str, Any] = {
        "final": history[-1] if history else {},
        "global_step": trainer.global_step,
    }
    if tracker is not None and trainer.is_main_process:
        if tracker.storage_kind == "disk":
            tracker.close()
            summary["run"] = str(out / "run")
        else:
            summary["run"] = str(tracker.save(out / "run"))
        summary["tracked"] = list(tracker.get_features())
        if formats:
            summary["figures"] = _write_figures(summary["run"], out, cfg["plots"], formats)
    if trainer.is_main_process:  # under torchrun every rank would write (without "run")
        text = json.dumps(_strict(summary), indent=1, allow_nan=False)  # a NaN loss is null
        with atomic_path(out / "summary.json") as tmp:
            tmp.write_text(text, encoding="utf-8")
    return summary


def _new_output_dir(root: Path) -> Path:
    """A new folder ``root/<date>_<time>`` for a run without Hydra (``-1``, ``-2``, ... appended
    when a run of the same second has it; created exclusively, so concurrent runs never share
    one). Under torchrun the plain stamp, not created: every rank must name the same folder."""
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return root / stamp
    root.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        path = root / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1


def _hydra_output_dir(args: list[str]) -> list[str]:
    """``args`` with ``output_dir=PATH`` as Hydra's ``hydra.run.dir=PATH`` (``hydra.sweep.dir``
    with ``-m``): under Hydra it was "Key 'output_dir' is not in struct"."""
    multirun = "-m" in args or "--multirun" in args
    key = "hydra.sweep.dir=" if multirun else "hydra.run.dir="
    return [key + a.split("=", 1)[1] if a.startswith("output_dir=") else a for a in args]


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point (``flt-train``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    use_hydra = "--no-hydra" not in args
    args = [a for a in args if a != "--no-hydra"]
    if use_hydra:
        try:
            import hydra
            from hydra.core.hydra_config import HydraConfig
            from omegaconf import OmegaConf
        except ImportError:
            use_hydra = False
    if not use_hydra:
        if "-h" in args or "--help" in args:
            print(__doc__)
            return
        out = None  # a new folder per run: a fixed one was replaced, or refused by disk runs
        rest = []
        for a in args:
            if a.startswith("hydra.run.dir=") or a.startswith("output_dir="):
                out = Path(a.split("=", 1)[1])
            else:
                rest.append(a)
        cfg = compose_default(rest)  # a bad override leaves no empty run folder behind
        _print_final(run(cfg, out or _new_output_dir(Path("outputs") / "flt-train")))
        return

    @hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)
    def _entry(cfg: Any) -> float:
        summary = run(
            OmegaConf.to_container(cfg, resolve=True), HydraConfig.get().runtime.output_dir
        )
        _print_final(summary)
        return float(summary["final"].get("val_accuracy", float("nan")))

    saved = sys.argv
    sys.argv = [saved[0], *_hydra_output_dir(args)]
    try:
        _entry()
    finally:
        sys.argv = saved


if __name__ == "__main__":
    main()
