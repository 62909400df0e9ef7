"""KServe v2 / Triton HTTP door: ``HttpServer`` (non-blocking, context manager) and ``serve`` (blocking).

Needs the ``http`` extra (``httptools``). Routing, status codes and bodies follow Triton's HTTP
frontend; see ``tritonlite.http.routes``.
"""

from tritonlite.http.server import DEFAULT_MAX_INPUT_SIZE, HttpServer, serve

__all__ = ["HttpServer", "serve", "DEFAULT_MAX_INPUT_SIZE"]
