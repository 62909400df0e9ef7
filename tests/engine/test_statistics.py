"""Statistics follow Triton's statistics extension: counts, cumulative ns, batch_stats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tritonlite import InferenceEngine, InternalError, InvalidArgumentError


def test_counts_and_durations_after_known_traffic(repo: Path) -> None:
    with InferenceEngine(repo) as engine:
        for n in (1, 3, 3):
            x = np.ones((n, 16), np.float32)
            engine.infer("add_sub_onnx", {"INPUT0": x, "INPUT1": x})
        with pytest.raises(InvalidArgumentError):
            engine.infer("add_sub_onnx", {"INPUT0": np.ones((1, 16), np.float32)})
        stats = engine.model_statistics("add_sub_onnx")
        assert list(stats) == ["model_stats"] and len(stats["model_stats"]) == 1
        s = stats["model_stats"][0]
        assert s["name"] == "add_sub_onnx" and s["version"] == "1"
        assert s["inference_count"] == 7 and s["execution_count"] == 3
        inf = s["inference_stats"]
        assert set(inf) == {"success", "fail", "queue", "compute_input", "compute_infer", "compute_output", "cache_hit", "cache_miss"}
        assert inf["success"]["count"] == 3 and inf["fail"]["count"] == 1
        for key in ("queue", "compute_input", "compute_infer", "compute_output"):
            assert inf[key]["count"] == 3
            assert inf[key]["ns"] >= 0
        assert inf["compute_infer"]["ns"] > 0 and inf["success"]["ns"] >= inf["compute_infer"]["ns"]
        assert inf["cache_hit"] == {"count": 0, "ns": 0}
        assert [(b["batch_size"], b["compute_infer"]["count"]) for b in s["batch_stats"]] == [(1, 1), (3, 2)]
        assert s["last_inference"] > 1_600_000_000_000  # ms since epoch


def test_a_raising_model_fails_only_its_requests(repo: Path) -> None:
    with InferenceEngine(repo) as engine:
        with pytest.raises(InternalError) as info:
            engine.infer("raising_py", {"INPUT0": np.full(4, -1, np.float32)})
        assert str(info.value) == (
            "Failed to process the request(s) for model 'raising_py_0', message: ValueError: negative input is not allowed"
        )
        assert info.value.code == 1
        np.testing.assert_array_equal(engine.infer("raising_py", {"INPUT0": np.ones(4, np.float32)}).as_numpy("OUTPUT0"), 2 * np.ones(4))
        s = engine.model_statistics("raising_py")["model_stats"][0]
        assert s["inference_stats"]["fail"]["count"] == 1 and s["inference_stats"]["success"]["count"] == 1
        assert s["execution_count"] == 1  # Triton counts successful executions only
