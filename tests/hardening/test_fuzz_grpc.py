"""gRPC fuzzing of a ``tritonlite serve`` child process with hypothesis: ≥ 5,000 malformed ModelInferRequests.

Requests are built as messages (wrong ``raw_input_contents`` sizes and counts, typed contents that
disagree with the shape, huge/negative dims, bad parameters) and then, often, byte-mutated or replaced
by random bytes, and sent as raw bytes. Every answer must be OK or a client-error status (never
INTERNAL / UNKNOWN, never a deadline: no hangs); afterwards the server is alive, SERVING, and its
resident memory flat.
"""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path
from typing import Any, Iterator

import pytest
from fuzz_models import FUZZ_MODELS, build_fuzz_repo

from served import ServedProcess

hypothesis = pytest.importorskip("hypothesis")
grpc = pytest.importorskip("grpc")
from hypothesis import HealthCheck, Phase, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tritonlite.protos import grpc_service_pb2 as pb  # noqa: E402

pytestmark = pytest.mark.fuzz

DRAWS = 5
MUTANTS = 4
EXAMPLES = int(os.environ.get("TRITONLITE_FUZZ_EXAMPLES_GRPC", "205"))  # x 5 x 5 = 5,125 requests
#: statuses a malformed request may get (UNAVAILABLE: overload or a model not ready)
ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE,
           grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.RESOURCE_EXHAUSTED}
STATS: dict[str, Any] = {"sent": 0, "codes": {}, "failures": [], "rss": []}
METHOD = "/inference.GRPCInferenceService/ModelInfer"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProcess]:
    repo = build_fuzz_repo(tmp_path_factory.mktemp("fuzz_grpc") / "models")
    with ServedProcess(repo, ["--allow-http", "true"]) as proc:
        yield proc


@pytest.fixture(scope="module")
def call(server: ServedProcess) -> Iterator[Any]:
    channel = grpc.insecure_channel(server.grpc)
    yield channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
    channel.close()


def _send(call: Any, payload: bytes) -> None:
    STATS["sent"] += 1
    try:
        call(payload, timeout=10.0)
        code = grpc.StatusCode.OK
    except grpc.RpcError as exc:
        code, detail = exc.code(), exc.details()
        # INTERNAL only as Triton answers bytes that are not a ModelInferRequest; any other INTERNAL is a bug
        if code not in ALLOWED and (code, detail) != (grpc.StatusCode.INTERNAL, "Unable to parse request"):
            STATS["failures"].append(f"{code.name} {detail!r} to {payload[:200]!r}")
    STATS["codes"][code.name] = STATS["codes"].get(code.name, 0) + 1


MODELS = sorted(FUZZ_MODELS)
DTYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES", "BF16"]
BIG = [0, -1, -2**63, 2**31, 2**32 + 1, 2**62, 2**63 - 1]
dims = st.one_of(st.integers(0, 6), st.integers(0, 6), st.sampled_from(BIG), st.integers(-5, -1))
shapes = st.one_of(st.lists(dims, max_size=5), st.just([2**32, 2**32]), st.just([2**21] * 3), st.just([0, 2**63 - 1]))


def _param(value: Any) -> pb.InferParameter:
    p = pb.InferParameter()
    if isinstance(value, bool):
        p.bool_param = value
    elif isinstance(value, int):
        p.int64_param = value
    elif isinstance(value, float):
        p.double_param = value
    else:
        p.string_param = value
    return p


param_values = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True), st.text(max_size=5))
param_keys = st.sampled_from(["shared_memory_region", "shared_memory_byte_size", "shared_memory_offset", "classification",
                              "priority", "timeout", "sequence_id", "sequence_start", "sequence_end", "binary_data"])


@st.composite
def infer_requests(draw: Any) -> bytes:
    model = draw(st.sampled_from(MODELS + ["nope", ""]))
    names, dtype, model_dims = FUZZ_MODELS.get(model, (["INPUT0"], "FP32", [4]))
    msg = pb.ModelInferRequest(model_name=model, model_version=draw(st.sampled_from(["", "", "1", "3", "-1", "x"])),
                               id=draw(st.text(max_size=4)))
    for _ in range(draw(st.integers(0, 2))):
        msg.parameters[draw(param_keys)].CopyFrom(_param(draw(param_values)))
    consistent = draw(st.booleans())
    n = draw(st.sampled_from([len(names), len(names), 0, len(names) + 1]))
    for i in range(n):
        t = msg.inputs.add()
        t.name = names[i] if i < len(names) and draw(st.integers(0, 5)) else draw(st.text(max_size=6))
        t.datatype = dtype if consistent or draw(st.booleans()) else draw(st.sampled_from(DTYPES + ["", "FP99"]))
        shape = [d if d >= 0 else draw(st.integers(0, 3)) for d in model_dims]
        if model.startswith("batched"):
            shape = [draw(st.integers(0, 9))] + shape
        if not consistent:
            shape = draw(st.one_of(st.just(shape), shapes))
        t.shape.extend(shape)
        for _ in range(draw(st.integers(0, 1))):
            t.parameters[draw(param_keys)].CopyFrom(_param(draw(param_values)))
        if draw(st.integers(0, 4)) == 0:  # typed contents, length maybe wrong
            k = draw(st.integers(0, 8))
            field = draw(st.sampled_from(["bool_contents", "int_contents", "int64_contents", "uint_contents", "fp32_contents",
                                          "fp64_contents", "bytes_contents"]))
            values = {"bool_contents": [True] * k, "bytes_contents": [b"x"] * k}.get(field, [1] * k)
            getattr(t.contents, field).extend(values)
        else:
            count = 1
            for d in shape:
                count = count * d if 0 <= d < 2**20 else 0
            size = draw(st.one_of(st.just(count * 4), st.integers(0, 80), st.just(count * 4 + 1)))
            if t.datatype == "BYTES" and draw(st.booleans()):
                length = draw(st.sampled_from([1, 3, 2**31, 2**32 - 1]))
                msg.raw_input_contents.append(struct.pack("<I", length) + b"abc"[: draw(st.integers(0, 3))])
            else:
                msg.raw_input_contents.append(draw(st.binary(min_size=min(size, 64), max_size=min(size, 64))) * (size // 64 + 1))
    for _ in range(draw(st.integers(0, 2))):  # raw contents beyond the inputs
        msg.raw_input_contents.append(draw(st.binary(max_size=16)))
    for _ in range(draw(st.integers(0, 2))):
        o = msg.outputs.add()
        o.name = draw(st.sampled_from(["OUTPUT0", "OUTPUT1", "nope"]))
        if draw(st.booleans()):
            o.parameters[draw(param_keys)].CopyFrom(_param(draw(param_values)))
    data = msg.SerializeToString()
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=120))
    return data


def _mutate(rng: Any, data: bytes) -> bytes:
    if not data:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12)))
    i = rng.randrange(len(data))
    op = rng.randrange(4)
    if op == 0:
        return data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
    if op == 1:
        return data[:i]
    if op == 2:
        return data[:i] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6))) + data[i:]
    return data + data[i:]  # repeated fields appended again (protobuf merges)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(batch=st.lists(infer_requests(), min_size=DRAWS, max_size=DRAWS), seed=st.integers(0, 2**32 - 1))
@example(batch=[  # found by this fuzzer: zero elements, but no array of that shape can exist (was INTERNAL)
    pb.ModelInferRequest(model_name="identity_fp16", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="INPUT0", datatype="FP16", shape=[0, 2**63 - 1])], raw_input_contents=[b""]).SerializeToString(),
    pb.ModelInferRequest(model_name="identity_bytes", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="INPUT0", datatype="BYTES", shape=[2**40, 0, 2**40])], raw_input_contents=[b""]).SerializeToString(),
    pb.ModelInferRequest(model_name="identity_fp32", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="INPUT0", datatype="FP32", shape=[0, 2**62], contents=pb.InferTensorContents())]).SerializeToString(),
], seed=None)
@example(batch=[pb.ModelInferRequest(model_name="identity_bytes", inputs=[pb.ModelInferRequest.InferInputTensor(
    name="INPUT0", datatype="BYTES", shape=[1])], raw_input_contents=[struct.pack("<I", 2**32 - 1) + b"ab"]).SerializeToString()],
    seed=None)
def test_malformed_grpc_infer_requests(server: ServedProcess, call: Any, batch: list[bytes], seed: int | None) -> None:
    rng = random.Random(seed)
    if not STATS["rss"] and STATS["sent"] >= 500:
        STATS["rss"].append(server.rss_bytes())
    for data in batch:
        _send(call, data)
        for _ in range(MUTANTS if seed is not None else 0):
            _send(call, _mutate(rng, data))
    assert server.alive(), server.errors[-30:]


def test_grpc_server_healthy_and_memory_flat_after_fuzzing(server: ServedProcess) -> None:
    failures = STATS.pop("failures")
    assert failures == [], "\n".join(failures[:15]) + f"\n... {len(failures)} bad answers; {STATS}"
    assert STATS["sent"] >= 5_000, STATS
    assert server.alive()
    channel = grpc.insecure_channel(server.grpc)
    try:
        live = channel.unary_unary("/inference.GRPCInferenceService/ServerReady", request_serializer=None,
                                   response_deserializer=pb.ServerReadyResponse.FromString)
        assert live(b"", timeout=5.0).ready is True
    finally:
        channel.close()
    before, after = STATS["rss"][0], server.rss_bytes()
    print(f"\ngRPC fuzz: {STATS['sent']} requests, codes {STATS['codes']}, RSS {before / 2**20:.1f} -> {after / 2**20:.1f} MiB")
    assert after - before < 24 * 2**20, (before, after)
