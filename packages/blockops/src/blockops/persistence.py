"""Safe, atomic checkpoints: YAML config + plain tensors + JSON metadata, no pickle."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from .device import resolve_device

FORMAT_VERSION = 1
_FILES = ("config.yaml", "tensors.pt")
_RESERVED = ("format_version", "sha256")


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(
    directory: str | os.PathLike[str],
    config: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``config.yaml``, ``tensors.pt`` and ``meta.json`` into ``directory`` atomically.

    The files are written to a temporary sibling directory which then replaces ``directory``;
    a crash mid-save leaves the previous checkpoint intact. ``meta.json`` records a SHA-256
    of the other files, checked on load. An existing ``directory`` must be empty or a
    checkpoint (``meta.json`` and the checkpoint files, nothing else): a file, or a folder
    holding anything else, is never replaced, and neither is the working directory (a
    ``ValueError``). A symlink is followed: the checkpoint it points to is replaced.
    ``config`` goes through safe YAML: a tuple loads back as a list.
    """
    _check_not_cwd(directory)
    target = Path(directory)
    if target.name in ("", "..") or target.is_symlink():  # "a/..", or a link: save where
        target = Path(os.path.realpath(directory))  # it points (a link cannot be swapped)
    _check_replaceable(target)
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    if not isinstance(tensors, Mapping):
        raise TypeError(f"tensors must be a dict of tensors, got {type(tensors).__name__}")
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"tensors[{name!r}] must be a torch.Tensor, got {type(t).__name__}")
        if t.layout != torch.strided:
            raise TypeError(f"tensors[{name!r}] must be a dense tensor, got layout {t.layout}")
    _check_yaml_safe(dict(config), "config")
    full_meta = _check_meta(meta)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=_sibling_prefix(target, ""), dir=target.parent))
    except OSError as exc:  # a read-only folder: the OS names the hidden temporary sibling
        raise type(exc)(
            exc.errno,
            f"cannot save a checkpoint at {str(directory)!r}: no folder can be created in "
            f"{str(target.parent)!r} ({exc.strerror}); choose a writable location",
        ) from exc
    try:
        with open(tmp / "config.yaml", "w", encoding="utf-8") as fh:
            yaml.safe_dump(dict(config), fh, sort_keys=False)
        torch.save({k: _compact(v) for k, v in tensors.items()}, tmp / "tensors.pt")
        full_meta["format_version"] = FORMAT_VERSION
        full_meta["sha256"] = {name: _digest(tmp / name) for name in _FILES}
        with open(tmp / "meta.json", "w", encoding="utf-8") as fh:
            json.dump(full_meta, fh, indent=2, sort_keys=True)
        for name in (*_FILES, "meta.json"):
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Path(directory)


def _check_not_cwd(directory: str | os.PathLike[str]) -> None:
    """ValueError when ``directory`` is the working directory or holds it: a save replaces
    its directory, which the process cannot rename (``Device or resource busy``)."""
    target, cwd = Path(os.path.realpath(directory)), Path(os.path.realpath(Path.cwd()))
    if target == cwd or target in cwd.parents:
        raise ValueError(
            f"directory={str(directory)!r} is the current working directory or one holding it; "
            "a checkpoint replaces its whole directory: save into a sub-directory such as "
            "'model'"
        )


def _sibling_prefix(target: Path, tag: str) -> str:
    """Name prefix of a hidden sibling of ``target`` (the temporary or backup directory):
    ``target``'s name is shortened so that a name near the 255-byte limit, which is a valid
    checkpoint name, still leaves room for the prefix and the random suffix."""
    return f".{target.name[:32]}.{tag}"


def _swap_in(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``, first moving an existing ``target`` to a backup directory
    with a unique name (concurrent saves, or a crashed save's leftover, never share one); the
    backups are removed once ``tmp`` is in place. Another save that puts its checkpoint at
    ``target`` in between is moved aside too: the last save to finish wins."""
    backups: list[Path] = []
    while True:
        if target.exists():
            backup = Path(
                tempfile.mkdtemp(prefix=_sibling_prefix(target, "old-"), dir=target.parent)
            )
            backups.append(backup)
            try:
                os.replace(target, backup)  # a directory renames over an empty one
            except FileNotFoundError:
                pass  # another save moved it first
        try:
            os.replace(tmp, target)
            break
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    for backup in backups:
        shutil.rmtree(backup, ignore_errors=True)


def _compact(t: torch.Tensor) -> torch.Tensor:
    """``t`` on the CPU, contiguous and owning exactly its own data: ``torch.save`` writes a
    view's whole storage (a row of a large buffer would save the buffer)."""
    t = t.detach().cpu().contiguous()
    if t.untyped_storage().nbytes() != t.numel() * t.element_size():
        t = t.clone()
    return t


def _check_yaml_safe(value: Any, where: str) -> None:
    """TypeError naming the first entry of ``value`` that safe YAML cannot write (a numpy
    scalar, a tensor, an object), instead of yaml's ``cannot represent an object``."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) in (list, tuple, set, dict):  # safe_load rebuilds it unhashable
                raise TypeError(
                    f"a key of {where} is a {type(key).__name__} ({key!r:.80}); the checkpoint "
                    "could not be loaded (safe YAML reads it back as a list): use a str key"
                )
            _check_yaml_safe(key, f"a key of {where}")
            _check_yaml_safe(item, f"{where}[{key!r}]")
    elif kind in (list, tuple, set):
        for i, item in enumerate(value):
            _check_yaml_safe(item, f"{where}[{i}]")
    elif kind not in yaml.SafeDumper.yaml_representers:
        raise TypeError(
            f"{where} is a {kind.__name__} ({value!r:.80}); safe YAML holds str, int, float, "
            "bool, None, bytes, dates and lists, tuples, sets and dicts of them (use .item() "
            "or .tolist() for numpy and torch values)"
        )


def _check_meta(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """``meta`` as a dict, or a TypeError/ValueError (before anything is written) for what
    ``meta.json`` cannot hold: non-JSON values, non-str keys. The keys ``save_checkpoint``
    writes itself (``format_version``, ``sha256``) are dropped, so the ``meta`` returned by
    :func:`load_checkpoint` can be saved back unchanged."""
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise TypeError(f"meta must be a dict or None, got {type(meta).__name__}")
    out = dict(meta)
    _check_str_keys(out, "meta")
    for key in _RESERVED:  # written by save_checkpoint: a loaded meta saves back as is
        out.pop(key, None)
    try:
        json.dumps(out, sort_keys=True)
    except (TypeError, ValueError) as exc:  # a numpy scalar or tensor, a circular reference
        raise TypeError(
            f"meta must hold JSON values (str, int, float, bool, None, lists and dicts with "
            f"str keys; use .item() or .tolist() for numpy and torch values): {exc}"
        ) from exc
    return out


def _check_str_keys(value: Any, where: str) -> None:
    """TypeError for a dict key in ``value`` that is not a str (JSON would turn ``1`` into
    ``"1"``, so the loaded meta would differ from the saved one)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has the key {key!r}; meta.json keys must be str")
            _check_str_keys(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_str_keys(item, f"{where}[{i}]")


def _check_replaceable(target: Path) -> None:
    for _ in range(5):
        try:
            inode = os.stat(target).st_ino
            names = {p.name for p in target.iterdir()}
            # a concurrent save may move the listed directory aside and delete it while it is
            # read (a partial listing): list again when ``target`` is another directory now
            moved = os.stat(target).st_ino != inode
        except FileNotFoundError:  # absent, or just moved aside by a concurrent save
            return
        except NotADirectoryError:
            raise FileExistsError(
                f"{str(target)!r} is a file, not a checkpoint directory"
            ) from None
        if not names or ("meta.json" in names and names <= {*_FILES, "meta.json"}):
            return
        if not moved:
            break
    raise FileExistsError(
        f"{str(target)!r} is a non-empty directory that is not a checkpoint (it holds "
        f"{sorted(names - {*_FILES, 'meta.json'}) or sorted(names)}, and a checkpoint holds only "
        f"meta.json, {', '.join(_FILES)}); saving would replace its contents: choose a new or "
        "empty directory"
    )


def load_checkpoint(
    directory: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(config, tensors, meta)``.

    ``map_location`` is where the tensors are loaded; a string goes through
    :func:`resolve_device` (``"auto"``: CUDA when available, else CPU).

    Raises:
        FileNotFoundError: the directory or one of its files is missing.
        ValueError: a file was truncated or edited (checksum mismatch) or cannot be parsed.
    """
    if isinstance(map_location, str):
        map_location = resolve_device(map_location, name="map_location")
    src = Path(directory)
    if not src.is_dir():
        raise FileNotFoundError(f"no checkpoint directory at {str(src)!r}")
    for name in (*_FILES, "meta.json"):
        if not (src / name).is_file():
            raise FileNotFoundError(f"checkpoint {str(src)!r} is missing {name}")
    try:
        meta = json.loads((src / "meta.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # truncated, or binary garbage
        raise ValueError(f"checkpoint {str(src)!r}: meta.json is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {str(src)!r}: unsupported format_version "
            f"{meta.get('format_version') if isinstance(meta, dict) else None!r}, expected {FORMAT_VERSION}"
        )
    sums = meta.get("sha256")
    if not isinstance(sums, dict):
        raise ValueError(
            f"checkpoint {str(src)!r}: meta.json has no sha256 table; refusing to load"
        )
    for name in _FILES:
        if sums.get(name) != _digest(src / name):
            raise ValueError(
                f"checkpoint {str(src)!r}: {name} does not match its recorded checksum "
                "(truncated or edited); refusing to load"
            )
    with open(src / "config.yaml", encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    tensors = torch.load(src / "tensors.pt", map_location=map_location, weights_only=True)
    if not isinstance(config, dict) or not isinstance(tensors, dict):
        raise ValueError(f"checkpoint {str(src)!r}: config.yaml and tensors.pt must hold mappings")
    for name, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"checkpoint {str(src)!r}: tensors.pt entry {name!r} is not a tensor")
    return config, tensors, meta
