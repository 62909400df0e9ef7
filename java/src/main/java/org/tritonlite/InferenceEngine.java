package org.tritonlite;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * Triton's feature set in this process: point it at a model repository and call {@link #infer}.
 *
 * <pre>{@code
 * try (InferenceEngine engine = InferenceEngine.open("examples/model_repository")) {
 *     Tensor a = Tensor.ofFloats(new long[] {4}, 1, 2, 3, 4);
 *     InferResult r = engine.infer("add_sub", Map.of("INPUT0", a, "INPUT1", a));
 *     float[] sum = r.output("OUTPUT0").asFloats();
 * }
 * }</pre>
 *
 * Thread-safe. Errors are {@link TritonLiteException}s carrying Triton's error codes.
 */
public final class InferenceEngine implements AutoCloseable {
    private final EngineBackend backend;
    private final ThreadLocal<Arena> arenas;
    private volatile boolean closed;

    private InferenceEngine(EngineBackend backend, boolean fastPath) {
        this.backend = backend;
        this.arenas = fastPath ? ThreadLocal.withInitial(() -> new Arena(backend)) : null;
    }

    /** Load every model of {@code modelRepository}. */
    public static InferenceEngine open(String modelRepository) {
        return open(modelRepository, null);
    }

    public static InferenceEngine open(Path modelRepository) {
        return open(modelRepository.toString(), null);
    }

    /**
     * With options as a JSON object (may be null), e.g.
     * {@code {"model_control_mode": "explicit", "startup_models": ["add_sub"]}}; keys are the Python engine's keyword
     * options (model_control_mode, startup_models, strict_model_config, repository_poll_secs, model_load_thread_count,
     * strict_readiness, server_id, cache_config).
     */
    public static InferenceEngine open(String modelRepository, String optionsJson) {
        if (modelRepository == null) {
            throw new TritonLiteException(TritonLiteException.Code.INVALID_ARG, "modelRepository must not be null");
        }
        return new InferenceEngine(TritonLite.provider().open(modelRepository, optionsJson), true);
    }

    /** An engine over any {@link EngineBackend} (tests, other runtimes); blocking infers use {@link EngineBackend#infer}. */
    public static InferenceEngine of(EngineBackend backend) {
        return new InferenceEngine(backend, false);
    }

    private EngineBackend backend() {
        if (closed) {
            throw new TritonLiteException(TritonLiteException.Code.UNAVAILABLE, "the inference engine is closed");
        }
        return backend;
    }

    // ---- health and metadata (JSON: Triton's REST bodies) ------------------------------------------------------

    public boolean isLive() {
        return !closed && backend.isLive();
    }

    public boolean isReady() {
        return !closed && backend.isReady();
    }

    public boolean isModelReady(String model) {
        return isModelReady(model, -1);
    }

    public boolean isModelReady(String model, long version) {
        return backend().isModelReady(model, version);
    }

    public String serverMetadata() {
        return backend().serverMetadata();
    }

    public String modelMetadata(String model) {
        return modelMetadata(model, -1);
    }

    public String modelMetadata(String model, long version) {
        return backend().modelMetadata(model, version);
    }

    public String modelConfig(String model) {
        return modelConfig(model, -1);
    }

    public String modelConfig(String model, long version) {
        return backend().modelConfig(model, version);
    }

    /** Triton's statistics body for {@code model} ("" for every model). */
    public String modelStatistics(String model) {
        return backend().modelStatistics(model == null ? "" : model, -1);
    }

    public String repositoryIndex() {
        return backend().repositoryIndex(false);
    }

    // ---- model control (explicit mode) -----------------------------------------------------------------------

    public void loadModel(String model) {
        loadModel(model, null);
    }

    /** Load or reload {@code model}; {@code configJson} (may be null) overrides its config. */
    public void loadModel(String model, String configJson) {
        backend().loadModel(model, configJson);
    }

    public void unloadModel(String model) {
        backend().unloadModel(model);
    }

    // ---- inference ---------------------------------------------------------------------------------------------

    /** Run one inference and wait for it. */
    public InferResult infer(String model, Map<String, Tensor> inputs) {
        return infer(InferRequest.of(model, inputs));
    }

    /**
     * Run one request and wait. Requests up to about 1 MiB travel through a per-thread buffer shared with the engine
     * (one copy each way, far cheaper than marshalling objects across the bridge); larger ones hand the tensors' direct
     * buffers to the engine without copies.
     */
    public InferResult infer(InferRequest request) {
        EngineBackend b = backend();
        if (arenas != null) {
            InferResult r = arenas.get().infer(request);
            if (r != null) {
                return r;
            }
        }
        return b.infer(request);
    }

    /**
     * Queue one inference; the future completes with its result (a decoupled model: its last response), or
     * exceptionally with a {@link TritonLiteException}.
     */
    public CompletableFuture<InferResult> inferAsync(String model, Map<String, Tensor> inputs) {
        return inferAsync(InferRequest.of(model, inputs));
    }

    public CompletableFuture<InferResult> inferAsync(InferRequest request) {
        CompletableFuture<InferResult> future = new CompletableFuture<>();
        AtomicReference<InferResult> last = new AtomicReference<>();
        backend().inferAsync(request, (result, error, isFinal) -> {
            if (error != null) {
                future.completeExceptionally(error);
            } else if (result != null) {
                last.set(result);
            }
            if (isFinal && !future.isDone()) {
                if (last.get() != null) {
                    future.complete(last.get());
                } else {
                    future.completeExceptionally(new TritonLiteException(TritonLiteException.Code.INTERNAL,
                            "the model sent no response"));
                }
            }
        });
        return future;
    }

    /** Queue one inference and get each response (decoupled models send any number) on an engine thread. */
    public void inferAsync(InferRequest request, ResponseListener listener) {
        backend().inferAsync(request, listener);
    }

    /**
     * Stream the responses of a (decoupled) model to {@code onResponse}; the future completes after the final one, or
     * exceptionally on the first error.
     */
    public CompletableFuture<Void> stream(InferRequest request, Consumer<InferResult> onResponse) {
        CompletableFuture<Void> future = new CompletableFuture<>();
        backend().inferAsync(request, (result, error, isFinal) -> {
            if (error != null) {
                future.completeExceptionally(error);
                return;
            }
            if (result != null && !future.isDone()) {
                try {
                    onResponse.accept(result);
                } catch (RuntimeException e) {
                    future.completeExceptionally(e);
                }
            }
            if (isFinal) {
                future.complete(null);
            }
        });
        return future;
    }

    /** Every response of a (decoupled) model, waiting for the final one. */
    public List<InferResult> streamAll(InferRequest request) {
        List<InferResult> out = Collections.synchronizedList(new ArrayList<>());
        try {
            stream(request, out::add).join();
        } catch (java.util.concurrent.CompletionException e) {
            if (e.getCause() instanceof TritonLiteException) {
                throw (TritonLiteException) e.getCause();
            }
            throw e;
        }
        return new ArrayList<>(out);
    }

    /** Drain and unload every model; idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        backend.close();
    }
}
