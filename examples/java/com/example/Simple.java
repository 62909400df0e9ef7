/*
 * The tritonlite Java binding on the example model repository, sync and async. From the repository root:
 *
 *   javac -d build/java-example -cp $(.venv/bin/python -m tritonlite.jvm.launcher --build-jar) \
 *       examples/java/com/example/Simple.java
 *   .venv/bin/python -m tritonlite.jvm.launcher --classpath build/java-example com.example.Simple examples/model_repository
 */
package com.example;

import java.util.Arrays;
import java.util.Map;
import org.tritonlite.InferRequest;
import org.tritonlite.InferResult;
import org.tritonlite.InferenceEngine;
import org.tritonlite.Tensor;
import org.tritonlite.TritonLiteException;

public final class Simple {
    private Simple() {
    }

    public static void main(String[] args) throws Exception {
        String repo = args.length > 0 ? args[0] : "examples/model_repository";
        try (InferenceEngine engine = InferenceEngine.open(repo)) {
            System.out.println("add_sub ready: " + engine.isModelReady("add_sub"));

            // sync: a real Triton model.py
            Tensor a = Tensor.ofFloats(new long[] {4}, 1, 2, 3, 4);
            Tensor b = Tensor.ofFloats(new long[] {4}, 0, 1, 2, 3);
            InferResult r = engine.infer("add_sub", Map.of("INPUT0", a, "INPUT1", b));
            System.out.println("add_sub OUTPUT0 " + Arrays.toString(r.output("OUTPUT0").asFloats()));
            System.out.println("add_sub OUTPUT1 " + Arrays.toString(r.output("OUTPUT1").asFloats()));

            // async: a CompletableFuture
            InferResult later = engine.inferAsync("add_sub", Map.of("INPUT0", b, "INPUT1", a)).get();
            System.out.println("async add_sub OUTPUT1 " + Arrays.toString(later.output("OUTPUT1").asFloats()));

            // the ONNX model (batched: shape [1, 16]), one requested output
            if (engine.isModelReady("add_sub_onnx")) {
                float[] x = new float[16];
                float[] ones = new float[16];
                for (int i = 0; i < 16; i++) {
                    x[i] = i;
                    ones[i] = 1;
                }
                InferRequest req = new InferRequest("add_sub_onnx")
                        .input("INPUT0", Tensor.ofFloats(new long[] {1, 16}, x))
                        .input("INPUT1", Tensor.ofFloats(new long[] {1, 16}, ones))
                        .output("OUTPUT0");
                Tensor out = engine.infer(req).output("OUTPUT0");
                System.out.println("add_sub_onnx OUTPUT0 shape " + Arrays.toString(out.shape()) + " first "
                        + Arrays.toString(Arrays.copyOf(out.asFloats(), 4)));
            }

            // errors carry Triton's codes and messages; the engine keeps serving
            try {
                engine.infer("add_sub", Map.of("INPUT0", Tensor.ofInts(new long[] {4}, 1, 2, 3, 4), "INPUT1", b));
            } catch (TritonLiteException e) {
                System.out.println("rejected: " + e.code() + ": " + e.getMessage());
            }
            try {
                engine.infer("no_such_model", Map.of("INPUT0", a));
            } catch (TritonLiteException e) {
                System.out.println("unknown model: " + e.code() + ": " + e.getMessage());
            }
            String stats = engine.modelStatistics("add_sub");
            System.out.println("add_sub statistics: " + stats.substring(0, Math.min(60, stats.length())) + "...");
        }
        System.out.println("done");
    }
}
