"""normalize() defaults, instance naming, validate() rules and default model file names."""

from __future__ import annotations

import pytest

from tritonlite.config import (
    InstanceName,
    ModelConfig,
    default_model_filename,
    instance_names,
    normalize,
    parse_pbtxt,
    validate,
)
from tritonlite.config import messages as msg
from tritonlite.errors import InvalidArgumentError
from tritonlite.protos.model_config_pb2 import ModelInstanceGroup

KIND = ModelInstanceGroup

BASE = """
name: "m" backend: "python" max_batch_size: 8
input [ { name: "I" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "O" data_type: TYPE_FP32 dims: [ 4 ] } ]
"""


def _norm(text: str, **kwargs: object) -> ModelConfig:
    cfg = parse_pbtxt(text)
    kwargs.setdefault("model_name", "m")
    normalize(cfg, **kwargs)  # type: ignore[arg-type]
    return cfg


# --- normalize ---------------------------------------------------------------------------------


def test_name_and_version_policy_defaults() -> None:
    cfg = _norm('backend: "python"', model_name="add_sub")
    assert cfg.name == "add_sub"
    assert cfg.version_policy.WhichOneof("policy_choice") == "latest"
    assert cfg.version_policy.latest.num_versions == 1


def test_explicit_name_and_policy_kept() -> None:
    cfg = _norm('name: "x" version_policy { all {} }', model_name="dir")
    assert cfg.name == "x"
    assert cfg.version_policy.WhichOneof("policy_choice") == "all"


def test_dynamic_batching_preferred_default() -> None:
    assert list(_norm(BASE + "dynamic_batching {}").dynamic_batching.preferred_batch_size) == [8]
    cfg = _norm(BASE + "dynamic_batching { preferred_batch_size: [2, 4] }")
    assert list(cfg.dynamic_batching.preferred_batch_size) == [2, 4]
    nobatch = _norm('backend: "python" dynamic_batching {}')
    assert list(nobatch.dynamic_batching.preferred_batch_size) == []


def test_sequence_batching_defaults() -> None:
    cfg = _norm(BASE + "sequence_batching { oldest { max_candidate_sequences: 4 } }")
    assert cfg.sequence_batching.max_sequence_idle_microseconds == 1_000_000
    assert list(cfg.sequence_batching.oldest.preferred_batch_size) == [8]
    kept = _norm(BASE + "sequence_batching { max_sequence_idle_microseconds: 5 }")
    assert kept.sequence_batching.max_sequence_idle_microseconds == 5
    assert not kept.sequence_batching.HasField("oldest")


def test_pinned_memory_defaults() -> None:
    cfg = _norm(BASE)
    assert cfg.optimization.input_pinned_memory.enable is True
    assert cfg.optimization.output_pinned_memory.enable is True
    off = _norm(BASE + "optimization { input_pinned_memory { enable: false } }")
    assert off.optimization.input_pinned_memory.enable is False
    assert off.optimization.output_pinned_memory.enable is True


def test_ensemble_gets_no_pinned_memory_or_groups() -> None:
    cfg = _norm('platform: "ensemble" ensemble_scheduling { step [ { model_name: "a" } ] }')
    assert not cfg.HasField("optimization")
    assert len(cfg.instance_group) == 0
    assert instance_names(cfg) == []


def test_empty_instance_group_named_after_model() -> None:
    cfg = _norm(BASE, model_name="m")
    (group,) = cfg.instance_group
    assert (group.name, group.kind, group.count) == ("m", KIND.KIND_CPU, 1)
    assert instance_names(cfg) == [InstanceName("m_0", "CPU", 0, False, "m")]


def test_unnamed_groups_get_index_names() -> None:
    cfg = _norm(BASE + 'instance_group [ { kind: KIND_CPU }, { name: "g" kind: KIND_CPU }, { kind: KIND_CPU } ]')
    assert [g.name for g in cfg.instance_group] == ["m_0", "g", "m_2"]


def test_kind_auto_resolution() -> None:
    assert _norm(BASE + "instance_group [ {} ]").instance_group[0].kind == KIND.KIND_CPU
    gpu = _norm(BASE + "instance_group [ {} ]", gpu_count=2).instance_group[0]
    assert gpu.kind == KIND.KIND_GPU and list(gpu.gpus) == [0, 1]
    missing = _norm(BASE + "instance_group [ { gpus: [ 3 ] } ]", gpu_count=2).instance_group[0]
    assert missing.kind == KIND.KIND_CPU


def test_count_defaults() -> None:
    cpu = _norm(BASE + "instance_group [ { kind: KIND_CPU } ]", default_cpu_instance_count=2)
    assert cpu.instance_group[0].count == 2
    gpu = _norm(BASE + "instance_group [ { kind: KIND_GPU } ]", gpu_count=1, default_cpu_instance_count=2)
    assert gpu.instance_group[0].count == 1
    kept = _norm(BASE + "instance_group [ { kind: KIND_CPU count: 3 } ]", default_cpu_instance_count=2)
    assert kept.instance_group[0].count == 3
    model = _norm(BASE + "instance_group [ { kind: KIND_MODEL count: 0 } ]", default_cpu_instance_count=2)
    assert model.instance_group[0].count == 1


def test_gpu_group_instances() -> None:
    cfg = _norm(BASE + "instance_group [ { kind: KIND_GPU count: 2 } ]", gpu_count=2)
    assert list(cfg.instance_group[0].gpus) == [0, 1]
    assert [tuple(i) for i in instance_names(cfg)] == [
        ("m_0_0", "GPU", 0, False, "m_0"),
        ("m_0_0", "GPU", 1, False, "m_0"),
        ("m_0_1", "GPU", 0, False, "m_0"),
        ("m_0_1", "GPU", 1, False, "m_0"),
    ]
    listed = _norm(BASE + "instance_group [ { kind: KIND_GPU gpus: [ 1 ] } ]", gpu_count=2)
    assert list(listed.instance_group[0].gpus) == [1]


def test_passive_and_model_kind_instances() -> None:
    cfg = _norm(
        BASE + 'instance_group [ { kind: KIND_CPU count: 2 passive: true }, { name: "x" kind: KIND_MODEL } ]'
    )
    names = instance_names(cfg)
    assert names == [
        InstanceName("m_0_0", "CPU", 0, True, "m_0"),
        InstanceName("m_0_1", "CPU", 0, True, "m_0"),
        InstanceName("x_0", "MODEL", 0, False, "x"),
    ]
    assert names[0].passive and names[2].kind == "MODEL"


def test_add_sub_instance_names() -> None:
    explicit = _norm(BASE + "instance_group [ { kind: KIND_CPU } ]", model_name="add_sub")
    assert [i.name for i in instance_names(explicit)] == ["m_0_0"]
    cfg = _norm(BASE.replace('name: "m"', ""), model_name="add_sub")
    assert [i.name for i in instance_names(cfg)] == ["add_sub_0"]


# --- validate ----------------------------------------------------------------------------------


def _invalid(text: str, *, dir_name: str | None = None, gpu_count: int = 0) -> str:
    cfg = parse_pbtxt(text)
    normalize(cfg, model_name=dir_name or "m", gpu_count=gpu_count)
    with pytest.raises(InvalidArgumentError) as info:
        validate(cfg, source="/repo/m/config.pbtxt", model_dir_name=dir_name)
    message = str(info.value)
    assert message.startswith("invalid model config /repo/m/config.pbtxt: ")
    return message


def test_valid_base_passes() -> None:
    cfg = _norm(BASE + "dynamic_batching {}")
    validate(cfg, source="cfg", model_dir_name="m")


def test_dir_name_mismatch() -> None:
    message = _invalid(BASE, dir_name="other")
    assert message.endswith(
        "unexpected directory name 'other' for model 'm', directory name must equal model name"
    )


def test_platform_or_backend_required() -> None:
    message = _invalid(BASE.replace('backend: "python"', ""))
    assert message.endswith(msg.fmt(msg.NO_PLATFORM_OR_BACKEND, model="m"))


def test_negative_max_batch_size() -> None:
    message = _invalid(BASE.replace("max_batch_size: 8", "max_batch_size: -1"))
    assert message.endswith(msg.fmt(msg.NEGATIVE_MAX_BATCH, model="m"))


@pytest.mark.parametrize("io", ["input", "output"])
def test_empty_dims(io: str) -> None:
    text = f'name: "m" backend: "python" {io} [ {{ name: "T" data_type: TYPE_FP32 }} ]'
    assert _invalid(text).endswith(msg.fmt(msg.IO_NO_DIMS, io=io, name="T"))


def test_empty_dims_allowed_with_reshape() -> None:
    cfg = _norm('name: "m" backend: "python" max_batch_size: 2 input [ { name: "T" data_type: TYPE_FP32 reshape { shape: [ 1 ] } } ]')
    validate(cfg, source="c", model_dir_name=None)


def test_invalid_data_type() -> None:
    text = 'name: "m" backend: "python" input [ { name: "T" dims: [ 1 ] } ]'
    assert _invalid(text).endswith(msg.fmt(msg.IO_NO_DATA_TYPE, io="input", name="T"))


def test_duplicate_names() -> None:
    text = BASE + 'output [ { name: "O" data_type: TYPE_FP32 dims: [ 1 ] } ]'
    assert _invalid(text).endswith(msg.fmt(msg.IO_DUPLICATE, io="output", name="O", model="m"))


@pytest.mark.parametrize("dim", ["-2", "0"])
def test_bad_dims(dim: str) -> None:
    text = BASE.replace("dims: [ 4 ] } ]\noutput", f"dims: [ {dim} ] }} ]\noutput")
    assert _invalid(text).endswith(msg.fmt(msg.IO_BAD_DIM, io="input", name="I"))


def test_reshape_mismatch() -> None:
    text = BASE.replace('dims: [ 4 ] } ]\noutput', 'dims: [ 4 ] reshape { shape: [ 3 ] } } ]\noutput')
    assert _invalid(text).endswith(msg.fmt(msg.IO_RESHAPE_MISMATCH, io="input", name="I"))


def test_reshape_zero_dim_rejected() -> None:
    text = 'name: "m" backend: "python" output [ { name: "O" data_type: TYPE_FP32 dims: [ 2, 2 ] reshape { shape: [ 0 ] } } ]'
    assert _invalid(text).endswith(msg.fmt(msg.IO_BAD_RESHAPE_DIM, io="output", name="O"))


@pytest.mark.parametrize(
    ("dims", "shape"), [("[ 1 ]", "[ ]"), ("[ 4 ]", "[ 2, 2 ]"), ("[ -1, 6 ]", "[ -1, 2, 3 ]"), ("[ 2, -1 ]", "[ 1, 2, -1 ]")]
)
def test_reshape_ok(dims: str, shape: str) -> None:
    text = f'name: "m" backend: "python" max_batch_size: 1 input [ {{ name: "I" data_type: TYPE_FP32 dims: {dims} reshape {{ shape: {shape} }} }} ]'
    validate(_norm(text), source="c", model_dir_name="m")


def test_empty_reshape_needs_batching() -> None:
    text = 'name: "m" backend: "python" input [ { name: "I" data_type: TYPE_FP32 dims: [ 1 ] reshape { shape: [ ] } } ]'
    assert _invalid(text).endswith(msg.fmt(msg.IO_EMPTY_RESHAPE_NOBATCH, io="input", name="I"))


def test_preferred_batch_size_over_max() -> None:
    message = _invalid(BASE + "dynamic_batching { preferred_batch_size: [ 4, 16 ] }")
    assert message.endswith(msg.fmt(msg.PREFERRED_OVER_MAX, model="m"))


def test_default_priority_level_range() -> None:
    message = _invalid(BASE + "dynamic_batching { priority_levels: 3 default_priority_level: 5 }")
    assert message.endswith("default priority level must be in range [1, 3] for m")
    message = _invalid(BASE + "dynamic_batching { priority_levels: 3 }")
    assert message.endswith("default priority level must be in range [1, 3] for m")


def test_priority_queue_policy_range() -> None:
    text = BASE + "dynamic_batching { priority_levels: 2 default_priority_level: 1 priority_queue_policy { key: 3 value {} } }"
    assert _invalid(text).endswith(msg.fmt(msg.QUEUE_POLICY_RANGE, levels=2, model="m"))


def test_preserve_ordering_rules() -> None:
    text = BASE + "dynamic_batching { preserve_ordering: true default_queue_policy { timeout_action: DELAY default_timeout_microseconds: 1 } }"
    assert _invalid(text).endswith(msg.fmt(msg.PRESERVE_ORDERING_DELAY, model="m"))
    text = BASE + "dynamic_batching { preserve_ordering: true priority_levels: 2 default_priority_level: 1 }"
    assert _invalid(text).endswith(msg.fmt(msg.PRESERVE_ORDERING_LEVELS, model="m"))


def _seq(control: str) -> str:
    return BASE + f'sequence_batching {{ control_input [ {{ name: "C" control [ {{ {control} }} ] }} ] }}'


@pytest.mark.parametrize(
    "control",
    [
        "kind: CONTROL_SEQUENCE_START",
        "kind: CONTROL_SEQUENCE_READY int32_false_true: [ 0 ]",
        "kind: CONTROL_SEQUENCE_END int32_false_true: [ 0, 1 ] fp32_false_true: [ 0, 1 ]",
    ],
)
def test_control_false_true_required(control: str) -> None:
    kind = control.split()[1]
    assert _invalid(_seq(control)).endswith(msg.fmt(msg.CONTROL_FALSE_TRUE, name="C", kind=kind, model="m"))


def test_control_corrid_rules() -> None:
    message = _invalid(_seq("kind: CONTROL_SEQUENCE_CORRID"))
    assert message.endswith(msg.fmt(msg.CONTROL_CORRID_DATA_TYPE, name="C", model="m"))
    message = _invalid(_seq("kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 int32_false_true: [ 0, 1 ]"))
    assert message.endswith(msg.fmt(msg.CONTROL_CORRID_FALSE_TRUE, name="C", model="m"))


def test_valid_controls_pass() -> None:
    text = BASE + """sequence_batching { control_input [
      { name: "S" control [ { kind: CONTROL_SEQUENCE_START bool_false_true: [ false, true ] } ] },
      { name: "R" control [ { kind: CONTROL_SEQUENCE_READY fp32_false_true: [ 0, 1 ] } ] },
      { name: "ID" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_STRING } ] } ] }"""
    validate(_norm(text), source="c", model_dir_name="m")


def test_ensemble_rules() -> None:
    message = _invalid('name: "m" platform: "ensemble"')
    assert message.endswith(msg.fmt(msg.ENSEMBLE_NO_SCHEDULING, model="m"))
    message = _invalid('name: "m" platform: "ensemble" ensemble_scheduling { }')
    assert message.endswith(msg.fmt(msg.ENSEMBLE_NO_SCHEDULING, model="m"))
    text = 'name: "m" platform: "ensemble" ensemble_scheduling { step [ { model_name: "a" } ] } instance_group [ { kind: KIND_CPU } ]'
    assert _invalid(text).endswith(msg.fmt(msg.ENSEMBLE_INSTANCE_GROUP, model="m"))
    text = 'name: "m" backend: "python" ensemble_scheduling { step [ { model_name: "a" } ] }'
    assert _invalid(text).endswith(msg.fmt(msg.ENSEMBLE_WRONG_PLATFORM, model="m"))
    ok = _norm('name: "m" platform: "ensemble" ensemble_scheduling { step [ { model_name: "a" model_version: -1 } ] }')
    validate(ok, source="c", model_dir_name="m")


# --- default_model_filename --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('platform: "onnxruntime_onnx"', "model.onnx"),
        ('backend: "onnxruntime"', "model.onnx"),
        ('platform: "pytorch_libtorch"', "model.pt"),
        ('backend: "pytorch"', "model.pt"),
        ('backend: "pytorch" platform: "torch_aoti"', "model.pt2"),
        ('platform: "tensorrt_plan"', "model.plan"),
        ('backend: "tensorrt"', "model.plan"),
        ('platform: "tensorflow_savedmodel"', "model.savedmodel"),
        ('platform: "tensorflow_graphdef"', "model.graphdef"),
        ('backend: "openvino"', "model.xml"),
        ('backend: "python"', "model.py"),
        ('backend: "dali"', "model.dali"),
        ('platform: "ensemble"', ""),
        ('backend: "mycustom"', ""),
        ('backend: "fil"', "xgboost.ubj"),
        ('backend: "fil" parameters { key: "model_type" value { string_value: "xgboost_json" } }', "xgboost.json"),
        ('backend: "fil" parameters { key: "model_type" value { string_value: "xgboost" } }', "xgboost.model"),
        ('backend: "fil" parameters { key: "model_type" value { string_value: "lightgbm" } }', "model.txt"),
        ('backend: "fil" parameters { key: "model_type" value { string_value: "treelite_checkpoint" } }', "checkpoint.tl"),
        ('backend: "python" default_model_filename: "other.py"', "other.py"),
        ('backend: "fil" default_model_filename: "m.json"', "m.json"),
    ],
)
def test_default_model_filename(text: str, expected: str) -> None:
    assert default_model_filename(parse_pbtxt(text)) == expected


def test_fil_unknown_model_type() -> None:
    cfg = parse_pbtxt('name: "f" backend: "fil" parameters { key: "model_type" value { string_value: "catboost" } }')
    with pytest.raises(InvalidArgumentError, match="unknown FIL model_type 'catboost' for 'f'"):
        default_model_filename(cfg)
