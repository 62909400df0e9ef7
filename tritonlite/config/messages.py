"""Every error message the config layer raises, in one place, so tests and callers match on them.

Wording follows Triton core (``model_config_utils.cc``) where clients are known to match on it.
Templates are ``str.format`` strings; :func:`fmt` fills one.
"""

from __future__ import annotations

from typing import Any

# parse.py
PARSE_FAILED = "failed to parse model config {source}: {detail}"
READ_FAILED = "failed to read model config {source}: {detail}"
JSON_OVERRIDE_FAILED = "Invalid config override: {detail}"

# validate.py: every rule message is wrapped in INVALID_CONFIG, which names the source file.
INVALID_CONFIG = "invalid model config {source}: {detail}"
DIR_NAME_MISMATCH = (
    "unexpected directory name '{dir}' for model '{model}', directory name must equal model name"
)
NO_PLATFORM_OR_BACKEND = "must specify 'platform' or 'backend' for '{model}'"
NEGATIVE_MAX_BATCH = "'max_batch_size' must be non-negative value for {model}"
IO_NO_NAME = "model {io} must specify 'name'"
IO_NO_DATA_TYPE = "model {io} '{name}' must specify 'data_type'"
IO_NO_DIMS = "model {io} '{name}' must specify 'dims'"
IO_DUPLICATE = "model {io} '{name}' is specified more than once for {model}"
IO_BAD_DIM = (
    "model {io} '{name}' dimension must be integer >= 1, or -1 to indicate a variable-size "
    "dimension"
)
IO_BAD_RESHAPE_DIM = (
    "model {io} '{name}' reshape dimensions must be integer >= 1, or -1 to indicate a "
    "variable-size dimension"
)
IO_EMPTY_RESHAPE_NOBATCH = (
    "model {io} '{name}' cannot have empty reshape for non-batching model as scalar tensors are "
    "not supported"
)
IO_RESHAPE_MISMATCH = "model {io} '{name}' has different size for dims and reshape"
PREFERRED_NOT_POSITIVE = "dynamic batching preferred size must be positive for {model}"
PREFERRED_OVER_MAX = "dynamic batching preferred size must be <= max batch size for {model}"
DEFAULT_PRIORITY_RANGE = "default priority level must be in range [1, {levels}] for {model}"
QUEUE_POLICY_RANGE = (
    "priority queue policy must have priority level in range [1, {levels}] for {model}"
)
PRESERVE_ORDERING_LEVELS = (
    "Only one priority level is allowed when 'preserve_ordering' is true for {model}"
)
PRESERVE_ORDERING_DELAY = (
    "Queue policy can not have DELAY as timeout action when 'preserve_ordering' is true for {model}"
)
CONTROL_NO_NAME = "sequence batching control input must specify 'name' for {model}"
CONTROL_FALSE_TRUE = (
    "sequence batching control input '{name}' with {kind} must specify exactly one of "
    "'int32_false_true', 'fp32_false_true' or 'bool_false_true', with 2 entries, for {model}"
)
CONTROL_CORRID_DATA_TYPE = (
    "sequence batching control input '{name}' with CONTROL_SEQUENCE_CORRID must specify "
    "'data_type' TYPE_UINT64, TYPE_INT64, TYPE_UINT32, TYPE_INT32 or TYPE_STRING for {model}"
)
CONTROL_CORRID_FALSE_TRUE = (
    "sequence batching control input '{name}' with CONTROL_SEQUENCE_CORRID must not specify "
    "'int32_false_true', 'fp32_false_true' or 'bool_false_true' for {model}"
)
ENSEMBLE_NO_SCHEDULING = (
    "ensemble '{model}' must specify 'ensemble_scheduling' with at least one step"
)
ENSEMBLE_INSTANCE_GROUP = "instance group should not be specified for ensemble '{model}'"
ENSEMBLE_WRONG_PLATFORM = (
    "ensemble scheduling cannot be set for model '{model}' whose platform is not ensemble"
)

# filenames.py
FIL_UNKNOWN_MODEL_TYPE = "unknown FIL model_type '{model_type}' for '{model}'"


def fmt(template: str, **values: Any) -> str:
    """Fill ``template``; a thin alias that keeps call sites short."""
    return template.format(**values)

# response cache (core ValidateModelConfig)
CACHE_SEQUENCE = (
    "Response Cache does not currently support model {model} with sequence batching scheduler. Please disable the "
    "response cache."
)
CACHE_DECOUPLED = (
    "Response Cache does not currently support model {model} with 'decoupled' transaction policy. Please disable the"
    " response cache."
)
# model warmup (core ValidateModelConfig / GenerateWarmupData)
WARMUP_ENSEMBLE = "model_warmup can not be specified for ensemble '{model}'"
