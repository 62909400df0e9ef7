"""The Java binding end to end: build tritonlite.jar with javac, compile the JUnit 5 tests and the example,
and run them in the JPype JVM through the launcher (``python -m tritonlite.jvm.launcher``).

A JVM cannot restart inside a process, and Java's ``System.exit`` ends the process that hosts it, so every
JVM here lives in its own launcher subprocess; the JUnit run happens once per session (a fixture) and the
tests below assert on its XML report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from model_repos import EXAMPLES, ROOT

JAVAC = shutil.which("javac")
JAVA = shutil.which("java")
JUNIT_DIRS = [Path(os.environ["JUNIT_HOME"])] if os.environ.get("JUNIT_HOME") else [Path("/usr/share/java")]
JUNIT_JAR = next((d / "junit-platform-console-standalone.jar" for d in JUNIT_DIRS if (d / "junit-platform-console-standalone.jar").exists()), None)

pytestmark = pytest.mark.skipif(JAVAC is None or JAVA is None, reason="no JDK (javac/java) installed: the Java binding tests compile Java")
jpype = pytest.importorskip("jpype", reason="jpype1 is not installed (pip install 'tritonlite[java]')")

from tritonlite.jvm import build_jar, javac  # noqa: E402

LAUNCHER = [sys.executable, "-m", "tritonlite.jvm.launcher"]
PROBE_JAVA = """
package probe;

import org.tritonlite.InferenceEngine;
import org.tritonlite.TritonLite;
import org.tritonlite.TritonLiteException;

public final class Probe {
    public static void main(String[] args) {
        String what = args.length > 0 ? args[0] : "";
        System.out.println("available " + TritonLite.isAvailable() + " args " + String.join(",", args));
        if (what.equals("throw")) {
            throw new IllegalStateException("probe failed on purpose");
        }
        if (what.equals("exit")) {
            System.out.flush();
            System.exit(3);
        }
        if (what.equals("open")) {
            try {
                InferenceEngine.open("anything");
            } catch (TritonLiteException e) {
                System.out.println(e.code() + " " + e.getMessage());
            }
        }
    }
}
"""


def launch(jar_dir: Path, classpath: list[Path], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    cp = os.pathsep.join(str(p) for p in classpath)
    return subprocess.run([*LAUNCHER, "--jar-dir", str(jar_dir), "--classpath", cp, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="session")
def jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_jar(tmp_path_factory.mktemp("jar"))


@pytest.fixture(scope="session")
def junit_report(jar: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], ET.Element]:
    """Compile java/src/test with -Werror and run every JUnit 5 test once, through the launcher."""
    if JUNIT_JAR is None:
        pytest.skip("JUnit 5 is not installed (Debian: apt-get install junit5; or set JUNIT_HOME)")
    work = tmp_path_factory.mktemp("junit")
    classes = work / "classes"
    classes.mkdir()
    sources = sorted((ROOT / "java" / "src" / "test" / "java").rglob("*.java"))
    javac(["--release", "17", "-Xlint:all", "-Werror"], sources, classes, [jar, JUNIT_JAR])
    reports = work / "reports"
    proc = launch(
        jar.parent,
        [classes, JUNIT_JAR],
        f"-J-Dtritonlite.examples={EXAMPLES / 'model_repository'}",
        "org.junit.platform.console.ConsoleLauncher",
        "--disable-banner",
        "--disable-ansi-colors",
        "--details=tree",
        "--select-package",
        "org.tritonlite",
        "--reports-dir",
        str(reports),
    )
    report = reports / "TEST-junit-jupiter.xml"
    assert report.exists(), proc.stdout + proc.stderr
    return proc, ET.parse(report).getroot()


def test_jar_is_built_with_javac_and_reused(jar: Path) -> None:
    import zipfile

    names = zipfile.ZipFile(jar).namelist()
    for cls in ("InferenceEngine", "Tensor", "InferResult", "TritonLiteException", "DataType", "EngineBackend", "EngineProvider"):
        assert f"org/tritonlite/{cls}.class" in names
    before = jar.stat().st_mtime_ns
    assert build_jar(jar.parent) == jar and jar.stat().st_mtime_ns == before  # sources unchanged: reused
    proc = subprocess.run([*LAUNCHER, "--build-jar", "--jar-dir", str(jar.parent)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.strip() == str(jar)


def test_main_sources_compile_without_warnings(jar: Path) -> None:
    from tritonlite.jvm import WARNINGS_LOG

    log = jar.parent / WARNINGS_LOG
    assert not log.exists(), log.read_text()


def test_junit_suite_passes_in_the_jpype_jvm(junit_report: tuple[subprocess.CompletedProcess[str], ET.Element]) -> None:
    proc, suite = junit_report
    tests, failures, errors, skipped = (int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped"))
    assert (failures, errors, skipped) == (0, 0, 0), proc.stdout[-6000:] + proc.stderr[-3000:]  # none skipped: the engine was there
    assert tests == 28, proc.stdout[-3000:]
    assert proc.returncode == 0
    by_class: dict[str, int] = {}
    for case in suite.iter("testcase"):
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        by_class[cls] = by_class.get(cls, 0) + 1
    assert by_class == {"TensorTest": 7, "InferenceEngineFacadeTest": 5, "InferenceEngineTest": 10, "StreamingAndBytesTest": 6}


def test_java_example_runs_through_the_launcher(jar: Path, tmp_path: Path) -> None:
    javac([], [EXAMPLES / "java" / "com" / "example" / "Simple.java"], tmp_path, [jar])
    proc = launch(jar.parent, [tmp_path], "com.example.Simple", str(EXAMPLES / "model_repository"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "add_sub ready: true",
        "add_sub OUTPUT0 [1.0, 3.0, 5.0, 7.0]",
        "add_sub OUTPUT1 [1.0, 1.0, 1.0, 1.0]",
        "async add_sub OUTPUT1 [-1.0, -1.0, -1.0, -1.0]",
        "add_sub_onnx OUTPUT0 shape [1, 16] first [1.0, 2.0, 3.0, 4.0]",
        "rejected: INVALID_ARG: [request id: <id_unknown>] inference input 'INPUT0' data-type is 'INT32', but model 'add_sub' expects 'FP32'",
        "unknown model: NOT_FOUND: Request for unknown model: 'no_such_model' is not found",
        proc.stdout.splitlines()[7],
        "done",
    ]
    assert proc.stdout.splitlines()[7].startswith('add_sub statistics: {"model_stats": [{"name": "add_sub"')


@pytest.fixture(scope="module")
def probe(jar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("probe")
    src = out / "Probe.java"
    src.write_text(PROBE_JAVA)
    javac([], [src], out, [jar])
    return out


def test_launcher_exit_status_follows_the_java_program(jar: Path, probe: Path) -> None:
    exited = launch(jar.parent, [probe], "probe.Probe", "exit", "b c")
    assert exited.returncode == 3, exited.stderr  # System.exit ends the launcher with its status
    assert exited.stdout.strip() == "available true args exit,b c"
    thrown = launch(jar.parent, [probe], "probe.Probe", "throw")
    assert thrown.returncode == 1
    assert "java.lang.IllegalStateException: probe failed on purpose" in thrown.stderr
    missing = launch(jar.parent, [probe], "probe.NoSuchMain")
    assert missing.returncode == 2 and "cannot load main class probe.NoSuchMain" in missing.stderr


def test_plain_java_without_the_launcher_gets_a_clear_error(jar: Path, probe: Path) -> None:
    proc = subprocess.run([JAVA, "-cp", os.pathsep.join([str(jar), str(probe)]), "probe.Probe", "open"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "available false args open"
    assert proc.stdout.splitlines()[1].startswith("UNAVAILABLE no tritonlite engine in this JVM: run the application with 'python -m tritonlite.jvm.launcher")


def test_importing_the_package_needs_no_jvm() -> None:
    code = "import sys, tritonlite.jvm, tritonlite.capi; assert 'jpype' not in sys.modules and 'cffi' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
