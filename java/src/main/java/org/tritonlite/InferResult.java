package org.tritonlite;

import java.nio.ByteBuffer;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** The outputs of one inference (one response), by name, in the model's order. */
public final class InferResult {
    private final String modelName;
    private final long modelVersion;
    private final String id;
    private final Map<String, Tensor> outputs;

    /** Internal: built by the engine implementation over its own output memory (read-only, zero-copy). */
    public InferResult(String modelName, long modelVersion, String id, String[] names, int[] types, long[][] shapes,
            ByteBuffer[] buffers) {
        this.modelName = modelName;
        this.modelVersion = modelVersion;
        this.id = id;
        Map<String, Tensor> map = new LinkedHashMap<>();
        for (int i = 0; i < names.length; i++) {
            map.put(names[i], Tensor.output(types[i], shapes[i], buffers[i]));
        }
        this.outputs = Collections.unmodifiableMap(map);
    }

    /** The named output; a NOT_FOUND {@link TritonLiteException} if the response has none by that name. */
    public Tensor output(String name) {
        Tensor t = outputs.get(name);
        if (t == null) {
            throw new TritonLiteException(TritonLiteException.Code.NOT_FOUND,
                    "the response has no output named '" + name + "' (outputs: " + outputs.keySet() + ")");
        }
        return t;
    }

    public boolean hasOutput(String name) {
        return outputs.containsKey(name);
    }

    public Map<String, Tensor> outputs() {
        return outputs;
    }

    public String modelName() {
        return modelName;
    }

    public long modelVersion() {
        return modelVersion;
    }

    public String id() {
        return id;
    }

    @Override
    public String toString() {
        return "InferResult[" + modelName + " v" + modelVersion + " " + outputs + "]";
    }
}
