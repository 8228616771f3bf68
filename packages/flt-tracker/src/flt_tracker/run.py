"""Saving and loading a tracking run: ``run.json`` + ``.npy`` chunk files, no pickle.

Layout of a run directory::

    run.json            # manifest: features (name, kind, shape, dtype, folder), phases, settings
    f0000/chunk_000000.npy, f0000/chunk_000000.idx.npy, ...

A saved run (``tracker.save``) lists a SHA-256 per file, checked on load, and is written to a
temporary directory renamed into place. A disk-backed run in progress (``storage="disk"``) uses
the same layout; after a crash :func:`load_run` reads every chunk that was flushed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from .feature import Feature
from .storage import ChunkReader, atomic_path, write_chunks

__all__ = ["TrackingRun", "load_run", "save_run"]

_DTYPES = {"float16", "float32", "float64"}


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Write ``run.json`` atomically (temporary file renamed into place)."""
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / "run.json") as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1)


def _check_not_a_source(target: Path, features: dict[str, Feature]) -> None:
    """Refuse a target that is (or contains) the folder a series is read from."""
    resolved = target.resolve()
    for name, feature in features.items():
        source = getattr(feature.storage, "directory", None)
        if source is None:
            continue
        source = Path(source).resolve()
        if resolved == source or resolved in source.parents:
            raise ValueError(
                f"cannot save to {str(target)!r}: it holds the chunks of series {name!r} "
                f"({source}), which the save would replace; save to another directory "
                "(a disk-backed tracker's own run is finished by close())"
            )


def _is_run(directory: Path) -> bool:
    """Whether ``directory`` holds a flt-tracker run manifest."""
    try:
        manifest = json.loads((directory / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == "flt-tracker-run"


def _check_replaceable(target: Path) -> None:
    """Refuse to replace anything but a missing path, an empty folder or an earlier run."""
    if not target.exists():
        return
    if target.is_dir() and (not any(target.iterdir()) or _is_run(target)):
        return
    raise FileExistsError(
        f"cannot save to {str(target)!r}: it exists and is not a flt-tracker run (no run.json), "
        "and saving would replace it with everything in it; save to a new or empty directory"
    )


def save_run(
    directory: str | os.PathLike[str], manifest: dict[str, Any], features: dict[str, Feature]
) -> Path:
    """Write ``features`` and ``manifest`` as a run directory, atomically.

    Args:
        directory: target: new, an empty folder or an earlier run, which is replaced (only
            after the new copy is complete).
        manifest: the tracker's manifest (``FeatureTracker._manifest``), or any JSON dict of
            settings (``{}``, ``{"phases": [[0, "clean"]]}``); the format keys, an entry per
            series and checksums are filled in.
        features: series to write, by name.

    Returns:
        The directory path.

    Raises:
        ValueError: ``directory`` holds series being saved (a disk-backed run, or a loaded one):
            replacing it would destroy them mid-read.
        FileExistsError: ``directory`` is a file, or a non-empty folder that is not a run.
    """
    target = Path(directory)
    _check_not_a_source(target, features)
    _check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    backup: Path | None = None
    try:
        manifest = json.loads(json.dumps(manifest))
        # the layout written here is format 1: a manifest without these keys ({}, or settings
        # only) was a KeyError, or a run that load_run refused as "not a flt-tracker run"
        manifest.update(format="flt-tracker-run", format_version=1)
        entries = {e["name"]: e for e in manifest.setdefault("features", [])}
        for i, (name, feature) in enumerate(features.items()):
            entry = entries.setdefault(
                name,
                {
                    "name": name,
                    "layer_name": feature.layer_name,
                    "kind": feature.kind,
                    "shape": list(feature.shape or ()),
                    "dtype": str(feature.storage.dtype).replace("torch.", "")
                    if feature.storage
                    else "float32",
                },
            )
            entry["folder"] = f"f{i:04d}"
            entry["count"] = len(feature)
            files = write_chunks(tmp / entry["folder"], feature.storage) if feature.storage else []
            entry["sha256"] = {fn: _digest(tmp / entry["folder"] / fn) for fn in files}
        manifest["features"] = [entries[n] for n in features]
        manifest["complete"] = True
        write_manifest(tmp, manifest)
        if target.exists():
            backup = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, backup)
        os.replace(tmp, target)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if backup is not None and not target.exists():
            # the new copy never landed: put the earlier run back (it was left hidden in
            # ``backup``, and ``directory`` gone)
            os.replace(backup, target)
        raise
    return target


class TrackingRun:
    """A tracking run read from disk: the same read API as :class:`~flt_tracker.FeatureTracker`.

    Attributes:
        directory: where it was read from.
        features: series by name (read-only, lazily memory-mapped).
        phases: ``[(start_step, name), ...]``.
        complete: ``False`` for a run that was never saved or closed (e.g. it crashed).
        manifest: the raw ``run.json`` content.
    """

    def __init__(self, directory: Path, manifest: dict[str, Any], features: dict[str, Feature]):
        self.directory = directory
        self.manifest = manifest
        self.features = features
        self.phases = [(int(s), str(n)) for s, n in manifest.get("phases", [])]
        self.complete = bool(manifest.get("complete", False))

    def get_features(self) -> dict[str, Feature]:
        """Every series by name."""
        return dict(self.features)

    def get_feature(self, name: str) -> Feature:
        """One series by name.

        Raises:
            KeyError: unknown name (the message lists the stored ones).
        """
        try:
            return self.features[name]
        except KeyError:
            raise KeyError(
                f"no feature {name!r} in this run; stored: {list(self.features)}"
            ) from None

    def __repr__(self) -> str:
        return f"TrackingRun({str(self.directory)!r}, features={list(self.features)}, complete={self.complete})"


def load_run(directory: str | os.PathLike[str]) -> TrackingRun:
    """Read a run saved by ``FeatureTracker.save`` or written by the disk backend.

    Raises:
        FileNotFoundError: no ``run.json`` in ``directory``.
        ValueError: the manifest cannot be parsed or is malformed, or a saved run's file was
            truncated or edited (checksum mismatch).
    """
    root = Path(directory)
    path = root / "run.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a flt-tracker run directory")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != "flt-tracker-run":
        raise ValueError(f"{path} is not a flt-tracker run manifest")
    try:
        return _load(root, path, manifest)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} is malformed ({type(exc).__name__}: {exc})") from exc


def _is_plain_name(name: object) -> bool:
    """Whether ``name`` is one file or folder name (no separator, not ``.`` or ``..``)."""
    return isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name


def _load(root: Path, path: Path, manifest: dict[str, Any]) -> TrackingRun:
    try:
        version = int(manifest.get("format_version", 0))
    except ValueError:
        version = None
    if version is None or version > 1:
        raise ValueError(
            f"{path} has format_version {manifest['format_version']!r}; this flt-tracker reads 1"
        )
    import torch

    features: dict[str, Feature] = {}
    for entry in manifest["features"]:
        name = entry["folder"]
        if not _is_plain_name(name):
            raise ValueError(f"{path}: feature folder {name!r} is not a plain folder name")
        folder = root / name
        if entry["dtype"] not in _DTYPES:
            raise ValueError(
                f"{path}: feature {entry['name']!r} has unsupported dtype {entry['dtype']!r}"
            )
        for fn, digest in entry.get("sha256", {}).items():
            if not _is_plain_name(fn):
                raise ValueError(f"{path}: file name {fn!r} is not a plain file name")
            if not (folder / fn).is_file() or _digest(folder / fn) != digest:
                raise ValueError(
                    f"{folder / fn} is missing, truncated or edited (checksum mismatch)"
                )
        store = ChunkReader(folder, tuple(entry["shape"]), getattr(torch, entry["dtype"]))
        count = entry.get("count", len(store))
        if isinstance(count, bool) or not isinstance(count, int):
            raise ValueError(f"{path}: feature {entry['name']!r} has count {count!r}, not an int")
        if len(store) != count:
            raise ValueError(
                f"{folder} holds {len(store)} snapshots, run.json says {entry['count']}"
            )
        if entry["name"] in features:
            raise ValueError(f"{path}: feature {entry['name']!r} is listed twice")
        features[entry["name"]] = Feature(
            entry["name"], entry.get("layer_name"), kind=entry.get("kind", "weight"), storage=store
        )
    try:
        run = TrackingRun(root, manifest, features)
    except ValueError as exc:  # phases that are not (step, name) pairs
        raise ValueError(f"{path} has malformed phases ({exc})") from exc
    if not run.complete:
        warnings.warn(
            f"{root} is an unfinished run (not saved or closed); reading what was flushed",
            stacklevel=3,  # the caller of load_run, not load_run itself
        )
    return run
