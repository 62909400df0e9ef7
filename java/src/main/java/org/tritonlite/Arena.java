package org.tritonlite;

import java.lang.ref.Cleaner;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The fast path of a blocking infer: a per-thread buffer shared with the engine (its memory is the engine's, seen by Java
 * as a direct buffer). The request is written into it, one call with two ints crosses into the engine, and the response
 * comes back in the same buffer. Crossing the JPype bridge with objects costs far more than copying small tensors, so
 * small requests take this path (one memcpy each way); requests that do not fit take the zero-copy object path.
 *
 * <p>Request layout (little-endian): u32 format length, the ASCII format of Python's {@code struct} module describing
 * the values, padding to 8, the values, then the input data at 8-aligned offsets. Values: q version, q correlation id,
 * i flags, q priority, q timeout, i output count, i input count, model, id, parameters JSON (each "Ns"), each requested
 * output name, then per input: name, i datatype, i rank, the dims (q each), q data offset, q data length.
 *
 * <p>Response layout: i32 output count, i64 model version, then model and id (i32 length + UTF-8 each), then per output:
 * name (i32 length + UTF-8), i32 datatype, i32 rank, the dims (i64 each), i64 data offset, i64 data length.
 */
final class Arena {
    static final int INITIAL_CAPACITY = 64 * 1024;
    static final int MAX_CAPACITY = 1 << 20;
    private static final AtomicInteger IDS = new AtomicInteger();
    private static final Cleaner CLEANER = Cleaner.create();

    private final EngineBackend backend;
    private final int id;
    private ByteBuffer buffer;

    Arena(EngineBackend backend) {
        this.backend = backend;
        this.id = IDS.incrementAndGet();
        this.buffer = backend.arena(id, INITIAL_CAPACITY).order(ByteOrder.LITTLE_ENDIAN);
        int arenaId = id;
        // when this thread is gone, the engine may drop its side of the buffer
        CLEANER.register(Thread.currentThread(), () -> {
            try {
                backend.releaseArena(arenaId);
            } catch (RuntimeException ignored) {
                // the engine may be closed already
            }
        });
    }

    /** The result, or null when the request does not fit (use the object path). */
    InferResult infer(InferRequest request) {
        byte[] model = utf8(request.model());
        byte[] rid = utf8(request.id());
        Map<String, Object> params = request.parameters();
        byte[] paramsJson = params.isEmpty() ? new byte[0] : utf8(request.parametersJson());
        List<String> outputs = request.outputs();
        Map<String, Tensor> inputs = request.inputs();

        StringBuilder fmt = new StringBuilder(64).append("<qqiqqii");
        long values = 8 + 8 + 4 + 8 + 8 + 4 + 4;
        fmt.append(model.length).append('s').append(rid.length).append('s').append(paramsJson.length).append('s');
        values += model.length + rid.length + paramsJson.length;
        byte[][] outNames = new byte[outputs.size()][];
        for (int i = 0; i < outNames.length; i++) {
            outNames[i] = utf8(outputs.get(i));
            fmt.append(outNames[i].length).append('s');
            values += outNames[i].length;
        }
        byte[][] inNames = new byte[inputs.size()][];
        Tensor[] tensors = new Tensor[inputs.size()];
        long dataSize = 0;
        int k = 0;
        for (Map.Entry<String, Tensor> e : inputs.entrySet()) {
            inNames[k] = utf8(e.getKey());
            tensors[k] = e.getValue();
            int rank = tensors[k].rank();
            fmt.append(inNames[k].length).append("sii").append(rank).append("qqq");
            values += inNames[k].length + 8 + 8L * rank + 16;
            dataSize += align(tensors[k].byteSize());
            k++;
        }
        byte[] format = fmt.toString().getBytes(StandardCharsets.US_ASCII);
        long valuesStart = align(4 + format.length);
        long dataStart = align(valuesStart + values);
        long total = dataStart + dataSize;
        if (total > buffer.capacity()) {
            if (total > MAX_CAPACITY) {
                return null;
            }
            buffer = backend.arena(id, MAX_CAPACITY).order(ByteOrder.LITTLE_ENDIAN);
        }
        ByteBuffer b = buffer.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(format.length).put(format);
        b.position((int) valuesStart);
        b.putLong(request.version()).putLong(request.correlationId()).putInt(request.flags())
                .putLong(request.priority()).putLong(request.timeoutMicros()).putInt(outNames.length).putInt(tensors.length);
        b.put(model).put(rid).put(paramsJson);
        for (byte[] n : outNames) {
            b.put(n);
        }
        long offset = dataStart;
        for (int i = 0; i < tensors.length; i++) {
            Tensor t = tensors[i];
            b.put(inNames[i]).putInt(t.dataType().code()).putInt(t.rank());
            for (long d : t.shapeRef()) {
                b.putLong(d);
            }
            b.putLong(offset).putLong(t.byteSize());
            ByteBuffer dst = buffer.duplicate();
            dst.position((int) offset);
            dst.put(t.buffer().duplicate().clear());
            offset += align(t.byteSize());
        }
        int length = backend.inferInArena(id, (int) total);
        if (length < 0) {
            return backend.takeResult(id); // the response did not fit: the object path
        }
        return decode();
    }

    private InferResult decode() {
        ByteBuffer b = buffer.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int n = b.getInt();
        long version = b.getLong();
        String model = string(b);
        String rid = string(b);
        String[] names = new String[n];
        int[] types = new int[n];
        long[][] shapes = new long[n][];
        long[] offsets = new long[n];
        long[] lengths = new long[n];
        long first = Long.MAX_VALUE;
        long end = 0;
        for (int i = 0; i < n; i++) {
            names[i] = string(b);
            types[i] = b.getInt();
            long[] shape = new long[b.getInt()];
            for (int d = 0; d < shape.length; d++) {
                shape[d] = b.getLong();
            }
            shapes[i] = shape;
            offsets[i] = b.getLong();
            lengths[i] = b.getLong();
            first = Math.min(first, offsets[i]);
            end = Math.max(end, offsets[i] + lengths[i]);
        }
        ByteBuffer[] buffers = new ByteBuffer[n];
        if (n > 0) {
            ByteBuffer src = buffer.duplicate();
            src.position((int) first).limit((int) end);
            ByteBuffer copy = ByteBuffer.allocate((int) (end - first)); // small by construction: the heap is cheapest
            copy.put(src);
            for (int i = 0; i < n; i++) {
                ByteBuffer s = copy.duplicate();
                s.limit((int) (offsets[i] - first + lengths[i])).position((int) (offsets[i] - first));
                buffers[i] = s.slice();
            }
        }
        return new InferResult(model, version, rid, names, types, shapes, buffers);
    }

    private static String string(ByteBuffer b) {
        byte[] bytes = new byte[b.getInt()];
        b.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static long align(long n) {
        return (n + 7) & ~7L;
    }
}
