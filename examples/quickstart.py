"""Quick start: load the example repository in-process and run each kind of model once.

    python examples/quickstart.py [path/to/model_repository]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tritonlite import InferenceEngine, InvalidArgumentError


def main(repository: Path) -> int:
    with InferenceEngine(repository) as engine:
        print("ready:", engine.is_ready(), "models:", sorted({m["name"] for m in engine.repository_index(ready=True)}))

        a, b = np.arange(4, dtype=np.float32), np.ones(4, dtype=np.float32)
        result = engine.infer("add_sub", {"INPUT0": a, "INPUT1": b})  # Python model
        print("add_sub (python):", result.as_numpy("OUTPUT0"), result.as_numpy("OUTPUT1"))

        x = np.random.default_rng(0).random((2, 16), dtype=np.float32)
        result = engine.infer("add_sub_onnx", {"INPUT0": x, "INPUT1": x}, outputs=["OUTPUT0"])  # ONNX Runtime
        print("add_sub_onnx (onnxruntime): OUTPUT0[0,:4] =", result.as_numpy("OUTPUT0")[0, :4])

        for version in ("1", "2"):  # two versions served side by side
            out = engine.infer("scale", {"INPUT": np.array([[1.0, 2.0]], dtype=np.float32)}, model_version=version)
            print(f"scale v{version}:", out.as_numpy("OUTPUT"))

        try:
            engine.infer("add_sub", {"INPUT0": a.astype(np.int32), "INPUT1": b})
        except InvalidArgumentError as exc:  # bad input: a clear error, the engine keeps serving
            print("rejected:", exc)

        print("add_sub statistics:", engine.model_statistics("add_sub")["model_stats"][0]["inference_stats"]["success"])
    return 0


if __name__ == "__main__":
    default = Path(__file__).resolve().parent / "model_repository"
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else default))
