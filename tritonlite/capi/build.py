"""Build ``libtritonlite.so`` from ``include/tritonlite.h`` with cffi's embedding mode.

    python -m tritonlite.capi.build [--output DIR] [--force]      # build, then print how to compile against it
    python -m tritonlite.capi.build --cflags --ldflags [--output DIR]   # build if needed, print only the flags

The header is the single source of truth. Everything between ``TRITONLITE_API_BEGIN`` and
``TRITONLITE_API_END`` goes to ``ffi.cdef``. A few calls (errors, strings, data-type tables, the API
version) are implemented in C below and never start Python; for every other function the build
generates an exported C function that

1. starts the embedded interpreter once (``pthread_once``) with ``PyConfig.home`` set to the build
   interpreter's base prefix and ``PyConfig.executable`` set to the build interpreter itself (the venv's
   ``python``): the interpreter finds ``pyvenv.cfg`` exactly as ``.venv/bin/python`` does, so ``sys.prefix``
   is the venv and its site-packages (editable installs included) are on ``sys.path`` -- no
   PYTHONHOME/PYTHONPATH, and a stray PYTHONHOME in the environment cannot point it elsewhere;
2. calls the matching ``extern "Python"`` function, implemented in :mod:`tritonlite.capi._impl`;
3. turns "the embedded Python could not start" into an INTERNAL error object instead of a silent NULL.

The library links ``libpythonX.Y.so`` with an rpath to its directory, so C programs need only
``-L DIR -ltritonlite -Wl,-rpath,DIR`` (printed by ``--ldflags``; ``DIR/tritonlite.pc`` says the same
for pkg-config).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIR = ROOT / "include"
HEADER = INCLUDE_DIR / "tritonlite.h"
DEFAULT_OUTPUT = ROOT / "build" / "capi"
LIBRARY_NAME = "libtritonlite.so"
MODULE_NAME = "_tritonlite_capi"
PY_PREFIX = "_tlpy_"

#: implemented in C (the preamble below): they never enter Python (reading a response needs no GIL)
C_FUNCTIONS = frozenset(
    {
        "TRITONLITE_ApiVersion",
        "TRITONLITE_ResponseOutputCount",
        "TRITONLITE_ResponseOutput",
        "TRITONLITE_ResponseOutputByName",
        "TRITONLITE_ResponseModel",
        "TRITONLITE_ResponseId",
        "TRITONLITE_ErrorNew",
        "TRITONLITE_ErrorCode",
        "TRITONLITE_ErrorCodeString",
        "TRITONLITE_ErrorMessage",
        "TRITONLITE_ErrorDelete",
        "TRITONLITE_StringDelete",
        "TRITONLITE_DataTypeString",
        "TRITONLITE_StringToDataType",
        "TRITONLITE_DataTypeByteSize",
    }
)


class BuildError(RuntimeError):
    """The library could not be built (no compiler, no shared libpython, compile error)."""


@dataclass(frozen=True)
class Function:
    """One function declaration of the header."""

    name: str
    returns: str
    params: tuple[tuple[str, str], ...]  # (full declaration, parameter name)

    @property
    def short(self) -> str:
        return self.name[len("TRITONLITE_") :]

    def signature(self, name: str) -> str:
        return f"{self.returns} {name}({', '.join(p for p, _ in self.params) or 'void'})"


def api_text(header: Path = HEADER) -> str:
    """The declarations between the API markers, comments removed (what cffi parses)."""
    text = header.read_text()
    m = re.search(r"^/\* TRITONLITE_API_BEGIN.*?\*/(.*)^/\* TRITONLITE_API_END", text, re.S | re.M)
    if m is None:
        raise BuildError(f"{header}: TRITONLITE_API_BEGIN / TRITONLITE_API_END markers not found")
    body = re.sub(r"/\*.*?\*/", " ", m.group(1), flags=re.S)
    return re.sub(r"//[^\n]*", " ", body)


def parse_functions(api: str) -> list[Function]:
    """Every function declaration (``RET TRITONLITE_Name(params);``) of the API text."""
    code = "\n".join(line for line in api.splitlines() if not line.lstrip().startswith("#"))
    out: list[Function] = []
    for stmt in code.split(";"):
        stmt = " ".join(stmt.split())
        if not stmt or stmt.startswith("typedef") or "(" not in stmt:
            continue
        m = re.fullmatch(r"(.+?[\s*])(TRITONLITE_\w+)\s*\((.*)\)", stmt)
        if m is None:
            raise BuildError(f"cannot parse the declaration: {stmt}")
        params: list[tuple[str, str]] = []
        raw = m.group(3).strip()
        if raw and raw != "void":
            for p in raw.split(","):
                p = p.strip()
                pm = re.search(r"(\w+)\s*$", p)
                if pm is None:
                    raise BuildError(f"{m.group(2)}: unnamed parameter '{p}'")
                params.append((p, pm.group(1)))
        out.append(Function(m.group(2), m.group(1).strip(), tuple(params)))
    return out


def python_functions(functions: list[Function] | None = None) -> list[Function]:
    """The functions whose implementation lives in Python (``tritonlite.capi._impl``)."""
    fns = parse_functions(api_text()) if functions is None else functions
    return [f for f in fns if f.name not in C_FUNCTIONS]


def _c_escape(value: str) -> str:
    parts = []
    for b in value.encode("utf-8"):
        ch = chr(b)
        if ch in '"\\' or b < 32 or b > 126:
            parts.append("\\%03o" % b)
        else:
            parts.append(ch)
    return '"' + "".join(parts) + '"'


_PREAMBLE = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tritonlite.h"

#define TL_EXPORT __attribute__((visibility("default")))

struct TRITONLITE_Error { int code; char* message; };

/* handed out when malloc fails; TRITONLITE_ErrorDelete never frees it */
static TRITONLITE_Error tl_oom_error = { TRITONLITE_ERROR_INTERNAL, (char*)"out of memory" };

static const char* const tl_code_names[] = {
  "UNKNOWN", "INTERNAL", "NOT_FOUND", "INVALID_ARG", "UNAVAILABLE", "UNSUPPORTED", "ALREADY_EXISTS", "CANCELLED"
};
static const char* const tl_type_names[] = {
  "INVALID", "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
  "FP16", "FP32", "FP64", "BYTES", "BF16"
};
static const uint32_t tl_type_sizes[] = { 0, 1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 4, 8, 0, 2 };
#define TL_NTYPES (sizeof(tl_type_names) / sizeof(tl_type_names[0]))

TL_EXPORT TRITONLITE_Error* TRITONLITE_ErrorNew(int code, const char* message) {
  TRITONLITE_Error* e;
  size_t n;
  if (message == NULL) message = "";
  e = (TRITONLITE_Error*)malloc(sizeof(*e));
  if (e == NULL) return &tl_oom_error;
  n = strlen(message);
  e->message = (char*)malloc(n + 1);
  if (e->message == NULL) { free(e); return &tl_oom_error; }
  memcpy(e->message, message, n + 1);
  e->code = (code >= TRITONLITE_ERROR_UNKNOWN && code <= TRITONLITE_ERROR_CANCELLED) ? code : TRITONLITE_ERROR_UNKNOWN;
  return e;
}

TL_EXPORT int TRITONLITE_ErrorCode(const TRITONLITE_Error* error) { return error == NULL ? -1 : error->code; }

TL_EXPORT const char* TRITONLITE_ErrorCodeString(const TRITONLITE_Error* error) {
  if (error == NULL) return "OK";
  return tl_code_names[error->code];
}

TL_EXPORT const char* TRITONLITE_ErrorMessage(const TRITONLITE_Error* error) { return error == NULL ? "" : error->message; }

TL_EXPORT void TRITONLITE_ErrorDelete(TRITONLITE_Error* error) {
  if (error == NULL || error == &tl_oom_error) return;
  free(error->message);
  free(error);
}

TL_EXPORT void TRITONLITE_StringDelete(char* s) { free(s); }

TL_EXPORT TRITONLITE_Error* TRITONLITE_ApiVersion(uint32_t* major, uint32_t* minor) {
  if (major == NULL || minor == NULL)
    return TRITONLITE_ErrorNew(TRITONLITE_ERROR_INVALID_ARG, "major and minor must not be NULL");
  *major = TRITONLITE_API_VERSION_MAJOR;
  *minor = TRITONLITE_API_VERSION_MINOR;
  return NULL;
}

TL_EXPORT const char* TRITONLITE_DataTypeString(TRITONLITE_DataType datatype) {
  if ((unsigned)datatype == 0 || (unsigned)datatype >= TL_NTYPES) return "<invalid>";
  return tl_type_names[datatype];
}

TL_EXPORT TRITONLITE_DataType TRITONLITE_StringToDataType(const char* name) {
  size_t i;
  if (name == NULL) return TRITONLITE_TYPE_INVALID;
  for (i = 1; i < TL_NTYPES; ++i)
    if (strcmp(name, tl_type_names[i]) == 0) return (TRITONLITE_DataType)i;
  return TRITONLITE_TYPE_INVALID;
}

TL_EXPORT uint32_t TRITONLITE_DataTypeByteSize(TRITONLITE_DataType datatype) {
  if ((unsigned)datatype >= TL_NTYPES) return 0;
  return tl_type_sizes[datatype];
}

/* ---- handles: every handle points at memory Python allocated, starting with a magic number per kind, so a
 * NULL, wrong-kind or recently deleted handle is an INVALID_ARG error instead of a crash. Responses are plain
 * C structs Python fills once; reading them never enters Python. ---- */
#define TL_MAGIC_RESPONSE 0x544c5253505f5631ULL /* "TLRSP_V1" */

struct tl_handle { uint64_t magic; };

typedef struct tl_output {
  const char* name;
  const int64_t* shape;
  const void* data;
  size_t byte_size;
  uint32_t dim_count;
  int32_t datatype;
} tl_output;

struct TRITONLITE_Response {
  uint64_t magic;
  tl_output* outputs;
  const char* model;
  const char* id;
  int64_t version;
  uint32_t count;
};

static TRITONLITE_Error* tl_invalid(const char* message) { return TRITONLITE_ErrorNew(TRITONLITE_ERROR_INVALID_ARG, message); }

static TRITONLITE_Error* tl_check_response(const TRITONLITE_Response* response) {
  if (response == NULL) return tl_invalid("response must not be NULL");
  if (response->magic != TL_MAGIC_RESPONSE) return tl_invalid("response is not a valid handle (deleted, or of another kind)");
  return NULL;
}

static void tl_fill_output(const tl_output* o, TRITONLITE_DataType* datatype, const int64_t** shape, uint32_t* dim_count,
                           const void** data, size_t* byte_size) {
  *datatype = (TRITONLITE_DataType)o->datatype;
  *shape = o->shape;
  *dim_count = o->dim_count;
  *data = o->data;
  *byte_size = o->byte_size;
}

#define TL_REQUIRE(p, what) if ((p) == NULL) return tl_invalid(what " (output pointer) must not be NULL")

TL_EXPORT TRITONLITE_Error* TRITONLITE_ResponseOutputCount(TRITONLITE_Response* response, uint32_t* count) {
  TRITONLITE_Error* err = tl_check_response(response);
  if (err) return err;
  TL_REQUIRE(count, "count");
  *count = response->count;
  return NULL;
}

TL_EXPORT TRITONLITE_Error* TRITONLITE_ResponseOutput(TRITONLITE_Response* response, uint32_t index, const char** name,
    TRITONLITE_DataType* datatype, const int64_t** shape, uint32_t* dim_count, const void** data, size_t* byte_size) {
  char msg[128];
  TRITONLITE_Error* err = tl_check_response(response);
  if (err) return err;
  TL_REQUIRE(name, "name"); TL_REQUIRE(datatype, "datatype"); TL_REQUIRE(shape, "shape");
  TL_REQUIRE(dim_count, "dim_count"); TL_REQUIRE(data, "data"); TL_REQUIRE(byte_size, "byte_size");
  if (index >= response->count) {
    snprintf(msg, sizeof(msg), "output index %u out of range: the response has %u outputs", index, response->count);
    return tl_invalid(msg);
  }
  *name = response->outputs[index].name;
  tl_fill_output(&response->outputs[index], datatype, shape, dim_count, data, byte_size);
  return NULL;
}

TL_EXPORT TRITONLITE_Error* TRITONLITE_ResponseOutputByName(TRITONLITE_Response* response, const char* name,
    TRITONLITE_DataType* datatype, const int64_t** shape, uint32_t* dim_count, const void** data, size_t* byte_size) {
  char msg[512];
  uint32_t i;
  TRITONLITE_Error* err = tl_check_response(response);
  if (err) return err;
  if (name == NULL) return tl_invalid("name must not be NULL");
  TL_REQUIRE(datatype, "datatype"); TL_REQUIRE(shape, "shape");
  TL_REQUIRE(dim_count, "dim_count"); TL_REQUIRE(data, "data"); TL_REQUIRE(byte_size, "byte_size");
  for (i = 0; i < response->count; ++i) {
    if (strcmp(response->outputs[i].name, name) == 0) {
      tl_fill_output(&response->outputs[i], datatype, shape, dim_count, data, byte_size);
      return NULL;
    }
  }
  snprintf(msg, sizeof(msg), "the response has no output named '%.400s'", name);
  return TRITONLITE_ErrorNew(TRITONLITE_ERROR_NOT_FOUND, msg);
}

TL_EXPORT TRITONLITE_Error* TRITONLITE_ResponseModel(TRITONLITE_Response* response, const char** model, int64_t* version) {
  TRITONLITE_Error* err = tl_check_response(response);
  if (err) return err;
  TL_REQUIRE(model, "model"); TL_REQUIRE(version, "version");
  *model = response->model;
  *version = response->version;
  return NULL;
}

TL_EXPORT TRITONLITE_Error* TRITONLITE_ResponseId(TRITONLITE_Response* response, const char** id) {
  TRITONLITE_Error* err = tl_check_response(response);
  if (err) return err;
  TL_REQUIRE(id, "id");
  *id = response->id;
  return NULL;
}

/* filled by Python with one call per output (cheaper than setting fields from Python) */
static void tl_set_output(tl_output* outputs, uint32_t i, const char* name, int32_t datatype, const int64_t* shape,
                          uint32_t dim_count, const void* data, size_t byte_size) {
  tl_output* o = &outputs[i];
  o->name = name;
  o->datatype = datatype;
  o->shape = shape;
  o->dim_count = dim_count;
  o->data = data;
  o->byte_size = byte_size;
}

static void tl_set_response(TRITONLITE_Response* r, tl_output* outputs, uint32_t count, const char* model, int64_t version,
                            const char* id) {
  r->outputs = outputs;
  r->count = count;
  r->model = model;
  r->version = version;
  r->id = id;
  r->magic = TL_MAGIC_RESPONSE;
}

/* ---- strings handed to C (TRITONLITE_StringDelete frees them) ---- */
static char* tl_string_new(const char* data, size_t size) {
  char* s = (char*)malloc(size + 1);
  if (s == NULL) return NULL;
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

/* ---- the embedded interpreter ---- */
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;
static volatile int tl_python_started = 0;  /* 1: Py_Initialize done (by us or by a host program) */
static volatile int tl_ready = 0;           /* 1: tritonlite.capi._impl installed every function */
static char tl_start_error[1024];

static void tl_mark_ready(void) { tl_ready = 1; }

static void tl_start_python(void) {
  PyStatus status;
  PyConfig config;
  if (Py_IsInitialized()) { tl_python_started = 1; return; }  /* loaded into a Python process */
  PyConfig_InitPythonConfig(&config);
  config.install_signal_handlers = 0;
  config.parse_argv = 0;
  status = PyConfig_SetBytesString(&config, &config.home, TL_PYTHON_HOME);
  if (!PyStatus_Exception(status)) status = PyConfig_SetBytesString(&config, &config.program_name, TL_PYTHON_EXECUTABLE);
  if (!PyStatus_Exception(status)) status = PyConfig_SetBytesString(&config, &config.executable, TL_PYTHON_EXECUTABLE);
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    snprintf(tl_start_error, sizeof(tl_start_error),
             "tritonlite: cannot start the embedded Python (home %s, executable %s): %s%s%s",
             TL_PYTHON_HOME, TL_PYTHON_EXECUTABLE, status.func ? status.func : "",
             status.func ? ": " : "", status.err_msg ? status.err_msg : "unknown error");
    return;
  }
  PyEval_SaveThread();  /* release the GIL: every call takes it with PyGILState_Ensure */
  tl_python_started = 1;
}

static TRITONLITE_Error* tl_start(void) {
  pthread_once(&tl_once, tl_start_python);
  if (!tl_python_started) return TRITONLITE_ErrorNew(TRITONLITE_ERROR_INTERNAL, tl_start_error);
  return NULL;
}

static TRITONLITE_Error* tl_not_ready(TRITONLITE_Error* err) {
  TRITONLITE_ErrorDelete(err);
  return TRITONLITE_ErrorNew(TRITONLITE_ERROR_INTERNAL,
      "tritonlite: the embedded Python could not import tritonlite.capi (its traceback went to stderr)");
}
"""

_HELPERS_CDEF = """
struct tl_handle { uint64_t magic; };
typedef struct tl_output {
  const char* name;
  const int64_t* shape;
  const void* data;
  size_t byte_size;
  uint32_t dim_count;
  int32_t datatype;
} tl_output;
struct TRITONLITE_Response {
  uint64_t magic;
  tl_output* outputs;
  const char* model;
  const char* id;
  int64_t version;
  uint32_t count;
};
#define TL_MAGIC_RESPONSE 0x544c5253505f5631
static char* tl_string_new(const char* data, size_t size);
static void tl_mark_ready(void);
static void tl_set_output(tl_output* outputs, uint32_t i, const char* name, int32_t datatype, const int64_t* shape,
                          uint32_t dim_count, const void* data, size_t byte_size);
static void tl_set_response(TRITONLITE_Response* r, tl_output* outputs, uint32_t count, const char* model, int64_t version,
                            const char* id);
"""

_INIT_CODE = """
import sys
try:
    import tritonlite.capi._impl as _impl
except ImportError:
    sys.path[:0] = [p for p in {fallback_paths!r} if p not in sys.path]
    import tritonlite.capi._impl as _impl
from {module} import ffi, lib
_impl.install(ffi, lib, {functions!r})
lib.tl_mark_ready()
"""


def _wrapper(fn: Function) -> str:
    if fn.returns.replace(" ", "") != "TRITONLITE_Error*":
        raise BuildError(f"{fn.name}: functions implemented in Python must return TRITONLITE_Error*")
    args = ", ".join(name for _, name in fn.params)
    return (
        f"static {fn.signature(PY_PREFIX + fn.short)};\n"
        f"TL_EXPORT {fn.signature(fn.name)} {{\n"
        f"  TRITONLITE_Error* err = tl_start();\n"
        f"  if (err != NULL) return err;\n"
        f"  err = {PY_PREFIX}{fn.short}({args});\n"
        f"  if (!tl_ready) return tl_not_ready(err);\n"
        f"  return err;\n"
        f"}}\n"
    )


def _python_settings() -> tuple[str, str]:
    home = sys.base_prefix if sys.base_prefix == sys.base_exec_prefix else f"{sys.base_prefix}:{sys.base_exec_prefix}"
    executable = sys.executable or os.path.join(sys.prefix, "bin", "python3")
    return home, executable


def generate_c(functions: list[Function]) -> tuple[str, str, str]:
    """(cdef text, set_source preamble, init code) for the header's functions."""
    missing = C_FUNCTIONS - {f.name for f in functions}
    if missing:
        raise BuildError(f"the header lacks C-implemented functions: {sorted(missing)}")
    home, executable = _python_settings()
    py = python_functions(functions)
    preamble = (
        f"#define TL_PYTHON_HOME {_c_escape(home)}\n#define TL_PYTHON_EXECUTABLE {_c_escape(executable)}\n"
        + _PREAMBLE
        + "\n/* ---- generated: one exported function per Python implementation ---- */\n"
        + "\n".join(_wrapper(f) for f in py)
    )
    cdef_python = "\n".join(f'extern "Python" {f.signature(PY_PREFIX + f.short)};' for f in py)
    import tritonlite

    fallback = [str(Path(tritonlite.__file__).resolve().parents[1])]
    init = _INIT_CODE.format(fallback_paths=fallback, module=MODULE_NAME, functions=[f.short for f in py])
    return cdef_python, preamble, init


def _stamp(api: str) -> str:
    import cffi

    home, executable = _python_settings()
    h = hashlib.sha256()
    for part in (HEADER.read_bytes(), Path(__file__).read_bytes(), cffi.__version__.encode(), home.encode(), executable.encode(), sys.version.encode()):
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()


def _python_link_args() -> list[str]:
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise BuildError(
            f"{sys.executable} has no shared libpython (built without --enable-shared): "
            "cffi embedding needs one; use a Python built with --enable-shared"
        )
    libdir = sysconfig.get_config_var("LIBDIR")
    ver = sysconfig.get_config_var("LDVERSION") or f"{sys.version_info.major}.{sys.version_info.minor}"
    return [f"-L{libdir}", f"-lpython{ver}", f"-Wl,-rpath,{libdir}"]


def library_path(output: str | os.PathLike[str] | None = None) -> Path:
    return Path(output or DEFAULT_OUTPUT).resolve() / LIBRARY_NAME


def cflags() -> list[str]:
    return [f"-I{INCLUDE_DIR}"]


def ldflags(output: str | os.PathLike[str] | None = None) -> list[str]:
    out = library_path(output).parent
    return [f"-L{out}", "-ltritonlite", f"-Wl,-rpath,{out}"]


def build(output: str | os.PathLike[str] | None = None, *, force: bool = False, quiet: bool = True) -> Path:
    """Build (or reuse, when the header, this file and the interpreter are unchanged) ``OUTPUT/libtritonlite.so``."""
    try:
        import cffi
    except ImportError:  # pragma: no cover - depends on the environment
        raise BuildError("cffi is not installed: pip install 'tritonlite[capi]'") from None
    out_dir = Path(output or DEFAULT_OUTPUT).resolve()
    lib_path = out_dir / LIBRARY_NAME
    stamp_path = out_dir / ".libtritonlite.stamp"
    api = api_text()
    stamp = _stamp(api)
    if not force and lib_path.exists() and stamp_path.exists() and stamp_path.read_text() == stamp:
        return lib_path
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise BuildError("no C compiler found (gcc or cc; or set CC)")
    functions = parse_functions(api)
    cdef_python, preamble, init = generate_c(functions)

    ffi = cffi.FFI()
    ffi.cdef(api)
    ffi.cdef(cdef_python)
    ffi.cdef(_HELPERS_CDEF)
    ffi.embedding_init_code(init)
    ffi.set_source(MODULE_NAME, preamble)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tritonlite-capi-") as tmp:
        c_file = Path(tmp) / f"{MODULE_NAME}.c"
        with contextlib.redirect_stdout(io.StringIO()):  # cffi prints "generating ..."; stdout is for flags
            ffi.emit_c_code(str(c_file))
        tmp_lib = Path(tmp) / LIBRARY_NAME
        cmd = [
            *shlex.split(compiler),
            "-shared",
            "-fPIC",
            "-O2",
            "-pthread",
            f"-I{INCLUDE_DIR}",
            f"-I{sysconfig.get_paths()['include']}",
            str(c_file),
            "-o",
            str(tmp_lib),
            f"-Wl,-soname,{LIBRARY_NAME}",
            *_python_link_args(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"compiling {LIBRARY_NAME} failed:\n{' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
        if not quiet and proc.stderr.strip():
            print(proc.stderr, file=sys.stderr)
        os.replace(tmp_lib, lib_path)  # atomic: running programs keep the old inode
    _write_pkg_config(out_dir)
    stamp_path.write_text(stamp)
    return lib_path


def _write_pkg_config(out_dir: Path) -> None:
    from tritonlite import __version__

    (out_dir / "tritonlite.pc").write_text(
        f"prefix={out_dir}\nincludedir={INCLUDE_DIR}\nlibdir={out_dir}\n\n"
        "Name: tritonlite\nDescription: tritonlite C ABI (embedded Python engine)\n"
        f"Version: {__version__}\nCflags: -I${{includedir}}\nLibs: -L${{libdir}} -ltritonlite -Wl,-rpath,${{libdir}}\n"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tritonlite.capi.build", description="Build libtritonlite.so (the C ABI) with cffi.")
    ap.add_argument("--output", "--out", "-o", default=None, help=f"output directory (default {DEFAULT_OUTPUT})")
    ap.add_argument("--force", action="store_true", help="rebuild even if the library is up to date")
    ap.add_argument("--cflags", action="store_true", help="print only the compiler flags")
    ap.add_argument("--ldflags", action="store_true", help="print only the linker flags")
    args = ap.parse_args(argv)
    try:
        lib = build(args.output, force=args.force, quiet=False)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.cflags or args.ldflags:
        flags = (cflags() if args.cflags else []) + (ldflags(args.output) if args.ldflags else [])
        print(" ".join(shlex.quote(f) for f in flags))
        return 0
    print(f"built {lib}")
    print(f"pkg-config: PKG_CONFIG_PATH={lib.parent} pkg-config --cflags --libs tritonlite")
    print(f"compile:    gcc app.c {' '.join(shlex.quote(f) for f in cflags() + ldflags(args.output))} -o app")
    return 0


if __name__ == "__main__":
    sys.exit(main())
