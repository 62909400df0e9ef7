"""FIL backend on treelite 4: xgboost / lightgbm / scikit-learn models trained here, compared with the native predict."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

treelite = pytest.importorskip("treelite")

from tritonlite import InferenceEngine, InvalidArgumentError  # noqa: E402
from tritonlite.backends.fil import FILBackend  # noqa: E402

from framework_harness import execute_batch, make_context  # noqa: E402
from model_repos import write_model  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
N_FEATURES = 6


def fil_config(model_type: str, *, out_dims: int = 1, params: dict[str, str] | None = None, max_batch: int = 64,
               in_dims: str | None = None, dtype: str = "TYPE_FP32") -> str:
    entries = {"model_type": model_type, **(params or {})}
    text = "".join(f'parameters {{ key: "{k}" value {{ string_value: "{v}" }} }}\n' for k, v in entries.items())
    return f"""
        backend: "fil"
        max_batch_size: {max_batch}
        input [ {{ name: "input__0" data_type: {dtype} dims: [ {in_dims or N_FEATURES} ] }} ]
        output [ {{ name: "output__0" data_type: {dtype} dims: [ {out_dims} ] }} ]
        instance_group [ {{ kind: KIND_CPU }} ]
        {text}
    """


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.random((300, N_FEATURES), dtype=np.float32)
    return {
        "x": x,
        "binary": (x[:, 0] + x[:, 1] + 0.1 * rng.standard_normal(300) > 1).astype(np.int32),
        "multi": np.minimum((x[:, 0] * 3).astype(np.int32), 2),
        "reg": (x @ np.arange(1, N_FEATURES + 1, dtype=np.float32)).astype(np.float32),
        "test": rng.random((40, N_FEATURES), dtype=np.float32),
    }


@pytest.fixture(scope="module")
def xgb_models(data: dict[str, np.ndarray]) -> dict[str, Any]:
    xgb = pytest.importorskip("xgboost")
    dtrain = lambda y: xgb.DMatrix(data["x"], label=y)  # noqa: E731
    return {
        "binary": xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1}, dtrain(data["binary"]), 8),
        "multi": xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "nthread": 1}, dtrain(data["multi"]), 5),
        "reg": xgb.train({"objective": "reg:squarederror", "max_depth": 4, "nthread": 1}, dtrain(data["reg"]), 8),
    }


def _xgb_predict(booster: Any, x: np.ndarray) -> np.ndarray:
    import xgboost as xgb

    return booster.predict(xgb.DMatrix(x))


@pytest.mark.filterwarnings("ignore:.*Saving model in the UBJSON format as default:UserWarning")
def test_xgboost_binary_in_every_file_format(tmp_path: Path, data: dict[str, np.ndarray], xgb_models: dict[str, Any]) -> None:
    booster = xgb_models["binary"]
    for model, (mtype, fname) in {"xjson": ("xgboost_json", "xgboost.json"), "xubj": ("xgboost_ubj", "xgboost.ubj"),
                                  "xlegacy": ("xgboost", "xgboost.model")}.items():
        (tmp_path / model / "1").mkdir(parents=True)
        booster.save_model(str(tmp_path / model / "1" / fname))  # xgboost >= 2.1 writes UBJSON to xgboost.model
        write_model(tmp_path, model, fil_config(mtype, out_dims=2, params={"output_class": "true", "predict_proba": "true"}))
    write_model(tmp_path, "xclass", fil_config("xgboost_json", params={"output_class": "true"}),
                {"1/xgboost.json": (tmp_path / "xjson" / "1" / "xgboost.json").read_bytes()})
    write_model(tmp_path, "xthresh", fil_config("xgboost_json", params={"output_class": "true", "threshold": "0.9"}),
                {"1/xgboost.json": (tmp_path / "xjson" / "1" / "xgboost.json").read_bytes()})
    x = data["test"]
    p = _xgb_predict(booster, x)
    with InferenceEngine(tmp_path) as engine:
        for model in ("xjson", "xubj", "xlegacy"):
            out = engine.infer(model, {"input__0": x}).as_numpy("output__0")
            assert out.shape == (40, 2) and out.dtype == np.float32
            np.testing.assert_allclose(out, np.stack([1 - p, p], axis=1), **TOL)
        classes = engine.infer("xclass", {"input__0": x}).as_numpy("output__0")
        assert classes.shape == (40, 1)
        np.testing.assert_array_equal(classes[:, 0], (p > 0.5).astype(np.float32))
        np.testing.assert_array_equal(engine.infer("xthresh", {"input__0": x}).as_numpy("output__0")[:, 0], (p > 0.9).astype(np.float32))
        assert (p > 0.9).sum() != (p > 0.5).sum()


def test_xgboost_multiclass_and_regression_batched(tmp_path: Path, data: dict[str, np.ndarray], xgb_models: dict[str, Any]) -> None:
    (tmp_path / "multi" / "1").mkdir(parents=True)
    xgb_models["multi"].save_model(str(tmp_path / "multi" / "1" / "xgboost.ubj"))
    (tmp_path / "reg" / "1").mkdir(parents=True)
    xgb_models["reg"].save_model(str(tmp_path / "reg" / "1" / "xgboost.json"))
    x = data["test"]
    proba_cfg = fil_config("xgboost_ubj", out_dims=3, params={"output_class": "true", "predict_proba": "true"})
    ctx = make_context(tmp_path / "multi", proba_cfg)
    inst = FILBackend().create_instance(ctx)
    outs = execute_batch(inst, ctx.config, [{"input__0": x[:7]}, {"input__0": x[7:8]}, {"input__0": x[8:]}])
    assert [o["output__0"].shape for o in outs] == [(7, 3), (1, 3), (32, 3)]
    np.testing.assert_allclose(np.concatenate([o["output__0"] for o in outs]), _xgb_predict(xgb_models["multi"], x), **TOL)
    ctx = make_context(tmp_path / "multi", fil_config("xgboost_ubj", params={"output_class": "true"}))
    classes = execute_batch(FILBackend().create_instance(ctx), ctx.config, [{"input__0": x}])[0]["output__0"]
    np.testing.assert_array_equal(classes[:, 0], _xgb_predict(xgb_models["multi"], x).argmax(axis=1))
    ctx = make_context(tmp_path / "reg", fil_config("xgboost_json"))
    out = execute_batch(FILBackend().create_instance(ctx), ctx.config, [{"input__0": x[:5]}, {"input__0": x[5:]}])
    assert out[0]["output__0"].shape == (5, 1)
    np.testing.assert_allclose(np.concatenate([o["output__0"][:, 0] for o in out]), _xgb_predict(xgb_models["reg"], x), **TOL)


def test_lightgbm(tmp_path: Path, data: dict[str, np.ndarray]) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, test = data["x"], data["test"]
    common = {"verbose": -1, "num_leaves": 8, "num_threads": 1, "min_data_in_leaf": 5}
    binary = lgb.train({"objective": "binary", **common}, lgb.Dataset(x, label=data["binary"]), 10)
    multi = lgb.train({"objective": "multiclass", "num_class": 3, **common}, lgb.Dataset(x, label=data["multi"]), 6)
    reg = lgb.train({"objective": "regression", **common}, lgb.Dataset(x, label=data["reg"]), 10)
    for name, booster in (("lbin", binary), ("lmulti", multi), ("lreg", reg)):
        (tmp_path / name / "1").mkdir(parents=True)
        booster.save_model(str(tmp_path / name / "1" / "model.txt"))
    write_model(tmp_path, "lbin", fil_config("lightgbm", out_dims=2, params={"output_class": "true", "predict_proba": "true"}))
    write_model(tmp_path, "lmulti", fil_config("lightgbm", out_dims=3, params={"output_class": "true", "predict_proba": "true"}))
    write_model(tmp_path, "lreg", fil_config("lightgbm"))
    with InferenceEngine(tmp_path) as engine:
        p = binary.predict(test)
        np.testing.assert_allclose(engine.infer("lbin", {"input__0": test}).as_numpy("output__0"), np.stack([1 - p, p], axis=1), **TOL)
        np.testing.assert_allclose(engine.infer("lmulti", {"input__0": test}).as_numpy("output__0"), multi.predict(test), **TOL)
        np.testing.assert_allclose(engine.infer("lreg", {"input__0": test}).as_numpy("output__0")[:, 0], reg.predict(test), **TOL)


def test_scikit_learn_forests_through_treelite_checkpoints(tmp_path: Path, data: dict[str, np.ndarray]) -> None:
    ensemble = pytest.importorskip("sklearn.ensemble")
    import treelite.sklearn

    x, test = data["x"], data["test"]
    clf = ensemble.RandomForestClassifier(n_estimators=12, max_depth=5, random_state=0, n_jobs=1).fit(x, data["multi"])
    reg = ensemble.RandomForestRegressor(n_estimators=12, max_depth=5, random_state=0, n_jobs=1).fit(x, data["reg"])
    for name, est in (("rf_clf", clf), ("rf_reg", reg)):
        (tmp_path / name / "1").mkdir(parents=True)
        treelite.sklearn.import_model(est).serialize(str(tmp_path / name / "1" / "checkpoint.tl"))
    write_model(tmp_path, "rf_clf", fil_config("treelite_checkpoint", out_dims=3, params={"output_class": "true", "predict_proba": "true"}))
    write_model(tmp_path, "rf_reg", fil_config("treelite_checkpoint"))
    with InferenceEngine(tmp_path) as engine:
        proba = engine.infer("rf_clf", {"input__0": test}).as_numpy("output__0")
        np.testing.assert_allclose(proba, clf.predict_proba(test), **TOL)
        np.testing.assert_allclose(engine.infer("rf_reg", {"input__0": test}).as_numpy("output__0")[:, 0], reg.predict(test), **TOL)


def test_auto_complete_dtypes_and_leaf_output(tmp_path: Path, data: dict[str, np.ndarray], xgb_models: dict[str, Any]) -> None:
    model_json = tmp_path / "m.json"
    xgb_models["binary"].save_model(str(model_json))
    proba = 'parameters { key: "model_type" value { string_value: "xgboost_json" } }\n' \
            'parameters { key: "predict_proba" value { string_value: "true" } }\n' \
            'parameters { key: "output_class" value { string_value: "true" } }\n'
    write_model(tmp_path, "auto", 'backend: "fil"\n' + proba, {"1/xgboost.json": model_json.read_bytes()})
    write_model(tmp_path, "leaves", 'backend: "fil"\nparameters { key: "model_type" value { string_value: "xgboost_json" } }\n'
                'parameters { key: "predict_leaf" value { string_value: "true" } }\n', {"1/xgboost.json": model_json.read_bytes()})
    write_model(tmp_path, "fp64", fil_config("xgboost_json", out_dims=2, dtype="TYPE_FP64",
                                             params={"output_class": "true", "predict_proba": "true"}),
                {"1/xgboost.json": model_json.read_bytes()})
    x = data["test"][:3]
    with InferenceEngine(tmp_path) as engine:
        cfg = engine.model_config("auto")
        assert cfg["max_batch_size"] == 4 and "dynamic_batching" in cfg
        assert [(t["name"], t["data_type"], t["dims"]) for t in cfg["input"]] == [("input__0", "TYPE_FP32", [N_FEATURES])]
        assert [(t["name"], t["data_type"], t["dims"]) for t in cfg["output"]] == [("output__0", "TYPE_FP32", [2])]
        assert engine.infer("auto", {"input__0": x}).as_numpy("output__0").shape == (3, 2)
        leaves = engine.infer("leaves", {"input__0": x}).as_numpy("output__0")
        assert engine.model_config("leaves")["output"][0]["dims"] == [8] and leaves.shape == (3, 8)
        model = treelite.frontend.load_xgboost_model(str(model_json))
        np.testing.assert_array_equal(leaves, treelite.gtil.predict_leaf(model, x))
        out64 = engine.infer("fp64", {"input__0": x.astype(np.float64)}).as_numpy("output__0")
        p = _xgb_predict(xgb_models["binary"], x)
        assert out64.dtype == np.float64
        np.testing.assert_allclose(out64, np.stack([1 - p, p], axis=1), **TOL)


def test_bad_input_bad_files_and_gpu_parameters(tmp_path: Path, data: dict[str, np.ndarray], xgb_models: dict[str, Any],
                                                caplog: pytest.LogCaptureFixture) -> None:
    model_json = tmp_path / "m.json"
    xgb_models["reg"].save_model(str(model_json))
    gpu_params = {"storage_type": "SPARSE", "algo": "NAIVE", "threads_per_tree": "4", "blocks_per_sm": "2"}
    write_model(tmp_path, "reg", fil_config("xgboost_json", in_dims="-1", params=gpu_params), {"1/xgboost.json": model_json.read_bytes()})
    write_model(tmp_path, "unknown_type", fil_config("catboost"), {"1/model.cbm": b""})
    write_model(tmp_path, "corrupt", fil_config("lightgbm"), {"1/model.txt": "not a lightgbm model"})
    write_model(tmp_path, "wrong_width", fil_config("xgboost_json", in_dims="9"), {"1/xgboost.json": model_json.read_bytes()})
    with caplog.at_level(logging.INFO, logger="tritonlite.backends.fil"), InferenceEngine(tmp_path) as engine:
        index = {e["name"]: e for e in engine.repository_index()}
        assert index["reg"]["state"] == "READY"
        assert "catboost" in index["unknown_type"]["reason"] and index["unknown_type"]["state"] == "UNAVAILABLE"
        assert "failed to load FIL model" in index["corrupt"]["reason"] and "as lightgbm" in index["corrupt"]["reason"]
        assert "has 9 features in config.pbtxt but the model was trained on 6" in index["wrong_width"]["reason"]
        with pytest.raises(InvalidArgumentError, match="FIL model expects 6 features per row, got 4"):
            engine.infer("reg", {"input__0": np.ones((2, 4), np.float32)})
        x = data["test"][:2]
        np.testing.assert_allclose(engine.infer("reg", {"input__0": x}).as_numpy("output__0")[:, 0], _xgb_predict(xgb_models["reg"], x), **TOL)
    assert "storage_type, algo, threads_per_tree, blocks_per_sm accepted and ignored" in caplog.text
    # a KIND_GPU instance predicts on the CPU (treelite GTIL) and says so
    ctx = make_context(tmp_path / "reg", fil_config("xgboost_json"), kind="GPU")
    with caplog.at_level(logging.WARNING, logger="tritonlite.backends.fil"):
        inst = FILBackend().create_instance(ctx)
    assert "predicts with treelite GTIL on the CPU" in caplog.text
    assert execute_batch(inst, ctx.config, [{"input__0": data["test"][:1]}])[0]["output__0"].shape == (1, 1)
