package org.tritonlite;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Decoupled models, BYTES tensors and model errors, on a repository the test writes. */
class StreamingAndBytesTest {
    @TempDir
    static Path tmp;
    static InferenceEngine engine;

    static final String COUNTDOWN_CONFIG = """
            backend: "python"
            model_transaction_policy { decoupled: true }
            input [ { name: "N" data_type: TYPE_INT32 dims: [ 1 ] } ]
            output [ { name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
            """;
    static final String COUNTDOWN_PY = """
            import numpy as np
            import triton_python_backend_utils as pb_utils


            class TritonPythonModel:
                def execute(self, requests):
                    for request in requests:
                        n = int(pb_utils.get_input_tensor_by_name(request, "N").as_numpy()[0])
                        sender = request.get_response_sender()
                        for i in range(n):
                            sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([n - i], np.int32))]))
                        sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                    return None
            """;
    static final String UPPER_CONFIG = """
            backend: "python"
            max_batch_size: 4
            input [ { name: "TEXT" data_type: TYPE_STRING dims: [ -1 ] } ]
            output [ { name: "UPPER" data_type: TYPE_STRING dims: [ -1 ] }, { name: "LEN" data_type: TYPE_INT64 dims: [ -1 ] } ]
            """;
    static final String UPPER_PY = """
            import numpy as np
            import triton_python_backend_utils as pb_utils


            class TritonPythonModel:
                def execute(self, requests):
                    out = []
                    for r in requests:
                        t = pb_utils.get_input_tensor_by_name(r, "TEXT").as_numpy()
                        up = np.vectorize(lambda b: b.decode("utf-8").upper().encode("utf-8"), otypes=[np.object_])(t)
                        ln = np.vectorize(len, otypes=[np.int64])(t)
                        out.append(pb_utils.InferenceResponse([pb_utils.Tensor("UPPER", up), pb_utils.Tensor("LEN", ln)]))
                    return out
            """;
    static final String FAILING_CONFIG = """
            backend: "python"
            input [ { name: "X" data_type: TYPE_FP32 dims: [ 1 ] } ]
            output [ { name: "Y" data_type: TYPE_FP32 dims: [ 1 ] } ]
            """;
    static final String FAILING_PY = """
            import triton_python_backend_utils as pb_utils


            class TritonPythonModel:
                def execute(self, requests):
                    return [pb_utils.InferenceResponse(error=pb_utils.TritonError("model says no")) for _ in requests]
            """;

    static final String EXPAND_CONFIG = """
            backend: "python"
            input [ { name: "N" data_type: TYPE_INT32 dims: [ 1 ] } ]
            output [ { name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] } ]
            """;
    static final String EXPAND_PY = """
            import numpy as np
            import triton_python_backend_utils as pb_utils


            class TritonPythonModel:
                def execute(self, requests):
                    out = []
                    for r in requests:
                        n = int(pb_utils.get_input_tensor_by_name(r, "N").as_numpy()[0])
                        out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.arange(n, dtype=np.float32))]))
                    return out
            """;

    static void model(Path repo, String name, String config, String modelPy) throws IOException {
        Path dir = repo.resolve(name);
        Files.createDirectories(dir.resolve("1"));
        Files.writeString(dir.resolve("config.pbtxt"), config);
        Files.writeString(dir.resolve("1").resolve("model.py"), modelPy);
    }

    @BeforeAll
    static void open() throws IOException {
        assumeTrue(TritonLite.isAvailable(), "needs the engine: run under python -m tritonlite.jvm.launcher");
        Path repo = tmp.resolve("models");
        model(repo, "countdown", COUNTDOWN_CONFIG, COUNTDOWN_PY);
        model(repo, "upper", UPPER_CONFIG, UPPER_PY);
        model(repo, "failing", FAILING_CONFIG, FAILING_PY);
        model(repo, "expand", EXPAND_CONFIG, EXPAND_PY);
        engine = InferenceEngine.open(repo);
    }

    @AfterAll
    static void close() {
        if (engine != null) {
            engine.close();
        }
    }

    @Test
    void decoupledModelsStreamEveryResponse() {
        List<InferResult> all = engine.streamAll(new InferRequest("countdown").input("N", Tensor.ofInts(new long[] {1}, 3)));
        assertEquals(3, all.size());
        assertArrayEquals(new int[] {3}, all.get(0).output("OUT").asInts());
        assertArrayEquals(new int[] {1}, all.get(2).output("OUT").asInts());
    }

    @Test
    void theListenerSeesTheFinalFlag() throws InterruptedException {
        List<String> calls = new ArrayList<>();
        CountDownLatch done = new CountDownLatch(1);
        engine.inferAsync(new InferRequest("countdown").input("N", Tensor.ofInts(new long[] {1}, 2)), (result, error, isFinal) -> {
            synchronized (calls) {
                calls.add((result == null ? "null" : String.valueOf(result.output("OUT").asInts()[0])) + (isFinal ? "F" : ""));
            }
            if (isFinal) {
                done.countDown();
            }
        });
        assertTrue(done.await(10, TimeUnit.SECONDS));
        assertEquals(List.of("2", "1", "nullF"), calls);
    }

    @Test
    void decoupledModelsRefuseBlockingInfer() {
        TritonLiteException e = assertThrows(TritonLiteException.class,
                () -> engine.infer("countdown", Map.of("N", Tensor.ofInts(new long[] {1}, 1))));
        assertEquals(TritonLiteException.Code.UNSUPPORTED, e.code());
        assertTrue(e.getMessage().contains("InferenceEngine.stream"), e.getMessage());
    }

    @Test
    void bytesTensors() {
        InferResult r = engine.infer("upper", Map.of("TEXT", Tensor.ofStrings(new long[] {1, 3}, "héllo", "", "tritonlite")));
        assertEquals(DataType.BYTES, r.output("UPPER").dataType());
        assertArrayEquals(new String[] {"HÉLLO", "", "TRITONLITE"}, r.output("UPPER").asStrings());
        assertArrayEquals(new long[] {1, 3}, r.output("UPPER").shape());
        assertArrayEquals(new long[] {6, 0, 10}, r.output("LEN").asLongs());
    }

    @Test
    void smallRequestsWithLargeResponsesStillWork() {
        for (int n : new int[] {4, 100_000, 3}) { // 400 KB: more than the shared buffer holds
            float[] v = engine.infer("expand", Map.of("N", Tensor.ofInts(new long[] {1}, n))).output("OUT").asFloats();
            assertEquals(n, v.length);
            assertEquals(n - 1f, v[n - 1]);
        }
    }

    @Test
    void modelErrorsBecomeExceptions() {
        TritonLiteException e = assertThrows(TritonLiteException.class,
                () -> engine.infer("failing", Map.of("X", Tensor.ofFloats(new long[] {1}, 1))));
        assertEquals("model says no", e.getMessage());
        assertEquals(TritonLiteException.Code.INTERNAL, e.code());
    }
}
