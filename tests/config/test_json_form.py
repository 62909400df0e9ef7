"""Triton's JSON form of ModelConfig (SPEC §2.3): round trips, int64 as ints, the add_sub example."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tritonlite.config import (
    config_to_json,
    default_model_filename,
    load_config_file,
    normalize,
    parse_json_config,
    parse_pbtxt,
)

from model_repos import CONFIG_DATA, shared_config_params

#: our own configs (always there) plus the optional real-world corpus (skipped when absent)
CONFIG_FILES = [pytest.param(p, id=p.name) for p in sorted(CONFIG_DATA.glob("*.pbtxt"))] + shared_config_params()

ADD_SUB_PBTXT = """
backend: "python"
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
instance_group [ { kind: KIND_CPU } ]
"""

# Verbatim from SPEC §2.3.
ADD_SUB_JSON = json.loads(
    """
{"name":"add_sub","platform":"","backend":"python","runtime":"","version_policy":{"latest":{"num_versions":1}},
 "max_batch_size":0,
 "input":[{"name":"INPUT0","data_type":"TYPE_FP32","format":"FORMAT_NONE","dims":[4],"is_shape_tensor":false,
           "allow_ragged_batch":false,"optional":false,"is_non_linear_format_io":false}],
 "output":[{"name":"OUTPUT0","data_type":"TYPE_FP32","dims":[4],"label_filename":"","is_shape_tensor":false,
            "is_non_linear_format_io":false}],
 "batch_input":[],"batch_output":[],
 "optimization":{"priority":"PRIORITY_DEFAULT","input_pinned_memory":{"enable":true},
                 "output_pinned_memory":{"enable":true},"gather_kernel_buffer_threshold":0,"eager_batching":false},
 "instance_group":[{"name":"add_sub_0","kind":"KIND_CPU","count":1,"gpus":[],"secondary_devices":[],"profile":[],
                    "passive":false,"host_policy":""}],
 "default_model_filename":"model.py","cc_model_filenames":{},"metric_tags":{},"parameters":{},"model_warmup":[]}
"""
)


def test_add_sub_example_exact() -> None:
    cfg = parse_pbtxt(ADD_SUB_PBTXT)
    normalize(cfg, model_name="add_sub", gpu_count=0)
    # Server-side auto-complete (the repository layer) fills the file name; do the same here.
    cfg.default_model_filename = default_model_filename(cfg)
    assert config_to_json(cfg) == ADD_SUB_JSON


@pytest.mark.parametrize("path", CONFIG_FILES)
def test_round_trip(path: Path) -> None:
    cfg = load_config_file(path)
    for _ in range(2):  # raw, then normalised
        data = config_to_json(cfg)
        assert parse_json_config(json.dumps(data)) == cfg
        assert parse_json_config(data) == cfg
        normalize(cfg, model_name=cfg.name or "model", gpu_count=1)


def _strings_that_look_like_ints(value: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("name", "string_value", "label_filename", "model_name", "profile"):
                continue
            found += _strings_that_look_like_ints(v, f"{path}.{k}")
    elif isinstance(value, list):
        for item in value:
            found += _strings_that_look_like_ints(item, f"{path}[]")
    elif isinstance(value, str) and value.lstrip("-").isdigit():
        found.append(path)
    return found


@pytest.mark.parametrize("path", CONFIG_FILES)
def test_no_int64_left_as_string(path: Path) -> None:
    cfg = load_config_file(path)
    normalize(cfg, model_name=cfg.name or "model")
    data = config_to_json(cfg)
    # map values (parameters, input_map, ...) are user strings; skip the string-valued maps
    for key in ("parameters", "metric_tags", "cc_model_filenames"):
        data.pop(key)
    data.pop("ensemble_scheduling", None)  # input_map/output_map values are tensor names
    data.pop("optimization", None)  # accelerator parameters are strings by schema
    assert _strings_that_look_like_ints(data) == []


def test_int64_fields_are_ints_everywhere() -> None:
    text = """
    name: "m" backend: "python" max_batch_size: 8
    version_policy { specific { versions: [1, 3] } }
    input [ { name: "I" data_type: TYPE_FP32 dims: [ -1, 2 ] reshape { shape: [ -1, 1, 2 ] } } ]
    output [ { name: "O" data_type: TYPE_FP32 dims: [ 2 ] reshape { shape: [ 2, 1 ] } } ]
    instance_group [ { kind: KIND_GPU gpus: [0] secondary_devices [ { device_id: 7 } ] } ]
    optimization { cuda { graph_spec [ {
        batch_size: 2 input { key: "I" value { dim: [ 5, 2 ] } }
        graph_lower_bound { batch_size: 1 input { key: "I" value { dim: [ 1, 2 ] } } } } ] } }
    dynamic_batching {
      max_queue_delay_microseconds: 100 priority_levels: 2 default_priority_level: 1
      default_queue_policy { default_timeout_microseconds: 9 }
      priority_queue_policy { key: 2 value { default_timeout_microseconds: 18446744073709551615 } }
    }
    model_warmup [ { name: "w" batch_size: 1 inputs { key: "I" value { data_type: TYPE_FP32 dims: [ 3, 2 ] zero_data: true } } } ]
    """
    data = config_to_json(parse_pbtxt(text))
    assert data["version_policy"]["specific"]["versions"] == [1, 3]
    assert data["input"][0]["dims"] == [-1, 2]
    assert data["input"][0]["reshape"]["shape"] == [-1, 1, 2]
    assert data["output"][0]["reshape"]["shape"] == [2, 1]
    assert data["instance_group"][0]["secondary_devices"][0]["device_id"] == 7
    spec = data["optimization"]["cuda"]["graph_spec"][0]
    assert spec["input"]["I"]["dim"] == [5, 2]
    assert spec["graph_lower_bound"]["input"]["I"]["dim"] == [1, 2]
    db = data["dynamic_batching"]
    assert db["max_queue_delay_microseconds"] == 100
    assert db["priority_levels"] == 2
    assert db["default_priority_level"] == 1
    assert db["default_queue_policy"]["default_timeout_microseconds"] == 9
    assert list(db["priority_queue_policy"]) == ["2"]  # map keys stay strings
    assert db["priority_queue_policy"]["2"]["default_timeout_microseconds"] == 2**64 - 1
    assert data["model_warmup"][0]["inputs"]["I"]["dims"] == [3, 2]


def test_sequence_and_ensemble_int64() -> None:
    seq = parse_pbtxt(
        """
        sequence_batching {
          max_sequence_idle_microseconds: 5000
          oldest { max_queue_delay_microseconds: 7 }
          state [ { input_name: "a" output_name: "b" data_type: TYPE_INT32 dims: [ 1 ]
                    initial_state [ { data_type: TYPE_INT32 dims: [ 1 ] zero_data: true name: "z" } ] } ]
        }"""
    )
    data = config_to_json(seq)["sequence_batching"]
    assert data["max_sequence_idle_microseconds"] == 5000
    assert data["oldest"]["max_queue_delay_microseconds"] == 7
    assert data["state"][0]["dims"] == [1]
    assert data["state"][0]["initial_state"][0]["dims"] == [1]
    direct = parse_pbtxt("sequence_batching { direct { max_queue_delay_microseconds: 3 } }")
    assert config_to_json(direct)["sequence_batching"]["direct"]["max_queue_delay_microseconds"] == 3
    ens = parse_pbtxt('ensemble_scheduling { step [ { model_name: "a" model_version: -1 } ] }')
    assert config_to_json(ens)["ensemble_scheduling"]["step"][0]["model_version"] == -1


def test_unset_submessages_omitted_defaults_printed() -> None:
    data = config_to_json(parse_pbtxt('name: "m"'))
    assert "version_policy" not in data and "dynamic_batching" not in data
    assert data["platform"] == "" and data["max_batch_size"] == 0 and data["parameters"] == {}
