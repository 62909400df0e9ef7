/*
 * c_async.c -- many requests in flight through TRITONLITE_EngineInferAsync, each finished by the FINAL flag.
 *
 *   make -C examples/c_async run        # or, from the repository root:
 *   gcc -O2 -Wall -pthread examples/c_async/c_async.c \
 *       $(.venv/bin/python -m tritonlite.capi.build --output build/capi --cflags --ldflags) -o c_async
 *   ./c_async examples/c_async/model_repository
 *
 * Needs the [capi] extra (cffi): pip install -e '.[capi]'. No PYTHONHOME / PYTHONPATH at run time.
 *
 * What it shows:
 *   - submit first, wait later: four `square` requests, one `countdown` stream and one bad request are all
 *     queued before any result is read; the engine answers them on its own threads;
 *   - one callback for every request: it gets each response, owns it (TRITONLITE_ResponseDelete) and counts it;
 *     the call with TRITONLITE_RESPONSE_FLAG_FINAL is the last one for that request;
 *   - a decoupled model (`countdown`) calls back once per response, and its FINAL call may carry no response;
 *   - errors found after submission (here a wrong input name) arrive through the callback, with FINAL.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tritonlite.h"

#define CHECK(call)                                                                                      \
  do {                                                                                                   \
    TRITONLITE_Error* err_ = (call);                                                                     \
    if (err_ != NULL) {                                                                                  \
      fprintf(stderr, "%s failed: %s: %s\n", #call, TRITONLITE_ErrorCodeString(err_),                    \
              TRITONLITE_ErrorMessage(err_));                                                            \
      TRITONLITE_ErrorDelete(err_);                                                                      \
      exit(1);                                                                                           \
    }                                                                                                    \
  } while (0)

#define MAX_VALUES 16

/* Everything one request's callbacks produce. The callback writes it on an engine thread; main reads it after
 * the FINAL call, under the shared mutex. */
typedef struct {
  const char* label;
  int responses;              /* calls that carried a response */
  const char* final_how;      /* what the call with the FINAL flag carried */
  int final;                  /* set by the call with TRITONLITE_RESPONSE_FLAG_FINAL */
  float values[MAX_VALUES];   /* every value of every response, in arrival order */
  int nvalues;
  char error[256];            /* "CODE: message" of an error delivered to the callback */
} Call;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int finals = 0;

/* Runs on an engine thread (or on the caller's thread for errors found while queueing). It owns `response`
 * and `error`, and must not block for long: the engine thread is serving other requests too. */
static void on_response(TRITONLITE_Response* response, TRITONLITE_Error* error, uint32_t flags, void* userp) {
  Call* call = (Call*)userp;
  pthread_mutex_lock(&mu);
  if (error != NULL) {
    snprintf(call->error, sizeof call->error, "%s: %s", TRITONLITE_ErrorCodeString(error), TRITONLITE_ErrorMessage(error));
    TRITONLITE_ErrorDelete(error);
  }
  if (response != NULL) {
    TRITONLITE_DataType dtype;
    const int64_t* shape;
    uint32_t dims;
    const void* data;
    size_t size, i, n;
    const char* name;
    CHECK(TRITONLITE_ResponseOutput(response, 0, &name, &dtype, &shape, &dims, &data, &size));
    n = size / TRITONLITE_DataTypeByteSize(dtype);
    for (i = 0; i < n && call->nvalues < MAX_VALUES; ++i)
      call->values[call->nvalues++] = dtype == TRITONLITE_TYPE_INT32 ? (float)((const int32_t*)data)[i] : ((const float*)data)[i];
    call->responses++;
    TRITONLITE_ResponseDelete(response);
  }
  if (flags & TRITONLITE_RESPONSE_FLAG_FINAL) {
    call->final = 1;
    call->final_how = error != NULL ? "with the error" : response != NULL ? "with the last response" : "on its own";
    finals++;
    pthread_cond_signal(&cv);
  }
  pthread_mutex_unlock(&mu);
}

static void submit(TRITONLITE_Engine* engine, Call* call, const char* model, const char* input, TRITONLITE_DataType dtype,
                   const void* data, int64_t count) {
  TRITONLITE_Request* request;
  CHECK(TRITONLITE_RequestNew(&request, engine, model, -1));
  CHECK(TRITONLITE_RequestAddInput(request, input, dtype, &count, 1, data, (size_t)count * TRITONLITE_DataTypeByteSize(dtype)));
  CHECK(TRITONLITE_EngineInferAsync(engine, request, on_response, call));
  CHECK(TRITONLITE_RequestDelete(request)); /* the input was copied: the request may go right away */
}

int main(int argc, char** argv) {
  const char* repo = argc > 1 ? argv[1] : "examples/c_async/model_repository";
  TRITONLITE_Engine* engine;
  TRITONLITE_Request* bad;
  Call calls[6];
  float x[4][3] = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {0.5f, -1, 10}};
  int32_t n = 3;
  int i, j, ncalls = 6;

  memset(calls, 0, sizeof calls);
  CHECK(TRITONLITE_EngineNew(&engine, repo, NULL));

  /* Queue everything first. */
  for (i = 0; i < 4; ++i) {
    calls[i].label = "square";
    submit(engine, &calls[i], "square", "X", TRITONLITE_TYPE_FP32, x[i], 3);
  }
  calls[4].label = "countdown";
  submit(engine, &calls[4], "countdown", "N", TRITONLITE_TYPE_INT32, &n, 1);
  /* A wrong input name: validation errors are not returned by EngineInferAsync, they arrive through the
   * callback (with FINAL), like execution errors. */
  calls[5].label = "square (bad input)";
  CHECK(TRITONLITE_RequestNew(&bad, engine, "square", -1));
  {
    int64_t shape = 3;
    CHECK(TRITONLITE_RequestAddInput(bad, "NOT_X", TRITONLITE_TYPE_FP32, &shape, 1, x[0], sizeof x[0]));
  }
  CHECK(TRITONLITE_EngineInferAsync(engine, bad, on_response, &calls[5]));
  CHECK(TRITONLITE_RequestDelete(bad));
  printf("queued %d requests\n", ncalls);

  /* Then wait until every request has had its FINAL call. */
  pthread_mutex_lock(&mu);
  while (finals < ncalls) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);

  for (i = 0; i < ncalls; ++i) {
    Call* c = &calls[i];
    printf("#%d %s: %d response%s", i, c->label, c->responses, c->responses == 1 ? "" : "s");
    if (c->nvalues) {
      printf(" [");
      for (j = 0; j < c->nvalues; ++j) printf(j ? " %g" : "%g", c->values[j]);
      printf("]");
    }
    if (c->error[0]) printf(" error %s", c->error);
    printf(", FINAL %s\n", c->final_how);
  }
  CHECK(TRITONLITE_EngineDelete(engine));
  printf("all %d requests final\n", ncalls);
  return 0;
}
