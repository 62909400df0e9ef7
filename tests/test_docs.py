"""The documentation site cannot drift from the sources: the generated sections cover every C function, Java
member, ``tritonlite serve`` option and example, the configuration reference has a row for every config field,
and ``mkdocs build --strict`` passes (warnings are errors) where MkDocs is installed (the ``docs`` extra)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from model_repos import ROOT

DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS))
import gen_reference as gen  # noqa: E402

sys.path.remove(str(DOCS))


def test_every_c_function_of_the_header_is_documented_on_the_c_page() -> None:
    import tritonlite.capi.build as capi_build

    functions = [f.name for f in capi_build.parse_functions(capi_build.api_text())]  # what cffi builds
    assert len(functions) >= 40
    decls = {d.name: d for d in gen.c_declarations()}
    page = gen.c_api_markdown()
    for name in functions:
        assert decls[name].kind == "function", name
        assert decls[name].doc, f"{name} has no comment in include/tritonlite.h"
        assert f"### `{name}`" in page, name
    assert [d.name for d in decls.values() if d.kind == "function"] == functions  # nothing extra, same order
    for name in ("TRITONLITE_ResponseCallback", "TRITONLITE_DataType", "TRITONLITE_Error_Code", "TRITONLITE_RESPONSE_FLAG_FINAL"):
        assert f"### `{name}`" in page and decls[name].doc, name
    assert "<!-- generated: c-api -->" in (DOCS / "api" / "c.md").read_text()
    assert "[capi]" in (DOCS / "api" / "c.md").read_text()


def test_c_page_keeps_the_header_signatures_and_comments() -> None:
    page = gen.c_api_markdown()
    assert "TRITONLITE_Error* TRITONLITE_EngineInferAsync(TRITONLITE_Engine* engine, TRITONLITE_Request* request," in page
    decl = next(d for d in gen.c_declarations() if d.name == "TRITONLITE_EngineInferAsync")
    assert decl.section == "Inference"
    assert decl.doc.startswith("Queue the request and return. On success `callback` is called once per response")
    assert next(d for d in gen.c_declarations() if d.name == "TRITONLITE_ErrorDelete").doc == "NULL is a no-op"


def _public_java_members() -> dict[str, set[str]]:
    """Public member names per source file, found independently of the generator (a plain scan)."""
    out: dict[str, set[str]] = {}
    for path in sorted(gen.JAVA_SOURCES.glob("*.java")):
        text = path.read_text()
        kind = re.search(r"public\s+(?:final\s+|abstract\s+)*(class|interface|enum)\s+(\w+)", text)
        if kind is None:
            continue
        if kind.group(1) == "interface":
            names = set(re.findall(r"^\s{4}(?:default\s+)?[\w<>\[\], ]+\s+(\w+)\(", text, re.M))
        else:
            names = set(re.findall(r"^\s{4}public\s+(?:static\s+|final\s+)*[\w<>\[\], .]*?(\w+)\s*[(=;]", text, re.M))
        out[kind.group(2)] = {n for n in names if n not in ("class", "enum")}
    return out


def test_every_public_java_type_and_member_is_on_the_java_page() -> None:
    page = gen.java_api_markdown()
    members = _public_java_members()
    assert {"InferenceEngine", "Tensor", "InferRequest", "InferResult", "TritonLiteException", "DataType"} <= set(members)
    documented = {t.name: {gen.java_member_name(m.signature) for m in t.members} for t in gen.java_types()}
    for cls, names in members.items():
        assert f"## `{cls}`" in page, cls
        missing = names - documented[cls]
        assert not missing, f"{cls}: {sorted(missing)} not on the Java page"
    assert {"open", "infer", "inferAsync", "stream", "streamAll", "close"} <= documented["InferenceEngine"]
    assert "```java" in page  # the class Javadoc's example stays a code block


def test_every_serve_option_is_on_the_serve_page_and_in_the_triton_mapping() -> None:
    table = gen.serve_options_markdown()
    mapping = (DOCS / "coming-from-triton.md").read_text()
    options = gen.serve_options()
    assert len(options) >= 30
    for option in options:
        for flag in option["flags"]:
            assert f"`{flag}`" in table, flag
        assert any(f"`{flag}" in mapping for flag in option["flags"]), f"{option['flags']} missing from coming-from-triton.md"
    assert "| `--http-port` | `port` | `8000` |" in table
    assert "<!-- generated: serve-options -->" in (DOCS / "serve.md").read_text()


def _config_rows(markdown: str) -> set[str]:
    return set(re.findall(r"^\| `(\w+)` \|", markdown, re.M))


def test_configuration_reference_has_a_row_for_every_config_field() -> None:
    from tritonlite.config import ModelConfig

    rows = _config_rows((DOCS / "configuration.md").read_text())
    top = {f.name for f in ModelConfig.DESCRIPTOR.fields}
    assert top - rows == set(), "top-level ModelConfig fields without a row"
    for container in ("input", "output", "instance_group", "dynamic_batching", "sequence_batching", "optimization"):
        fields = {f.name for f in ModelConfig.DESCRIPTOR.fields_by_name[container].message_type.fields}
        assert fields - rows == set(), f"{container} fields without a row"
    statuses = set(re.findall(r"^\| `\w+` \| (\w+) \|", (DOCS / "configuration.md").read_text(), re.M))
    assert statuses <= {"supported", "backend", "ignored", "refused"}


def test_examples_index_lists_every_example_folder_with_a_summary() -> None:
    table = gen.examples_markdown()
    folders = gen.example_dirs()
    assert {"c_async", "java_streaming", "serving", "prometheus"} <= {f.name for f in folders}
    for folder in folders:
        row = next((line for line in table.splitlines() if line.startswith(f"| `examples/{folder.name}/` |")), None)
        assert row is not None, folder.name
        assert gen.example_summary(folder), f"examples/{folder.name}/ has no README.md, client docstring or leading comment"


def test_unknown_generated_section_is_an_error() -> None:
    with pytest.raises(KeyError, match="unknown generated section 'nope'"):
        gen.render("text\n<!-- generated: nope -->\n")
    assert gen.render("no markers") == "no markers"


_MKDOCS = all(importlib.util.find_spec(m) is not None for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers"))


@pytest.mark.skipif(not _MKDOCS, reason="mkdocs-material / mkdocstrings are not installed (pip install -e '.[docs]')")
def test_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    c_page = (tmp_path / "api" / "c" / "index.html").read_text()
    import tritonlite.capi.build as capi_build

    for f in capi_build.parse_functions(capi_build.api_text()):
        assert f'id="{f.name.lower()}"' in c_page, f.name
    python_page = (tmp_path / "api" / "python" / "index.html").read_text()
    import tritonlite

    for name in [*tritonlite.__all__, "HttpServer", "GrpcServer", "MetricsServer", "LoadContext"]:
        if name != "__version__":
            ids = (f'id="tritonlite.{name}"', f'id="tritonlite.errors.{name}"', f'id="tritonlite.http.{name}"',
                   f'id="tritonlite.grpc.{name}"', f'id="tritonlite.metrics.server.{name}"', f'id="tritonlite.backends.base.{name}"')
            assert any(i in python_page for i in ids), f"{name} is public but not on the Python API page"
    assert "examples/prometheus/" in (tmp_path / "examples" / "index.html").read_text()
    assert "engine_overhead.py" in (tmp_path / "benchmarks" / "index.html").read_text()
