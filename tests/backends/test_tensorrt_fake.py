"""TensorRT backend against a fake ``tensorrt`` module and a fake CUDA runtime, both injected via ``sys.modules``.

The fake engine is described by the "plan" file itself (JSON): its I/O tensors, optimisation profiles and
the arithmetic it does. Its execution context checks what the backend does the way TensorRT 10 would:
shapes set per input inside the active profile, every I/O address bound, one profile per context. Fake
device memory is host memory (``ctypes`` buffers), so the copies are real ``memmove``s.

The ``gpu``-marked tests run the same fake engine over the real CUDA runtime (cuda-python) and a real
TensorRT engine; each skips without what it needs.
"""

from __future__ import annotations

import ctypes
import enum
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tritonlite import InferenceEngine, InvalidArgumentError, UnavailableError
from tritonlite.backends.tensorrt import TensorRTBackend

from framework_harness import execute_batch, make_context
from model_repos import write_model


# ---- the fake CUDA runtime (cuda.bindings.runtime) -------------------------------------------------
def make_fake_cudart(compute_capability: tuple[int, int] = (8, 0), devices: int = 1) -> types.ModuleType:
    rt = types.ModuleType("cuda.bindings.runtime")

    class cudaError_t(enum.IntEnum):  # noqa: N801 - cuda-python's names
        cudaSuccess = 0
        cudaErrorInvalidValue = 1
        cudaErrorNoDevice = 100

    class cudaMemcpyKind(enum.IntEnum):  # noqa: N801
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    class cudaDeviceAttr(enum.IntEnum):  # noqa: N801
        cudaDevAttrComputeCapabilityMajor = 75
        cudaDevAttrComputeCapabilityMinor = 76

    rt.cudaError_t, rt.cudaMemcpyKind, rt.cudaDeviceAttr = cudaError_t, cudaMemcpyKind, cudaDeviceAttr
    rt.allocations = {}  # ptr -> ctypes buffer
    rt.streams = set()
    rt.current_device = -1
    rt.copies = []
    ok = cudaError_t.cudaSuccess

    def cudaGetDeviceCount():  # noqa: N802
        return (ok, devices) if devices else (cudaError_t.cudaErrorNoDevice, 0)

    def cudaSetDevice(d):  # noqa: N802
        rt.current_device = d
        return (ok,)

    def cudaDeviceGetAttribute(attr, device):  # noqa: N802
        return ok, compute_capability[0] if attr == cudaDeviceAttr.cudaDevAttrComputeCapabilityMajor else compute_capability[1]

    def cudaMalloc(n):  # noqa: N802
        buf = (ctypes.c_char * n)()
        ptr = ctypes.addressof(buf)
        rt.allocations[ptr] = buf
        return ok, ptr

    def cudaFree(ptr):  # noqa: N802
        if ptr not in rt.allocations:
            return (cudaError_t.cudaErrorInvalidValue,)
        del rt.allocations[ptr]
        return (ok,)

    def cudaStreamCreate():  # noqa: N802
        handle = 0x5000 + len(rt.streams) + 1
        rt.streams.add(handle)
        return ok, handle

    def cudaStreamDestroy(stream):  # noqa: N802
        rt.streams.discard(stream)
        return (ok,)

    def cudaStreamSynchronize(stream):  # noqa: N802
        return (ok,)

    def _in_device(ptr, n):
        return any(p <= ptr and ptr + n <= p + len(b) for p, b in rt.allocations.items())

    def cudaMemcpy(dst, src, count, kind):  # noqa: N802
        device_side = dst if kind == cudaMemcpyKind.cudaMemcpyHostToDevice else src
        if not _in_device(device_side, count):
            return (cudaError_t.cudaErrorInvalidValue,)
        ctypes.memmove(dst, src, count)
        return (ok,)

    def cudaMemcpyAsync(dst, src, count, kind, stream):  # noqa: N802
        rt.copies.append((int(kind), count))
        return cudaMemcpy(dst, src, count, kind)

    def cudaGetErrorString(err):  # noqa: N802
        return ok, f"fake CUDA error {int(err)}".encode()

    for fn in (cudaGetDeviceCount, cudaSetDevice, cudaDeviceGetAttribute, cudaMalloc, cudaFree, cudaStreamCreate,
               cudaStreamDestroy, cudaStreamSynchronize, cudaMemcpy, cudaMemcpyAsync, cudaGetErrorString):
        setattr(rt, fn.__name__, fn)
    return rt


# ---- the fake TensorRT 10 module -----------------------------------------------------------------
_NP = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_}

#: what each fake engine computes, by its plan's "op"
OPS = {
    "add_sub": lambda t: {"OUTPUT0": t["INPUT0"] + t["INPUT1"], "OUTPUT1": t["INPUT0"] - t["INPUT1"], "COUNT_OUT": t["COUNT"] * 2},
}


def make_fake_trt() -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.99-fake"

    class DataType(enum.Enum):
        FLOAT = 0
        HALF = 1
        INT32 = 3
        INT64 = 4
        BOOL = 5

    class TensorIOMode(enum.Enum):
        NONE = 0
        INPUT = 1
        OUTPUT = 2

    class Logger:
        WARNING = 2

        def __init__(self, severity: int = 2) -> None:
            self.severity = severity

    trt.DataType, trt.TensorIOMode, trt.Logger = DataType, TensorIOMode, Logger
    trt.log: list[tuple[Any, ...]] = []

    def _cudart() -> Any:
        from cuda.bindings import runtime  # the fake one, or the real one on a GPU machine

        return runtime

    class Context:
        def __init__(self, engine: "Engine") -> None:
            self.engine, self.profile, self.shapes, self.addresses = engine, 0, {}, {}

        def set_optimization_profile_async(self, profile: int, stream: int) -> bool:
            trt.log.append(("profile", profile))
            self.profile = profile
            return True

        def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
            mn, _, mx = self.engine.get_tensor_profile_shape(name, self.profile)
            trt.log.append(("shape", name, tuple(shape), self.profile))
            if not all(lo <= s <= hi for lo, s, hi in zip(mn, shape, mx)):
                return False
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            t = self.engine.tensors[name]
            batch = self.shapes.get("INPUT0", (-1,))[0]
            return tuple(batch if d == -1 else d for d in t["shape"])

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            self.addresses[name] = ptr
            return True

        def execute_async_v3(self, stream: int) -> bool:
            rt = _cudart()
            rt.cudaStreamSynchronize(stream)
            unbound = [n for n in self.engine.tensors if n not in self.addresses]
            assert not unbound, f"TensorRT would fail: no address for {unbound}"
            host = {}
            for name, t in self.engine.tensors.items():
                if t["mode"] == "INPUT":
                    arr = np.empty(self.shapes[name], _NP[t["dtype"]])
                    assert int(rt.cudaMemcpy(arr.ctypes.data, self.addresses[name], arr.nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost)[0]) == 0
                    host[name] = arr
            for name, value in OPS[self.engine.plan["op"]](host).items():
                value = np.ascontiguousarray(value, _NP[self.engine.tensors[name]["dtype"]])
                assert value.shape == self.get_tensor_shape(name)
                assert int(rt.cudaMemcpy(self.addresses[name], value.ctypes.data, value.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice)[0]) == 0
            trt.log.append(("execute", self.profile))
            return True

    class Engine:
        def __init__(self, plan: dict[str, Any]) -> None:
            self.plan = plan
            self.tensors = {t["name"]: t for t in plan["tensors"]}
            self.num_io_tensors = len(plan["tensors"])
            self.num_optimization_profiles = len(plan["profiles"])

        def get_tensor_name(self, i: int) -> str:
            return self.plan["tensors"][i]["name"]

        def get_tensor_mode(self, name: str) -> Any:
            return TensorIOMode[self.tensors[name]["mode"]]

        def get_tensor_dtype(self, name: str) -> Any:
            return DataType[self.tensors[name]["dtype"]]

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return tuple(self.tensors[name]["shape"])

        def is_shape_inference_io(self, name: str) -> bool:
            return False

        def get_tensor_profile_shape(self, name: str, profile: int) -> tuple[tuple[int, ...], ...]:
            lo, hi = self.plan["profiles"][profile]
            dims = self.tensors[name]["shape"]
            mk = lambda b: tuple(b if d == -1 else d for d in dims)  # noqa: E731
            return mk(lo), mk((lo + hi) // 2), mk(hi)

        def create_execution_context(self) -> Context:
            trt.log.append(("context",))
            return Context(self)

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            try:
                return Engine(json.loads(data))
            except ValueError:
                return None  # what TensorRT does with a bad plan (and it logs why)

    trt.Runtime = Runtime
    return trt


PLAN = {
    "op": "add_sub",
    "tensors": [
        {"name": "INPUT0", "mode": "INPUT", "dtype": "FLOAT", "shape": [-1, 4]},
        {"name": "INPUT1", "mode": "INPUT", "dtype": "FLOAT", "shape": [-1, 4]},
        {"name": "COUNT", "mode": "INPUT", "dtype": "INT32", "shape": [-1, 1]},
        {"name": "OUTPUT0", "mode": "OUTPUT", "dtype": "FLOAT", "shape": [-1, 4]},
        {"name": "OUTPUT1", "mode": "OUTPUT", "dtype": "FLOAT", "shape": [-1, 4]},
        {"name": "COUNT_OUT", "mode": "OUTPUT", "dtype": "INT32", "shape": [-1, 1]},
    ],
    "profiles": [[1, 4], [5, 16]],  # batch ranges of profile 0 and 1
}

CONFIG = """
    name: "plan"
    platform: "tensorrt_plan"
    max_batch_size: 16
    input [
      { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] },
      { name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] },
      { name: "COUNT" data_type: TYPE_INT32 dims: [ 1 ] }
    ]
    output [
      { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] },
      { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 4 ] },
      { name: "COUNT_OUT" data_type: TYPE_INT32 dims: [ 1 ] }
    ]
    instance_group [ { kind: KIND_GPU %s } ]
"""


def _feeds(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"INPUT0": rng.random((n, 4), dtype=np.float32), "INPUT1": rng.random((n, 4), dtype=np.float32),
            "COUNT": np.arange(n, dtype=np.int32).reshape(n, 1)}


def _check(out: dict[str, np.ndarray], feeds: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(out["OUTPUT0"], feeds["INPUT0"] + feeds["INPUT1"])
    np.testing.assert_array_equal(out["OUTPUT1"], feeds["INPUT0"] - feeds["INPUT1"])
    np.testing.assert_array_equal(out["COUNT_OUT"], feeds["COUNT"] * 2)


def _install(monkeypatch: pytest.MonkeyPatch, cudart: types.ModuleType | None) -> types.ModuleType:
    trt = make_fake_trt()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    if cudart is not None:
        bindings = types.ModuleType("cuda.bindings")
        bindings.runtime = cudart
        cuda = types.ModuleType("cuda")
        cuda.bindings = bindings
        monkeypatch.setitem(sys.modules, "cuda", cuda)
        monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
        monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    return trt


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> tuple[types.ModuleType, types.ModuleType]:
    cudart = make_fake_cudart()
    return _install(monkeypatch, cudart), cudart


def _plan_dir(root: Path, name: str = "plan", plan: dict[str, Any] = PLAN, filename: str = "model.plan") -> Path:
    model_dir = root / name
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    (model_dir / "1" / filename).write_text(json.dumps(plan))
    return model_dir


def test_engine_path_binds_by_name_and_picks_profiles(tmp_path: Path, fake: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    trt, cudart = fake
    monkeypatch.setattr("tritonlite.engine._gpu_count", lambda: 1)  # the engine believes there is a GPU
    _plan_dir(tmp_path)
    (tmp_path / "plan" / "config.pbtxt").write_text(CONFIG % "")
    with InferenceEngine(tmp_path) as engine:
        assert engine.is_model_ready("plan")
        small, large = _feeds(2), _feeds(9, seed=1)
        _check(engine.infer("plan", small).outputs, small)
        _check(engine.infer("plan", large).outputs, large)
        only = engine.infer("plan", small, outputs=["OUTPUT1"])
        assert list(only.outputs) == ["OUTPUT1"]
        shapes = [e for e in trt.log if e[0] == "shape"]
        assert ("shape", "INPUT0", (2, 4), 0) in shapes and ("shape", "INPUT0", (9, 4), 1) in shapes
        assert ("profile", 1) in trt.log and sum(1 for e in trt.log if e[0] == "context") == 2  # one context per profile
        with pytest.raises(InvalidArgumentError, match="batch-size must be <= 16"):
            engine.infer("plan", _feeds(17))
        _check(engine.infer("plan", small).outputs, small)  # still serving
    assert cudart.allocations == {} and cudart.streams == set()  # close freed every buffer and the stream


def test_batched_requests_split_and_buffers_grow(tmp_path: Path, fake: Any) -> None:
    trt, cudart = fake
    ctx = make_context(_plan_dir(tmp_path), CONFIG % "", kind="GPU")
    inst = TensorRTBackend().create_instance(ctx)
    a, b, c = _feeds(1), _feeds(3, seed=2), _feeds(6, seed=3)
    outs = execute_batch(inst, ctx.config, [a, b])  # 4 rows: profile 0
    _check(outs[0], a)
    _check(outs[1], b)
    held = dict(inst.buffers)
    outs = execute_batch(inst, ctx.config, [a, b, c])  # 10 rows: profile 1, its own buffers
    for out, feeds in zip(outs, (a, b, c)):
        _check(out, feeds)
    big = _feeds(4, seed=4)
    _check(execute_batch(inst, ctx.config, [big])[0], big)
    assert inst.buffers[(0, "INPUT0")] == held[(0, "INPUT0")]  # 4 rows fit the 256-byte buffer: reused
    assert {p for p, _ in inst.buffers} == {0, 1}
    inst.close()
    assert cudart.allocations == {} and cudart.streams == set()


def test_instance_group_profiles_restrict_the_choice(tmp_path: Path, fake: Any) -> None:
    trt, _ = fake
    ctx = make_context(_plan_dir(tmp_path), CONFIG % 'profile: [ "1" ]', kind="GPU", instance="plan_0_0")
    inst = TensorRTBackend().create_instance(ctx)
    assert inst.profiles == [1]
    _check(execute_batch(inst, ctx.config, [_feeds(8)])[0], _feeds(8))
    assert ("profile", 1) in trt.log and ("profile", 0) not in trt.log
    with pytest.raises(InvalidArgumentError, match=r"no optimization profile of TensorRT model 'plan' admits input shapes .*profile 1: INPUT0 \[5, 4\]..\[16, 4\]"):
        execute_batch(inst, ctx.config, [_feeds(2)])
    inst.close()
    with pytest.raises(InvalidArgumentError, match=r"optimization profile\(s\) \[7\] do not exist; the engine has 2"):
        TensorRTBackend().create_instance(make_context(tmp_path / "plan", CONFIG % 'profile: [ "7" ]', kind="GPU", instance="plan_0_0"))


def test_name_binding_errors_and_bad_plans(tmp_path: Path, fake: Any) -> None:
    model_dir = _plan_dir(tmp_path)
    with pytest.raises(InvalidArgumentError, match=r"input 'WRONG' is not an input of the TensorRT engine \(its inputs: \['COUNT', 'INPUT0', 'INPUT1'\]\)"):
        TensorRTBackend().create_instance(make_context(model_dir, CONFIG.replace('name: "INPUT1"', 'name: "WRONG"') % "", kind="GPU"))
    (model_dir / "1" / "model.plan").write_bytes(b"\x00not a plan")
    with pytest.raises(InvalidArgumentError, match="failed to deserialize TensorRT plan .*not a plan for this TensorRT version"):
        TensorRTBackend().create_instance(make_context(model_dir, CONFIG % "", kind="GPU"))


def test_cc_model_filenames_pick_the_plan_for_the_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, make_fake_cudart(compute_capability=(9, 0)))
    model_dir = _plan_dir(tmp_path, filename="model_sm90.plan")
    config = CONFIG % "" + 'cc_model_filenames { key: "8.0" value: "model_sm80.plan" }\ncc_model_filenames { key: "9.0" value: "model_sm90.plan" }\n'
    inst = TensorRTBackend().create_instance(make_context(model_dir, config, kind="GPU"))
    assert inst.path.name == "model_sm90.plan"
    inst.close()


def test_refused_clearly_without_tensorrt_cuda_or_a_gpu_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir = _plan_dir(tmp_path)
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails
    with pytest.raises(UnavailableError, match=r"needs TensorRT 10 and an NVIDIA GPU: pip install 'tritonlite\[tensorrt\]'"):
        TensorRTBackend().create_instance(make_context(model_dir, CONFIG % "", kind="GPU"))
    _install(monkeypatch, make_fake_cudart(devices=0))
    with pytest.raises(UnavailableError, match="needs GPU 0 but CUDA sees 0"):
        TensorRTBackend().create_instance(make_context(model_dir, CONFIG % "", kind="GPU"))
    with pytest.raises(UnavailableError, match="KIND_CPU: TensorRT plans run on GPU instances only"):
        TensorRTBackend().create_instance(make_context(model_dir, CONFIG % "", kind="CPU"))
    # through the engine, on this machine: the model is UNAVAILABLE with the reason, the others serve
    write_model(tmp_path, "plan", 'platform: "tensorrt_plan"\nmax_batch_size: 4\n'
                'input [{name: "INPUT0" data_type: TYPE_FP32 dims: [4]}]\noutput [{name: "OUTPUT0" data_type: TYPE_FP32 dims: [4]}]\n')
    _plan_dir(tmp_path, name="bare")  # no config: auto-complete would have to read the plan
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setattr("tritonlite.engine._gpu_count", lambda: 0)
    with InferenceEngine(tmp_path) as engine:
        index = {e["name"]: e for e in engine.repository_index()}
        assert "TensorRT plans run on GPU instances only" in index["plan"]["reason"]
        assert "reading them from the TensorRT plan needs TensorRT and a GPU" in index["bare"]["reason"]


def test_auto_complete_reads_the_engine(tmp_path: Path, fake: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tritonlite.engine._gpu_count", lambda: 1)
    _plan_dir(tmp_path, name="auto")  # only model.plan: found by its name, completed from the engine
    with InferenceEngine(tmp_path) as engine:
        cfg = engine.model_config("auto")
        assert cfg["backend"] == "tensorrt" and cfg["max_batch_size"] == 16 and "dynamic_batching" in cfg
        assert [(t["name"], t["data_type"], t["dims"]) for t in cfg["input"]] == [
            ("INPUT0", "TYPE_FP32", [4]), ("INPUT1", "TYPE_FP32", [4]), ("COUNT", "TYPE_INT32", [1])]
        assert [t["name"] for t in cfg["output"]] == ["OUTPUT0", "OUTPUT1", "COUNT_OUT"]
        feeds = _feeds(3)
        _check(engine.infer("auto", feeds).outputs, feeds)


@pytest.mark.gpu
def test_fake_engine_over_real_cuda_buffers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend's CUDA path for real: cudaMalloc'd buffers, async copies on its own stream."""
    try:
        from cuda.bindings import runtime as rt
    except ImportError:
        pytest.skip("needs cuda-python")
    err, count = rt.cudaGetDeviceCount()
    if int(err) != 0 or count == 0:
        pytest.skip("needs an NVIDIA GPU")
    _install(monkeypatch, None)  # fake TensorRT, real CUDA
    ctx = make_context(_plan_dir(tmp_path), CONFIG % "", kind="GPU")
    inst = TensorRTBackend().create_instance(ctx)
    feeds = [_feeds(3), _feeds(2, seed=5), _feeds(9, seed=6)]
    outs = execute_batch(inst, ctx.config, feeds[:2]) + execute_batch(inst, ctx.config, feeds[2:])
    for out, f in zip(outs, feeds):
        _check(out, f)
    inst.close()


@pytest.mark.gpu
def test_real_tensorrt_engine(tmp_path: Path) -> None:
    trt = pytest.importorskip("tensorrt")
    from tritonlite.backends.tensorrt import CudaRuntime

    if CudaRuntime.load().device_count() == 0:
        pytest.skip("needs an NVIDIA GPU")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    a = network.add_input("INPUT0", trt.float32, (-1, 4))
    b = network.add_input("INPUT1", trt.float32, (-1, 4))
    out = network.add_elementwise(a, b, trt.ElementWiseOperation.SUM).get_output(0)
    out.name = "OUTPUT0"
    network.mark_output(out)
    config = builder.create_builder_config()
    for lo, hi in ((1, 4), (5, 16)):
        profile = builder.create_optimization_profile()
        for name in ("INPUT0", "INPUT1"):
            profile.set_shape(name, (lo, 4), (hi, 4), (hi, 4))
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    model_dir = tmp_path / "real"
    (model_dir / "1").mkdir(parents=True)
    (model_dir / "1" / "model.plan").write_bytes(bytes(plan))
    ctx = make_context(model_dir, """
        name: "real" platform: "tensorrt_plan" max_batch_size: 16
        input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] } ]
        output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
    """, kind="GPU")
    inst = TensorRTBackend().create_instance(ctx)
    for n in (2, 11):
        f = _feeds(n)
        np.testing.assert_allclose(execute_batch(inst, ctx.config, [{"INPUT0": f["INPUT0"], "INPUT1": f["INPUT1"]}])[0]["OUTPUT0"],
                                   f["INPUT0"] + f["INPUT1"], rtol=1e-6)
    inst.close()
