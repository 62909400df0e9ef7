"""Python backend: Triton ``model.py`` files (``import triton_python_backend_utils as pb_utils``) in-process.

``pb_utils`` is registered as ``triton_python_backend_utils`` only when a model loads, never at import.
"""

from tritonlite.backends.python.backend import PythonBackend
from tritonlite.backends.python.instance import PythonModelInstance

__all__ = ["PythonBackend", "PythonModelInstance"]
