"""The C ABI: ``include/tritonlite.h`` built into ``libtritonlite.so`` with cffi's embedding mode.

    python -m tritonlite.capi.build --output DIR          # builds DIR/libtritonlite.so, prints how to link
    gcc app.c $(python -m tritonlite.capi.build --output DIR --cflags --ldflags) -o app

A program linked that way starts the embedded interpreter of the environment the library was built from
on its first call (see :mod:`tritonlite.capi.build`), and every call lands in :mod:`tritonlite.capi._impl`
on top of the public :class:`~tritonlite.InferenceEngine` API. Importing this package needs no cffi.
"""

from __future__ import annotations

from pathlib import Path

HEADER = Path(__file__).resolve().parents[2] / "include" / "tritonlite.h"


def build_library(output: str | None = None, *, force: bool = False) -> Path:
    """Build (or reuse) ``OUTPUT/libtritonlite.so`` and return its path; see :func:`tritonlite.capi.build.build`."""
    from tritonlite.capi.build import build as _build

    return _build(output, force=force)


def cflags() -> list[str]:
    """Compiler flags for programs including ``tritonlite.h``."""
    from tritonlite.capi.build import cflags as _cflags

    return _cflags()


def ldflags(output: str | None = None) -> list[str]:
    """Linker flags for programs using the library built into ``output``."""
    from tritonlite.capi.build import ldflags as _ldflags

    return _ldflags(output)


__all__ = ["HEADER", "build_library", "cflags", "ldflags"]
