/*
 * Streaming from a decoupled model with the tritonlite Java binding (org.tritonlite, engine through JPype).
 * From the repository root (needs the [java] extra, jpype1, and a JDK):
 *
 *   javac -d build/java-streaming -cp $(.venv/bin/python -m tritonlite.jvm.launcher --build-jar) \
 *       examples/java_streaming/com/example/Streaming.java
 *   .venv/bin/python -m tritonlite.jvm.launcher --classpath build/java-streaming com.example.Streaming \
 *       examples/java_streaming/model_repository
 *
 * The `words` model sends one response per word of its input sentence. Three ways to read such a stream:
 * stream(request, consumer) (a future that completes after the final response), streamAll(request) (blocks,
 * returns every response) and inferAsync(request, listener) (every call, with the final flag).
 */
package com.example;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.tritonlite.InferRequest;
import org.tritonlite.InferResult;
import org.tritonlite.InferenceEngine;
import org.tritonlite.Tensor;
import org.tritonlite.TritonLiteException;

public final class Streaming {
    private Streaming() {
    }

    private static InferRequest sentence(String text) {
        return new InferRequest("words").input("TEXT", Tensor.ofStrings(new long[] {1}, text));
    }

    private static String describe(InferResult r) {
        return r.output("INDEX").asInts()[0] + ":" + r.output("WORD").asStrings()[0];
    }

    public static void main(String[] args) throws Exception {
        String repo = args.length > 0 ? args[0] : "examples/java_streaming/model_repository";
        try (InferenceEngine engine = InferenceEngine.open(repo)) {
            // 1. a consumer per response (on an engine thread); the future completes after the final one
            List<String> seen = Collections.synchronizedList(new ArrayList<>());
            CompletableFuture<Void> done = engine.stream(sentence("tritonlite streams from Java"), r -> seen.add(describe(r)));
            done.get(60, TimeUnit.SECONDS);
            System.out.println("stream: " + String.join(" ", seen));

            // 2. block for the whole stream
            List<InferResult> all = engine.streamAll(sentence("one call every response"));
            System.out.println("streamAll: " + all.size() + " responses, last " + describe(all.get(all.size() - 1)));

            // 3. the raw listener: each call says whether it is the final one
            List<String> calls = Collections.synchronizedList(new ArrayList<>());
            CountDownLatch finished = new CountDownLatch(1);
            engine.inferAsync(sentence("final flag"), (result, error, isFinal) -> {
                calls.add((result != null ? describe(result) : "no response") + (isFinal ? " (final)" : ""));
                if (isFinal) {
                    finished.countDown();
                }
            });
            if (!finished.await(60, TimeUnit.SECONDS)) {
                throw new IllegalStateException("no final response");
            }
            System.out.println("listener: " + String.join(", ", calls));

            // 4. an error inside the stream reaches the future (and streamAll throws it)
            try {
                engine.stream(sentence("   "), r -> seen.add(describe(r))).join();
            } catch (CompletionException e) {
                TritonLiteException cause = (TritonLiteException) e.getCause();
                System.out.println("error: " + cause.code() + ": " + cause.getMessage());
            }
            try {
                engine.streamAll(sentence(""));
            } catch (TritonLiteException e) {
                System.out.println("streamAll error: " + e.code());
            }
        }
        System.out.println("done");
    }
}
