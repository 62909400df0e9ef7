package org.tritonlite;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One inference request: model, version, inputs, requested outputs and options. Reusable; the engine takes what it
 * needs when the request is submitted.
 *
 * <pre>{@code
 * InferRequest r = new InferRequest("add_sub").input("INPUT0", a).input("INPUT1", b).output("OUTPUT0");
 * InferResult result = engine.infer(r);
 * }</pre>
 */
public final class InferRequest {
    /** Sequence flags (Triton's TRITONSERVER_REQUEST_FLAG_*). */
    public static final int SEQUENCE_START = 1;
    public static final int SEQUENCE_END = 2;

    private final String model;
    private long version = -1;
    private final Map<String, Tensor> inputs = new LinkedHashMap<>();
    private final List<String> outputs = new ArrayList<>();
    private final Map<String, Object> parameters = new LinkedHashMap<>();
    private String id = "";
    private long correlationId;
    private int flags;
    private long priority;
    private long timeoutMicros;

    public InferRequest(String model) {
        if (model == null) {
            throw new TritonLiteException(TritonLiteException.Code.INVALID_ARG, "model must not be null");
        }
        this.model = model;
    }

    /** A request for {@code model} with {@code inputs}. */
    public static InferRequest of(String model, Map<String, Tensor> inputs) {
        return new InferRequest(model).inputs(inputs);
    }

    /** The version to run; -1 (the default) means the model's version policy. */
    public InferRequest version(long version) {
        this.version = version;
        return this;
    }

    public InferRequest input(String name, Tensor tensor) {
        if (name == null || tensor == null) {
            throw new TritonLiteException(TritonLiteException.Code.INVALID_ARG, "input name and tensor must not be null");
        }
        inputs.put(name, tensor);
        return this;
    }

    public InferRequest inputs(Map<String, Tensor> more) {
        if (more == null) {
            throw new TritonLiteException(TritonLiteException.Code.INVALID_ARG, "inputs must not be null");
        }
        for (Map.Entry<String, Tensor> e : more.entrySet()) {
            input(e.getKey(), e.getValue());
        }
        return this;
    }

    /** Outputs to return; none means all. */
    public InferRequest output(String... names) {
        for (String n : names) {
            if (!outputs.contains(n)) {
                outputs.add(n);
            }
        }
        return this;
    }

    public InferRequest id(String id) {
        this.id = id == null ? "" : id;
        return this;
    }

    /** Sequence batching: the correlation id and whether this request starts and/or ends the sequence. */
    public InferRequest sequence(long correlationId, boolean start, boolean end) {
        this.correlationId = correlationId;
        this.flags = (start ? SEQUENCE_START : 0) | (end ? SEQUENCE_END : 0);
        return this;
    }

    public InferRequest priority(long priority) {
        this.priority = priority;
        return this;
    }

    public InferRequest timeoutMicros(long timeoutMicros) {
        this.timeoutMicros = timeoutMicros;
        return this;
    }

    /** A request parameter: a String, a Boolean or a Number. */
    public InferRequest parameter(String key, Object value) {
        if (!(value instanceof String || value instanceof Boolean || value instanceof Number)) {
            throw new TritonLiteException(TritonLiteException.Code.INVALID_ARG,
                    "parameter '" + key + "' must be a String, Boolean or Number");
        }
        parameters.put(key, value);
        return this;
    }

    public String model() {
        return model;
    }

    public long version() {
        return version;
    }

    public Map<String, Tensor> inputs() {
        return Collections.unmodifiableMap(inputs);
    }

    public List<String> outputs() {
        return Collections.unmodifiableList(outputs);
    }

    public Map<String, Object> parameters() {
        return Collections.unmodifiableMap(parameters);
    }

    public String id() {
        return id;
    }

    public long correlationId() {
        return correlationId;
    }

    public int flags() {
        return flags;
    }

    public long priority() {
        return priority;
    }

    public long timeoutMicros() {
        return timeoutMicros;
    }

    /**
     * Internal, for the engine implementation: everything in one array, so that crossing into the engine costs one call.
     * {model, version, names String[], types int[], shapes long[][], buffers ByteBuffer[], outputs String[], id,
     * correlationId, flags, priority, timeoutMicros, parameters JSON}.
     */
    public Object[] packed() {
        int n = inputs.size();
        String[] names = new String[n];
        int[] types = new int[n];
        long[][] shapes = new long[n][];
        ByteBuffer[] buffers = new ByteBuffer[n];
        int i = 0;
        for (Map.Entry<String, Tensor> e : inputs.entrySet()) {
            Tensor t = e.getValue();
            names[i] = e.getKey();
            types[i] = t.dataType().code();
            shapes[i] = t.shape();
            buffers[i] = t.directBuffer();
            i++;
        }
        return new Object[] {model, version, names, types, shapes, buffers, outputs.toArray(new String[0]), id,
            correlationId, flags, priority, timeoutMicros, parameters.isEmpty() ? null : parametersJson()};
    }

    String parametersJson() {
        StringBuilder sb = new StringBuilder("{");
        for (Map.Entry<String, Object> e : parameters.entrySet()) {
            if (sb.length() > 1) {
                sb.append(',');
            }
            quote(sb, e.getKey());
            sb.append(':');
            Object v = e.getValue();
            if (v instanceof String) {
                quote(sb, (String) v);
            } else {
                sb.append(v);
            }
        }
        return sb.append('}').toString();
    }

    private static void quote(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                sb.append('\\').append(c);
            } else if (c < 0x20) {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        sb.append('"');
    }
}
