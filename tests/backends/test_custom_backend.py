"""Third-party backends: examples/custom_backend found through the ``tritonlite.backends`` entry-point group.

Installing the example with pip in a test is slow, so the test lays out what pip would: a
``*.dist-info`` folder whose ``entry_points.txt`` names the example's module, on ``sys.path``.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from tritonlite import InferenceEngine, UnavailableError
from tritonlite.backends.registry import ENTRY_POINT_GROUP, BackendRegistry

from model_repos import EXAMPLES, write_model

EXAMPLE = EXAMPLES / "custom_backend"


def _entry_points_from_pyproject() -> dict[str, str]:
    """The example's declared entry points (tomllib on 3.11+, the table read by hand on 3.10)."""
    text = (EXAMPLE / "pyproject.toml").read_text()
    try:
        import tomllib
    except ImportError:  # Python 3.10
        table = text.split(f'[project.entry-points."{ENTRY_POINT_GROUP}"]', 1)[1].split("\n[", 1)[0]
        pairs = (ln.split("=", 1) for ln in table.splitlines() if "=" in ln and not ln.lstrip().startswith("#"))
        return {k.strip(): v.strip().strip('"') for k, v in pairs}
    return dict(tomllib.loads(text)["project"]["entry-points"][ENTRY_POINT_GROUP])


@pytest.fixture
def installed_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What `pip install examples/custom_backend` leaves behind, minus the copy of the module."""
    site = tmp_path / "site"
    dist = site / "tritonlite_example_backend-0.1.0.dist-info"
    dist.mkdir(parents=True)
    dist.joinpath("METADATA").write_text("Metadata-Version: 2.1\nName: tritonlite-example-backend\nVersion: 0.1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in _entry_points_from_pyproject().items())
    dist.joinpath("entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
    monkeypatch.syspath_prepend(str(EXAMPLE))  # the module itself
    monkeypatch.syspath_prepend(str(site))  # its distribution metadata
    yield site
    sys.modules.pop("tritonlite_example_backend", None)


def test_engine_finds_the_installed_backend_by_name(installed_example: Path) -> None:
    eps = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == "example_affine"]
    assert [ep.value for ep in eps] == ["tritonlite_example_backend:AffineBackend"]
    assert eps[0].dist is not None and eps[0].dist.name == "tritonlite-example-backend"
    with InferenceEngine(EXAMPLE / "model_repository") as engine:
        assert engine.is_model_ready("affine")
        x = np.array([[1, 2, 3], [0, -1, 4]], np.float32)
        np.testing.assert_allclose(engine.infer("affine", {"X": x}).as_numpy("Y"), x * 3 + 0.5)
        assert engine.model_config("affine")["backend"] == "example_affine"
        backend = engine.registry.get("example_affine")
        assert type(backend).__module__ == "tritonlite_example_backend"


def test_auto_complete_of_a_third_party_backend(installed_example: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_model(repo, "bare", 'backend: "example_affine"\nmax_batch_size: 2\n', {"1/affine.json": '{"scale": -1}'})
    with InferenceEngine(repo) as engine:
        assert [i["name"] for i in engine.model_config("bare")["input"]] == ["X"]
        np.testing.assert_array_equal(engine.infer("bare", {"X": np.ones((2, 2), np.float32)}).as_numpy("Y"), -np.ones((2, 2)))


def test_unknown_backend_names_the_entry_point_group(tmp_path: Path) -> None:
    write_model(tmp_path, "m", 'backend: "no_such_backend"\ninput [{name: "X" data_type: TYPE_FP32 dims: [1]}]\n'
                'output [{name: "Y" data_type: TYPE_FP32 dims: [1]}]\n', {"1/x": ""})
    with InferenceEngine(tmp_path) as engine:
        reason = engine.repository_index()[0]["reason"]
    assert "unable to find backend 'no_such_backend'" in reason and "'tritonlite.backends' entry point" in reason
    with pytest.raises(UnavailableError):
        BackendRegistry().get("no_such_backend")


def test_builtin_framework_backends_are_registered_and_import_lazily() -> None:
    registry = BackendRegistry()
    for name in ("pytorch", "openvino", "fil", "tensorrt"):
        assert registry.get(name).name == name
    code = ("import sys\nfrom tritonlite.backends.registry import BackendRegistry\nr = BackendRegistry()\n"
            "[r.get(n) for n in ('pytorch', 'openvino', 'fil', 'tensorrt')]\n"
            "print([m for m in ('torch', 'openvino', 'treelite', 'tensorrt', 'cuda') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "[]"  # frameworks are imported when a model loads, not with the backend
    assert BackendRegistry.backend_name(type("C", (), {"backend": "", "platform": "libtorch", "name": "m"})()) == "pytorch"
    assert BackendRegistry.backend_name(type("C", (), {"backend": "", "platform": "tensorrt_plan", "name": "m"})()) == "tensorrt"
