"""The C ABI end to end: build libtritonlite.so, compile real C programs with gcc against
include/tritonlite.h, run them as subprocesses (with an empty environment) and check what they print."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from model_repos import EXAMPLES, ROOT, write_model

GCC = shutil.which("gcc")
pytestmark = [
    pytest.mark.skipif(GCC is None, reason="gcc is not installed: the C ABI tests compile C programs"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libtritonlite.so is built for Linux"),
]
cffi = pytest.importorskip("cffi", reason="cffi is not installed (pip install 'tritonlite[capi]')")

import tritonlite.capi.build as capi_build  # noqa: E402

EXAMPLE_REPO = EXAMPLES / "model_repository"
PYTHON_ONLY = '{"model_control_mode": "explicit", "startup_models": ["add_sub"]}'

# ---- test models ------------------------------------------------------------------------------------------
DECOUPLED_CONFIG = """
backend: "python"
model_transaction_policy {{ decoupled: true }}
input [ {{ name: "N" data_type: TYPE_INT32 dims: [ 1 ] }} ]
output [ {{ name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] }} ]
"""
# sends N responses, then the final flag on its own (Triton delivers it with a NULL response)
COUNT_SEPARATE_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            n = int(pb_utils.get_input_tensor_by_name(request, "N").as_numpy()[0])
            sender = request.get_response_sender()
            for i in range(n):
                sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([i], np.int32))]))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None
"""
# sends N responses from a worker thread, the last one carrying the final flag
COUNT_LAST_PY = """
import threading

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            n = int(pb_utils.get_input_tensor_by_name(request, "N").as_numpy()[0])
            threading.Thread(target=self.send, args=(n, request.get_response_sender())).start()
        return None

    def send(self, n, sender):
        for i in range(n):
            flags = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL if i == n - 1 else 0
            sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([i * 10], np.int32))]), flags=flags)
"""
BYTES_CONFIG = """
backend: "python"
input [ { name: "IN" data_type: TYPE_STRING dims: [ -1 ] } ]
output [ { name: "UPPER" data_type: TYPE_STRING dims: [ -1 ] }, { name: "LENGTHS" data_type: TYPE_INT32 dims: [ -1 ] } ]
"""
BYTES_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            data = pb_utils.get_input_tensor_by_name(r, "IN").as_numpy()
            upper = np.array([v.decode("utf-8").upper().encode("utf-8") for v in data], dtype=np.object_)
            lengths = np.array([len(v) for v in data], dtype=np.int32)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("UPPER", upper), pb_utils.Tensor("LENGTHS", lengths)]))
        return out
"""
FAILING_CONFIG = """
backend: "python"
input [ { name: "X" data_type: TYPE_FP32 dims: [ 1 ] } ]
output [ { name: "Y" data_type: TYPE_FP32 dims: [ 1 ] } ]
"""
FAILING_PY = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse(error=pb_utils.TritonError("model says no")) for _ in requests]
"""

# ---- C sources ----------------------------------------------------------------------------------------------
COMMON_H = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tritonlite.h"

#define CHECK(call) do { TRITONLITE_Error* e_ = (call); if (e_) { \
  printf("FATAL %s: %s %s\n", #call, TRITONLITE_ErrorCodeString(e_), TRITONLITE_ErrorMessage(e_)); \
  fflush(stdout); exit(2); } } while (0)

/* print "label CODE message" (or "label OK") and free the error */
static inline void report(const char* label, TRITONLITE_Error* e) {
  if (e == NULL) { printf("%s OK\n", label); return; }
  printf("%s %s %s\n", label, TRITONLITE_ErrorCodeString(e), TRITONLITE_ErrorMessage(e));
  TRITONLITE_ErrorDelete(e);
}

static inline TRITONLITE_Request* add_sub_request(TRITONLITE_Engine* engine, const float* a, const float* b) {
  TRITONLITE_Request* r;
  int64_t shape[1] = {4};
  CHECK(TRITONLITE_RequestNew(&r, engine, "add_sub", -1));
  CHECK(TRITONLITE_RequestAddInput(r, "INPUT0", TRITONLITE_TYPE_FP32, shape, 1, a, 4 * sizeof(float)));
  CHECK(TRITONLITE_RequestAddInput(r, "INPUT1", TRITONLITE_TYPE_FP32, shape, 1, b, 4 * sizeof(float)));
  return r;
}

static inline const float* output_floats(TRITONLITE_Response* resp, const char* name) {
  TRITONLITE_DataType dt; const int64_t* shape; uint32_t dims; const void* data; size_t size;
  CHECK(TRITONLITE_ResponseOutputByName(resp, name, &dt, &shape, &dims, &data, &size));
  return (const float*)data;
}

typedef struct { pthread_mutex_t mu; pthread_cond_t cv; int finals; int responses; int errors; char log[4096]; } Collector;
#define COLLECTOR_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, ""}

static inline void collect(TRITONLITE_Response* resp, TRITONLITE_Error* err, uint32_t flags, void* userp) {
  Collector* c = (Collector*)userp;
  char line[512];
  line[0] = 0;
  if (err) {
    snprintf(line, sizeof line, "[error %s %s flags=%u]", TRITONLITE_ErrorCodeString(err), TRITONLITE_ErrorMessage(err), flags);
    TRITONLITE_ErrorDelete(err);
  } else if (resp) {
    TRITONLITE_DataType dt; const int64_t* shape; uint32_t dims; const void* data; size_t size; const char* name;
    CHECK(TRITONLITE_ResponseOutput(resp, 0, &name, &dt, &shape, &dims, &data, &size));
    if (dt == TRITONLITE_TYPE_INT32) snprintf(line, sizeof line, "[%s=%d flags=%u]", name, *(const int32_t*)data, flags);
    else snprintf(line, sizeof line, "[%s=%g flags=%u]", name, *(const float*)data, flags);
    TRITONLITE_ResponseDelete(resp);
  } else {
    snprintf(line, sizeof line, "[null flags=%u]", flags);
  }
  pthread_mutex_lock(&c->mu);
  strncat(c->log, line, sizeof(c->log) - strlen(c->log) - 1);
  c->responses += resp != NULL;
  c->errors += err != NULL;
  if (flags & TRITONLITE_RESPONSE_FLAG_FINAL) c->finals++;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static inline void wait_finals(Collector* c, int n) {
  pthread_mutex_lock(&c->mu);
  while (c->finals < n) pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
}
"""

ERRORS_C = r"""
#include "common.h"

int main(int argc, char** argv) {
  TRITONLITE_Engine* engine = NULL;
  TRITONLITE_Engine* bogus;
  TRITONLITE_Request* req;
  TRITONLITE_Response* resp;
  bool ready;
  char* json;
  int64_t shape[1] = {4}, badshape[1] = {3}, negshape[1] = {-2};
  float a[4] = {1, 2, 3, 4}, b[4] = {4, 3, 2, 1};
  int32_t ints[4] = {1, 2, 3, 4};
  uint32_t count;
  const char* repo = argv[1];
  (void)argc;

  /* pure C calls */
  printf("code(NULL)=%d msg(NULL)='%s' codestr(NULL)=%s\n", TRITONLITE_ErrorCode(NULL), TRITONLITE_ErrorMessage(NULL),
         TRITONLITE_ErrorCodeString(NULL));
  printf("dtype %s %u %d %s\n", TRITONLITE_DataTypeString(TRITONLITE_TYPE_BF16), TRITONLITE_DataTypeByteSize(TRITONLITE_TYPE_FP64),
         (int)TRITONLITE_StringToDataType("BYTES"), TRITONLITE_DataTypeString((TRITONLITE_DataType)99));
  report("api_null", TRITONLITE_ApiVersion(NULL, NULL));

  /* engine creation */
  report("engine_out_null", TRITONLITE_EngineNew(NULL, repo, NULL));
  report("repo_null", TRITONLITE_EngineNew(&engine, NULL, NULL));
  report("bad_json", TRITONLITE_EngineNew(&engine, repo, "{not json"));
  report("json_not_object", TRITONLITE_EngineNew(&engine, repo, "[1, 2]"));
  report("unknown_option", TRITONLITE_EngineNew(&engine, repo, "{\"color\": \"blue\"}"));
  report("bad_option_type", TRITONLITE_EngineNew(&engine, repo, "{\"strict_model_config\": \"yes\"}"));
  report("bad_mode", TRITONLITE_EngineNew(&engine, repo, "{\"model_control_mode\": \"sometimes\"}"));
  report("missing_repo", TRITONLITE_EngineNew(&engine, "/nonexistent/repo", NULL));
  CHECK(TRITONLITE_EngineNew(&engine, repo, "{\"model_control_mode\": \"none\"}"));

  /* handles and out-pointers */
  report("ready_out_null", TRITONLITE_EngineModelIsReady(engine, "add_sub", -1, NULL));
  report("engine_null", TRITONLITE_EngineModelIsReady(NULL, "add_sub", -1, &ready));
  report("model_null", TRITONLITE_EngineModelIsReady(engine, NULL, -1, &ready));
  bogus = (TRITONLITE_Engine*)(uintptr_t)0x12345670;
  report("engine_bogus", TRITONLITE_EngineModelIsReady(bogus, "add_sub", -1, &ready));
  report("bad_version", TRITONLITE_EngineModelIsReady(engine, "add_sub", 0, &ready));
  CHECK(TRITONLITE_EngineModelIsReady(engine, "no_such_model", -1, &ready));
  printf("unknown_ready %d\n", (int)ready);
  report("metadata_unknown", TRITONLITE_EngineModelMetadata(engine, "no_such_model", -1, &json));
  report("metadata_version", TRITONLITE_EngineModelMetadata(engine, "add_sub", 7, &json));
  report("metadata_out_null", TRITONLITE_EngineModelMetadata(engine, "add_sub", -1, NULL));
  report("load_in_mode_none", TRITONLITE_EngineLoadModel(engine, "add_sub", NULL));

  /* requests */
  report("request_unknown_model", TRITONLITE_RequestNew(&req, engine, "no_such_model", -1));
  report("request_out_null", TRITONLITE_RequestNew(NULL, engine, "add_sub", -1));
  CHECK(TRITONLITE_RequestNew(&req, engine, "add_sub", -1));
  report("input_bad_dtype", TRITONLITE_RequestAddInput(req, "INPUT0", (TRITONLITE_DataType)99, shape, 1, a, sizeof a));
  report("input_invalid_dtype", TRITONLITE_RequestAddInput(req, "INPUT0", TRITONLITE_TYPE_INVALID, shape, 1, a, sizeof a));
  report("input_size_mismatch", TRITONLITE_RequestAddInput(req, "INPUT0", TRITONLITE_TYPE_FP32, shape, 1, a, 12));
  report("input_data_null", TRITONLITE_RequestAddInput(req, "INPUT0", TRITONLITE_TYPE_FP32, shape, 1, NULL, 16));
  report("input_shape_null", TRITONLITE_RequestAddInput(req, "INPUT0", TRITONLITE_TYPE_FP32, NULL, 1, a, 16));
  report("input_name_null", TRITONLITE_RequestAddInput(req, NULL, TRITONLITE_TYPE_FP32, shape, 1, a, 16));
  report("input_negative_dim", TRITONLITE_RequestAddInput(req, "INPUT0", TRITONLITE_TYPE_FP32, negshape, 1, a, 16));
  report("bytes_count_mismatch", TRITONLITE_RequestAddInput(req, "INPUT0", TRITONLITE_TYPE_BYTES, shape, 1, "\1\0\0\0x", 5));
  report("bytes_truncated", TRITONLITE_RequestAddInput(req, "INPUT0", TRITONLITE_TYPE_BYTES, shape, 1, "\t\0\0\0x", 5));
  report("params_bad", TRITONLITE_RequestSetParameters(req, "{\"a\": [1]}"));
  report("request_as_engine", TRITONLITE_EngineInfer((TRITONLITE_Engine*)req, req, &resp));
  report("engine_as_request", TRITONLITE_RequestDelete((TRITONLITE_Request*)engine));
  report("async_cb_null", TRITONLITE_EngineInferAsync(engine, req, NULL, NULL));

  /* validation errors from the engine, with Triton's messages */
  CHECK(TRITONLITE_RequestAddInput(req, "INPUT0", TRITONLITE_TYPE_FP32, shape, 1, a, sizeof a));
  report("missing_input", TRITONLITE_EngineInfer(engine, req, &resp));
  CHECK(TRITONLITE_RequestAddInput(req, "INPUT1", TRITONLITE_TYPE_INT32, shape, 1, ints, sizeof ints));
  report("wrong_dtype", TRITONLITE_EngineInfer(engine, req, &resp));
  CHECK(TRITONLITE_RequestAddInput(req, "INPUT1", TRITONLITE_TYPE_FP32, badshape, 1, b, 3 * sizeof(float)));
  report("wrong_shape", TRITONLITE_EngineInfer(engine, req, &resp));
  CHECK(TRITONLITE_RequestAddInput(req, "INPUT1", TRITONLITE_TYPE_FP32, shape, 1, b, sizeof b));
  CHECK(TRITONLITE_RequestAddRequestedOutput(req, "NOPE"));
  report("unknown_output", TRITONLITE_EngineInfer(engine, req, &resp));
  CHECK(TRITONLITE_RequestRemoveAllRequestedOutputs(req));
  report("response_out_null", TRITONLITE_EngineInfer(engine, req, NULL));

  /* the engine keeps serving after all of that; the request is reusable */
  CHECK(TRITONLITE_RequestAddRequestedOutput(req, "OUTPUT1"));
  CHECK(TRITONLITE_EngineInfer(engine, req, &resp));
  CHECK(TRITONLITE_ResponseOutputCount(resp, &count));
  printf("after_errors count=%u OUTPUT1=%g,%g,%g,%g\n", count, output_floats(resp, "OUTPUT1")[0], output_floats(resp, "OUTPUT1")[1],
         output_floats(resp, "OUTPUT1")[2], output_floats(resp, "OUTPUT1")[3]);
  {
    const char* name; TRITONLITE_DataType dt; const int64_t* shp; uint32_t dims; const void* data; size_t size;
    report("output_index", TRITONLITE_ResponseOutput(resp, 5, &name, &dt, &shp, &dims, &data, &size));
    report("output_null", TRITONLITE_ResponseOutput(resp, 0, NULL, &dt, &shp, &dims, &data, &size));
    report("output_by_name_missing", TRITONLITE_ResponseOutputByName(resp, "OUTPUT0", &dt, &shp, &dims, &data, &size));
  }
  CHECK(TRITONLITE_ResponseDelete(resp));
  report("response_double_delete", TRITONLITE_ResponseDelete(resp));
  report("response_count_deleted", TRITONLITE_ResponseOutputCount(resp, &count));

  /* a model that fails, and a decoupled model called synchronously */
  {
    TRITONLITE_Request* fr;
    float x[1] = {1};
    int64_t one[1] = {1};
    int32_t n[1] = {2};
    CHECK(TRITONLITE_RequestNew(&fr, engine, "failing", -1));
    CHECK(TRITONLITE_RequestAddInput(fr, "X", TRITONLITE_TYPE_FP32, one, 1, x, sizeof x));
    report("model_error", TRITONLITE_EngineInfer(engine, fr, &resp));
    CHECK(TRITONLITE_RequestDelete(fr));
    CHECK(TRITONLITE_RequestNew(&fr, engine, "count_separate", -1));
    CHECK(TRITONLITE_RequestAddInput(fr, "N", TRITONLITE_TYPE_INT32, one, 1, n, sizeof n));
    report("decoupled_sync", TRITONLITE_EngineInfer(engine, fr, &resp));
    CHECK(TRITONLITE_RequestDelete(fr));
  }

  CHECK(TRITONLITE_EngineInfer(engine, req, &resp));
  printf("still_serving OUTPUT1[0]=%g\n", output_floats(resp, "OUTPUT1")[0]);
  CHECK(TRITONLITE_ResponseDelete(resp));
  CHECK(TRITONLITE_EngineModelStatistics(engine, "add_sub", -1, &json));
  printf("stats %s\n", strstr(json, "\"inference_count\"") ? "has_inference_count" : json);
  TRITONLITE_StringDelete(json);
  CHECK(TRITONLITE_EngineModelConfig(engine, "add_sub", -1, &json));
  printf("config %s\n", strstr(json, "\"backend\": \"python\"") ? "python_backend" : json);
  TRITONLITE_StringDelete(json);
  CHECK(TRITONLITE_EngineModelIndex(engine, true, &json));
  printf("index %s\n", strstr(json, "\"count_last\"") ? "lists_models" : json);
  TRITONLITE_StringDelete(json);
  CHECK(TRITONLITE_RequestDelete(req));
  report("request_double_delete", TRITONLITE_RequestDelete(req));

  CHECK(TRITONLITE_EngineDelete(engine));
  report("engine_deleted", TRITONLITE_EngineModelIsReady(engine, "add_sub", -1, &ready));
  report("engine_double_delete", TRITONLITE_EngineDelete(engine));
  printf("end\n");
  return 0;
}
"""

ASYNC_C = r"""
#include "common.h"

static void run_decoupled(TRITONLITE_Engine* engine, const char* model, int n) {
  Collector c = COLLECTOR_INIT;
  TRITONLITE_Request* req;
  int64_t one[1] = {1};
  int32_t v[1];
  v[0] = n;
  CHECK(TRITONLITE_RequestNew(&req, engine, model, -1));
  CHECK(TRITONLITE_RequestAddInput(req, "N", TRITONLITE_TYPE_INT32, one, 1, v, sizeof v));
  CHECK(TRITONLITE_EngineInferAsync(engine, req, collect, &c));
  CHECK(TRITONLITE_RequestDelete(req)); /* allowed right after submission */
  wait_finals(&c, 1);
  printf("%s responses=%d finals=%d log=%s\n", model, c.responses, c.finals, c.log);
}

int main(int argc, char** argv) {
  TRITONLITE_Engine* engine;
  TRITONLITE_Request* req;
  float a[4] = {1, 2, 3, 4}, b[4] = {1, 1, 1, 1};
  int32_t wrong[4] = {0, 0, 0, 0};
  int64_t shape[1] = {4};
  int i;
  (void)argc;
  CHECK(TRITONLITE_EngineNew(&engine, argv[1], NULL));

  run_decoupled(engine, "count_separate", 3);
  run_decoupled(engine, "count_last", 3);
  run_decoupled(engine, "count_separate", 0);

  { /* a normal model: exactly one call, response + FINAL */
    Collector c = COLLECTOR_INIT;
    req = add_sub_request(engine, a, b);
    CHECK(TRITONLITE_EngineInferAsync(engine, req, collect, &c));
    wait_finals(&c, 1);
    printf("add_sub responses=%d finals=%d log=%s\n", c.responses, c.finals, c.log);
    /* a validation error arrives through the callback, with FINAL */
    CHECK(TRITONLITE_RequestAddInput(req, "INPUT1", TRITONLITE_TYPE_INT32, shape, 1, wrong, sizeof wrong));
    {
      Collector e = COLLECTOR_INIT;
      CHECK(TRITONLITE_EngineInferAsync(engine, req, collect, &e));
      wait_finals(&e, 1);
      printf("async_error errors=%d finals=%d log=%s\n", e.errors, e.finals, e.log);
    }
    CHECK(TRITONLITE_RequestDelete(req));
  }

  { /* many in flight at once */
    Collector c = COLLECTOR_INIT;
    for (i = 0; i < 50; ++i) {
      a[0] = (float)i;
      req = add_sub_request(engine, a, b);
      CHECK(TRITONLITE_EngineInferAsync(engine, req, collect, &c));
      CHECK(TRITONLITE_RequestDelete(req));
    }
    wait_finals(&c, 50);
    printf("burst responses=%d finals=%d errors=%d\n", c.responses, c.finals, c.errors);
  }
  CHECK(TRITONLITE_EngineDelete(engine));
  printf("end\n");
  return 0;
}
"""

BYTES_C = r"""
#include "common.h"

int main(int argc, char** argv) {
  TRITONLITE_Engine* engine;
  TRITONLITE_Request* req;
  TRITONLITE_Response* resp;
  const char* words[3] = {"hello", "", "tritonlite"};
  unsigned char buf[64];
  size_t off = 0, size, pos;
  int64_t shape[1] = {3};
  const int64_t* oshape;
  uint32_t dims, i, len;
  TRITONLITE_DataType dt;
  const void* data;
  (void)argc;
  for (i = 0; i < 3; ++i) { /* Triton's BYTES serialisation: uint32 LE length + bytes */
    len = (uint32_t)strlen(words[i]);
    buf[off] = len & 0xff; buf[off + 1] = (len >> 8) & 0xff; buf[off + 2] = (len >> 16) & 0xff; buf[off + 3] = len >> 24;
    memcpy(buf + off + 4, words[i], len);
    off += 4 + len;
  }
  CHECK(TRITONLITE_EngineNew(&engine, argv[1], "{\"model_control_mode\": \"explicit\", \"startup_models\": [\"bytes_upper\"]}"));
  CHECK(TRITONLITE_RequestNew(&req, engine, "bytes_upper", -1));
  CHECK(TRITONLITE_RequestAddInput(req, "IN", TRITONLITE_TYPE_BYTES, shape, 1, buf, off));
  CHECK(TRITONLITE_EngineInfer(engine, req, &resp));
  CHECK(TRITONLITE_ResponseOutputByName(resp, "UPPER", &dt, &oshape, &dims, &data, &size));
  printf("UPPER %s dims=%u shape0=%lld size=%zu:", TRITONLITE_DataTypeString(dt), dims, (long long)oshape[0], size);
  for (pos = 0; pos < size;) {
    const unsigned char* p = (const unsigned char*)data + pos;
    len = p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24);
    printf(" '%.*s'", (int)len, (const char*)p + 4);
    pos += 4 + len;
  }
  printf("\n");
  CHECK(TRITONLITE_ResponseOutputByName(resp, "LENGTHS", &dt, &oshape, &dims, &data, &size));
  printf("LENGTHS %s %d %d %d\n", TRITONLITE_DataTypeString(dt), ((const int32_t*)data)[0], ((const int32_t*)data)[1], ((const int32_t*)data)[2]);
  CHECK(TRITONLITE_ResponseDelete(resp));
  {
    const char* model; int64_t version; const char* id;
    CHECK(TRITONLITE_RequestSetId(req, "req-42"));
    CHECK(TRITONLITE_EngineInfer(engine, req, &resp));
    CHECK(TRITONLITE_ResponseModel(resp, &model, &version));
    CHECK(TRITONLITE_ResponseId(resp, &id));
    printf("model %s version %lld id %s\n", model, (long long)version, id);
    CHECK(TRITONLITE_ResponseDelete(resp));
  }
  CHECK(TRITONLITE_RequestDelete(req));
  CHECK(TRITONLITE_EngineDelete(engine));
  printf("end\n");
  return 0;
}
"""

THREADS_C = r"""
#include "common.h"

#define THREADS 8
#define ITERS 150
static TRITONLITE_Engine* engine;
static int failures = 0;
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;

static void* worker(void* arg) {
  int id = (int)(intptr_t)arg, i, k;
  float a[4], b[4];
  TRITONLITE_Request* req;
  TRITONLITE_Response* resp;
  for (k = 0; k < 4; ++k) { a[k] = (float)(id * 100 + k); b[k] = (float)k; }
  req = add_sub_request(engine, a, b); /* each thread its own request, one shared engine */
  for (i = 0; i < ITERS; ++i) {
    const float *o0, *o1;
    int bad = 0;
    a[0] = (float)(id * 100 + i);
    CHECK(TRITONLITE_RequestAddInput(req, "INPUT0", TRITONLITE_TYPE_FP32, (int64_t[]){4}, 1, a, sizeof a));
    CHECK(TRITONLITE_EngineInfer(engine, req, &resp));
    o0 = output_floats(resp, "OUTPUT0");
    o1 = output_floats(resp, "OUTPUT1");
    for (k = 0; k < 4; ++k) bad |= o0[k] != a[k] + b[k] || o1[k] != a[k] - b[k];
    CHECK(TRITONLITE_ResponseDelete(resp));
    if (bad) { pthread_mutex_lock(&fail_mu); failures++; pthread_mutex_unlock(&fail_mu); }
  }
  CHECK(TRITONLITE_RequestDelete(req));
  return NULL;
}

int main(int argc, char** argv) {
  pthread_t t[THREADS];
  int i;
  (void)argc;
  /* the very first call comes from several threads at once: Python starts exactly once */
  for (i = 0; i < THREADS; ++i) {
    uint32_t ma, mi;
    CHECK(TRITONLITE_ApiVersion(&ma, &mi));
  }
  CHECK(TRITONLITE_EngineNew(&engine, argv[1], "{\"model_control_mode\": \"explicit\", \"startup_models\": [\"add_sub\"]}"));
  for (i = 0; i < THREADS; ++i) pthread_create(&t[i], NULL, worker, (void*)(intptr_t)i);
  for (i = 0; i < THREADS; ++i) pthread_join(t[i], NULL);
  printf("threads=%d iterations=%d failures=%d\n", THREADS, ITERS, failures);
  CHECK(TRITONLITE_EngineDelete(engine));
  return 0;
}
"""

FIRST_CALL_RACE_C = r"""
#include "common.h"
/* no call before the threads start: they race to start the embedded interpreter */
static void* worker(void* arg) {
  TRITONLITE_Engine* e;
  bool live = false;
  CHECK(TRITONLITE_EngineNew(&e, (const char*)arg, "{\"model_control_mode\": \"explicit\"}"));
  CHECK(TRITONLITE_EngineIsLive(e, &live));
  CHECK(TRITONLITE_EngineDelete(e));
  return live ? arg : NULL;
}
int main(int argc, char** argv) {
  pthread_t t[6];
  void* r;
  int i, ok = 0;
  (void)argc;
  for (i = 0; i < 6; ++i) pthread_create(&t[i], NULL, worker, argv[1]);
  for (i = 0; i < 6; ++i) { pthread_join(t[i], &r); ok += r != NULL; }
  printf("engines=%d\n", ok);
  return 0;
}
"""


# ---- fixtures -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def capi_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("capi")
    capi_build.build(out)
    (out / "common.h").write_text(COMMON_H)
    return out


@pytest.fixture(scope="session")
def test_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("capi_models")
    shutil.copytree(EXAMPLE_REPO / "add_sub", root / "add_sub")
    write_model(root, "count_separate", DECOUPLED_CONFIG.format(), {"1/model.py": COUNT_SEPARATE_PY})
    write_model(root, "count_last", DECOUPLED_CONFIG.format(), {"1/model.py": COUNT_LAST_PY})
    write_model(root, "bytes_upper", BYTES_CONFIG, {"1/model.py": BYTES_PY})
    write_model(root, "failing", FAILING_CONFIG, {"1/model.py": FAILING_PY})
    return root


_compiled: dict[str, Path] = {}


def compile_c(capi_dir: Path, name: str, source: str | Path) -> Path:
    """gcc against include/tritonlite.h and the built library, with the flags the build command prints."""
    if name in _compiled:
        return _compiled[name]
    src = Path(source) if isinstance(source, Path) else capi_dir / f"{name}.c"
    if not isinstance(source, Path):
        src.write_text(source)
    exe = capi_dir / name
    flags = capi_build.cflags() + capi_build.ldflags(capi_dir)
    proc = subprocess.run(
        [GCC, "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pthread", f"-I{capi_dir}", str(src), "-o", str(exe), *flags],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    _compiled[name] = exe
    return exe


def run(exe: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run with an EMPTY environment by default: the library must find its Python on its own."""
    proc = subprocess.run([*(prefix or []), str(exe), *args], capture_output=True, text=True, timeout=timeout, env=env if env is not None else {}, cwd="/")
    return proc


def lines_by_label(out: str) -> dict[str, str]:
    result = {}
    for line in out.splitlines():
        label, _, rest = line.partition(" ")
        result[label] = rest
    return result


# ---- tests --------------------------------------------------------------------------------------------------
def test_header_declares_the_issue_signatures_exactly() -> None:
    fns = {f.name: f for f in capi_build.parse_functions(capi_build.api_text())}
    expected = {
        "TRITONLITE_ApiVersion": "TRITONLITE_Error* (uint32_t* major, uint32_t* minor)",
        "TRITONLITE_ErrorCode": "int (const TRITONLITE_Error* error)",
        "TRITONLITE_ErrorMessage": "const char* (const TRITONLITE_Error* error)",
        "TRITONLITE_ErrorDelete": "void (TRITONLITE_Error* error)",
        "TRITONLITE_EngineNew": "TRITONLITE_Error* (TRITONLITE_Engine** engine, const char* model_repository, const char* options_json)",
        "TRITONLITE_EngineDelete": "TRITONLITE_Error* (TRITONLITE_Engine* engine)",
        "TRITONLITE_EngineModelIsReady": "TRITONLITE_Error* (TRITONLITE_Engine* engine, const char* model, int64_t version, bool* ready)",
        "TRITONLITE_EngineModelMetadata": "TRITONLITE_Error* (TRITONLITE_Engine* engine, const char* model, int64_t version, char** json)",
        "TRITONLITE_StringDelete": "void (char* s)",
        "TRITONLITE_RequestNew": "TRITONLITE_Error* (TRITONLITE_Request** request, TRITONLITE_Engine* engine, const char* model, int64_t version)",
        "TRITONLITE_RequestAddInput": "TRITONLITE_Error* (TRITONLITE_Request* request, const char* name, TRITONLITE_DataType datatype, "
        "const int64_t* shape, uint32_t dim_count, const void* data, size_t byte_size)",
        "TRITONLITE_RequestAddRequestedOutput": "TRITONLITE_Error* (TRITONLITE_Request* request, const char* name)",
        "TRITONLITE_RequestSetSequence": "TRITONLITE_Error* (TRITONLITE_Request* request, uint64_t correlation_id, bool start, bool end)",
        "TRITONLITE_RequestDelete": "TRITONLITE_Error* (TRITONLITE_Request* request)",
        "TRITONLITE_EngineInfer": "TRITONLITE_Error* (TRITONLITE_Engine* engine, TRITONLITE_Request* request, TRITONLITE_Response** response)",
        "TRITONLITE_EngineInferAsync": "TRITONLITE_Error* (TRITONLITE_Engine* engine, TRITONLITE_Request* request, TRITONLITE_ResponseCallback callback, void* userp)",
        "TRITONLITE_ResponseOutputCount": "TRITONLITE_Error* (TRITONLITE_Response* response, uint32_t* count)",
        "TRITONLITE_ResponseOutput": "TRITONLITE_Error* (TRITONLITE_Response* response, uint32_t index, const char** name, "
        "TRITONLITE_DataType* datatype, const int64_t** shape, uint32_t* dim_count, const void** data, size_t* byte_size)",
        "TRITONLITE_ResponseDelete": "TRITONLITE_Error* (TRITONLITE_Response* response)",
    }
    for name, sig in expected.items():
        assert name in fns, name
        f = fns[name]
        assert f"{f.returns} ({', '.join(p for p, _ in f.params)})" == sig, name
    text = capi_build.HEADER.read_text()
    assert "typedef void (*TRITONLITE_ResponseCallback)(TRITONLITE_Response* response, TRITONLITE_Error* error," in text
    dtypes = re.search(r"typedef enum TRITONLITE_DataType \{(.*?)\}", text, re.S).group(1)  # type: ignore[union-attr]
    assert [d.strip() for d in dtypes.split(",")][:3] == ["TRITONLITE_TYPE_INVALID", "TRITONLITE_TYPE_BOOL", "TRITONLITE_TYPE_UINT8"]
    assert [d.strip() for d in dtypes.split(",")][-2:] == ["TRITONLITE_TYPE_BYTES", "TRITONLITE_TYPE_BF16"]


def test_every_python_implemented_call_has_an_implementation() -> None:
    from tritonlite.capi import _impl

    names = [f.short for f in capi_build.python_functions()]
    assert len(names) >= 25
    missing = [n for n in names if not callable(getattr(_impl._Api, n, None))]
    assert missing == []


def test_engine_options_json_is_checked() -> None:
    from tritonlite.capi._impl import parse_engine_options
    from tritonlite.errors import InvalidArgumentError

    assert parse_engine_options(None) == {}
    assert parse_engine_options('{"startup_models": ["a"], "repository_poll_secs": 1}') == {"startup_models": ["a"], "repository_poll_secs": 1}
    for bad in ("{", "3", '{"x": 1}', '{"strict_readiness": 1}', '{"startup_models": [1]}', '{"model_load_thread_count": true}'):
        with pytest.raises(InvalidArgumentError):
            parse_engine_options(bad)


def test_build_command_prints_flags_and_reuses_the_library(capi_dir: Path) -> None:
    lib = capi_dir / "libtritonlite.so"
    before = lib.stat().st_mtime_ns
    proc = subprocess.run(
        [sys.executable, "-m", "tritonlite.capi.build", "--output", str(capi_dir), "--cflags", "--ldflags"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"-I{ROOT / 'include'} -L{capi_dir} -ltritonlite -Wl,-rpath,{capi_dir}"
    assert lib.stat().st_mtime_ns == before  # up to date: not rebuilt
    pc = (capi_dir / "tritonlite.pc").read_text()
    assert "Libs: -L${libdir} -ltritonlite" in pc
    if shutil.which("pkg-config"):
        out = subprocess.run(["pkg-config", "--cflags", "--libs", "tritonlite"], capture_output=True, text=True, env={**os.environ, "PKG_CONFIG_PATH": str(capi_dir)})
        assert f"-I{ROOT / 'include'}" in out.stdout and "-ltritonlite" in out.stdout
    exports = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True).stdout if shutil.which("nm") else ""
    if exports:
        for f in capi_build.parse_functions(capi_build.api_text()):
            assert re.search(rf"\bT {f.name}$", exports, re.M), f.name


def test_example_program_runs_sync_and_async_with_no_environment(capi_dir: Path) -> None:
    exe = compile_c(capi_dir, "simple", EXAMPLES / "c" / "simple.c")
    proc = run(exe, str(EXAMPLE_REPO))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == "api version 1.0"
    assert out[1] == "add_sub ready: true"
    assert out[2].startswith('add_sub metadata: {"name": "add_sub", "versions": ["1"], "platform": "python"')
    assert out[3:9] == [
        "add_sub OUTPUT0 FP32 [1 3 5 7]",
        "add_sub OUTPUT1 FP32 [1 1 1 1]",
        "async add_sub OUTPUT0 FP32 [1 3 5 7]",
        "async add_sub OUTPUT1 FP32 [1 1 1 1]",
        "async responses: 1",
        "rejected: INVALID_ARG: [request id: <id_unknown>] inference input 'INPUT0' data-type is 'INT32', but model 'add_sub' expects 'FP32'",
    ]
    assert out[9] == "unknown model: NOT_FOUND: Request for unknown model: 'no_such_model' is not found"
    assert out[10] == "add_sub_onnx OUTPUT0 FP32 (first values) [1 2 3 4]"
    assert out[11].startswith('add_sub statistics: {"model_stats": [{"name": "add_sub"')
    assert out[-1] == "done"


def test_embedded_python_ignores_a_stray_pythonhome(capi_dir: Path) -> None:
    exe = compile_c(capi_dir, "simple", EXAMPLES / "c" / "simple.c")
    proc = run(exe, str(EXAMPLE_REPO), PYTHON_ONLY, env={"PYTHONHOME": "/nonexistent", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "add_sub OUTPUT0 FP32 [1 3 5 7]" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "done"


def test_errors_are_objects_with_tritons_codes_and_the_engine_keeps_serving(capi_dir: Path, test_repo: Path) -> None:
    exe = compile_c(capi_dir, "errors", ERRORS_C)
    proc = run(exe, str(test_repo))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = lines_by_label(proc.stdout)
    assert got["code(NULL)=-1"] == "msg(NULL)='' codestr(NULL)=OK"
    assert got["dtype"] == "BF16 8 13 <invalid>"
    invalid = [
        "api_null", "engine_out_null", "repo_null", "bad_json", "json_not_object", "unknown_option", "bad_option_type", "bad_mode",
        "missing_repo", "ready_out_null", "engine_null", "model_null", "engine_bogus", "bad_version", "metadata_out_null",
        "request_out_null", "input_bad_dtype", "input_invalid_dtype", "input_size_mismatch", "input_data_null", "input_shape_null",
        "input_name_null", "input_negative_dim", "bytes_count_mismatch", "bytes_truncated", "params_bad", "request_as_engine",
        "engine_as_request", "async_cb_null", "missing_input", "wrong_dtype", "wrong_shape", "unknown_output", "response_out_null",
        "output_index", "output_null", "response_double_delete", "response_count_deleted", "request_double_delete",
        "engine_deleted", "engine_double_delete",
    ]  # fmt: skip
    for label in invalid:
        assert got[label].startswith("INVALID_ARG "), (label, got[label])
    assert "options_json is not valid JSON" in got["bad_json"]
    assert "unknown engine option 'color'" in got["unknown_option"]
    assert "model_control_mode must be one of" in got["bad_mode"]
    assert "is not a directory" in got["missing_repo"]
    assert got["engine_null"] == "INVALID_ARG engine must not be NULL"
    assert got["engine_bogus"] == "INVALID_ARG engine is not a valid handle (deleted, or of another kind)"
    assert got["input_size_mismatch"] == "INVALID_ARG input 'INPUT0': byte size 12 does not match shape [4] of FP32 (16 bytes expected)"
    assert "holds 1 elements, shape [4] needs 4" in got["bytes_count_mismatch"]
    assert got["wrong_dtype"] == (
        "INVALID_ARG [request id: <id_unknown>] inference input 'INPUT1' data-type is 'INT32', but model 'add_sub' expects 'FP32'"
    )
    assert "unexpected shape for input 'INPUT1'" in got["wrong_shape"]
    assert "INPUT1" in got["missing_input"]
    assert "NOPE" in got["unknown_output"]
    assert got["output_by_name_missing"] == "NOT_FOUND the response has no output named 'OUTPUT0'"
    assert got["metadata_unknown"].startswith("NOT_FOUND Request for unknown model: 'no_such_model'")
    assert got["request_unknown_model"] == "NOT_FOUND Request for unknown model: 'no_such_model' is not found"
    assert got["metadata_version"].split()[0] in ("NOT_FOUND", "UNAVAILABLE")
    assert got["load_in_mode_none"].startswith("UNAVAILABLE explicit model load / unload is not allowed")
    assert got["unknown_ready"] == "0"
    assert got["model_error"] != "OK" and "model says no" in got["model_error"]
    assert got["decoupled_sync"].startswith("UNSUPPORTED ") and "TRITONLITE_EngineInferAsync" in got["decoupled_sync"]
    assert got["after_errors"] == "count=1 OUTPUT1=-3,-1,1,3"
    assert got["still_serving"] == "OUTPUT1[0]=-3"
    assert (got["stats"], got["config"], got["index"]) == ("has_inference_count", "python_backend", "lists_models")
    assert proc.stdout.splitlines()[-1] == "end"


def test_async_callbacks_carry_the_final_flag(capi_dir: Path, test_repo: Path) -> None:
    exe = compile_c(capi_dir, "async", ASYNC_C)
    proc = run(exe, str(test_repo))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    # the final flag on its own: a last call with a NULL response
    assert lines[0] == "count_separate responses=3 finals=1 log=[OUT=0 flags=0][OUT=1 flags=0][OUT=2 flags=0][null flags=1]"
    # the final flag with the last response: one call per response, the last with flag 1
    assert lines[1] == "count_last responses=3 finals=1 log=[OUT=0 flags=0][OUT=10 flags=0][OUT=20 flags=1]"
    assert lines[2] == "count_separate responses=0 finals=1 log=[null flags=1]"
    assert lines[3] == "add_sub responses=1 finals=1 log=[OUTPUT0=2 flags=1]"
    assert lines[4].startswith("async_error errors=1 finals=1 log=[error INVALID_ARG [request id: <id_unknown>] inference input 'INPUT1' data-type is 'INT32'")
    assert lines[4].endswith("flags=1]")
    assert lines[5] == "burst responses=50 finals=50 errors=0"
    assert lines[-1] == "end"


def test_bytes_tensors_use_tritons_serialisation(capi_dir: Path, test_repo: Path) -> None:
    exe = compile_c(capi_dir, "bytes", BYTES_C)
    proc = run(exe, str(test_repo))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "UPPER BYTES dims=1 shape0=3 size=27: 'HELLO' '' 'TRITONLITE'",
        "LENGTHS INT32 5 0 10",
        "model bytes_upper version 1 id req-42",
        "end",
    ]


def test_many_c_threads_share_one_engine(capi_dir: Path, test_repo: Path) -> None:
    exe = compile_c(capi_dir, "threads", THREADS_C)
    proc = run(exe, str(test_repo), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "threads=8 iterations=150 failures=0"


def test_first_calls_racing_from_many_threads_start_python_once(capi_dir: Path, test_repo: Path) -> None:
    exe = compile_c(capi_dir, "race", FIRST_CALL_RACE_C)
    proc = run(exe, str(test_repo))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "engines=6"


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_example_is_valgrind_clean(capi_dir: Path) -> None:
    """No definite (or indirect) leaks and no memory errors in the C program or the library's C code.

    Python itself is not finalised (cffi embedding never calls Py_Finalize), so its objects show as
    "possibly lost"/"still reachable"; PYTHONMALLOC=malloc lets valgrind see every allocation.
    """
    exe = compile_c(capi_dir, "simple", EXAMPLES / "c" / "simple.c")
    proc = run(
        exe,
        str(EXAMPLE_REPO),
        PYTHON_ONLY,
        env={"PYTHONMALLOC": "malloc"},
        timeout=300,
        prefix=["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect", "--num-callers=30"],
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.splitlines()[-1] == "done"
    assert re.search(r"definitely lost: 0 bytes in 0 blocks", proc.stderr), proc.stderr[-3000:]
    assert re.search(r"indirectly lost: 0 bytes in 0 blocks", proc.stderr), proc.stderr[-3000:]
    # memory errors whose innermost frame is in our code (CPython/ld.so internals under valgrind are not ours)
    ours = []
    for block in re.split(r"\n==\d+== \n", proc.stderr):
        frames = re.findall(r"(?:at|by) 0x[0-9A-F]+: (.*)", block)
        if frames and re.search(r"simple\.c|libtritonlite\.so|_tritonlite_capi", frames[0]):
            ours.append(block)
    assert ours == [], "\n\n".join(ours)[:4000]
