"""Shared fixtures; the builders they use live in ``model_repos`` (importable from every test)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import pytest

from model_repos import IDENTITY_PY, RAISING_PY, add_onnx_model, identity_py_config, write_model


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with an ONNX add_sub, a Python identity and a Python model that can raise."""
    root = tmp_path / "models"
    add_onnx_model(root)
    write_model(root, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    write_model(root, "raising_py", identity_py_config("raising_py"), {"1/model.py": RAISING_PY})
    return root


@pytest.fixture
def no_thread_leak() -> Callable[[], list[str]]:
    """Returns a function listing tritonlite threads still alive (must be empty after close)."""

    def alive() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("tritonlite.")]

    return alive
