package org.tritonlite;

/**
 * Receives the responses of an asynchronous request, on an engine thread. Called once per response; the last call has
 * {@code isFinal} true (its {@code result} may be null when a decoupled model ends without a last response). On an
 * error {@code result} is null and {@code error} is set.
 */
@FunctionalInterface
public interface ResponseListener {
    void onResponse(InferResult result, TritonLiteException error, boolean isFinal);
}
