"""The shared protocol pieces on their own: status maps, raw tensors, classification, parameters,
settings and the shared memory registry (both doors build on these)."""

from __future__ import annotations

import gc
import os
import weakref

import numpy as np
import pytest

from tritonlite.errors import (
    AlreadyExistsError,
    CancelledError,
    ErrorCode,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
    UnsupportedError,
)
from tritonlite.protocol.classification import classify, load_labels
from tritonlite.protocol.params import request_options
from tritonlite.protocol.settings import ServerSettings
from tritonlite.protocol.shm import SharedMemoryRegistry, ShmTarget, input_from_params, registry_for, write_output
from tritonlite.protocol.status import grpc_status_name, grpc_status_value, http_status
from tritonlite.protocol.tensors import from_raw, to_raw


def test_status_maps() -> None:
    assert [http_status(c) for c in ErrorCode] == [400, 500, 404, 400, 503, 501, 400, 400]
    assert http_status(NotFoundError("x")) == 404 and http_status(UnsupportedError("x")) == 501
    assert grpc_status_name(InvalidArgumentError("x")) == "INVALID_ARGUMENT" and grpc_status_value(ErrorCode.INVALID_ARG) == 3
    assert grpc_status_name(UnsupportedError("x")) == "UNIMPLEMENTED" and grpc_status_name(CancelledError("x")) == "CANCELLED"
    assert grpc_status_name(UnavailableError("x")) == "UNAVAILABLE" and grpc_status_name(AlreadyExistsError("x")) == "ALREADY_EXISTS"
    assert grpc_status_name(InternalError("x")) == "INTERNAL" and grpc_status_name(99) == "UNKNOWN"


@pytest.mark.parametrize("dtype,datatype", [(np.float32, "FP32"), (np.int8, "INT8"), (np.uint64, "UINT64"), (np.bool_, "BOOL"),
                                            (np.float16, "FP16"), (np.float64, "FP64")])
def test_raw_round_trip_is_zero_copy(dtype: type, datatype: str) -> None:
    arr = (np.arange(12) % 2).astype(dtype).reshape(3, 4)
    raw = to_raw(arr)
    buf = bytearray(raw)
    back = from_raw(datatype, [3, 4], buf)
    np.testing.assert_array_equal(back, arr)
    buf[0:1] = b"\x01"  # a view: the array sees the buffer change
    assert back.reshape(-1).view(np.uint8)[0] == 1


def test_raw_bytes_bf16_and_errors() -> None:
    words = np.array([b"a", b"", b"xyz"], dtype=object)
    assert from_raw("BYTES", [3], to_raw(words)).tolist() == words.tolist()
    assert from_raw("BF16", [2], np.array([0x3F80, 0x4000], np.uint16).tobytes()).dtype == np.uint16
    with pytest.raises(InvalidArgumentError, match="input byte size mismatch for input 'X' for model 'M'. Expected 16, got 12"):
        from_raw("FP32", [4], b"\0" * 12, name="X", model="M")
    with pytest.raises(InvalidArgumentError, match="string elements"):
        from_raw("BYTES", [4], to_raw(words))
    assert to_raw(np.zeros((0, 3), np.float32)) == b""
    non_contiguous = np.arange(8, dtype=np.int32)[::2]
    assert bytes(to_raw(non_contiguous)) == non_contiguous.copy().tobytes()


def test_classification_format(tmp_path: os.PathLike) -> None:
    labels_file = os.path.join(tmp_path, "labels.txt")
    with open(labels_file, "w") as fh:
        fh.write("zero\none\r\ntwo\n")
    labels = load_labels(labels_file)
    assert labels == ["zero", "one", "two"]
    out = classify(np.array([0.5, 3.3, 1.0, 3.3], np.float32), 3, labels)
    assert out.tolist() == [b"3.300000:1:one", b"3.300000:3", b"1.000000:2:two"]
    batched = classify(np.array([[1, 9], [8, 2]], np.uint8), 1, None, batching=True)
    assert batched.shape == (2, 1) and batched.tolist() == [[b"9:1"], [b"8:0"]]
    assert classify(np.array([np.iinfo(np.int64).min, 7]), 2).tolist() == [b"7:1", b"-9223372036854775808:0"]
    for bad in (np.array([True]), np.array([1.0], np.float16), np.array([b"x"], object)):
        with pytest.raises(InvalidArgumentError, match="class result not available"):
            classify(bad, 1)


def test_request_options() -> None:
    opts = request_options({"sequence_id": 7, "sequence_start": True, "sequence_end": False, "priority": 2,
                            "timeout": 100, "binary_data_output": True, "headers": "x", "custom": 1.5})
    assert opts == {"correlation_id": 7, "flags": 1, "priority": 2, "timeout_us": 100, "parameters": {"custom": 1.5}}
    assert request_options({"sequence_id": "abc", "sequence_end": True})["flags"] == 2
    assert request_options({"triton_enable_empty_final_response": True},
                           allowed_triton_keys=frozenset({"triton_enable_empty_final_response"}))["parameters"] == {}
    for bad in ({"triton_x": 1}, {"priority": -1}, {"sequence_start": "yes"}, {"sequence_id": "x" * 129}, {"k": None}):
        with pytest.raises(InvalidArgumentError):
            request_options(bad)


def test_settings_validation() -> None:
    s = ServerSettings()
    assert s.update_log_settings({"log_verbose_level": 1, "log_info": None})["log_verbose_level"] == 1
    with pytest.raises(UnsupportedError):
        s.update_log_settings({"log_file": "x"})
    with pytest.raises(UnavailableError):
        s.update_log_settings({"log_format": "xml"})
    assert s.update_trace_settings({"trace_level": ["TIMESTAMPS", "TENSORS"]}, model="m")["trace_level"] == ["TIMESTAMPS", "TENSORS"]
    assert s.trace_settings()["trace_level"] == ["OFF"]
    assert s.update_trace_settings({"trace_level": []}, model="m")["trace_level"] == ["OFF"]  # gRPC: empty list clears
    assert s.update_trace_settings({"trace_rate": ["7"]})["trace_rate"] == "7"  # gRPC lists of one value
    with pytest.raises(InvalidArgumentError):
        s.update_trace_settings({"trace_rate": "-1"})


def test_shm_registry_and_per_engine_lifetime(tmp_path: os.PathLike) -> None:
    from multiprocessing import shared_memory

    seg = shared_memory.SharedMemory(f"tl_proto_{os.getpid()}", create=True, size=8192)
    try:
        reg = SharedMemoryRegistry()
        reg.register_system("r", f"/tl_proto_{os.getpid()}", 4100, 64)  # an offset that is not page aligned
        write_output(reg, ShmTarget("r", 16, 0), "o", np.arange(4, dtype=np.float32))
        assert np.frombuffer(seg.buf[4100:4116], np.float32).tolist() == [0, 1, 2, 3]
        arr = input_from_params(reg, ShmTarget("r", 16), "FP32", [4])
        assert arr.tolist() == [0, 1, 2, 3]
        reg.unregister_system("r")  # an array still views the mapping: the unmap waits for it
        assert arr.tolist() == [0, 1, 2, 3]
        with pytest.raises(NotFoundError):
            reg.read("r", 0, 4)
        del arr

        class FakeEngine:
            pass

        eng = FakeEngine()
        r1 = registry_for(eng)
        assert registry_for(eng) is r1 and registry_for(FakeEngine()) is not r1
        r1.register_system("a", f"/tl_proto_{os.getpid()}", 0, 16)
        ref = weakref.ref(eng)
        del eng
        gc.collect()
        assert ref() is None and len(r1) == 0  # regions unmapped when the engine goes
    finally:
        seg.close()
        seg.unlink()


def test_shapes_no_array_can_have_are_invalid_argument() -> None:
    """Found by tests/hardening/test_fuzz_grpc.py: a zero-element shape numpy cannot describe was INTERNAL."""
    from tritonlite.errors import InvalidArgumentError
    from tritonlite.protocol.tensors import check_shape, from_raw

    for shape in ([0, 2**63 - 1], [2**40, 0, 2**40], [1] * 33):
        with pytest.raises(InvalidArgumentError) as info:
            from_raw("FP16", shape, b"", name="x", model="m")
        assert str(info.value) == f"unexpected shape for input 'x' for model 'm': {shape} exceeds the largest tensor that can exist"
    assert check_shape([0, 2**57, 3]) == (0, 2**57, 3)
    assert from_raw("FP32", [0, 5], b"").shape == (0, 5)
