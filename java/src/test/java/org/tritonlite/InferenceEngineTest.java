package org.tritonlite;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real engine, through the launcher (python -m tritonlite.jvm.launcher ... ConsoleLauncher). The example repository
 * comes from the system property tritonlite.examples.
 */
class InferenceEngineTest {
    static InferenceEngine engine;
    static final Tensor A = Tensor.ofFloats(new long[] {4}, 1, 2, 3, 4);
    static final Tensor B = Tensor.ofFloats(new long[] {4}, 0, 1, 2, 3);

    @BeforeAll
    static void open() {
        assumeTrue(TritonLite.isAvailable(), "needs the engine: run under python -m tritonlite.jvm.launcher");
        engine = InferenceEngine.open(System.getProperty("tritonlite.examples", "examples/model_repository"));
    }

    @AfterAll
    static void close() {
        if (engine != null) {
            engine.close();
        }
    }

    @Test
    void healthAndMetadata() {
        assertTrue(engine.isLive());
        assertTrue(engine.isReady());
        assertTrue(engine.isModelReady("add_sub"));
        assertFalse(engine.isModelReady("no_such_model"));
        assertTrue(engine.modelMetadata("add_sub").startsWith("{\"name\": \"add_sub\", \"versions\": [\"1\"]"));
        assertTrue(engine.modelConfig("add_sub_onnx").contains("\"platform\": \"onnxruntime_onnx\""));
        assertTrue(engine.repositoryIndex().contains("\"scale\""));
        assertTrue(engine.serverMetadata().contains("\"extensions\""));
        assertFalse(TritonLite.version().isEmpty());
    }

    @Test
    void pythonModel() {
        InferResult r = engine.infer("add_sub", Map.of("INPUT0", A, "INPUT1", B));
        assertArrayEquals(new float[] {1, 3, 5, 7}, r.output("OUTPUT0").asFloats());
        assertArrayEquals(new float[] {1, 1, 1, 1}, r.output("OUTPUT1").asFloats());
        assertArrayEquals(new long[] {4}, r.output("OUTPUT0").shape());
        assertEquals("add_sub", r.modelName());
        assertEquals(1, r.modelVersion());
        assertTrue(r.output("OUTPUT0").data().isReadOnly());
        assertTrue(engine.modelStatistics("add_sub").contains("\"inference_count\""));
    }

    @Test
    void onnxModelWithRequestedOutputAndVersion() {
        float[] x = new float[16];
        float[] ones = new float[16];
        for (int i = 0; i < 16; i++) {
            x[i] = i;
            ones[i] = 1;
        }
        InferRequest req = new InferRequest("add_sub_onnx").version(1).id("req-7")
                .input("INPUT0", Tensor.ofFloats(new long[] {1, 16}, x))
                .input("INPUT1", Tensor.ofFloats(new long[] {1, 16}, ones)).output("OUTPUT1");
        InferResult r = engine.infer(req);
        assertEquals(1, r.outputs().size());
        assertEquals(-1f, r.output("OUTPUT1").asFloats()[0]);
        assertEquals(14f, r.output("OUTPUT1").asFloats()[15]);
        assertArrayEquals(new long[] {1, 16}, r.output("OUTPUT1").shape());
        assertEquals("req-7", r.id());
    }

    @Test
    void directBufferInputsAreReadInPlace() {
        ByteBuffer buf = ByteBuffer.allocateDirect(16).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 4; i++) {
            buf.putFloat(i * 4, 10 * i);
        }
        Tensor t = Tensor.of(DataType.FP32, new long[] {4}, buf);
        assertArrayEquals(new float[] {0, 11, 22, 33}, engine.infer("add_sub", Map.of("INPUT0", t, "INPUT1", B)).output("OUTPUT0").asFloats());
        buf.putFloat(0, 100);
        assertEquals(100f, engine.infer("add_sub", Map.of("INPUT0", t, "INPUT1", B)).output("OUTPUT0").asFloats()[0]);
    }

    @Test
    void largeTensorsCrossWithoutCopies() {
        int n = 300_000; // 1.2 MB: more than the per-thread shared buffer, so the zero-copy object path
        Tensor big = Tensor.allocate(DataType.FP32, 1, n);
        for (int i = 0; i < n; i++) {
            big.data().putFloat(4 * i, i);
        }
        Tensor out = engine.infer(new InferRequest("scale").version(2).input("INPUT", big)).output("OUTPUT");
        assertArrayEquals(new long[] {1, n}, out.shape());
        assertTrue(out.data().isDirect(), "a large output is the engine's memory, read in place");
        float[] v = out.asFloats();
        assertEquals(0f, v[0]);
        assertEquals(2f * (n - 1), v[n - 1]);
    }

    @Test
    void twoVersionsSideBySide() {
        Tensor x = Tensor.ofFloats(new long[] {1, 2}, 1, 2);
        assertArrayEquals(new float[] {1, 2}, engine.infer(new InferRequest("scale").version(1).input("INPUT", x)).output("OUTPUT").asFloats());
        assertArrayEquals(new float[] {2, 4}, engine.infer(new InferRequest("scale").version(2).input("INPUT", x)).output("OUTPUT").asFloats());
    }

    @Test
    void errorsCarryTritonsCodesAndTheEngineKeepsServing() {
        TritonLiteException e = assertThrows(TritonLiteException.class,
                () -> engine.infer("add_sub", Map.of("INPUT0", Tensor.ofInts(new long[] {4}, 1, 2, 3, 4), "INPUT1", B)));
        assertEquals(TritonLiteException.Code.INVALID_ARG, e.code());
        assertEquals("[request id: <id_unknown>] inference input 'INPUT0' data-type is 'INT32', but model 'add_sub' expects 'FP32'", e.getMessage());
        e = assertThrows(TritonLiteException.class, () -> engine.infer("add_sub", Map.of("INPUT0", Tensor.ofFloats(new long[] {3}, 1, 2, 3), "INPUT1", B)));
        assertEquals(TritonLiteException.Code.INVALID_ARG, e.code());
        e = assertThrows(TritonLiteException.class, () -> engine.infer("add_sub", Map.of("INPUT0", A)));
        assertEquals(TritonLiteException.Code.INVALID_ARG, e.code());
        e = assertThrows(TritonLiteException.class, () -> engine.infer("no_such_model", Map.of("INPUT0", A)));
        assertEquals(TritonLiteException.Code.NOT_FOUND, e.code());
        e = assertThrows(TritonLiteException.class, () -> engine.modelMetadata("no_such_model"));
        assertEquals(TritonLiteException.Code.NOT_FOUND, e.code());
        e = assertThrows(TritonLiteException.class, () -> engine.isModelReady("add_sub", 0));
        assertEquals(TritonLiteException.Code.INVALID_ARG, e.code());
        e = assertThrows(TritonLiteException.class, () -> engine.loadModel("add_sub"));
        assertEquals(TritonLiteException.Code.UNAVAILABLE, e.code());
        assertArrayEquals(new float[] {1, 3, 5, 7}, engine.infer("add_sub", Map.of("INPUT0", A, "INPUT1", B)).output("OUTPUT0").asFloats());
    }

    @Test
    void badEngineOptionsAreInvalidArgument() {
        TritonLiteException e = assertThrows(TritonLiteException.class, () -> InferenceEngine.open("examples", "{oops"));
        assertEquals(TritonLiteException.Code.INVALID_ARG, e.code());
        e = assertThrows(TritonLiteException.class, () -> InferenceEngine.open("examples", "{\"colour\": 1}"));
        assertTrue(e.getMessage().contains("unknown engine option 'colour'"));
        e = assertThrows(TritonLiteException.class, () -> InferenceEngine.open("/nonexistent/repository"));
        assertEquals(TritonLiteException.Code.INVALID_ARG, e.code());
    }

    @Test
    void asyncAndManyThreads() throws Exception {
        assertArrayEquals(new float[] {-1, -1, -1, -1},
                engine.inferAsync("add_sub", Map.of("INPUT0", B, "INPUT1", A)).get().output("OUTPUT1").asFloats(), 0f);
        ExecutorService pool = Executors.newFixedThreadPool(6);
        try {
            List<Future<Boolean>> results = new ArrayList<>();
            for (int t = 0; t < 6; t++) {
                final float base = t * 100;
                results.add(pool.submit(() -> {
                    for (int i = 0; i < 40; i++) {
                        Tensor x = Tensor.ofFloats(new long[] {4}, base + i, 0, 0, 0);
                        float[] sum = engine.infer("add_sub", Map.of("INPUT0", x, "INPUT1", B)).output("OUTPUT0").asFloats();
                        if (sum[0] != base + i || sum[3] != 3) {
                            return false;
                        }
                    }
                    return true;
                }));
            }
            for (Future<Boolean> f : results) {
                assertTrue(f.get());
            }
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void explicitModelControl(@TempDir Path tmp) throws IOException {
        Path repo = copyAddSub(tmp);
        try (InferenceEngine e = InferenceEngine.open(repo.toString(), "{\"model_control_mode\": \"explicit\"}")) {
            assertFalse(e.isModelReady("add_sub"));
            e.loadModel("add_sub");
            assertTrue(e.isModelReady("add_sub"));
            e.unloadModel("add_sub");
            assertFalse(e.isModelReady("add_sub"));
        }
    }

    static Path copyAddSub(Path tmp) throws IOException {
        Path src = Path.of(System.getProperty("tritonlite.examples", "examples/model_repository"), "add_sub");
        Path dst = tmp.resolve("repo").resolve("add_sub");
        Files.createDirectories(dst.resolve("1"));
        Files.copy(src.resolve("config.pbtxt"), dst.resolve("config.pbtxt"));
        Files.copy(src.resolve("1").resolve("model.py"), dst.resolve("1").resolve("model.py"));
        return tmp.resolve("repo");
    }
}
