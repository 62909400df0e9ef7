"""Response cache with the local implementation: hits, misses, statistics, metrics, rules and errors.

Real ONNX (add_sub) and Python models, one engine per test; whether a model ran is read from its
statistics (``execution_count``), which is what Triton users look at too.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import pytest

from model_repos import ADD_SUB_ONNX_CONFIG, IDENTITY_PY, RAISING_PY, add_onnx_model, identity_py_config, write_model
from tritonlite import InferenceEngine
from tritonlite.cache import CacheEntry, LocalCache
from tritonlite.errors import InvalidArgumentError

CACHE = {"local": {"size": 1 << 20}}
ENABLE = "response_cache { enable: true }"


def _stats(engine: InferenceEngine, model: str) -> dict:
    return engine.model_statistics(model)["model_stats"][0]


def _counts(engine: InferenceEngine, model: str) -> dict[str, int]:
    s = _stats(engine, model)
    out = {k: v["count"] for k, v in s["inference_stats"].items()}
    out["inference_count"], out["execution_count"] = s["inference_count"], s["execution_count"]
    return out


def _xy(seed: float = 0.0, batch: int = 1) -> dict[str, np.ndarray]:
    x = (np.arange(16 * batch, dtype=np.float32) + seed).reshape(batch, 16)
    return {"INPUT0": x, "INPUT1": np.ones((batch, 16), dtype=np.float32)}


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    add_onnx_model(root, "cached", config=ADD_SUB_ONNX_CONFIG.format(name="cached") + ENABLE)
    add_onnx_model(root, "plain")
    return root


def test_hit_returns_the_computed_response_and_counts_like_triton(repo: Path) -> None:
    with InferenceEngine(repo, cache_config=CACHE) as engine:
        first = engine.infer("cached", _xy())
        second = engine.infer("cached", _xy(), request_id="again")
        for name, want in (("OUTPUT0", _xy()["INPUT0"] + 1), ("OUTPUT1", _xy()["INPUT0"] - 1)):
            assert second.outputs[name].dtype == np.float32 and second.outputs[name].shape == (1, 16)
            np.testing.assert_array_equal(second.outputs[name], want)
            np.testing.assert_array_equal(first.outputs[name], want)
        assert (second.model_name, second.model_version, second.id) == ("cached", "1", "again")
        c = _counts(engine, "cached")
        assert c == {"success": 2, "fail": 0, "queue": 2, "compute_input": 1, "compute_infer": 1, "compute_output": 1,
                     "cache_hit": 1, "cache_miss": 1, "inference_count": 1, "execution_count": 1}
        s = _stats(engine, "cached")["inference_stats"]
        assert s["cache_hit"]["ns"] > 0 and s["cache_miss"]["ns"] > 0
        # the caller owns what a hit returns: changing it does not change the cache
        second.outputs["OUTPUT0"][:] = -5
        np.testing.assert_array_equal(engine.infer("cached", _xy()).outputs["OUTPUT0"], _xy()["INPUT0"] + 1)
        assert _counts(engine, "cached")["cache_hit"] == 2


def test_key_covers_input_bytes_shape_outputs_and_resolved_version(repo: Path) -> None:
    with InferenceEngine(repo, cache_config=CACHE) as engine:
        engine.infer("cached", _xy())
        engine.infer("cached", _xy(seed=1.0))  # other bytes
        engine.infer("cached", _xy(batch=2) | {"INPUT0": np.tile(_xy()["INPUT0"], (2, 1))})  # other shape
        only = engine.infer("cached", _xy(), outputs=["OUTPUT1"])  # other requested outputs
        assert list(only.outputs) == ["OUTPUT1"]
        assert _counts(engine, "cached")["cache_hit"] == 0
        engine.infer("cached", _xy(), model_version="1")  # "latest" and version 1 are the same version
        engine.infer("cached", _xy(), outputs=["OUTPUT1"])
        c = _counts(engine, "cached")
        assert (c["cache_hit"], c["cache_miss"], c["execution_count"]) == (2, 4, 4)


def test_models_without_response_cache_and_engines_without_a_cache_run_every_request(repo: Path) -> None:
    with InferenceEngine(repo, cache_config=CACHE) as engine:
        for _ in range(2):
            engine.infer("plain", _xy())
        assert _counts(engine, "plain")["execution_count"] == 2
        assert 'nv_cache_num_hits_per_model{model="plain"' not in engine.metrics()
    # Triton: response_cache enabled but no --cache-config -> the model loads and runs uncached
    with InferenceEngine(repo) as engine:
        assert engine.is_model_ready("cached")
        for _ in range(2):
            engine.infer("cached", _xy())
        c = _counts(engine, "cached")
        assert (c["execution_count"], c["cache_hit"], c["cache_miss"]) == (2, 0, 0)
        assert "nv_cache" not in engine.metrics()


def test_failed_requests_are_never_cached(tmp_path: Path) -> None:
    root = tmp_path / "models"
    write_model(root, "raising_py", identity_py_config("raising_py", extra=ENABLE), {"1/model.py": RAISING_PY})
    with InferenceEngine(root, cache_config=CACHE) as engine:
        bad = {"INPUT0": np.full(4, -1.0, dtype=np.float32)}
        for _ in range(2):
            with pytest.raises(Exception, match="negative input is not allowed"):
                engine.infer("raising_py", bad)
        c = _counts(engine, "raising_py")  # the second failure ran the model again: nothing was stored
        assert (c["fail"], c["success"], c["cache_hit"], c["cache_miss"]) == (2, 0, 0, 0)
        good = {"INPUT0": np.full(4, 3.0, dtype=np.float32)}
        assert engine.infer("raising_py", good).outputs["OUTPUT0"].tolist() == [6.0] * 4
        assert engine.infer("raising_py", good).outputs["OUTPUT0"].tolist() == [6.0] * 4
        assert _counts(engine, "raising_py")["cache_hit"] == 1


def test_bytes_inputs_python_model_async_and_dynamic_batching_with_preserve_ordering(tmp_path: Path) -> None:
    root = tmp_path / "models"
    write_model(root, "strings_py", identity_py_config("strings_py", dims="[ -1 ]", dtype="TYPE_STRING", extra=ENABLE),
                {"1/model.py": IDENTITY_PY})
    extra = "dynamic_batching { preserve_ordering: true }\n" + ENABLE
    write_model(root, "batched_py", identity_py_config("batched_py", max_batch=4, extra=extra), {"1/model.py": IDENTITY_PY})
    with InferenceEngine(root, cache_config=CACHE) as engine:
        words = np.array([b"alpha", b"", "\u00e9t\u00e9".encode()], dtype=np.object_)
        assert engine.infer("strings_py", {"INPUT0": words}).outputs["OUTPUT0"].tolist() == words.tolist()
        hit = engine.infer("strings_py", {"INPUT0": words.copy()}).outputs["OUTPUT0"]
        assert hit.dtype == np.object_ and hit.tolist() == [b"alpha", b"", "\u00e9t\u00e9".encode()]
        other = engine.infer("strings_py", {"INPUT0": np.array([b"alph", b"a", words[2]], dtype=np.object_)})
        assert other.outputs["OUTPUT0"].tolist() == [b"alph", b"a", words[2]]  # same bytes joined, other elements
        assert _counts(engine, "strings_py")["cache_hit"] == 1

        x = {"INPUT0": np.arange(4, dtype=np.float32).reshape(1, 4)}

        async def twice() -> list[list[float]]:
            return [(await engine.submit("batched_py", x)).outputs["OUTPUT0"].tolist() for _ in range(2)]

        assert asyncio.run(twice()) == [[[0.0, 1.0, 2.0, 3.0]]] * 2
        c = _counts(engine, "batched_py")
        assert (c["cache_hit"], c["execution_count"], c["success"]) == (1, 1, 2)


def test_ensemble_is_cached_at_the_top_level(tmp_path: Path) -> None:
    root = tmp_path / "models"
    add_onnx_model(root, "add_sub_onnx")
    write_model(root, "ens", f"""
        name: "ens"
        platform: "ensemble"
        max_batch_size: 8
        input [ {{ name: "A" data_type: TYPE_FP32 dims: [ 16 ] }}, {{ name: "B" data_type: TYPE_FP32 dims: [ 16 ] }} ]
        output [ {{ name: "SUM" data_type: TYPE_FP32 dims: [ 16 ] }} ]
        ensemble_scheduling {{ step [ {{ model_name: "add_sub_onnx" model_version: -1
            input_map {{ key: "INPUT0" value: "A" }} input_map {{ key: "INPUT1" value: "B" }}
            output_map {{ key: "OUTPUT0" value: "SUM" }} }} ] }}
        {ENABLE}
    """, {"1/.keep": ""})
    with InferenceEngine(root, cache_config=CACHE) as engine:
        a = {"A": np.full((1, 16), 2.0, dtype=np.float32), "B": np.full((1, 16), 3.0, dtype=np.float32)}
        assert engine.infer("ens", a).outputs["SUM"].tolist() == [[5.0] * 16]
        assert engine.infer("ens", a).outputs["SUM"].tolist() == [[5.0] * 16]
        c = _counts(engine, "ens")
        assert (c["success"], c["cache_hit"], c["cache_miss"]) == (2, 1, 1)
        assert _counts(engine, "add_sub_onnx")["execution_count"] == 1  # the hit never reached the step


def test_sequence_decoupled_and_their_ensembles_are_refused_with_tritons_message(tmp_path: Path) -> None:
    root = tmp_path / "models"
    write_model(root, "seq_py", identity_py_config("seq_py", extra="sequence_batching { }\n" + ENABLE), {"1/model.py": IDENTITY_PY})
    write_model(root, "dec_py", identity_py_config("dec_py", extra="model_transaction_policy { decoupled: true }\n" + ENABLE),
                {"1/model.py": IDENTITY_PY})
    write_model(root, "seq_plain", identity_py_config("seq_plain", extra="sequence_batching { }"), {"1/model.py": IDENTITY_PY})
    write_model(root, "ens_seq", f"""
        name: "ens_seq"
        platform: "ensemble"
        input [ {{ name: "X" data_type: TYPE_FP32 dims: [ 4 ] }} ]
        output [ {{ name: "Y" data_type: TYPE_FP32 dims: [ 4 ] }} ]
        ensemble_scheduling {{ step [ {{ model_name: "seq_plain" model_version: -1
            input_map {{ key: "INPUT0" value: "X" }} output_map {{ key: "OUTPUT0" value: "Y" }} }} ] }}
        {ENABLE}
    """, {"1/.keep": ""})
    add_onnx_model(root, "plain")
    with InferenceEngine(root, cache_config=CACHE) as engine:
        reasons = {e["name"]: e.get("reason", "") for e in engine.repository_index()}
        assert reasons["seq_py"].endswith(
            "Response Cache does not currently support model seq_py with sequence batching scheduler. "
            "Please disable the response cache.")
        assert reasons["dec_py"].endswith(
            "Response Cache does not currently support model dec_py with 'decoupled' transaction policy. "
            "Please disable the response cache.")
        assert reasons["ens_seq"] == (
            "Response Cache does not currently support ensemble ens_seq: its composing model 'seq_plain' uses the "
            "sequence batching scheduler. Please disable the response cache.")
        assert engine.infer("plain", _xy()).outputs["OUTPUT0"].shape == (1, 16)  # the others keep serving


def test_lru_by_bytes_evicts_least_recently_used_and_skips_entries_larger_than_the_cache() -> None:
    def entry(n: int) -> CacheEntry:
        return CacheEntry.from_outputs({"O": np.zeros(n, dtype=np.uint8)})

    one = entry(100).nbytes
    cache = LocalCache(size=2 * one)
    assert cache.insert(b"a", entry(100)) == "inserted" and cache.insert(b"b", entry(100)) == "inserted"
    assert cache.insert(b"a", entry(100)) == "exists"
    assert cache.lookup(b"a") is not None  # a is now the most recently used
    assert cache.insert(b"c", entry(100)) == "inserted"
    assert cache.lookup(b"b") is None and cache.lookup(b"a") is not None and cache.lookup(b"c") is not None
    assert cache.insert(b"huge", entry(3 * 100)) == "too_large" and len(cache) == 2
    g = cache.gauges()
    assert (g["nv_cache_num_entries"], g["nv_cache_num_evictions"], g["nv_cache_num_hits"], g["nv_cache_num_misses"],
            g["nv_cache_num_lookups"]) == (2, 1, 3, 1, 4)
    assert g["nv_cache_util"] == 1.0


def test_a_response_larger_than_the_cache_is_served_but_not_stored(repo: Path) -> None:
    with InferenceEngine(repo, cache_config={"local": {"size": "64"}}) as engine:
        for _ in range(2):
            np.testing.assert_array_equal(engine.infer("cached", _xy()).outputs["OUTPUT0"], _xy()["INPUT0"] + 1)
        c = _counts(engine, "cached")
        assert (c["cache_hit"], c["cache_miss"], c["execution_count"]) == (0, 2, 2)


def test_nv_cache_metrics_have_tritons_names_labels_and_summaries(repo: Path) -> None:
    with InferenceEngine(repo, cache_config=CACHE, metrics_config={"summary_latencies": True}) as engine:
        for _ in range(3):
            engine.infer("cached", _xy())
        engine.infer("plain", _xy())
        text = engine.metrics()

        def value(line: str) -> float:
            m = re.search(rf"^{re.escape(line)} (\S+)$", text, re.M)
            assert m, line
            return float(m.group(1))

        assert value('nv_cache_num_hits_per_model{model="cached",version="1"}') == 2
        assert value('nv_cache_num_misses_per_model{model="cached",version="1"}') == 1
        assert value('nv_cache_hit_duration_per_model{model="cached",version="1"}') >= 0
        assert value('nv_inference_request_success{model="cached",version="1"}') == 3
        assert value('nv_inference_count{model="cached",version="1"}') == 1
        assert value('nv_cache_hit_summary_per_model_count{model="cached",version="1"}') == 2
        assert value('nv_cache_miss_summary_per_model_count{model="cached",version="1"}') == 1
        assert value('nv_inference_queue_summary_us_count{model="cached",version="1"}') == 3
        assert value("nv_cache_num_entries") == 1 and value("nv_cache_num_lookups") == 3
        assert "# TYPE nv_cache_num_hits_per_model counter" in text and "# TYPE nv_cache_util gauge" in text
        # Triton disables the request summary for models that use the cache, not for the others
        assert 'nv_inference_request_summary_us_count{model="cached"' not in text
        assert value('nv_inference_request_summary_us_count{model="plain",version="1"}') == 1
        assert 'model="plain"' not in "\n".join(line for line in text.splitlines() if line.startswith("nv_cache"))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"local": {}}, "Failed to initialize LocalCache: config didn't contain a valid 'size' field."),
        ({"local": {"size": "lots"}}, "cache config 'local' setting 'size' must be a positive integer, got 'lots'"),
        ({"local": {"size": 0}}, "cache config 'local' setting 'size' must be a positive integer, got '0'"),
        ({"local": {"size": 10, "sise": 1}}, "cache config 'local' has unknown setting 'sise'; known settings: size"),
        ({"memcached": {"size": 10}}, "unknown cache implementation 'memcached' in the cache config: tritonlite has 'local' and 'redis'"),
        ({"local": {"size": 10}, "redis": {"host": "h", "port": 1}},
         "found multiple cache configurations, but only a single cache is currently supported"),
        ({"redis": {"host": "127.0.0.1"}}, "Failed to initialize RedisCache, didn't specify address."),
        ({"redis": {"host": "127.0.0.1", "port": "http"}}, "cache config 'redis' setting 'port' must be a positive integer, got 'http'"),
        ({"redis": {"host": "h", "port": 1, "tls_enabled": "true"}}, "cache config 'redis' setting 'tls_enabled': TLS to Redis is not supported"),
    ],
)
def test_bad_cache_config_is_an_invalid_argument_naming_the_field(repo: Path, config: dict, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        InferenceEngine(repo, cache_config=config)
    assert str(info.value).startswith(message)


def test_c_and_java_engine_options_carry_the_cache_config(repo: Path) -> None:
    from tritonlite.capi._impl import parse_engine_options

    opts = parse_engine_options('{"cache_config": {"local": {"size": 4096}}}')
    assert opts == {"cache_config": {"local": {"size": 4096}}}
    with InferenceEngine(repo, **opts) as engine:
        engine.infer("cached", _xy())
        engine.infer("cached", _xy())
        assert _counts(engine, "cached")["cache_hit"] == 1
    with pytest.raises(InvalidArgumentError, match="engine option 'cache_config' must be dict"):
        parse_engine_options('{"cache_config": "local,size=10"}')
