package org.tritonlite;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * A tensor: data type, shape and little-endian data in a {@link ByteBuffer}.
 *
 * <p>How data crosses into the engine depends on size. Small requests (up to about 1 MiB in all) are copied once into a
 * per-thread buffer shared with the engine, which is much cheaper than handing objects across the bridge. Larger ones
 * pass each tensor's <em>direct</em> buffer, which the engine reads in place (zero-copy); large outputs come back the
 * same way, as read-only direct buffers over the engine's memory. So: the array factories ({@link #ofFloats} ...) use a
 * heap buffer below {@value #DIRECT_THRESHOLD} bytes and a direct one from there on; {@link #allocate} always gives a
 * direct buffer to fill in place; {@link #of(DataType, long[], ByteBuffer)} wraps the buffer you pass without copying
 * (a heap buffer is copied when a large request needs it direct). Do not change an input buffer while a request that uses
 * it is in flight. BYTES tensors hold Triton's serialisation (per element a 4-byte little-endian length, then the bytes).
 */
public final class Tensor {
    /** From this many bytes on, the array factories allocate direct buffers. */
    public static final int DIRECT_THRESHOLD = 16 * 1024;

    private final DataType dataType;
    private final long[] shape;
    private final ByteBuffer data;

    private Tensor(DataType dataType, long[] shape, ByteBuffer data) {
        this.dataType = dataType;
        this.shape = shape;
        this.data = data;
    }

    // ---- factories ------------------------------------------------------------------------------------------

    /** A tensor over {@code data}'s remaining bytes, without a copy (changes to {@code data} show through). */
    public static Tensor of(DataType dataType, long[] shape, ByteBuffer data) {
        if (dataType == null || dataType == DataType.INVALID) {
            throw invalid("invalid data type " + dataType);
        }
        long[] dims = checkShape(shape);
        if (data == null) {
            throw invalid("data must not be null");
        }
        ByteBuffer buf = data.slice().order(ByteOrder.LITTLE_ENDIAN);
        long count = count(dims);
        if (dataType == DataType.BYTES) {
            long elements = countBytesElements(buf);
            if (elements != count) {
                throw invalid("BYTES data holds " + elements + " elements, shape " + Arrays.toString(dims) + " needs " + count);
            }
        } else if (buf.remaining() != count * dataType.byteSize()) {
            throw invalid("byte size " + buf.remaining() + " does not match shape " + Arrays.toString(dims) + " of "
                    + dataType + " (" + count * dataType.byteSize() + " bytes expected)");
        }
        return new Tensor(dataType, dims, buf);
    }

    /** A zero-filled tensor whose {@link #data()} you fill in place (not for BYTES). */
    public static Tensor allocate(DataType dataType, long... shape) {
        if (dataType == DataType.BYTES || dataType == null || dataType == DataType.INVALID) {
            throw invalid("allocate needs a fixed-size data type, got " + dataType);
        }
        long[] dims = checkShape(shape);
        ByteBuffer buf = ByteBuffer.allocateDirect(Math.toIntExact(count(dims) * dataType.byteSize())).order(ByteOrder.LITTLE_ENDIAN);
        return new Tensor(dataType, dims, buf);
    }

    public static Tensor ofFloats(long[] shape, float... data) {
        ByteBuffer buf = direct(shape, data.length, 4);
        buf.asFloatBuffer().put(data);
        return new Tensor(DataType.FP32, shape.clone(), buf);
    }

    public static Tensor ofDoubles(long[] shape, double... data) {
        ByteBuffer buf = direct(shape, data.length, 8);
        buf.asDoubleBuffer().put(data);
        return new Tensor(DataType.FP64, shape.clone(), buf);
    }

    public static Tensor ofInts(long[] shape, int... data) {
        ByteBuffer buf = direct(shape, data.length, 4);
        buf.asIntBuffer().put(data);
        return new Tensor(DataType.INT32, shape.clone(), buf);
    }

    public static Tensor ofLongs(long[] shape, long... data) {
        ByteBuffer buf = direct(shape, data.length, 8);
        buf.asLongBuffer().put(data);
        return new Tensor(DataType.INT64, shape.clone(), buf);
    }

    public static Tensor ofShorts(long[] shape, short... data) {
        ByteBuffer buf = direct(shape, data.length, 2);
        buf.asShortBuffer().put(data);
        return new Tensor(DataType.INT16, shape.clone(), buf);
    }

    public static Tensor ofBooleans(long[] shape, boolean... data) {
        ByteBuffer buf = direct(shape, data.length, 1);
        for (int i = 0; i < data.length; i++) {
            buf.put(i, (byte) (data[i] ? 1 : 0));
        }
        return new Tensor(DataType.BOOL, shape.clone(), buf);
    }

    /** A BYTES tensor, one {@code byte[]} per element (row-major). */
    public static Tensor ofBytes(long[] shape, byte[]... elements) {
        long[] dims = checkShape(shape);
        if (count(dims) != elements.length) {
            throw invalid(elements.length + " elements do not fill shape " + Arrays.toString(dims));
        }
        int size = 0;
        for (byte[] e : elements) {
            size += 4 + e.length;
        }
        ByteBuffer buf = buffer(size);
        for (byte[] e : elements) {
            buf.putInt(e.length).put(e);
        }
        buf.flip();
        return new Tensor(DataType.BYTES, dims, buf);
    }

    /** A BYTES tensor of UTF-8 strings. */
    public static Tensor ofStrings(long[] shape, String... values) {
        byte[][] elements = new byte[values.length][];
        for (int i = 0; i < values.length; i++) {
            elements[i] = values[i].getBytes(StandardCharsets.UTF_8);
        }
        return ofBytes(shape, elements);
    }

    // ---- accessors ------------------------------------------------------------------------------------------

    public DataType dataType() {
        return dataType;
    }

    /** A copy of the shape. */
    public long[] shape() {
        return shape.clone();
    }

    public long elementCount() {
        return count(shape);
    }

    public int byteSize() {
        return data.limit();
    }

    /** The data, little-endian, positioned at 0 (output tensors are read-only views of the engine's memory). */
    public ByteBuffer data() {
        return data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Internal: the buffer handed to the engine (no copy). */
    ByteBuffer buffer() {
        return data;
    }

    /** Internal: the data in a direct buffer, for the engine to read in place (heap data is copied). */
    ByteBuffer directBuffer() {
        if (data.isDirect()) {
            return data;
        }
        ByteBuffer copy = ByteBuffer.allocateDirect(data.limit());
        copy.put(data.duplicate().clear());
        return copy.clear();
    }

    /** Internal: the shape without a copy. */
    long[] shapeRef() {
        return shape;
    }

    /** The number of dimensions. */
    public int rank() {
        return shape.length;
    }

    public float[] asFloats() {
        expect(DataType.FP32);
        float[] out = new float[(int) elementCount()];
        data().asFloatBuffer().get(out);
        return out;
    }

    public double[] asDoubles() {
        expect(DataType.FP64);
        double[] out = new double[(int) elementCount()];
        data().asDoubleBuffer().get(out);
        return out;
    }

    /** INT32 (or UINT32, as raw bits). */
    public int[] asInts() {
        expect(DataType.INT32, DataType.UINT32);
        int[] out = new int[(int) elementCount()];
        data().asIntBuffer().get(out);
        return out;
    }

    /** INT64 (or UINT64, as raw bits). */
    public long[] asLongs() {
        expect(DataType.INT64, DataType.UINT64);
        long[] out = new long[(int) elementCount()];
        data().asLongBuffer().get(out);
        return out;
    }

    /** INT16, UINT16, FP16 or BF16 as raw 16-bit values. */
    public short[] asShorts() {
        expect(DataType.INT16, DataType.UINT16, DataType.FP16, DataType.BF16);
        short[] out = new short[(int) elementCount()];
        data().asShortBuffer().get(out);
        return out;
    }

    public boolean[] asBooleans() {
        expect(DataType.BOOL);
        boolean[] out = new boolean[(int) elementCount()];
        ByteBuffer d = data();
        for (int i = 0; i < out.length; i++) {
            out[i] = d.get(i) != 0;
        }
        return out;
    }

    /** The elements of a BYTES tensor. */
    public byte[][] asBytes() {
        expect(DataType.BYTES);
        byte[][] out = new byte[(int) elementCount()][];
        ByteBuffer d = data();
        for (int i = 0; i < out.length; i++) {
            int len = d.getInt();
            out[i] = new byte[len];
            d.get(out[i]);
        }
        return out;
    }

    /** The elements of a BYTES tensor decoded as UTF-8. */
    public String[] asStrings() {
        byte[][] raw = asBytes();
        String[] out = new String[raw.length];
        for (int i = 0; i < raw.length; i++) {
            out[i] = new String(raw[i], StandardCharsets.UTF_8);
        }
        return out;
    }

    /** A copy of the raw data. */
    public byte[] toByteArray() {
        byte[] out = new byte[data.limit()];
        data().get(out);
        return out;
    }

    @Override
    public String toString() {
        return "Tensor[" + dataType + " " + Arrays.toString(shape) + "]";
    }

    // ---- helpers --------------------------------------------------------------------------------------------

    private void expect(DataType... allowed) {
        for (DataType t : allowed) {
            if (t == dataType) {
                return;
            }
        }
        throw invalid("the tensor is " + dataType + ", not " + (allowed.length == 1 ? allowed[0] : Arrays.toString(allowed)));
    }

    private static ByteBuffer direct(long[] shape, int elements, int size) {
        long[] dims = checkShape(shape);
        if (count(dims) != elements) {
            throw invalid(elements + " values do not fill shape " + Arrays.toString(dims));
        }
        return buffer(elements * size);
    }

    private static ByteBuffer buffer(int bytes) {
        return (bytes >= DIRECT_THRESHOLD ? ByteBuffer.allocateDirect(bytes) : ByteBuffer.allocate(bytes)).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static long[] checkShape(long[] shape) {
        if (shape == null) {
            throw invalid("shape must not be null");
        }
        for (long d : shape) {
            if (d < 0) {
                throw invalid("shape " + Arrays.toString(shape) + " has a negative dimension");
            }
        }
        return shape.clone();
    }

    static long count(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    private static long countBytesElements(ByteBuffer buf) {
        ByteBuffer d = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        long n = 0;
        while (d.remaining() > 0) {
            if (d.remaining() < 4) {
                throw invalid("malformed BYTES data: truncated length prefix");
            }
            int len = d.getInt();
            if (len < 0 || len > d.remaining()) {
                throw invalid("malformed BYTES data: element runs past the end of the buffer");
            }
            d.position(d.position() + len);
            n++;
        }
        return n;
    }

    private static TritonLiteException invalid(String message) {
        return new TritonLiteException(TritonLiteException.Code.INVALID_ARG, message);
    }

    /** Internal: an output tensor over engine memory (read-only, no checks: the engine produced it). */
    static Tensor output(int dataType, long[] shape, ByteBuffer data) {
        return new Tensor(DataType.fromCode(dataType), shape, data.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN));
    }
}
