"""Importing a ``model.py`` the way python_backend's stub does, but inside this process.

Triton gives every instance its own interpreter, appends ``<version dir>`` and ``<model dir>`` to
``sys.path`` and imports ``<version>.model``. Here each call imports the file afresh (so module state is
per instance, as in Triton, and a reload picks up edited code) under a name unique per model and
version: ``_tritonlite_models.<model>.v<version>.model``. Its parent package has the version dir as
``__path__``, so relative imports (``from . import helper``) resolve to the version dir.

Plain-name sibling imports (``import helper``) go through ``sys.path`` and ``sys.modules``, which one
process shares. While a model imports, the directories of *other* Python models are taken off
``sys.path`` and the modules loaded from them are set aside, so each model sees its own ``helper``;
afterwards the newest import owns the plain name.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import threading
import types
import zlib
from pathlib import Path
from typing import Any

from tritonlite.errors import InvalidArgumentError

_ROOT_PACKAGE = "_tritonlite_models"
_PB_UTILS_NAME = "triton_python_backend_utils"
#: the class every model.py must define
MODEL_CLASS_NAME = "TritonPythonModel"

# sys.path and sys.modules are process-wide; so is this lock and the record of directories put on them
_IMPORT_LOCK = threading.RLock()
_MODEL_DIRS: set[str] = set()


def module_name(model_name: str, model_version: int) -> str:
    """Unique dotted name for a model version's ``model.py`` (sanitised; a hash keeps it unique)."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", model_name)
    if safe != model_name:
        safe = f"{safe}_{zlib.crc32(model_name.encode('utf-8')):08x}"
    return f"{_ROOT_PACKAGE}.{safe}.v{model_version}.model"


def install_pb_utils() -> None:
    """Make ``import triton_python_backend_utils`` resolve to tritonlite's compatibility module."""
    from tritonlite.backends.python import pb_utils

    if sys.modules.get(_PB_UTILS_NAME) is not pb_utils:
        sys.modules[_PB_UTILS_NAME] = pb_utils


def _ensure_package(name: str, path: list[str]) -> None:
    module = types.ModuleType(name)
    module.__path__ = path  # type: ignore[attr-defined]
    module.__package__ = name
    sys.modules[name] = module


def _under(path: str | None, dirs: set[str]) -> bool:
    if not path:
        return False
    for d in dirs:
        if path == d or path.startswith(d + os.sep):
            return True
    return False


def import_model_module(model_name: str, model_version: int, model_path: Path, version_dir: Path,
                        model_dir: Path, context: Any = None, context_key: str | None = None) -> types.ModuleType:
    """Execute ``model_path`` as a fresh module; ``context`` is stored in its globals under ``context_key``.

    Raises InvalidArgumentError naming the model when the file is missing or raises on import.
    """
    path = Path(model_path)
    if not path.is_file():
        raise InvalidArgumentError(f"unable to load model '{model_name}': Python model file '{path}' does not exist")
    install_pb_utils()
    vdir, mdir = os.path.abspath(version_dir), os.path.abspath(model_dir)
    name = module_name(model_name, model_version)
    package = name.rpartition(".")[0]
    with _IMPORT_LOCK:
        # a fresh package each time: drops relative imports cached by an earlier load of this version
        for key in [k for k in sys.modules if k == package or k.startswith(package + ".")]:
            del sys.modules[key]
        root_pkg, model_pkg = package.split(".")[0], package.rpartition(".")[0]
        if root_pkg not in sys.modules:
            _ensure_package(root_pkg, [])
        if model_pkg not in sys.modules:
            _ensure_package(model_pkg, [])
        _ensure_package(package, [vdir])

        others = _MODEL_DIRS - {vdir, mdir}
        saved_path = list(sys.path)
        hidden = {k: m for k, m in list(sys.modules.items()) if _under(getattr(m, "__file__", None), others)}
        for key in hidden:
            del sys.modules[key]
        sys.path[:] = [p for p in saved_path if os.path.abspath(p or ".") not in others]
        for d in (vdir, mdir):
            if d not in sys.path:
                sys.path.append(d)
        try:
            spec = importlib.util.spec_from_file_location(name, str(path))
            if spec is None or spec.loader is None:
                raise InvalidArgumentError(f"unable to load model '{model_name}': cannot import '{path}'")
            module = importlib.util.module_from_spec(spec)
            if context_key is not None:
                module.__dict__[context_key] = context
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException as exc:
                sys.modules.pop(name, None)
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                raise InvalidArgumentError(
                    f"unable to load model '{model_name}': failed to import '{path}': {type(exc).__name__}: {exc}"
                ) from exc
        finally:
            for key, mod in hidden.items():
                sys.modules.setdefault(key, mod)
            sys.path[:] = saved_path + [d for d in (vdir, mdir) if d not in saved_path]
            _MODEL_DIRS.update((vdir, mdir))
    return module


def find_model_class(module: types.ModuleType, model_name: str, model_path: Path) -> type:
    """The module's ``TritonPythonModel`` class, or a load error naming the model."""
    cls = getattr(module, MODEL_CLASS_NAME, None)
    if not isinstance(cls, type):
        raise InvalidArgumentError(
            f"unable to load model '{model_name}': '{model_path}' does not define class '{MODEL_CLASS_NAME}'"
        )
    return cls


__all__ = ["MODEL_CLASS_NAME", "find_model_class", "import_model_module", "install_pb_utils", "module_name"]
