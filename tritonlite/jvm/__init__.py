"""The Java binding: the ``org.tritonlite`` API (``java/``) implemented in Python through JPype.

    python -m tritonlite.jvm.launcher --classpath APP_CLASSPATH com.example.Main [args...]
    python -m tritonlite.jvm.launcher --build-jar [--jar-dir DIR]      # just build tritonlite.jar

From Python, :func:`start_jvm` starts the JVM with the binding on the classpath and registers the engine
provider, after which Java code calls ``InferenceEngine.open(repo)``. The JVM cannot be restarted in a
process, and Java's ``System.exit()`` ends the whole process (Python included).

This package is named ``jvm`` because a top-level ``java`` folder (the repository has one) shadows JPype's
``java`` import namespace; the bridge reaches Java classes with ``jpype.JClass("java.nio.ByteBuffer")``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

ROOT = Path(__file__).resolve().parents[2]
JAVA_DIR = ROOT / "java"
MAIN_SOURCES = JAVA_DIR / "src" / "main" / "java"
DEFAULT_JAR_DIR = ROOT / "build" / "java"
JAR_NAME = "tritonlite.jar"
JAVA_RELEASE = "11"
WARNINGS_LOG = "javac-warnings.txt"  # next to the jar, only when javac -Xlint:all had something to say


class JavaBuildError(RuntimeError):
    """The binding's jar could not be built (no javac, compile error, sources missing)."""


def java_sources(root: Path = MAIN_SOURCES) -> list[Path]:
    return sorted(root.rglob("*.java"))


def javac(extra: Sequence[str], sources: Iterable[Path], out_dir: Path, classpath: Sequence[str | os.PathLike[str]] = ()) -> str:
    """Compile ``sources`` into ``out_dir``; returns javac's warnings (raises :class:`JavaBuildError` on errors)."""
    exe = shutil.which("javac")
    if exe is None:
        raise JavaBuildError("javac is not installed (a JDK 11+ is needed to build the Java binding)")
    cmd = [exe, "-encoding", "UTF-8", "-d", str(out_dir), *extra]
    if classpath:
        cmd += ["-cp", os.pathsep.join(str(c) for c in classpath)]
    cmd += [str(s) for s in sources]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise JavaBuildError(f"javac failed:\n{proc.stdout}{proc.stderr}")
    return (proc.stdout + proc.stderr).strip()


def build_jar(jar_dir: str | os.PathLike[str] | None = None, *, force: bool = False) -> Path:
    """Compile ``java/src/main/java`` with javac into ``JAR_DIR/tritonlite.jar`` (reused while the sources are unchanged)."""
    sources = java_sources()
    if not sources:
        raise JavaBuildError(f"no Java sources under {MAIN_SOURCES}")
    out = Path(jar_dir or DEFAULT_JAR_DIR).resolve()
    jar = out / JAR_NAME
    stamp_file = out / f".{JAR_NAME}.stamp"
    h = hashlib.sha256(JAVA_RELEASE.encode())
    for src in sources:
        h.update(str(src.relative_to(MAIN_SOURCES)).encode())
        h.update(src.read_bytes())
    stamp = h.hexdigest()
    if not force and jar.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return jar
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tritonlite-java-") as tmp:
        classes = Path(tmp) / "classes"
        classes.mkdir()
        warnings = javac(["--release", JAVA_RELEASE, "-Xlint:all"], sources, classes)
        tmp_jar = Path(tmp) / JAR_NAME
        from tritonlite import __version__

        with zipfile.ZipFile(tmp_jar, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(
                "META-INF/MANIFEST.MF",
                f"Manifest-Version: 1.0\nImplementation-Title: tritonlite\nImplementation-Version: {__version__}\n"
                "Automatic-Module-Name: org.tritonlite\n\n",
            )
            for f in sorted(classes.rglob("*.class")):
                zf.write(f, f.relative_to(classes).as_posix())
        os.replace(tmp_jar, jar)
    log = out / WARNINGS_LOG
    if warnings:
        log.write_text(warnings + "\n")
    elif log.exists():
        log.unlink()
    stamp_file.write_text(stamp)
    return jar


def start_jvm(classpath: Sequence[str | os.PathLike[str]] = (), jvm_options: Sequence[str] = (), *, jar_dir: str | os.PathLike[str] | None = None) -> Path:
    """Start the JPype JVM with the binding's jar (built if needed) plus ``classpath``, and register the engine.

    If the JVM is already running (it cannot restart), only the registration happens, and the jar must
    already be on its classpath. Returns the jar's path.
    """
    import jpype

    from tritonlite.jvm import bridge

    jar = build_jar(jar_dir)
    if not jpype.isJVMStarted():
        cp = [str(jar), *(str(c) for c in classpath)]
        jpype.startJVM(*jvm_options, classpath=cp, convertStrings=False)
    bridge.register()
    return jar


__all__ = ["build_jar", "start_jvm", "javac", "java_sources", "JavaBuildError", "JAR_NAME", "JAVA_DIR"]
