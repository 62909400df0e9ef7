package org.tritonlite;

/**
 * Where {@link InferenceEngine#open} finds its implementation. Running under the launcher
 * ({@code python -m tritonlite.jvm.launcher --classpath APP_CP com.example.Main}) registers the Python engine before
 * {@code main} starts; {@code tritonlite.jvm.start_jvm()} does the same for Python programs that start the JVM.
 */
public final class TritonLite {
    private static volatile EngineProvider provider;
    private static volatile String version = "unknown";

    private TritonLite() {
    }

    /** Install the provider (called by the runtime). */
    public static void register(EngineProvider engineProvider, String runtimeVersion) {
        provider = engineProvider;
        version = runtimeVersion == null ? "unknown" : runtimeVersion;
    }

    /** True when an engine implementation is available in this JVM. */
    public static boolean isAvailable() {
        return provider != null;
    }

    /** The tritonlite version of the registered runtime. */
    public static String version() {
        return version;
    }

    static EngineProvider provider() {
        EngineProvider p = provider;
        if (p == null) {
            throw new TritonLiteException(TritonLiteException.Code.UNAVAILABLE,
                    "no tritonlite engine in this JVM: run the application with "
                            + "'python -m tritonlite.jvm.launcher --classpath <app classpath> <MainClass>' "
                            + "(or start the JVM from Python with tritonlite.jvm.start_jvm())");
        }
        return p;
    }
}
