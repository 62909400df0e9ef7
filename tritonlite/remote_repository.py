"""Model repositories in cloud storage (``s3://``, ``gs://``, ``as://``), read through fsspec.

Triton's URL forms (``docs/user_guide/model_repository.md``, core ``filesystem/implementations``):

* ``s3://bucket/path`` — AWS S3; ``s3://host:port/bucket/path`` (``s3://https://host:port/...``)
  for a private or local S3 endpoint, plain HTTP unless ``https://`` is given. Credentials and
  region come the usual AWS ways (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
  ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``, profiles), read by botocore.
* ``gs://bucket/path`` — Google Cloud Storage (gcsfs; ``GOOGLE_APPLICATION_CREDENTIALS``).
* ``as://account/container/path`` — Azure Storage (adlfs; ``AZURE_STORAGE_KEY`` for the account).

Like Triton, models are run from a local copy: each model is downloaded into its own folder of a
cache directory (``TRITON_AWS_MOUNT_DIRECTORY`` / ``TRITON_GCS_MOUNT_DIRECTORY`` /
``TRITON_AZURE_MOUNT_DIRECTORY`` when set, else a temporary folder removed when the engine
closes) when it is loaded, and downloaded again only when its files changed in the bucket. A
listing gives each model a *signature* (names, sizes, ETags / modification times of its objects);
poll mode compares signatures, so a new version folder or an edited config.pbtxt is noticed
without downloading anything. Every network call has bounded connect/read timeouts and retries,
and each failure becomes an :class:`~tritonlite.errors.UnavailableError` naming the repository
(and the model, for a download).

fsspec and s3fs are the ``[cloud]`` extra, imported only when a URL is used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonlite.errors import InvalidArgumentError, UnavailableError

_log = logging.getLogger("tritonlite.repository")

#: URL prefixes of the cloud repositories (Triton's spelling)
REMOTE_PREFIXES = ("s3://", "gs://", "as://")
#: seconds to connect / to wait for a read, and attempts per call, for every storage request
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
MAX_ATTEMPTS = 2

_S3_ENDPOINT = re.compile(r"s3://(http://|https://)?([0-9A-Za-z\-.]+):([0-9]+)/([^/]+)(/.*)?")
_AS_URL = re.compile(r"as://([^/]+)/([^/?]+)(?:/([^?]*))?")


def is_remote(path: object) -> bool:
    """Whether a repository path is a cloud URL rather than a local folder."""
    return isinstance(path, str) and path.startswith(REMOTE_PREFIXES)


@dataclass(frozen=True)
class RemoteTarget:
    """Where a URL points: the fsspec protocol, the repository's path in it, the filesystem options."""

    url: str
    protocol: str
    root: str
    options: dict[str, Any] = field(default_factory=dict)
    #: the package fsspec needs for ``protocol`` (named in the missing-extra error)
    package: str = ""
    #: Triton's environment variable naming a folder for the local copies
    mount_env: str = ""


def parse_url(url: str) -> RemoteTarget:
    """Triton's URL forms (module doc) as an fsspec protocol, root and options."""
    if url.startswith("s3://"):
        m = _S3_ENDPOINT.fullmatch(url.rstrip("/"))
        s3_config = {"connect_timeout": CONNECT_TIMEOUT_S, "read_timeout": READ_TIMEOUT_S,
                     "retries": {"max_attempts": MAX_ATTEMPTS, "mode": "standard"}}
        options: dict[str, Any] = {"config_kwargs": s3_config, "use_listings_cache": False}
        if m:
            scheme, host, port, bucket, rest = m.groups()
            options["client_kwargs"] = {"endpoint_url": f"{scheme or 'http://'}{host}:{port}"}
        else:
            bucket, _, rest = url[len("s3://"):].strip("/").partition("/")
        return RemoteTarget(url, "s3", _join(bucket, rest), options, "s3fs", "TRITON_AWS_MOUNT_DIRECTORY")
    if url.startswith("gs://"):
        bucket, _, rest = url[len("gs://"):].strip("/").partition("/")
        return RemoteTarget(url, "gcs", _join(bucket, rest), {"timeout": READ_TIMEOUT_S}, "gcsfs",
                            "TRITON_GCS_MOUNT_DIRECTORY")
    if url.startswith("as://"):
        m = _AS_URL.fullmatch(url.rstrip("/"))
        if not m:
            raise InvalidArgumentError(
                f"model repository '{url}' is not a valid Azure Storage path: expected as://account/container[/path]"
            )
        account, container, rest = m.groups()
        options = {"account_name": account, "timeout": int(READ_TIMEOUT_S)}
        if os.environ.get("AZURE_STORAGE_KEY"):
            options["account_key"] = os.environ["AZURE_STORAGE_KEY"]
        return RemoteTarget(url, "abfs", _join(container, rest or ""), options, "adlfs",
                            "TRITON_AZURE_MOUNT_DIRECTORY")
    raise InvalidArgumentError(f"model repository '{url}' does not start with one of {', '.join(REMOTE_PREFIXES)}")


def _join(bucket: str, rest: str | None) -> str:
    if not bucket:
        raise InvalidArgumentError("a cloud model repository URL must name a bucket")
    rest = (rest or "").strip("/")
    return f"{bucket}/{rest}" if rest else bucket


def _open_filesystem(target: RemoteTarget) -> Any:
    """The fsspec filesystem for ``target`` (a private instance: fsspec's instance cache is process-global)."""
    extra = f"pip install 'tritonlite[cloud]'" + ("" if target.package == "s3fs" else f" {target.package}")
    try:
        import fsspec
    except ImportError as exc:
        raise UnavailableError(f"model repository '{target.url}' needs fsspec: {extra}") from exc
    try:
        return fsspec.filesystem(target.protocol, skip_instance_cache=True, **target.options)
    except ImportError as exc:
        raise UnavailableError(f"model repository '{target.url}' needs {target.package}: {extra}") from exc


class RemoteRepository:
    """One cloud repository root: lists its models and keeps a local copy of each one loaded."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.target = parse_url(url)
        self._fs: Any = None
        self._lock = threading.Lock()
        self._model_locks: dict[str, threading.Lock] = {}
        #: model -> signature of the local copy now in the cache
        self._copies: dict[str, str] = {}
        mount = os.environ.get(self.target.mount_env, "") if self.target.mount_env else ""
        if mount:
            self.cache_dir = Path(mount).expanduser().resolve()
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            self._owns_cache = False
        else:
            self.cache_dir = Path(tempfile.mkdtemp(prefix=f"tritonlite-{self.target.protocol}-repo-"))
            self._owns_cache = True

    def __repr__(self) -> str:
        return f"RemoteRepository({self.url!r})"

    @property
    def fs(self) -> Any:
        with self._lock:
            if self._fs is None:
                self._fs = _open_filesystem(self.target)
            return self._fs

    def local_path(self, name: str) -> Path:
        """Where the local copy of ``name`` lives (present once :meth:`localize` ran)."""
        return self.cache_dir / name

    # ---- listing -----------------------------------------------------------------------------------
    def scan(self) -> dict[str, str]:
        """Every model folder of the repository and its signature; UnavailableError when unreachable."""
        fs = self.fs
        root = self.target.root
        try:
            invalidate = getattr(fs, "invalidate_cache", None)
            if invalidate is not None:
                invalidate()
            entries = fs.find(root, detail=True)
            if not entries and not fs.exists(root) and "/" not in root:
                raise FileNotFoundError(f"bucket '{root}' does not exist")
        except Exception as exc:
            raise UnavailableError(f"failed to poll model repository '{self.url}': {_describe(exc)}") from exc
        lines: dict[str, list[str]] = {}
        prefix = root.rstrip("/") + "/"
        for path, info in entries.items():
            if info.get("type") == "directory" or not path.startswith(prefix):
                continue
            name, _, inner = path[len(prefix):].partition("/")
            if not inner or name.startswith("."):
                continue  # a file at the top of the repository is not a model
            tag = info.get("ETag") or info.get("etag") or info.get("LastModified") or info.get("mtime") or ""
            lines.setdefault(name, []).append(f"{inner}|{info.get('size', 0)}|{tag}")
        return {name: hashlib.sha1("\n".join(sorted(items)).encode()).hexdigest() for name, items in sorted(lines.items())}

    # ---- local copies ------------------------------------------------------------------------------
    def localize(self, name: str, signature: str) -> Path:
        """The local copy of model ``name``, downloaded again only when ``signature`` changed."""
        with self._lock:
            lock = self._model_locks.setdefault(name, threading.Lock())
        with lock:
            target = self.local_path(name)
            if self._copies.get(name) == signature and target.is_dir():
                return target
            staging = self.cache_dir / f".{name}.download-{uuid.uuid4().hex}"
            try:
                self._download(name, staging)
            except Exception as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise UnavailableError(
                    f"failed to download model '{name}' from model repository '{self.url}': {_describe(exc)}"
                ) from exc
            if target.exists():  # swap in the new copy; the old files go once nothing lists them
                retired = self.cache_dir / f".{name}.old-{uuid.uuid4().hex}"
                target.rename(retired)
                staging.rename(target)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                staging.rename(target)
            self._copies[name] = signature
            _log.info("downloaded model '%s' from '%s' into %s", name, self.url, target)
            return target

    def _download(self, name: str, staging: Path) -> None:
        fs = self.fs
        base = f"{self.target.root.rstrip('/')}/{name}"
        files = [p for p, info in fs.find(base, detail=True).items() if info.get("type") != "directory"]
        if not files:
            raise FileNotFoundError(f"no files under '{base}'")
        staging.mkdir(parents=True)
        for remote in files:
            rel = remote[len(base) + 1:]
            if not rel or rel.startswith("/") or ".." in rel.split("/"):
                continue  # an object key that would leave the model folder
            local = staging / rel
            local.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(remote, str(local))

    def close(self) -> None:
        """Remove the local copies when they live in this repository's own temporary folder."""
        if self._owns_cache:
            shutil.rmtree(self.cache_dir, ignore_errors=True)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 400 else text[:400] + "..."


__all__ = ["RemoteRepository", "RemoteTarget", "is_remote", "parse_url", "REMOTE_PREFIXES"]
