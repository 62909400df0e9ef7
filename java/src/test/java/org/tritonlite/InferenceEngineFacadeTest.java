package org.tritonlite;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;

/** The Java side of InferenceEngine over a fake backend: futures, streams, closing. */
class InferenceEngineFacadeTest {
    private static InferResult result(float value) {
        ByteBuffer b = ByteBuffer.allocateDirect(4).order(java.nio.ByteOrder.LITTLE_ENDIAN).putFloat(0, value);
        return new InferResult("fake", 1, "", new String[] {"Y"}, new int[] {DataType.FP32.code()}, new long[][] {{1}},
                new ByteBuffer[] {b});
    }

    /** Sends {@code responses} results, then (if {@code separateFinal}) a final call without a result. */
    private static final class FakeBackend implements EngineBackend {
        final int responses;
        final boolean separateFinal;
        final TritonLiteException error;
        boolean closed;

        FakeBackend(int responses, boolean separateFinal, TritonLiteException error) {
            this.responses = responses;
            this.separateFinal = separateFinal;
            this.error = error;
        }

        public boolean isLive() { return true; }
        public boolean isReady() { return true; }
        public boolean isModelReady(String model, long version) { return "fake".equals(model); }
        public String serverMetadata() { return "{}"; }
        public String modelMetadata(String model, long version) { return "{}"; }
        public String modelConfig(String model, long version) { return "{}"; }
        public String modelStatistics(String model, long version) { return "{}"; }
        public String repositoryIndex(boolean readyOnly) { return "[]"; }
        public void loadModel(String model, String configJson) { }
        public void unloadModel(String model) { }
        public InferResult infer(InferRequest request) { return result(1); }

        public void inferAsync(InferRequest request, ResponseListener listener) {
            if (error != null) {
                listener.onResponse(null, error, true);
                return;
            }
            for (int i = 0; i < responses; i++) {
                listener.onResponse(result(i), null, !separateFinal && i == responses - 1);
            }
            if (separateFinal) {
                listener.onResponse(null, null, true);
            }
        }

        public ByteBuffer arena(int arenaId, int capacity) { throw new UnsupportedOperationException(); }
        public int inferInArena(int arenaId, int length) { throw new UnsupportedOperationException(); }
        public InferResult takeResult(int arenaId) { throw new UnsupportedOperationException(); }
        public void releaseArena(int arenaId) { }
        public void close() { closed = true; }
    }

    @Test
    void inferAsyncCompletesWithTheLastResponse() throws Exception {
        InferenceEngine e = InferenceEngine.of(new FakeBackend(3, true, null));
        assertEquals(2f, e.inferAsync(new InferRequest("fake")).get().output("Y").asFloats()[0]);
        InferenceEngine none = InferenceEngine.of(new FakeBackend(0, true, null));
        ExecutionException x = assertThrows(ExecutionException.class, () -> none.inferAsync(new InferRequest("fake")).get());
        assertTrue(x.getCause() instanceof TritonLiteException);
    }

    @Test
    void streamDeliversEveryResponseThenCompletes() {
        InferenceEngine e = InferenceEngine.of(new FakeBackend(4, false, null));
        List<InferResult> all = e.streamAll(new InferRequest("fake"));
        assertEquals(4, all.size());
        assertEquals(3f, all.get(3).output("Y").asFloats()[0]);
    }

    @Test
    void errorsReachFuturesAndStreams() {
        TritonLiteException boom = new TritonLiteException(TritonLiteException.Code.UNAVAILABLE, "boom");
        InferenceEngine e = InferenceEngine.of(new FakeBackend(0, false, boom));
        CompletionException c = assertThrows(CompletionException.class, () -> e.inferAsync(new InferRequest("fake")).join());
        assertSame(boom, c.getCause());
        assertSame(boom, assertThrows(TritonLiteException.class, () -> e.streamAll(new InferRequest("fake"))));
    }

    @Test
    void outputsAreReadOnlyAndMissingOnesAreNotFound() {
        InferResult r = result(5);
        assertTrue(r.output("Y").data().isReadOnly());
        TritonLiteException e = assertThrows(TritonLiteException.class, () -> r.output("Z"));
        assertEquals(TritonLiteException.Code.NOT_FOUND, e.code());
    }

    @Test
    void aClosedEngineIsUnavailable() {
        FakeBackend backend = new FakeBackend(1, false, null);
        InferenceEngine e = InferenceEngine.of(backend);
        e.close();
        e.close();
        assertTrue(backend.closed);
        TritonLiteException x = assertThrows(TritonLiteException.class, () -> e.isModelReady("fake"));
        assertEquals(TritonLiteException.Code.UNAVAILABLE, x.code());
    }
}
