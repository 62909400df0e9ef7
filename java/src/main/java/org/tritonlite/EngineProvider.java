package org.tritonlite;

/** Opens engines; registered with {@link TritonLite#register} by the runtime (the Python launcher does it). */
@FunctionalInterface
public interface EngineProvider {
    /** {@code optionsJson} (may be null): the engine's keyword options as a JSON object. */
    EngineBackend open(String modelRepository, String optionsJson);
}
