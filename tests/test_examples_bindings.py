"""The C and Java examples build with the documented commands and print what their READMEs show:
``examples/c_async`` (gcc against include/tritonlite.h and libtritonlite.so) and ``examples/java_streaming``
(javac against the binding's jar, run through the JPype launcher)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model_repos import EXAMPLES, ROOT

GCC = shutil.which("gcc")
JAVAC = shutil.which("javac")
JAVA = shutil.which("java")


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.skipif(GCC is None, reason="gcc is not installed: the C example is compiled")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libtritonlite.so is built for Linux")
@pytest.mark.skipif(not _have("cffi"), reason="cffi is not installed (pip install 'tritonlite[capi]')")
def test_c_async_example_gets_every_response_and_one_final_flag_per_request(tmp_path: Path) -> None:
    import tritonlite.capi.build as capi_build

    capi_build.build(tmp_path)
    exe = tmp_path / "c_async"
    compiled = subprocess.run(
        [GCC, "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O1", "-Wall", "-Wextra", "-Werror", "-pthread",
         str(EXAMPLES / "c_async" / "c_async.c"), "-o", str(exe), *capi_build.cflags(), *capi_build.ldflags(tmp_path)],
        capture_output=True, text=True,
    )
    assert compiled.returncode == 0, compiled.stderr
    # an empty environment: the library finds its Python on its own, as the README says
    proc = subprocess.run([str(exe), str(EXAMPLES / "c_async" / "model_repository")], capture_output=True, text=True, timeout=120, env={}, cwd="/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "queued 6 requests",
        "#0 square: 1 response [1 4 9], FINAL with the last response",
        "#1 square: 1 response [16 25 36], FINAL with the last response",
        "#2 square: 1 response [49 64 81], FINAL with the last response",
        "#3 square: 1 response [0.25 1 100], FINAL with the last response",
        "#4 countdown: 3 responses [3 2 1], FINAL on its own",
        "#5 square (bad input): 0 responses error INVALID_ARG: unexpected inference input "
        "'NOT_X' for model 'square', FINAL with the error",
        "all 6 requests final",
    ]


def test_c_async_makefile_builds_with_the_documented_flags() -> None:
    text = (EXAMPLES / "c_async" / "Makefile").read_text()
    assert "-m tritonlite.capi.build --output $(OUT) --cflags --ldflags" in text
    assert "c_async.c" in text and "examples/c_async/model_repository" in text


@pytest.mark.skipif(JAVAC is None or JAVA is None, reason="no JDK (javac/java) installed: the Java example is compiled")
@pytest.mark.skipif(not _have("jpype"), reason="jpype1 is not installed (pip install 'tritonlite[java]')")
def test_java_streaming_example_reads_a_decoupled_stream_three_ways(tmp_path: Path) -> None:
    from tritonlite.jvm import build_jar, javac

    jar = build_jar()  # build/java/tritonlite.jar, as the launcher builds it (reused while the sources are unchanged)
    classes = tmp_path / "classes"
    classes.mkdir()
    javac(["-Xlint:all", "-Werror"], [EXAMPLES / "java_streaming" / "com" / "example" / "Streaming.java"], classes, [jar])
    proc = subprocess.run(
        [sys.executable, "-m", "tritonlite.jvm.launcher", "--jar-dir", str(jar.parent), "--classpath", str(classes),
         "com.example.Streaming", str(EXAMPLES / "java_streaming" / "model_repository")],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "stream: 0:tritonlite 1:streams 2:from 3:Java",
        "streamAll: 4 responses, last 3:response",
        "listener: 0:final, 1:flag (final)",
        "error: INVALID_ARG: nothing to stream: the sentence is empty",
        "streamAll error: INVALID_ARG",
        "done",
    ]
