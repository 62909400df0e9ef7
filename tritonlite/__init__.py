"""tritonlite: Triton Inference Server's feature set as an in-process Python library.

    from tritonlite import InferenceEngine
    with InferenceEngine("model_repository") as engine:
        result = engine.infer("add_sub", {"INPUT0": a, "INPUT1": b})
        result.as_numpy("OUTPUT0")

Importing this package starts nothing and configures no logging.
"""

__version__ = "0.1.0"

from tritonlite.datatypes import DataType  # noqa: E402
from tritonlite.engine import InferenceEngine  # noqa: E402
from tritonlite.errors import (  # noqa: E402
    AlreadyExistsError,
    CancelledError,
    ErrorCode,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    TritonLiteError,
    UnavailableError,
    UnknownError,
    UnsupportedError,
)
from tritonlite.futures import InferFuture  # noqa: E402
from tritonlite.infer_options import InferOptions  # noqa: E402
from tritonlite.repository import ModelState  # noqa: E402
from tritonlite.request import InferResult  # noqa: E402
from tritonlite.streams import ResponseStream  # noqa: E402

__all__ = [
    "__version__",
    "InferenceEngine",
    "InferResult",
    "InferFuture",
    "ResponseStream",
    "InferOptions",
    "DataType",
    "ModelState",
    "ErrorCode",
    "TritonLiteError",
    "UnknownError",
    "InternalError",
    "NotFoundError",
    "InvalidArgumentError",
    "UnavailableError",
    "UnsupportedError",
    "AlreadyExistsError",
    "CancelledError",
]
