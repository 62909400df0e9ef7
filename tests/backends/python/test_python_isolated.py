"""Process-isolated Python models: real child processes, real crashes, restarts, BLS, decoupled, BYTES."""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from model_repos import IDENTITY_PY, RAISING_PY, identity_py_config, write_model
from tritonlite import InferenceEngine
from tritonlite.backends.python.isolated import IsolatedPythonInstance
from tritonlite.errors import InternalError, InvalidArgumentError, TritonLiteError, UnknownError

MODELS = Path(__file__).parent / "models"
ISOLATED = 'parameters { key: "isolation" value: { string_value: "process" } }'

CRASHY_PY = """
import ctypes
import json
import os
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        pb_utils.Logger.log_warn(f"crashy {args['model_instance_name']} starts in its own process")
        family = pb_utils.MetricFamily("crashy_requests", "Requests crashy answered", pb_utils.MetricFamily.COUNTER)
        self.counter = family.Metric({"model": "crashy"})

    def execute(self, requests):
        responses = []
        for request in requests:
            action = json.loads(request.parameters()).get("action", "")
            if action == "abort":
                os.abort()
            if action == "segfault":
                ctypes.string_at(0)
            if action == "hang":
                time.sleep(60)
            if action == "hold_gil":
                ctypes.PyDLL(None).sleep(2)  # a C call that keeps the GIL: this process is frozen
            if action == "sleep":
                time.sleep(0.3)
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            self.counter.increment(1)
            responses.append(pb_utils.InferenceResponse([
                pb_utils.Tensor("OUTPUT0", x + 1),
                pb_utils.Tensor("PID", np.array([os.getpid()], dtype=np.int64)),
            ]))
        return responses
"""

STREAM_CALLER_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            values = pb_utils.get_input_tensor_by_name(request, "IN")
            bls = pb_utils.InferenceRequest(model_name="repeat", inputs=[pb_utils.Tensor("IN", values.as_numpy())],
                                            requested_output_names=["OUT"])
            got = [pb_utils.get_output_tensor_by_name(r, "OUT").as_numpy()[0]
                   for r in bls.exec(decoupled=True) if not r.has_error() and r.output_tensors()]
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array(got, dtype=np.int32))]))
        return responses
"""


def crashy_config(name: str, extra: str = "") -> str:
    return f"""
        name: "{name}"
        backend: "python"
        input [ {{ name: "INPUT0" data_type: TYPE_INT32 dims: [ 1 ] }} ]
        output [ {{ name: "OUTPUT0" data_type: TYPE_INT32 dims: [ 1 ] }}, {{ name: "PID" data_type: TYPE_INT64 dims: [ 1 ] }} ]
        {ISOLATED}
        {extra}
    """


def copy_isolated(name: str, root: Path, as_name: str | None = None) -> None:
    """One of the in-process test models, copied with the isolation parameter added."""
    dst = root / (as_name or name)
    shutil.copytree(MODELS / name, dst)
    config = dst / "config.pbtxt"
    text = config.read_text().replace(f'name: "{name}"', f'name: "{as_name or name}"')
    config.write_text(text + "\n" + ISOLATED + "\n")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def instances(engine: InferenceEngine, name: str) -> list[Any]:
    return [inst for _, inst in engine._loaded_version(name).instances]


def unhealthy(instance: str, what: str) -> str:
    return (f"Failed to process the request(s) for model instance '{instance}', message: "
            f"Stub process '{instance}' is not healthy. {what}")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceEngine]:
    root = tmp_path_factory.mktemp("isolated") / "models"
    write_model(root, "crashy", crashy_config("crashy"), {"1/model.py": CRASHY_PY})
    write_model(root, "crashy_batch", crashy_config(
        "crashy_batch", "max_batch_size: 8 dynamic_batching { max_queue_delay_microseconds: 300000 }"
    ).replace("dims: [ 1 ]", "dims: [ 1 ]"), {"1/model.py": CRASHY_PY})
    write_model(root, "crashy_two", crashy_config("crashy_two", "instance_group [ { count: 2 kind: KIND_CPU } ]"),
                {"1/model.py": CRASHY_PY})
    write_model(root, "crashy_timeout", crashy_config(
        "crashy_timeout", 'parameters { key: "isolation_execute_timeout_s" value: { string_value: "1" } }'
    ), {"1/model.py": CRASHY_PY})
    write_model(root, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    write_model(root, "raising_iso", identity_py_config("raising_iso", extra=ISOLATED), {"1/model.py": RAISING_PY})
    shutil.copytree(MODELS / "add_sub", root / "add_sub")  # in-process BLS target
    shutil.copytree(MODELS / "repeat", root / "repeat")  # in-process decoupled BLS target
    write_model(root, "iso_stream_caller", f"""
        backend: "python"
        input [ {{ name: "IN" data_type: TYPE_INT32 dims: [ -1 ] }} ]
        output [ {{ name: "OUT" data_type: TYPE_INT32 dims: [ -1 ] }} ]
        {ISOLATED}
    """, {"1/model.py": STREAM_CALLER_PY})
    for name in ("bls_caller", "bytes_echo", "repeat", "error_response"):
        copy_isolated(name, root, f"iso_{name}")
    with InferenceEngine(root) as eng:
        yield eng


def test_isolated_model_runs_in_a_child_process(engine):
    [inst] = instances(engine, "crashy")
    assert isinstance(inst, IsolatedPythonInstance)
    result = engine.infer("crashy", {"INPUT0": np.array([41], np.int32)})
    out, pid = result.as_numpy("OUTPUT0"), result.as_numpy("PID")
    assert out.tolist() == [42] and out.dtype == np.int32 and out.shape == (1,)
    assert pid[0] == inst.pid != os.getpid() and alive(inst.pid)


@pytest.mark.parametrize("action, what", [("abort", "was killed by SIGABRT"), ("segfault", "was killed by SIGSEGV")])
def test_crash_fails_the_request_restarts_the_instance_and_others_keep_serving(engine, action, what):
    [inst] = instances(engine, "crashy")
    engine.infer("crashy", {"INPUT0": np.array([0], np.int32)})  # the instance is up
    old_pid, restarts = inst.pid, inst.restarts
    crash = engine.submit("crashy", {"INPUT0": np.array([1], np.int32)}, parameters={"action": action})
    # the in-process model and the server itself are untouched while the child dies
    x = np.arange(4, dtype=np.float32)
    assert engine.infer("identity_py", {"INPUT0": x}).as_numpy("OUTPUT0").tolist() == x.tolist()
    with pytest.raises(InternalError) as info:
        crash.result(timeout=30)
    assert str(info.value) == unhealthy("crashy_0", f"The child process (pid {old_pid}) of model 'crashy' {what}.")
    # the instance was restarted: the next request runs in a fresh child
    again = engine.infer("crashy", {"INPUT0": np.array([7], np.int32)})
    assert again.as_numpy("OUTPUT0").tolist() == [8]
    assert again.as_numpy("PID")[0] == inst.pid != old_pid
    assert inst.restarts == restarts + 1 and not alive(old_pid)
    assert engine.is_model_ready("crashy")
    assert engine.infer("identity_py", {"INPUT0": x}).as_numpy("OUTPUT0").tolist() == x.tolist()


def test_every_request_of_the_crashed_batch_fails(engine):
    [inst] = instances(engine, "crashy_batch")
    engine.infer("crashy_batch", {"INPUT0": np.array([[0]], np.int32)})
    pid = inst.pid
    futures = [engine.submit("crashy_batch", {"INPUT0": np.array([[i]], np.int32)}) for i in range(3)]
    futures.append(engine.submit("crashy_batch", {"INPUT0": np.array([[9]], np.int32)}, parameters={"action": "abort"}))
    expected = unhealthy("crashy_batch_0", f"The child process (pid {pid}) of model 'crashy_batch' was killed by SIGABRT.")
    for fut in futures:
        with pytest.raises(InternalError) as info:
            fut.result(timeout=30)
        assert str(info.value) == expected
    assert engine.infer("crashy_batch", {"INPUT0": np.array([[1]], np.int32)}).as_numpy("OUTPUT0").tolist() == [[2]]


def test_hung_execute_is_killed_after_the_timeout(engine):
    [inst] = instances(engine, "crashy_timeout")
    engine.infer("crashy_timeout", {"INPUT0": np.array([0], np.int32)})
    pid = inst.pid
    with pytest.raises(InternalError) as info:
        engine.infer("crashy_timeout", {"INPUT0": np.array([0], np.int32)}, parameters={"action": "hang"})
    assert str(info.value) == unhealthy(
        "crashy_timeout_0",
        f"The execute function of model 'crashy_timeout' did not return within 1 s; its child process (pid {pid}) was killed.",
    )
    assert engine.infer("crashy_timeout", {"INPUT0": np.array([3], np.int32)}).as_numpy("OUTPUT0").tolist() == [4]
    assert not alive(pid)


def test_a_model_holding_its_gil_does_not_stall_the_engine(engine):
    held = engine.submit("crashy", {"INPUT0": np.array([5], np.int32)}, parameters={"action": "hold_gil"})
    x = np.ones(4, np.float32)
    for _ in range(20):  # answered while the child is frozen inside a C call
        assert engine.infer("identity_py", {"INPUT0": x}).as_numpy("OUTPUT0").tolist() == x.tolist()
    assert not held.done()
    assert held.result(timeout=30).as_numpy("OUTPUT0").tolist() == [6]


def test_two_isolated_instances_have_their_own_processes(engine):
    insts = instances(engine, "crashy_two")
    pids = {inst.pid for inst in insts}
    assert len(pids) == 2 and os.getpid() not in pids
    futures = [engine.submit("crashy_two", {"INPUT0": np.array([i], np.int32)}, parameters={"action": "sleep"}) for i in range(2)]
    seen = {int(f.result(timeout=30).as_numpy("PID")[0]) for f in futures}
    assert seen == pids
    # one instance crashing leaves the other serving
    crash = engine.submit("crashy_two", {"INPUT0": np.array([0], np.int32)}, parameters={"action": "abort"})
    with pytest.raises(InternalError):
        crash.result(timeout=30)
    results = [engine.infer("crashy_two", {"INPUT0": np.array([i], np.int32)}) for i in range(4)]
    assert [r.as_numpy("OUTPUT0").tolist() for r in results] == [[1], [2], [3], [4]]
    assert len({inst.pid for inst in insts}) == 2


def test_errors_per_request_and_raised_errors_match_in_process(engine):
    outs = [engine.submit("iso_error_response", {"IN": np.array(v, np.float32)}) for v in ([2, 4], [-1, 1], [0, 1])]
    assert outs[0].result(timeout=30).as_numpy("OUT").tolist() == [0.5, 0.25]
    with pytest.raises(InvalidArgumentError, match="^negative input$"):
        outs[1].result(timeout=30)
    with pytest.raises(InternalError, match="^zero input$"):
        outs[2].result(timeout=30)
    with pytest.raises(InternalError) as info:
        engine.infer("raising_iso", {"INPUT0": -np.ones(4, np.float32)})
    assert str(info.value) == (
        "Failed to process the request(s) for model 'raising_iso_0', message: ValueError: negative input is not allowed"
    )
    assert engine.infer("raising_iso", {"INPUT0": np.ones(4, np.float32)}).as_numpy("OUTPUT0").tolist() == [2.0] * 4


def test_bytes_tensors_and_response_parameters(engine):
    data = np.array([[b"ab", b"", "\u00e9".encode()]], dtype=np.object_)
    result = engine.infer("iso_bytes_echo", {"IN": data}, parameters={"tag": "t1"})
    assert result.as_numpy("OUT").tolist() == data.tolist() and result.as_numpy("OUT").dtype == np.object_
    assert result.as_numpy("UPPER").tolist() == [[b"AB", b"", "\u00c9".encode()]]
    assert result.as_numpy("LENGTHS").tolist() == [[2, 0, 2]] and result.as_numpy("LENGTHS").dtype == np.int32
    assert result.parameters == {"echo_count": 3, "seen": "t1", "ok": True}


def test_decoupled_isolated_model_streams_from_its_threads(engine):
    items = list(engine.stream_infer("iso_repeat", {"IN": np.array([4, 5, 6], np.int32)}))
    assert [r.as_numpy("OUT").tolist() for r in items] == [[4], [5], [6]]
    assert [r.as_numpy("IDX").tolist() for r in items] == [[0], [1], [2]]
    assert items[0].as_numpy("IDX").dtype == np.uint32
    assert list(engine.stream_infer("iso_repeat", {"IN": np.zeros(0, np.int32)})) == []


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_bls_from_an_isolated_model_runs_on_the_parent_engine(engine, mode):
    data = np.array([1, 2, 3, 4], np.float32)
    result = engine.infer("iso_bls_caller", {"IN": data}, parameters={"mode": mode})
    assert result.as_numpy("SUM").tolist() == (data + data).tolist() and result.as_numpy("SUM").dtype == np.float32


def test_decoupled_bls_stream_from_an_isolated_model(engine):
    result = engine.infer("iso_stream_caller", {"IN": np.array([3, 1, 2], np.int32)})
    assert result.as_numpy("OUT").tolist() == [3, 1, 2] and result.as_numpy("OUT").dtype == np.int32


def test_bls_errors_reach_the_isolated_model(engine):
    result = engine.infer("iso_bls_caller", {"IN": np.ones(4, np.float32)}, parameters={"target": "no_such_model"})
    assert result.as_numpy("ERR").tolist() == [b"2:Request for unknown model: 'no_such_model' is not found"]


def test_child_logs_and_custom_metrics_reach_the_parent(tmp_path, caplog):
    root = tmp_path / "models"
    write_model(root, "logs_crashy", crashy_config("logs_crashy"), {"1/model.py": CRASHY_PY})
    with InferenceEngine(root) as eng:
        eng.infer("logs_crashy", {"INPUT0": np.array([1], np.int32)})
        eng.infer("logs_crashy", {"INPUT0": np.array([1], np.int32)})
        text = eng.metrics()
    assert 'crashy_requests{model="crashy"} 2' in text
    records = [r for r in caplog.records if r.name == "tritonlite.python_model" and "logs_crashy" in r.getMessage()]
    assert [r.getMessage() for r in records] == ["crashy logs_crashy_0 starts in its own process"]
    assert records[0].levelname == "WARNING" and records[0].pathname.endswith("model.py")


def test_close_leaves_no_process_and_no_thread_behind(tmp_path, no_thread_leak):
    root = tmp_path / "models"
    write_model(root, "closing_a", crashy_config("closing_a", "instance_group [ { count: 2 kind: KIND_CPU } ]"),
                {"1/model.py": CRASHY_PY})
    copy_isolated("repeat", root, "closing_b")
    eng = InferenceEngine(root, model_control_mode="explicit", startup_models=["closing_a", "closing_b"])
    pids = [inst.pid for inst in instances(eng, "closing_a")] + [inst.pid for inst in instances(eng, "closing_b")]
    assert len(set(pids)) == 3 and all(alive(p) for p in pids)
    # unload lets an open decoupled stream finish, then ends the child
    stream = eng.stream_infer("closing_b", {"IN": np.arange(3, dtype=np.int32)})
    eng.unload_model("closing_b")
    assert not alive(pids[2])
    assert [r.as_numpy("OUT").tolist() for r in stream] == [[0], [1], [2]]
    eng.close()
    assert not any(alive(p) for p in pids)
    assert [name for name in no_thread_leak() if ".closing_" in name] == []


def test_initialize_errors_and_bad_parameters_fail_the_load(tmp_path):
    root = tmp_path / "models"
    copy_isolated("init_raises", root)
    write_model(root, "bad_mode", identity_py_config(
        "bad_mode", extra='parameters { key: "isolation" value: { string_value: "thread" } }'), {"1/model.py": IDENTITY_PY})
    write_model(root, "missing_env", identity_py_config(
        "missing_env", extra='parameters { key: "EXECUTION_ENV_PATH" value: { string_value: "$$TRITON_MODEL_DIRECTORY/env.tar.gz" } }'
    ), {"1/model.py": IDENTITY_PY})
    with InferenceEngine(root, model_control_mode="explicit") as eng:
        with pytest.raises(TritonLiteError) as info:
            eng.load_model("bad_mode")
        assert "parameter 'isolation' must be \"process\" or \"none\", got 'thread'" in str(info.value)
        with pytest.raises(TritonLiteError) as info:
            eng.load_model("missing_env")
        assert f"Failed to get the canonical path for {root / 'missing_env'}/env.tar.gz." in str(info.value)
        with pytest.raises(TritonLiteError) as info:
            eng.load_model("init_raises")
        assert "TritonModelException: weights file is missing" in str(info.value)  # as in-process


def _env_model(root: Path, name: str, env: str) -> None:
    code = """
import os, sys
import numpy as np
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        facts = np.array([sys.prefix.encode(), os.environ.get("TL_ENV_MARK", "").encode()], dtype=np.object_)
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", facts)]) for _ in requests]
"""
    write_model(root, name, identity_py_config(
        name, dims="[ 2 ]", dtype="TYPE_STRING",
        extra=f'parameters {{ key: "EXECUTION_ENV_PATH" value: {{ string_value: "{env}" }} }}'), {"1/model.py": code})


def test_execution_env_directory_and_tarball(tmp_path):
    """EXECUTION_ENV_PATH alone turns isolation on; the child runs that env's python."""
    root = tmp_path / "models"
    _env_model(root, "env_dir", sys.prefix)
    # a tiny "packed env": bin/python3 is a wrapper that marks its children and runs this interpreter
    packed = tmp_path / "packed"
    (packed / "bin").mkdir(parents=True)
    wrapper = packed / "bin" / "python3"
    wrapper.write_text(f'#!/bin/sh\nTL_ENV_MARK=packed exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    model_dir = root / "env_tar"
    model_dir.mkdir(parents=True)
    with tarfile.open(model_dir / "env.tar.gz", "w:gz") as tar:
        tar.add(packed / "bin", arcname="bin")
    _env_model(root, "env_tar", "$$TRITON_MODEL_DIRECTORY/env.tar.gz")
    with InferenceEngine(root) as eng:
        [inst] = instances(eng, "env_dir")
        assert isinstance(inst, IsolatedPythonInstance)
        prefix, mark = eng.infer("env_dir", {"INPUT0": np.array([b"", b""], np.object_)}).as_numpy("OUTPUT0").tolist()
        assert prefix.decode() == os.path.realpath(sys.prefix) and mark == b""
        _, mark = eng.infer("env_tar", {"INPUT0": np.array([b"", b""], np.object_)}).as_numpy("OUTPUT0").tolist()
        assert mark == b"packed"


COUNTDOWN_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.runs = {}

    def execute(self, requests):
        responses = []
        for request in requests:
            cid = request.correlation_id()
            self.runs[cid] = self.runs.get(cid, 0) + 1
            if self.runs[cid] < int(pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()[0]):
                request.set_release_flags(pb_utils.TRITONSERVER_REQUEST_RELEASE_RESCHEDULE)
                responses.append(None)
            else:
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([self.runs.pop(cid)], np.int32))]))
        return responses
"""


def test_release_flags_reach_the_iterative_sequence_batcher(tmp_path):
    root = tmp_path / "models"
    write_model(root, "countdown", f"""
        backend: "python"
        input [ {{ name: "IN" data_type: TYPE_INT32 dims: [ 1 ] }} ]
        output [ {{ name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] }} ]
        sequence_batching {{ iterative_sequence: true }}
        {ISOLATED}
    """, {"1/model.py": COUNTDOWN_PY})
    with InferenceEngine(root) as eng:
        assert eng.infer("countdown", {"IN": np.array([3], np.int32)}).as_numpy("OUT").tolist() == [3]
