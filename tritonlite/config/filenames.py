"""Which file in a version directory holds the model (SPEC §4.2), from backend/platform.

Used by the repository to locate the model and by auto-complete to fill ``default_model_filename``.
"""

from __future__ import annotations

from tritonlite.config import messages as msg
from tritonlite.errors import InvalidArgumentError
from tritonlite.protos.model_config_pb2 import ModelConfig

_BY_PLATFORM = {
    "onnxruntime_onnx": "model.onnx",
    "pytorch_libtorch": "model.pt",
    "libtorch": "model.pt",
    "torch_aoti": "model.pt2",
    "tensorrt_plan": "model.plan",
    "tensorflow_savedmodel": "model.savedmodel",
    "tensorflow_graphdef": "model.graphdef",
    "ensemble": "",
}

_BY_BACKEND = {
    "onnxruntime": "model.onnx",
    "pytorch": "model.pt",
    "libtorch": "model.pt",
    "tensorrt": "model.plan",
    "tensorflow": "model.savedmodel",
    "openvino": "model.xml",
    "python": "model.py",
    "dali": "model.dali",
}

FIL_DEFAULT_MODEL_TYPE = "xgboost_ubj"
_BY_FIL_MODEL_TYPE = {
    "xgboost_ubj": "xgboost.ubj",
    "xgboost_json": "xgboost.json",
    "xgboost": "xgboost.model",
    "lightgbm": "model.txt",
    "treelite_checkpoint": "checkpoint.tl",
}


def default_model_filename(cfg: ModelConfig) -> str:
    """The model file name; ``""`` for ensembles and backends that pick their own files."""
    if cfg.default_model_filename:
        return cfg.default_model_filename
    if cfg.backend == "fil":
        model_type = FIL_DEFAULT_MODEL_TYPE
        if "model_type" in cfg.parameters:
            model_type = cfg.parameters["model_type"].string_value
        try:
            return _BY_FIL_MODEL_TYPE[model_type]
        except KeyError:
            raise InvalidArgumentError(
                msg.fmt(msg.FIL_UNKNOWN_MODEL_TYPE, model_type=model_type, model=cfg.name)
            ) from None
    if cfg.platform in _BY_PLATFORM:  # platform refines pytorch / tensorflow backends
        return _BY_PLATFORM[cfg.platform]
    return _BY_BACKEND.get(cfg.backend, "")
