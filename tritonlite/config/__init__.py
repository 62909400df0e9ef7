"""L1: model configuration — the protobuf ``ModelConfig`` plus parsing, Triton's JSON form,
normalisation, validation and default file names. See SPEC §2.3 and §4.
"""

from tritonlite.config.filenames import default_model_filename
from tritonlite.config.json_form import config_to_json
from tritonlite.config.normalize import InstanceName, instance_names, is_ensemble, normalize
from tritonlite.config.parse import load_config_file, parse_json_config, parse_pbtxt
from tritonlite.config.validate import validate
from tritonlite.protos.model_config_pb2 import ModelConfig

__all__ = [
    "ModelConfig",
    "InstanceName",
    "config_to_json",
    "default_model_filename",
    "instance_names",
    "is_ensemble",
    "load_config_file",
    "normalize",
    "parse_json_config",
    "parse_pbtxt",
    "validate",
]
