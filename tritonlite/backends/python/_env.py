"""Whether a Python model runs in a child process, with which Python, and the child's command line.

Config parameters (``parameters { key: ... value: { string_value: ... } }``):

* ``isolation``: ``"process"`` runs each instance's ``model.py`` in its own child process;
  ``"none"`` (the default) runs it in the engine's process.
* ``EXECUTION_ENV_PATH`` (Triton's spelling): a Python environment for the model, either a directory
  (a venv or an unpacked conda env) or a ``conda-pack`` tarball (``.tar.gz``, ``.tgz``, ``.tar``), which
  is unpacked once into a cache keyed by the file's path, size and mtime. ``$$TRITON_MODEL_DIRECTORY``
  expands to the model's directory. The env's ``bin/python3`` runs the child, so setting it implies
  ``isolation: "process"`` (as in Triton, where every model has a stub); ``isolation: "none"`` with it
  runs in-process and ignores the env, with a warning. The env needs numpy and protobuf (tritonlite's
  own dependencies); tritonlite itself is put on the child's ``PYTHONPATH``.
* ``isolation_execute_timeout_s``: seconds one ``execute`` may take before the child is killed and the
  instance restarted (default 0: no limit). ``isolation_start_timeout_s``: seconds the child may take
  to start and run ``initialize`` (default 300). ``isolation_stop_timeout_s``: seconds ``finalize``
  may take at unload before the child is killed (default 10).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonlite.errors import InvalidArgumentError

_LOG = logging.getLogger("tritonlite.backends.python")

ISOLATION_KEY = "isolation"
EXECUTION_ENV_KEY = "EXECUTION_ENV_PATH"
MODEL_DIRECTORY_KEYWORD = "$$TRITON_MODEL_DIRECTORY"
_ON, _OFF = "process", "none"
_TARBALL_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")
_COMPLETE_MARKER = ".tritonlite-unpacked"


@dataclass(frozen=True)
class IsolationOptions:
    """How one model's instances run when isolated (read once per load from the config)."""

    python: str = sys.executable
    env_dir: str = ""
    execute_timeout_s: float = 0.0
    start_timeout_s: float = 300.0
    stop_timeout_s: float = 10.0
    extra_env: dict[str, str] = field(default_factory=dict)


def _parameters(config: Any) -> dict[str, str]:
    return {k: v.string_value for k, v in config.parameters.items()}


def _seconds(params: dict[str, str], key: str, default: float, model_name: str) -> float:
    raw = params.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise InvalidArgumentError(
            f"unable to load model '{model_name}': parameter '{key}' must be a non-negative number of seconds, got '{raw}'"
        )
    return value


def isolation_options(config: Any, model_name: str, model_dir: Path) -> IsolationOptions | None:
    """The options when the config asks for process isolation, else None (in-process)."""
    params = _parameters(config)
    mode = params.get(ISOLATION_KEY, "").strip().lower()
    if mode not in ("", _ON, _OFF):
        raise InvalidArgumentError(
            f"unable to load model '{model_name}': parameter '{ISOLATION_KEY}' must be \"{_ON}\" or \"{_OFF}\", got '{params[ISOLATION_KEY]}'"
        )
    env_path = params.get(EXECUTION_ENV_KEY, "").strip()
    if mode == _OFF or (mode == "" and not env_path):
        if env_path:
            _LOG.warning("model '%s' sets %s but isolation is \"none\": the environment is not used", model_name, EXECUTION_ENV_KEY)
        return None
    python, env_dir, extra = sys.executable, "", {}
    if env_path:
        env = resolve_execution_env(env_path, model_dir, model_name)
        python, env_dir = str(env_python(env, model_name)), str(env)
        extra = {"PATH": f"{env / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", "CONDA_PREFIX": str(env)}
        lib = env / "lib"
        if lib.is_dir():
            extra["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(lib), os.environ.get("LD_LIBRARY_PATH", "")) if p)
    return IsolationOptions(
        python=python,
        env_dir=env_dir,
        execute_timeout_s=_seconds(params, "isolation_execute_timeout_s", 0.0, model_name),
        start_timeout_s=_seconds(params, "isolation_start_timeout_s", 300.0, model_name),
        stop_timeout_s=_seconds(params, "isolation_stop_timeout_s", 10.0, model_name),
        extra_env=extra,
    )


def resolve_execution_env(raw: str, model_dir: Path, model_name: str) -> Path:
    """The env directory for ``EXECUTION_ENV_PATH``: the directory itself, or where its tarball was unpacked."""
    path = raw.replace(MODEL_DIRECTORY_KEYWORD, str(model_dir))
    real = os.path.realpath(path)
    if not os.path.exists(real):
        raise InvalidArgumentError(f"unable to load model '{model_name}': Failed to get the canonical path for {path}.")
    if os.path.isdir(real):
        return Path(real)
    if not real.endswith(_TARBALL_SUFFIXES) or not tarfile.is_tarfile(real):
        raise InvalidArgumentError(
            f"unable to load model '{model_name}': {EXECUTION_ENV_KEY} '{path}' is neither a directory nor a tar archive"
        )
    return _unpack(Path(real), model_name)


def _cache_root() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"tritonlite-python-envs-{uid}"


def _unpack(tarball: Path, model_name: str) -> Path:
    """Unpack once per (path, size, mtime); a half-unpacked directory is never used."""
    st = tarball.stat()
    key = hashlib.sha256(f"{tarball}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:20]
    root = _cache_root()
    dest = root / key
    if (dest / _COMPLETE_MARKER).exists():
        return dest
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=root))
    try:
        with tarfile.open(tarball) as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(staging, filter="data")  # refuses absolute paths, '..' and links out
            else:  # pragma: no cover - Pythons before 3.11.4
                for member in archive.getmembers():
                    if member.name.startswith("/") or ".." in Path(member.name).parts:
                        raise InvalidArgumentError(f"unsafe path '{member.name}' in {tarball}")
                archive.extractall(staging)
        (staging / _COMPLETE_MARKER).touch()
        try:
            os.rename(staging, dest)
        except OSError:  # another load unpacked it first
            shutil.rmtree(staging, ignore_errors=True)
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InvalidArgumentError(
            f"unable to load model '{model_name}': failed to unpack {EXECUTION_ENV_KEY} '{tarball}': {exc}"
        ) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _LOG.info("unpacked Python execution env %s into %s", tarball, dest)
    return dest


def env_python(env: Path, model_name: str) -> Path:
    for name in ("python3", "python"):
        candidate = env / "bin" / name
        if os.access(candidate, os.X_OK):
            return candidate
    raise InvalidArgumentError(
        f"unable to load model '{model_name}': Path {env / 'bin' / 'python3'} does not exist. "
        "The Python environment should contain a 'bin/python3' executable."
    )


def _tritonlite_path_entry() -> str:
    """A directory holding only a ``tritonlite`` link, so a foreign env sees tritonlite and nothing else of ours."""
    package = Path(__file__).resolve().parents[2]
    root = _cache_root()
    entry = root / ("pkg-" + hashlib.sha256(str(package).encode()).hexdigest()[:16])
    link = entry / "tritonlite"
    if not link.exists():
        entry.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(package, target_is_directory=True)
        except FileExistsError:
            pass
    return str(entry)


def child_command(options: IsolationOptions, fd: int) -> tuple[list[str], dict[str, str]]:
    """The stub's command line and environment for a child that talks over descriptor ``fd``."""
    env = dict(os.environ)
    if options.env_dir:
        env["PYTHONPATH"] = _tritonlite_path_entry()
    else:  # the same interpreter: the child imports what the engine process can
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.update(options.extra_env)
    env["PYTHONUNBUFFERED"] = "1"
    entry = "import sys; from tritonlite.backends.python._stub import main; sys.exit(main(sys.argv))"
    return [options.python, "-c", entry, str(fd)], env


__all__ = ["IsolationOptions", "child_command", "env_python", "isolation_options", "resolve_execution_env"]
