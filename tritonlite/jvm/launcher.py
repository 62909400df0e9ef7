"""Run a Java application inside the JPype JVM with the tritonlite engine available.

    python -m tritonlite.jvm.launcher --classpath APP_CLASSPATH com.example.Main [args...]
    python -m tritonlite.jvm.launcher -cp app.jar -J-Xmx2g -J-Dkey=value com.example.Main
    python -m tritonlite.jvm.launcher --build-jar [--jar-dir DIR]     # build tritonlite.jar, print its path

The binding's jar (``org.tritonlite``, built from ``java/src/main/java`` with javac and cached) is put on
the classpath first, the Python engine is registered, then ``Main.main(args)`` runs on this thread. The
exit status is 0 when ``main`` returns, 1 when it throws (the Java stack trace goes to stderr), or the
status the application passes to ``System.exit`` (which ends the process at once).
"""

from __future__ import annotations

import argparse
import os
import sys

from tritonlite.jvm import JavaBuildError, build_jar, start_jvm


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tritonlite.jvm.launcher",
        description="Run a Java main class with the tritonlite engine available (org.tritonlite.InferenceEngine.open).",
    )
    ap.add_argument("--classpath", "-cp", "--class-path", default="", help=f"the application's classpath ({os.pathsep}-separated)")
    ap.add_argument("-J", dest="jvm_options", action="append", default=[], metavar="OPTION", help="a JVM option, e.g. -J-Xmx1g -J-Dk=v")
    ap.add_argument("--jar-dir", default=None, help="where tritonlite.jar is built and cached (default build/java)")
    ap.add_argument("--build-jar", action="store_true", help="only build tritonlite.jar and print its path")
    ap.add_argument("main_class", nargs="?", help="the fully qualified main class")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="arguments for main")
    ns = ap.parse_args(argv)
    try:
        if ns.build_jar:
            print(build_jar(ns.jar_dir))
            return 0
        if not ns.main_class:
            ap.error("a main class is required")
        classpath = [p for p in ns.classpath.split(os.pathsep) if p]
        start_jvm(classpath, ns.jvm_options, jar_dir=ns.jar_dir)
    except JavaBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run_main(ns.main_class, ns.args)


def run_main(main_class: str, args: list[str]) -> int:
    """Call ``main_class.main(args)`` in the running JVM; 1 if it throws."""
    import jpype

    try:
        cls = jpype.JClass(main_class)
    except (TypeError, ImportError, jpype.JException) as exc:
        print(f"error: cannot load main class {main_class}: {exc}", file=sys.stderr)
        return 2
    try:
        cls.main(jpype.JArray(jpype.JString)(list(args)))
    except jpype.JException as exc:
        print(f"Exception in thread \"main\" {exc.stacktrace()}", file=sys.stderr)
        return 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        jpype.JClass("java.lang.System").out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
