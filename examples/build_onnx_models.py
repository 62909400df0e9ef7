"""Build the small ONNX models the examples, tests and benchmarks use (needs the ``onnx`` package).

    python examples/build_onnx_models.py            # writes examples/model_repository/add_sub_onnx/1/model.onnx
                                                    # and examples/ensemble/model_repository/classifier/1/model.onnx

Models are written with IR version 8 / opset 13 so every onnxruntime, including onnxruntime-gpu, loads them.
"""

from __future__ import annotations

import sys
from pathlib import Path

IR_VERSION = 8
OPSET = 13


def _save(graph, path: Path) -> Path:  # type: ignore[no-untyped-def]
    import onnx

    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)], producer_name="tritonlite")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def add_sub(path: Path, dims: int = 16, batch: bool = True, dtype: str = "FLOAT") -> Path:
    """OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1 (Triton's classic add_sub)."""
    from onnx import TensorProto, helper

    elem = getattr(TensorProto, dtype)
    shape = (["batch"] if batch else []) + [dims]
    graph = helper.make_graph(
        [helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"]), helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"])],
        "add_sub",
        [helper.make_tensor_value_info("INPUT0", elem, shape), helper.make_tensor_value_info("INPUT1", elem, shape)],
        [helper.make_tensor_value_info("OUTPUT0", elem, shape), helper.make_tensor_value_info("OUTPUT1", elem, shape)],
    )
    return _save(graph, path)


def identity(path: Path, dims: list[int | str], dtype: str = "FLOAT", name_in: str = "INPUT0", name_out: str = "OUTPUT0") -> Path:
    """OUTPUT0 = INPUT0, any shape (string dims are dynamic)."""
    from onnx import TensorProto, helper

    elem = getattr(TensorProto, dtype)
    graph = helper.make_graph(
        [helper.make_node("Identity", [name_in], [name_out])],
        "identity",
        [helper.make_tensor_value_info(name_in, elem, dims)],
        [helper.make_tensor_value_info(name_out, elem, dims)],
    )
    return _save(graph, path)


#: the ensemble example's vocabulary and the weights of its classifier (rows: words; columns: negative, positive)
SENTIMENT_VOCABULARY = ("good", "great", "bad", "awful")
SENTIMENT_WEIGHTS = ((0.0, 1.0), (0.0, 2.0), (1.0, 0.0), (2.0, 0.0))


def sentiment(path: Path) -> Path:
    """PROBS = softmax(FEATURES @ W): word counts over SENTIMENT_VOCABULARY to [negative, positive]."""
    from onnx import TensorProto, helper

    weights = helper.make_tensor("W", TensorProto.FLOAT, [len(SENTIMENT_WEIGHTS), 2], [v for row in SENTIMENT_WEIGHTS for v in row])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["FEATURES", "W"], ["LOGITS"]), helper.make_node("Softmax", ["LOGITS"], ["PROBS"], axis=-1)],
        "sentiment",
        [helper.make_tensor_value_info("FEATURES", TensorProto.FLOAT, ["batch", len(SENTIMENT_VOCABULARY)])],
        [helper.make_tensor_value_info("PROBS", TensorProto.FLOAT, ["batch", 2])],
        initializer=[weights],
    )
    return _save(graph, path)


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent / "model_repository"
    print(add_sub(root / "add_sub_onnx" / "1" / "model.onnx"))
    if len(argv) <= 1:
        here = Path(__file__).resolve().parent
        print(sentiment(here / "ensemble" / "model_repository" / "classifier" / "1" / "model.onnx"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
