"""Parsing real config.pbtxt files and the error messages of bad ones; the private descriptor pool."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool

from tritonlite.config import ModelConfig, load_config_file, parse_json_config, parse_pbtxt
from tritonlite.errors import InvalidArgumentError
from tritonlite.protos import model_config_pb2

from model_repos import CONFIG_DATA, SHARED, shared_config_params

REPO = Path(__file__).resolve().parents[2]
DATA_FILES = sorted(CONFIG_DATA.glob("*.pbtxt"))


def _config(name: str) -> Path:
    return CONFIG_DATA / f"{name}.pbtxt"


def test_own_corpus_present() -> None:
    assert len(DATA_FILES) == 7


@pytest.mark.parametrize("path", DATA_FILES, ids=lambda p: p.name)
def test_every_own_config_parses(path: Path) -> None:
    assert isinstance(load_config_file(path), ModelConfig)


def test_shared_corpus_complete_when_present() -> None:
    files = sorted((SHARED / "configs").glob("*.pbtxt"))
    if not files:
        pytest.skip(f"optional real-world config corpus not present at {SHARED / 'configs'}")
    assert len(files) == 48


@pytest.mark.parametrize("path", shared_config_params())
def test_every_real_config_parses(path: Path) -> None:
    cfg = load_config_file(path)
    assert isinstance(cfg, ModelConfig)


def test_kaldi_mixed_parameter_forms() -> None:
    cfg = load_config_file(_config("mixed_parameter_forms"))
    assert cfg.name == "speech_decoder"
    assert cfg.platform == "custom"
    assert cfg.max_batch_size == 512
    assert cfg.default_model_filename == "libspeech-decoder.so"
    assert cfg.parameters["beam_width"].string_value == "12"  # from the list form
    assert cfg.parameters["worker_threads"].string_value == "8"  # from the list form
    assert cfg.parameters["lattice_width"].string_value == "6"  # from the repeated form
    assert sorted(cfg.parameters) == ["beam_width", "lattice_width", "model_path", "worker_threads"]
    assert cfg.WhichOneof("scheduling_choice") == "sequence_batching"
    assert cfg.sequence_batching.HasField("oldest")
    assert list(cfg.sequence_batching.oldest.preferred_batch_size) == [64]
    assert [c.name for c in cfg.sequence_batching.control_input] == ["SEQ_START", "SEQ_READY", "SEQ_END", "SEQ_ID"]
    assert cfg.instance_group[0].count == 3


def test_version_policy_specific() -> None:
    cfg = load_config_file(_config("specific_versions"))
    assert cfg.backend == "dali"
    assert list(cfg.version_policy.specific.versions) == [4, 7]
    assert list(cfg.input[0].dims) == [-1]


def test_uint64_max_values() -> None:
    cfg = load_config_file(_config("extreme_priorities"))
    db = cfg.dynamic_batching
    assert db.priority_levels == 2**64 - 1
    assert db.default_priority_level == 2**32 - 1
    assert list(db.priority_queue_policy) == [2**32]
    assert db.priority_queue_policy[2**32].default_timeout_microseconds == 2**64 - 1
    assert db.priority_queue_policy[2**32].max_queue_size == 3
    assert db.priority_queue_policy[2**32].timeout_action == model_config_pb2.ModelQueuePolicy.DELAY


def test_reshape_label_and_format() -> None:
    cfg = load_config_file(_config("classifier_reshape_labels"))
    assert cfg.input[0].format == model_config_pb2.ModelInput.FORMAT_NCHW
    assert list(cfg.input[0].dims) == [3, 64, 64]
    assert list(cfg.output[0].reshape.shape) == [10, 1, 1]
    assert cfg.output[0].label_filename == "classes.txt"


def test_warmup_and_accelerators() -> None:
    cfg = load_config_file(_config("warmup_and_accelerators"))
    assert cfg.max_batch_size == 8
    warm = cfg.model_warmup[0]
    assert warm.name == "ocr_warmup" and warm.batch_size == 8
    assert list(warm.inputs["pixels.0"].dims) == [1, 24, 80]
    assert warm.inputs["pixels.0"].WhichOneof("input_data_type") == "zero_data"
    acc = cfg.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert acc.name == "tensorrt"
    assert dict(acc.parameters) == {"precision_mode": "FP16", "trt_max_partition_iterations": "500"}
    assert cfg.optimization.graph.level == 2


def test_decoupled_capitalised_true() -> None:
    cfg = load_config_file(_config("decoupled_capital_true"))
    assert cfg.model_transaction_policy.decoupled is True
    assert [i.name for i in cfg.input] == ["VALUES", "PAUSE_MS"]


def test_ensemble_steps() -> None:
    cfg = load_config_file(_config("ensemble_three_steps"))
    assert cfg.platform == "ensemble"
    steps = cfg.ensemble_scheduling.step
    assert [(s.model_name, s.model_version) for s in steps] == [("scale", -1), ("scale", 2), ("combine", -1)]
    assert dict(steps[2].input_map) == {"LEFT": "scaled_a", "RIGHT": "scaled_b"}
    assert dict(steps[2].output_map) == {"TOTAL": "SUM"}


def test_unknown_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "config.pbtxt"
    path.write_text('name: "m"\nbackend: "python"\n    bogus_field: 3\n')
    with pytest.raises(InvalidArgumentError) as info:
        load_config_file(path)
    assert str(info.value) == (
        f"failed to parse model config {path}: 3:5 : "
        'Message type "inference.ModelConfig" has no field named "bogus_field".'
    )


def test_bad_enum_value() -> None:
    text = 'input [ { name: "x" data_type: TYPE_FLOAT99 dims: [1] } ]'
    with pytest.raises(InvalidArgumentError) as info:
        parse_pbtxt(text, source="cfg.pbtxt")
    message = str(info.value)
    assert message.startswith("failed to parse model config cfg.pbtxt: 1:")
    assert 'Enum type "inference.DataType" has no value named TYPE_FLOAT99' in message


def test_two_scheduling_oneofs() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        parse_pbtxt("dynamic_batching {}\nsequence_batching {}\n", source="s.pbtxt")
    message = str(info.value)
    assert message.startswith("failed to parse model config s.pbtxt: 2:")
    assert 'oneof "scheduling_choice"' in message


def test_missing_file_is_invalid_argument(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "config.pbtxt"
    with pytest.raises(InvalidArgumentError, match="failed to read model config .*nope"):
        load_config_file(path)


def test_json_override_errors() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        parse_json_config('{"bogus": 1}')
    assert str(info.value).startswith("Invalid config override: ")
    assert "bogus" in str(info.value)
    with pytest.raises(InvalidArgumentError, match="^Invalid config override: "):
        parse_json_config("not json")


def test_json_override_accepts_int64_as_number_or_string() -> None:
    a = parse_json_config('{"input": [{"name": "x", "dims": [2, -1]}]}')
    b = parse_json_config('{"input": [{"name": "x", "dims": ["2", "-1"]}]}')
    assert a == b
    assert list(a.input[0].dims) == [2, -1]


# --- private descriptor pool -------------------------------------------------------------------


def test_not_in_default_pool() -> None:
    assert model_config_pb2.ModelConfig.DESCRIPTOR.file.pool is model_config_pb2.POOL
    try:  # tritonclient's own copy may be there (the gRPC server tests import it), never ours
        found = descriptor_pool.Default().FindMessageTypeByName("inference.ModelConfig")
    except KeyError:
        return
    assert found is not model_config_pb2.ModelConfig.DESCRIPTOR


_COEXIST = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    order = sys.argv[2]
    if order == "theirs-first":
        import model_config_pb2 as theirs
    from tritonlite.protos import model_config_pb2 as ours
    if order == "ours-first":
        import model_config_pb2 as theirs
    from google.protobuf import descriptor_pool, text_format
    assert descriptor_pool.Default().FindMessageTypeByName("inference.ModelConfig")
    a = text_format.Parse('name: "m" max_batch_size: 4', ours.ModelConfig())
    b = theirs.ModelConfig.FromString(a.SerializeToString())
    assert b.name == "m" and b.max_batch_size == 4
    print("ok")
    """
)


@pytest.mark.parametrize("order", ["ours-first", "theirs-first"])
def test_coexists_with_default_pool_copy(tmp_path: Path, order: str) -> None:
    """A stock protoc module (as tritonclient ships) registers the same names in the default pool."""
    protoc = pytest.importorskip("grpc_tools.protoc")
    proto_dir = REPO / "tritonlite" / "protos"
    args = ["protoc", f"-I{proto_dir}", f"--python_out={tmp_path}", str(proto_dir / "model_config.proto")]
    assert protoc.main(args) == 0
    result = subprocess.run(
        [sys.executable, "-c", _COEXIST, str(tmp_path), order],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_generated_module_is_current(tmp_path: Path) -> None:
    """The committed *_pb2.py / *_pb2_grpc.py files are what generate.py produces from the committed protos."""
    pytest.importorskip("grpc_tools.protoc")
    from tritonlite.protos import generate

    outs = generate.generate(tmp_path)
    assert {p.name for p in outs} >= {"model_config_pb2.py", "grpc_service_pb2.py", "grpc_service_pb2_grpc.py"}
    for out in outs:
        committed = REPO / "tritonlite" / "protos" / out.name
        assert out.read_text() == committed.read_text(), out.name
