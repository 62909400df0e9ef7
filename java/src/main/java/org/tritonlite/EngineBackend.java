package org.tritonlite;

import java.nio.ByteBuffer;

/**
 * The engine as the binding's implementation provides it (implemented in Python through JPype by
 * {@code tritonlite.jvm.bridge}). Applications use {@link InferenceEngine}; this interface is the seam that lets tests
 * or other runtimes plug in. Versions are -1 for the model's version policy. Every method throws
 * {@link TritonLiteException} on failure.
 */
public interface EngineBackend {
    boolean isLive();

    boolean isReady();

    boolean isModelReady(String model, long version);

    String serverMetadata();

    String modelMetadata(String model, long version);

    String modelConfig(String model, long version);

    /** {@code model} "" means every model. */
    String modelStatistics(String model, long version);

    String repositoryIndex(boolean readyOnly);

    void loadModel(String model, String configJson);

    void unloadModel(String model);

    InferResult infer(InferRequest request);

    /** Queue the request; {@code listener} gets every response, the last with the final flag. */
    void inferAsync(InferRequest request, ResponseListener listener);

    /**
     * The fast path of {@link #infer}: (re)create the buffer {@code arenaId} shared with the engine, of {@code capacity}
     * bytes (see {@code Arena} for its layout). One per Java thread and engine.
     */
    ByteBuffer arena(int arenaId, int capacity);

    /** Run the request written in arena {@code arenaId}; the response's length in the arena, or -1: call {@link #takeResult}. */
    int inferInArena(int arenaId, int length);

    /** The response of the last {@link #inferInArena} on {@code arenaId} that did not fit its arena. */
    InferResult takeResult(int arenaId);

    /** The thread that used arena {@code arenaId} is gone. */
    void releaseArena(int arenaId);

    void close();
}
