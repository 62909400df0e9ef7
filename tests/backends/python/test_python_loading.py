"""Loading: import mechanics, auto-complete, load errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tritonlite.backends.python import PythonBackend
from tritonlite.backends.python import pb_utils
from tritonlite.backends.python.loader import module_name
from tritonlite.config import config_to_json
from tritonlite.errors import InternalError, InvalidArgumentError
from pybackend_harness import load, MODELS, make_context, make_request  # noqa: F401 (load is a fixture)


def test_pb_utils_module_is_registered_only_on_load():
    code = (
        "import sys, tritonlite, tritonlite.backends.python as p;"
        "print('triton_python_backend_utils' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_model_sees_compat_module(load):
    load("add_sub")
    import triton_python_backend_utils

    assert triton_python_backend_utils is pb_utils


def test_module_names_are_unique_per_model_and_version():
    assert module_name("add_sub", 1) == "_tritonlite_models.add_sub.v1.model"
    assert module_name("add_sub", 2) != module_name("add_sub", 1)
    assert module_name("a-b", 1) != module_name("a_b", 1)
    assert module_name("a-b", 1).startswith("_tritonlite_models.a_b_")


def test_sibling_modules_resolve_per_model(load):
    results = {}
    for name in ("sibling_a", "sibling_b", "sibling_a"):
        inst = load(name)
        req, _ = make_request({"IN": np.array([1], np.int32)}, ("OUT",))
        [result] = inst.execute([req])
        results.setdefault(name, []).append(result.outputs["OUT"].tolist())
    for name, outs in results.items():
        expected = [f"helper of {name}".encode(), f"rel_helper of {name}".encode(), f"shared_util of {name}".encode()]
        assert all(o == expected for o in outs)
    for d in (MODELS / "sibling_a" / "1", MODELS / "sibling_a"):
        assert sys.path.count(str(d)) == 1


def test_auto_complete_fills_the_config():
    ctx = make_context("auto_complete", auto_complete=True)
    cfg = config_to_json(ctx.config)
    assert cfg["max_batch_size"] == 16
    assert [(i["name"], i["data_type"], i["dims"], i["optional"]) for i in cfg["input"]] == [
        ("X", "TYPE_FP32", [3], False), ("Y", "TYPE_FP32", [3], True)]
    assert [(o["name"], o["data_type"], o["dims"]) for o in cfg["output"]] == [("Z", "TYPE_FP32", [3])]
    assert ctx.config.HasField("dynamic_batching")
    assert ctx.config.dynamic_batching.preferred_batch_size == [16]  # normalize ran after auto-complete
    assert ctx.config.model_transaction_policy.decoupled is False


def test_auto_complete_then_execute(load):
    inst = load("auto_complete", auto_complete=True)
    x = np.array([[1, 2, 3]], np.float32)
    req, _ = make_request({"X": x, "Y": x}, ("Z",))
    [result] = inst.execute([req])
    assert result.outputs["Z"].tolist() == [[2, 4, 6]]


def test_auto_complete_without_hook_leaves_config(tmp_path):
    ctx = make_context("add_sub")
    before = ctx.config.SerializeToString()
    PythonBackend().auto_complete_config(ctx)
    assert ctx.config.SerializeToString() == before


def _write_model(tmp_path, name, body, config='backend: "python"\n'):
    d = tmp_path / name
    (d / "1").mkdir(parents=True)
    (d / "config.pbtxt").write_text(config)
    (d / "1" / "model.py").write_text(body)
    return d


def _ctx_for(d):
    from tritonlite.backends.base import LoadContext
    from tritonlite.config import load_config_file

    return LoadContext(model_name=d.name, model_version=1, config=load_config_file(d / "config.pbtxt"),
                       model_dir=d, version_dir=d / "1", model_path=d / "1" / "model.py", instance_name=f"{d.name}_0")


def test_auto_complete_must_return_model_config(tmp_path):
    d = _write_model(tmp_path, "ac_bad", (
        "class TritonPythonModel:\n"
        "    @staticmethod\n"
        "    def auto_complete_config(cfg):\n"
        "        return cfg.as_dict()\n"
        "    def execute(self, requests):\n"
        "        return []\n"))
    with pytest.raises(InternalError) as info:
        PythonBackend().auto_complete_config(_ctx_for(d))
    assert str(info.value) == "auto_complete_config function in model 'ac_bad' must return a valid pb.ModelConfig object."


def test_auto_complete_rule_violation_is_load_error(tmp_path):
    d = _write_model(tmp_path, "ac_conflict", (
        "class TritonPythonModel:\n"
        "    @staticmethod\n"
        "    def auto_complete_config(cfg):\n"
        "        cfg.set_max_batch_size(4)\n"
        "        return cfg\n"
        "    def execute(self, requests):\n"
        "        return []\n"), config='backend: "python"\nmax_batch_size: 8\n')
    with pytest.raises(InvalidArgumentError) as info:
        PythonBackend().auto_complete_config(_ctx_for(d))
    assert "configuration specified max_batch_size 8, but in auto-complete-config function for model 'ac_conflict' specified max_batch_size 4" in str(info.value)


def test_initialize_exception_fails_load():
    ctx = make_context("init_raises")
    with pytest.raises(InternalError) as info:
        PythonBackend().create_instance(ctx)
    assert str(info.value) == "TritonModelException: weights file is missing"


def test_missing_class_fails_load():
    with pytest.raises(InvalidArgumentError) as info:
        PythonBackend().create_instance(make_context("no_class"))
    assert "'no_class'" in str(info.value) and "TritonPythonModel" in str(info.value)


def test_import_error_fails_load():
    with pytest.raises(InvalidArgumentError) as info:
        PythonBackend().create_instance(make_context("import_error"))
    msg = str(info.value)
    assert "'import_error'" in msg
    assert "ModuleNotFoundError: No module named 'a_module_that_does_not_exist_anywhere'" in msg


def test_missing_model_file_fails_load(tmp_path):
    d = tmp_path / "empty"
    (d / "1").mkdir(parents=True)
    (d / "config.pbtxt").write_text('backend: "python"\n')
    with pytest.raises(InvalidArgumentError) as info:
        PythonBackend().create_instance(_ctx_for(d))
    assert "'empty'" in str(info.value) and "does not exist" in str(info.value)


def test_missing_execute_fails_load(tmp_path):
    d = _write_model(tmp_path, "no_exec", "class TritonPythonModel:\n    pass\n")
    with pytest.raises(InternalError) as info:
        PythonBackend().create_instance(_ctx_for(d))
    assert str(info.value).endswith("does not implement `execute` method.")


def test_model_file_is_reimported_on_each_load(tmp_path):
    body = ("import numpy as np\nimport triton_python_backend_utils as pb_utils\nVALUE = {v}\n"
            "class TritonPythonModel:\n    def execute(self, requests):\n"
            "        return [pb_utils.InferenceResponse([pb_utils.Tensor('OUT', np.array([VALUE], np.int32))]) for _ in requests]\n")
    d = _write_model(tmp_path, "reloaded", body.format(v=1))
    first = PythonBackend().create_instance(_ctx_for(d))
    (d / "1" / "model.py").write_text(body.format(v=2))
    second = PythonBackend().create_instance(_ctx_for(d))
    try:
        for inst, expected in ((first, 1), (second, 2)):
            req, _ = make_request({}, ("OUT",))
            assert inst.execute([req])[0].outputs["OUT"].tolist() == [expected]
    finally:
        first.close()
        second.close()
