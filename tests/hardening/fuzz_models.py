"""The model repository the fuzz, overload and fault tests serve: small models of every input kind."""

from __future__ import annotations

from pathlib import Path

from model_repos import IDENTITY_PY, add_onnx_model, identity_py_config, write_model

#: (model, input names, datatype, dims) of the fuzzed models; the fuzzers aim near these
FUZZ_MODELS = {
    "identity_fp32": (["INPUT0"], "FP32", [4]),
    "identity_var_int64": (["INPUT0"], "INT64", [-1]),
    "identity_bytes": (["INPUT0"], "BYTES", [-1]),
    "identity_fp16": (["INPUT0"], "FP16", [-1]),
    "identity_bool": (["INPUT0"], "BOOL", [-1]),
    "batched_uint8": (["INPUT0"], "UINT8", [-1, 2]),
    "add_sub_onnx": (["INPUT0", "INPUT1"], "FP32", [16]),
}

_TYPE = {"FP32": "TYPE_FP32", "INT64": "TYPE_INT64", "BYTES": "TYPE_STRING", "FP16": "TYPE_FP16", "BOOL": "TYPE_BOOL",
         "UINT8": "TYPE_UINT8"}


def build_fuzz_repo(root: Path) -> Path:
    for name, (_, dtype, dims) in FUZZ_MODELS.items():
        if name == "add_sub_onnx":
            add_onnx_model(root)
            continue
        batch = 8 if name.startswith("batched") else 0
        dims_text = "[ " + ", ".join(str(d) for d in dims) + " ]"
        extra = "dynamic_batching { max_queue_delay_microseconds: 100 }" if batch else ""
        write_model(root, name, identity_py_config(name, dims=dims_text, max_batch=batch, dtype=_TYPE[dtype], extra=extra),
                    {"1/model.py": IDENTITY_PY})
    return root
