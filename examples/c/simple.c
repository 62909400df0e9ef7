/*
 * simple.c -- the tritonlite C ABI on the example model repository, sync and async.
 *
 *   make -C examples/c run            # or, from the repository root:
 *   gcc -O2 -Wall -pthread examples/c/simple.c \
 *       $(.venv/bin/python -m tritonlite.capi.build --output build/capi --cflags --ldflags) -o simple
 *   ./simple examples/model_repository ['{"model_control_mode": "explicit", "startup_models": ["add_sub"]}']
 *
 * No PYTHONHOME / PYTHONPATH: the library starts the Python environment it was built from.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tritonlite.h"

/* Print the error, free it, and leave. Errors are owned by the caller. */
#define CHECK(call)                                                                          \
  do {                                                                                       \
    TRITONLITE_Error* err_ = (call);                                                         \
    if (err_ != NULL) {                                                                      \
      fprintf(stderr, "%s failed: %s: %s\n", #call, TRITONLITE_ErrorCodeString(err_),        \
              TRITONLITE_ErrorMessage(err_));                                                \
      TRITONLITE_ErrorDelete(err_);                                                          \
      exit(1);                                                                               \
    }                                                                                        \
  } while (0)

static void print_floats(const char* label, const TRITONLITE_Response* unused, const void* data, size_t n) {
  const float* f = (const float*)data;
  size_t i;
  (void)unused;
  printf("%s [", label);
  for (i = 0; i < n; ++i) printf(i ? " %g" : "%g", f[i]);
  printf("]\n");
}

/* Print OUTPUT0 and OUTPUT1 of an add_sub response (first `limit` values). */
static void print_add_sub(const char* model, TRITONLITE_Response* response, size_t limit) {
  uint32_t count = 0, i;
  CHECK(TRITONLITE_ResponseOutputCount(response, &count));
  for (i = 0; i < count; ++i) {
    const char* name;
    TRITONLITE_DataType dtype;
    const int64_t* shape;
    uint32_t dims;
    const void* data;
    size_t size;
    char label[128];
    size_t n;
    CHECK(TRITONLITE_ResponseOutput(response, i, &name, &dtype, &shape, &dims, &data, &size));
    n = size / sizeof(float);
    if (n > limit) n = limit;
    snprintf(label, sizeof(label), "%s %s %s%s", model, name, TRITONLITE_DataTypeString(dtype), n < size / 4 ? " (first values)" : "");
    print_floats(label, response, data, n);
  }
}

/* ---- async: the callback runs on an engine thread; main waits for the FINAL flag ---- */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  int responses;
} Waiter;

static void on_response(TRITONLITE_Response* response, TRITONLITE_Error* error, uint32_t flags, void* userp) {
  Waiter* w = (Waiter*)userp;
  if (error != NULL) {
    printf("async error: %s: %s\n", TRITONLITE_ErrorCodeString(error), TRITONLITE_ErrorMessage(error));
    TRITONLITE_ErrorDelete(error);
  }
  if (response != NULL) {
    print_add_sub("async add_sub", response, 4);
    TRITONLITE_ResponseDelete(response); /* the callback owns the response */
  }
  pthread_mutex_lock(&w->mu);
  w->responses += response != NULL;
  if (flags & TRITONLITE_RESPONSE_FLAG_FINAL) w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

int main(int argc, char** argv) {
  const char* repo = argc > 1 ? argv[1] : "examples/model_repository";
  const char* options = argc > 2 ? argv[2] : NULL;
  uint32_t major, minor;
  TRITONLITE_Engine* engine;
  TRITONLITE_Request* request;
  TRITONLITE_Response* response;
  TRITONLITE_Error* err;
  bool ready = false;
  char* json;
  float in0[4] = {1, 2, 3, 4}, in1[4] = {0, 1, 2, 3};
  int64_t shape[1] = {4};
  int32_t wrong[4] = {1, 2, 3, 4};
  Waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

  CHECK(TRITONLITE_ApiVersion(&major, &minor));
  printf("api version %u.%u\n", major, minor);

  CHECK(TRITONLITE_EngineNew(&engine, repo, options));
  CHECK(TRITONLITE_EngineModelIsReady(engine, "add_sub", -1, &ready));
  printf("add_sub ready: %s\n", ready ? "true" : "false");
  CHECK(TRITONLITE_EngineModelMetadata(engine, "add_sub", -1, &json));
  printf("add_sub metadata: %s\n", json);
  TRITONLITE_StringDelete(json);

  /* sync: one request, reused for a second call with new data */
  CHECK(TRITONLITE_RequestNew(&request, engine, "add_sub", -1));
  CHECK(TRITONLITE_RequestAddInput(request, "INPUT0", TRITONLITE_TYPE_FP32, shape, 1, in0, sizeof(in0)));
  CHECK(TRITONLITE_RequestAddInput(request, "INPUT1", TRITONLITE_TYPE_FP32, shape, 1, in1, sizeof(in1)));
  CHECK(TRITONLITE_EngineInfer(engine, request, &response));
  print_add_sub("add_sub", response, 4);
  CHECK(TRITONLITE_ResponseDelete(response));

  /* async with a callback; the request may be changed or deleted once the call returns */
  CHECK(TRITONLITE_EngineInferAsync(engine, request, on_response, &w));
  pthread_mutex_lock(&w.mu);
  while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
  pthread_mutex_unlock(&w.mu);
  printf("async responses: %d\n", w.responses);

  /* a bad request: the error carries Triton's code and message; the engine keeps serving */
  CHECK(TRITONLITE_RequestAddInput(request, "INPUT0", TRITONLITE_TYPE_INT32, shape, 1, wrong, sizeof(wrong)));
  err = TRITONLITE_EngineInfer(engine, request, &response);
  if (err != NULL) {
    printf("rejected: %s: %s\n", TRITONLITE_ErrorCodeString(err), TRITONLITE_ErrorMessage(err));
    TRITONLITE_ErrorDelete(err);
  }
  CHECK(TRITONLITE_RequestDelete(request));

  err = TRITONLITE_RequestNew(&request, engine, "no_such_model", -1);
  if (err != NULL) {
    printf("unknown model: %s: %s\n", TRITONLITE_ErrorCodeString(err), TRITONLITE_ErrorMessage(err));
    TRITONLITE_ErrorDelete(err);
  }

  /* the ONNX model (batched: shape [1, 16]) when it is loaded */
  CHECK(TRITONLITE_EngineModelIsReady(engine, "add_sub_onnx", -1, &ready));
  if (ready) {
    float a[16], b[16];
    int64_t bshape[2] = {1, 16};
    int i;
    for (i = 0; i < 16; ++i) { a[i] = (float)i; b[i] = 1.0f; }
    CHECK(TRITONLITE_RequestNew(&request, engine, "add_sub_onnx", -1));
    CHECK(TRITONLITE_RequestAddInput(request, "INPUT0", TRITONLITE_TYPE_FP32, bshape, 2, a, sizeof(a)));
    CHECK(TRITONLITE_RequestAddInput(request, "INPUT1", TRITONLITE_TYPE_FP32, bshape, 2, b, sizeof(b)));
    CHECK(TRITONLITE_RequestAddRequestedOutput(request, "OUTPUT0"));
    CHECK(TRITONLITE_EngineInfer(engine, request, &response));
    print_add_sub("add_sub_onnx", response, 4);
    CHECK(TRITONLITE_ResponseDelete(response));
    CHECK(TRITONLITE_RequestDelete(request));
  }

  CHECK(TRITONLITE_EngineModelStatistics(engine, "add_sub", -1, &json));
  printf("add_sub statistics: %.60s...\n", json);
  TRITONLITE_StringDelete(json);

  CHECK(TRITONLITE_EngineDelete(engine));
  printf("done\n");
  return 0;
}
