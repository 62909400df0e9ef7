/*
 * tritonlite.h -- the C ABI of tritonlite, an in-process re-implementation of Triton Inference Server.
 *
 * This header is the single source of truth: `python -m tritonlite.capi.build --output DIR` feeds the
 * declarations between TRITONLITE_API_BEGIN and TRITONLITE_API_END to cffi and builds DIR/libtritonlite.so,
 * whose embedded Python is the environment the library was built from (no PYTHONHOME/PYTHONPATH needed).
 * Compile and link:  gcc app.c $(python -m tritonlite.capi.build --cflags --ldflags --output DIR)
 *
 * Conventions (Triton's C API, simplified):
 *   - Opaque handles; every call that can fail returns TRITONLITE_Error* and NULL means success.
 *     The caller owns every error it receives and frees it with TRITONLITE_ErrorDelete.
 *   - Error codes are Triton's (TRITONLITE_Error_Code below).
 *   - Pointer arguments must not be NULL unless the comment says "may be NULL"; a NULL pointer, an unknown
 *     datatype, a byte size that does not match the shape, or a handle of the wrong kind gives an INVALID_ARG
 *     error, and so does a handle deleted recently (using a deleted handle is still a bug: the check is best
 *     effort). No call aborts the process: every Python exception becomes an error object.
 *   - Metadata, config, statistics and index calls return JSON text (Triton's REST bodies) in a string the
 *     caller frees with TRITONLITE_StringDelete.
 *   - The engine allocates outputs: a response owns its output memory (names, shapes, data) until
 *     TRITONLITE_ResponseDelete. There are no allocator callbacks.
 *   - BYTES tensors use Triton's serialisation: per element a 4-byte little-endian length, then the bytes.
 *   - Input data is copied by TRITONLITE_RequestAddInput; a request is reusable after an infer call (sync or
 *     async) and may be changed or deleted as soon as the call returns.
 *   - All calls are safe from many threads at once (each handle may be used by several threads, except that
 *     changing a request while another thread submits it gives whichever inputs were there at submission).
 *   - Async callbacks may run on engine threads or, for errors found at submission, on the calling thread
 *     before TRITONLITE_EngineInferAsync returns. A callback must not delete the engine.
 */
#ifndef TRITONLITE_H
#define TRITONLITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* TRITONLITE_API_BEGIN (the build feeds the text from here to TRITONLITE_API_END to cffi) */

#define TRITONLITE_API_VERSION_MAJOR 1 /* the API version this header describes (see TRITONLITE_ApiVersion) */
#define TRITONLITE_API_VERSION_MINOR 0 /* minor: additions only */

/* Response callback flag: this is the last call for the request. */
#define TRITONLITE_RESPONSE_FLAG_FINAL 1

typedef struct TRITONLITE_Error TRITONLITE_Error;      /* NULL means success */
typedef struct TRITONLITE_Engine TRITONLITE_Engine;      /* one engine: a model repository and its models */
typedef struct TRITONLITE_Request TRITONLITE_Request;    /* inputs and settings for one model; reusable */
typedef struct TRITONLITE_Response TRITONLITE_Response;  /* one response; owns its outputs */

/* Triton's error codes (TRITONSERVER_Error_Code), same numbers. */
typedef enum TRITONLITE_Error_Code {
  TRITONLITE_ERROR_UNKNOWN,
  TRITONLITE_ERROR_INTERNAL,
  TRITONLITE_ERROR_NOT_FOUND,
  TRITONLITE_ERROR_INVALID_ARG,
  TRITONLITE_ERROR_UNAVAILABLE,
  TRITONLITE_ERROR_UNSUPPORTED,
  TRITONLITE_ERROR_ALREADY_EXISTS,
  TRITONLITE_ERROR_CANCELLED
} TRITONLITE_Error_Code;

/* Triton's data types (TRITONSERVER_DataType), same numbers; BF16 travels as its raw 16-bit pattern. */
typedef enum TRITONLITE_DataType { TRITONLITE_TYPE_INVALID, TRITONLITE_TYPE_BOOL, TRITONLITE_TYPE_UINT8,
  TRITONLITE_TYPE_UINT16, TRITONLITE_TYPE_UINT32, TRITONLITE_TYPE_UINT64, TRITONLITE_TYPE_INT8,
  TRITONLITE_TYPE_INT16, TRITONLITE_TYPE_INT32, TRITONLITE_TYPE_INT64, TRITONLITE_TYPE_FP16,
  TRITONLITE_TYPE_FP32, TRITONLITE_TYPE_FP64, TRITONLITE_TYPE_BYTES, TRITONLITE_TYPE_BF16 } TRITONLITE_DataType;

/* Called once per response; the last call has flags & TRITONLITE_RESPONSE_FLAG_FINAL. `response` is NULL on
 * an error and may be NULL on the final call (a decoupled model that ends without a last response). The
 * callback owns `response` (TRITONLITE_ResponseDelete) and `error` (TRITONLITE_ErrorDelete). */
typedef void (*TRITONLITE_ResponseCallback)(TRITONLITE_Response* response, TRITONLITE_Error* error,
                                            uint32_t flags /* 1 = final */, void* userp);

/* ---- versions, errors, strings, data types (pure C: these never start Python) ---- */

/* The library's API version: a program built against (M, m) works if major == M and minor >= m. */
TRITONLITE_Error* TRITONLITE_ApiVersion(uint32_t* major, uint32_t* minor);

/* A new error with a Triton code and a copy of `message` (e.g. to hand back from your own layer). */
TRITONLITE_Error* TRITONLITE_ErrorNew(int code, const char* message /* may be NULL */);
int TRITONLITE_ErrorCode(const TRITONLITE_Error* error);          /* Triton's codes; -1 for NULL */
/* "UNKNOWN", "INTERNAL", "NOT_FOUND", "INVALID_ARG", ...; "OK" for NULL. Static storage. */
const char* TRITONLITE_ErrorCodeString(const TRITONLITE_Error* error);
/* Valid until TRITONLITE_ErrorDelete; "" for NULL. */
const char* TRITONLITE_ErrorMessage(const TRITONLITE_Error* error);
void TRITONLITE_ErrorDelete(TRITONLITE_Error* error);            /* NULL is a no-op */

void TRITONLITE_StringDelete(char* s);                            /* NULL is a no-op */

/* "FP32", "BYTES", ... ("<invalid>" for unknown values). Static storage. */
const char* TRITONLITE_DataTypeString(TRITONLITE_DataType datatype);
/* "FP32" -> TRITONLITE_TYPE_FP32; TRITONLITE_TYPE_INVALID for unknown names or NULL. */
TRITONLITE_DataType TRITONLITE_StringToDataType(const char* name);
/* Bytes per element; 0 for BYTES (variable) and INVALID. */
uint32_t TRITONLITE_DataTypeByteSize(TRITONLITE_DataType datatype);

/* ---- engine ---- */

/* Load `model_repository` (one directory). `options_json` (may be NULL) is a JSON object with the
 * InferenceEngine keyword options: {"model_control_mode": "none"|"poll"|"explicit",
 * "startup_models": [...], "strict_model_config": bool, "repository_poll_secs": n,
 * "model_load_thread_count": n, "strict_readiness": bool, "server_id": "...",
 * "cache_config": {"local": {"size": n}} (Triton's TRITONSERVER_SetCacheConfig)}.
 * Unknown keys or malformed JSON give INVALID_ARG. */
TRITONLITE_Error* TRITONLITE_EngineNew(TRITONLITE_Engine** engine, const char* model_repository,
                                       const char* options_json /* may be NULL */);
/* Drain and unload every model, join every engine thread, invalidate the handle. */
TRITONLITE_Error* TRITONLITE_EngineDelete(TRITONLITE_Engine* engine);
/* Triton's liveness check: true while the engine is open. */
TRITONLITE_Error* TRITONLITE_EngineIsLive(TRITONLITE_Engine* engine, bool* live);
/* Triton's readiness check: live and (with strict_readiness) every model it should have loaded is READY. */
TRITONLITE_Error* TRITONLITE_EngineIsReady(TRITONLITE_Engine* engine, bool* ready);
/* Whether `model` (at `version`, -1 = the version policy's) is READY; false for an unknown model. */
TRITONLITE_Error* TRITONLITE_EngineModelIsReady(TRITONLITE_Engine* engine, const char* model,
                                                int64_t version /* -1 = policy */, bool* ready);
/* Server metadata JSON: {"name", "version", "extensions"}. */
TRITONLITE_Error* TRITONLITE_EngineMetadata(TRITONLITE_Engine* engine, char** json /* free with StringDelete */);
/* Model metadata JSON (Triton's body): {"name", "versions", "platform", "inputs", "outputs"}. */
TRITONLITE_Error* TRITONLITE_EngineModelMetadata(TRITONLITE_Engine* engine, const char* model,
                                                 int64_t version, char** json /* free with StringDelete */);
/* The model's normalised config in Triton's JSON form. */
TRITONLITE_Error* TRITONLITE_EngineModelConfig(TRITONLITE_Engine* engine, const char* model,
                                               int64_t version, char** json /* free with StringDelete */);
/* Triton's statistics extension body {"model_stats": [...]}; model NULL or "" means every model. */
TRITONLITE_Error* TRITONLITE_EngineModelStatistics(TRITONLITE_Engine* engine, const char* model /* may be NULL */,
                                                   int64_t version, char** json /* free with StringDelete */);
/* Repository index: [{"name", "version", "state", "reason"}, ...]. */
TRITONLITE_Error* TRITONLITE_EngineModelIndex(TRITONLITE_Engine* engine, bool ready_only,
                                              char** json /* free with StringDelete */);
/* Explicit model control mode only. `config_json` (may be NULL) overrides the model's config. */
TRITONLITE_Error* TRITONLITE_EngineLoadModel(TRITONLITE_Engine* engine, const char* model,
                                             const char* config_json /* may be NULL */);
/* Explicit model control mode only: unload every version of `model` once its in-flight requests finish. */
TRITONLITE_Error* TRITONLITE_EngineUnloadModel(TRITONLITE_Engine* engine, const char* model);

/* ---- requests ---- */

/* A request for `model` (NOT_FOUND if the engine does not know it) at `version` (-1 = policy). */
TRITONLITE_Error* TRITONLITE_RequestNew(TRITONLITE_Request** request, TRITONLITE_Engine* engine,
                                        const char* model, int64_t version);
/* Copy one input. `shape` may be NULL when dim_count is 0; `data` may be NULL when byte_size is 0.
 * byte_size must equal the element count times the type size (BYTES: a complete serialised buffer with one
 * element per shape element). Adding an input that exists replaces it. */
TRITONLITE_Error* TRITONLITE_RequestAddInput(TRITONLITE_Request* request, const char* name,
    TRITONLITE_DataType datatype, const int64_t* shape, uint32_t dim_count, const void* data, size_t byte_size);
/* Forget every input added so far (to reuse the request with new data). */
TRITONLITE_Error* TRITONLITE_RequestRemoveAllInputs(TRITONLITE_Request* request);
/* Ask for one output by name; none requested means every output. */
TRITONLITE_Error* TRITONLITE_RequestAddRequestedOutput(TRITONLITE_Request* request, const char* name);
/* Back to every output. */
TRITONLITE_Error* TRITONLITE_RequestRemoveAllRequestedOutputs(TRITONLITE_Request* request);
/* The request id (Triton's `id`): echoed by TRITONLITE_ResponseId and used in error messages. */
TRITONLITE_Error* TRITONLITE_RequestSetId(TRITONLITE_Request* request, const char* id);
/* Sequence batching: correlation id and the START / END flags of this request. */
TRITONLITE_Error* TRITONLITE_RequestSetSequence(TRITONLITE_Request* request, uint64_t correlation_id,
                                                bool start, bool end);
/* Dynamic batcher priority level: 1 is the highest, 0 means the model's default_priority_level. */
TRITONLITE_Error* TRITONLITE_RequestSetPriority(TRITONLITE_Request* request, uint64_t priority);
/* Queue timeout in microseconds (0 = the model's default); a request still queued after it fails. */
TRITONLITE_Error* TRITONLITE_RequestSetTimeoutMicroseconds(TRITONLITE_Request* request, uint64_t timeout_us);
/* Request parameters as a JSON object of strings, integers and booleans; NULL clears them. */
TRITONLITE_Error* TRITONLITE_RequestSetParameters(TRITONLITE_Request* request, const char* json /* may be NULL */);
/* Free the request (requests already submitted are not affected). */
TRITONLITE_Error* TRITONLITE_RequestDelete(TRITONLITE_Request* request);

/* ---- inference ---- */

/* Run the request and wait. A decoupled model gives UNSUPPORTED: use TRITONLITE_EngineInferAsync. */
TRITONLITE_Error* TRITONLITE_EngineInfer(TRITONLITE_Engine* engine, TRITONLITE_Request* request,
                                         TRITONLITE_Response** response);
/* Queue the request and return. On success `callback` is called once per response and the last call
 * carries TRITONLITE_RESPONSE_FLAG_FINAL (a normal model: exactly one call, response + FINAL, or error +
 * FINAL). Only bad arguments are returned here (the callback is then never called); unknown models,
 * validation and execution errors arrive through the callback. */
TRITONLITE_Error* TRITONLITE_EngineInferAsync(TRITONLITE_Engine* engine, TRITONLITE_Request* request,
                                              TRITONLITE_ResponseCallback callback, void* userp /* may be NULL */);

/* ---- responses (reading a response is plain C: no Python, no lock) ---- */

/* How many outputs the response has (index them 0 .. count-1 with TRITONLITE_ResponseOutput). */
TRITONLITE_Error* TRITONLITE_ResponseOutputCount(TRITONLITE_Response* response, uint32_t* count);
/* Every pointer written here stays valid until TRITONLITE_ResponseDelete. */
TRITONLITE_Error* TRITONLITE_ResponseOutput(TRITONLITE_Response* response, uint32_t index, const char** name,
    TRITONLITE_DataType* datatype, const int64_t** shape, uint32_t* dim_count, const void** data,
    size_t* byte_size);
/* The same, looked up by name (NOT_FOUND if the response has no such output). */
TRITONLITE_Error* TRITONLITE_ResponseOutputByName(TRITONLITE_Response* response, const char* name,
    TRITONLITE_DataType* datatype, const int64_t** shape, uint32_t* dim_count, const void** data,
    size_t* byte_size);
/* The model name and version that produced the response (the name is owned by the response). */
TRITONLITE_Error* TRITONLITE_ResponseModel(TRITONLITE_Response* response, const char** model, int64_t* version);
/* The request id the response answers ("" when none was set; owned by the response). */
TRITONLITE_Error* TRITONLITE_ResponseId(TRITONLITE_Response* response, const char** id);
/* Free the response and every output pointer read from it. */
TRITONLITE_Error* TRITONLITE_ResponseDelete(TRITONLITE_Response* response);

/* TRITONLITE_API_END */

#ifdef __cplusplus
}
#endif

#endif /* TRITONLITE_H */
