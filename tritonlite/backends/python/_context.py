"""Which model a pb_utils call runs in (for get_model_dir, BLS and model control).

The instance sets a context variable around ``initialize``/``execute``/``finalize``/``is_ready``;
tasks of an async ``execute`` inherit it. Threads a model starts do not inherit context variables,
so the lookup then walks the calling thread's stack for the first frame whose module globals carry
a context: the loader stores the instance's context in the globals of the ``model.py`` module it
imported for that instance.
"""

from __future__ import annotations

import contextvars
import sys
from dataclasses import dataclass
from typing import Any

from tritonlite.backends.python._types import TritonModelException


@dataclass(frozen=True)
class ModelContext:
    """What pb_utils calls need to know about the model they run in (set by the instance)."""

    model_name: str
    model_version: int
    model_dir: str
    instance_name: str
    engine: Any = None


CURRENT: contextvars.ContextVar[ModelContext | None] = contextvars.ContextVar("tritonlite_python_model", default=None)
#: the loader stores the instance's context under this name in each imported model module
MODULE_CONTEXT_KEY = "__tritonlite_model_context__"


def current_context() -> ModelContext | None:
    """The context set around initialize/execute/finalize, else the nearest model module on the stack.

    The fallback serves threads a model starts itself: their frames run code of the model's module,
    whose globals carry the context of the instance that imported it.
    """
    ctx = CURRENT.get()
    if ctx is not None:
        return ctx
    frame = sys._getframe(1)
    while frame is not None:
        found = frame.f_globals.get(MODULE_CONTEXT_KEY)
        if found is not None:
            return found
        frame = frame.f_back
    return None


def require_engine(what: str) -> Any:
    ctx = current_context()
    if ctx is None or ctx.engine is None:
        raise TritonModelException(f"{what} needs a running engine")
    return ctx.engine


__all__ = ["CURRENT", "MODULE_CONTEXT_KEY", "ModelContext", "current_context", "require_engine"]
