"""The model repository on disk: which models exist, which versions a policy selects, what changed.

Pure functions over the file system; loading and state live in :mod:`tritonlite.model_manager`.
"""

from __future__ import annotations

import enum
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from tritonlite.errors import InvalidArgumentError


class ModelState(str, enum.Enum):
    """Lifecycle of a model version, with Triton's names."""

    UNKNOWN = "UNKNOWN"
    LOADING = "LOADING"
    READY = "READY"
    UNLOADING = "UNLOADING"
    UNAVAILABLE = "UNAVAILABLE"


@dataclass(frozen=True)
class ModelLocation:
    """Where a model lives; ``duplicates`` lists other roots holding the same name."""

    name: str
    path: Path
    duplicates: tuple[Path, ...] = ()
    #: a cloud repository's model: where it comes from (``path`` is its local copy) and its signature
    remote: Any = None
    signature: str = ""


def scan(roots: Iterable[Path]) -> dict[str, ModelLocation]:
    """Every sub-directory of every root; a name found in two roots is marked as duplicate."""
    found: dict[str, list[Path]] = {}
    for root in roots:
        try:
            entries = sorted(os.scandir(root), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_dir() and not entry.name.startswith("."):
                found.setdefault(entry.name, []).append(Path(entry.path))
    return {name: ModelLocation(name, paths[0], tuple(paths[1:])) for name, paths in found.items()}


def available_versions(model_dir: Path) -> list[int]:
    """Numeric version directories, ascending; names starting with '0' are ignored as in Triton."""
    versions: list[int] = []
    try:
        entries = list(os.scandir(model_dir))
    except FileNotFoundError:
        return versions
    for entry in entries:
        name = entry.name
        if entry.is_dir() and name.isdigit() and not name.startswith("0"):
            versions.append(int(name))
    return sorted(versions)


def select_versions(config: Any, available: list[int]) -> list[int]:
    """Apply ``version_policy`` (latest N / all / specific) to the versions on disk."""
    policy = config.version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return list(available)
    if kind == "specific":
        wanted = sorted(set(int(v) for v in policy.specific.versions))
        missing = [v for v in wanted if v not in available]
        if missing:
            raise InvalidArgumentError(
                f"model '{config.name}' version policy asks for version(s) {missing} that do not exist"
            )
        return wanted
    n = policy.latest.num_versions if kind == "latest" else 1
    if n < 1:
        raise InvalidArgumentError(f"model '{config.name}' version policy 'latest' needs num_versions >= 1")
    return available[-n:]


def fingerprint(model_dir: Path) -> str:
    """A digest of names, sizes and mtimes under the model directory: changes mean reload (poll mode)."""
    h = hashlib.sha1()
    for dirpath, dirnames, filenames in os.walk(model_dir):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fname in sorted(filenames):
            p = os.path.join(dirpath, fname)
            try:
                st = os.stat(p)
            except FileNotFoundError:
                continue
            h.update(f"{os.path.relpath(p, model_dir)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


__all__ = ["ModelState", "ModelLocation", "scan", "available_versions", "select_versions", "fingerprint"]
