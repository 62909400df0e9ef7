package org.tritonlite;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** Tensors and the value types, no engine needed. */
class TensorTest {
    @Test
    void floatsRoundTripLittleEndianInADirectBuffer() {
        Tensor t = Tensor.ofFloats(new long[] {2, 2}, 1f, 2f, 3.5f, -4f);
        assertEquals(DataType.FP32, t.dataType());
        assertArrayEquals(new long[] {2, 2}, t.shape());
        assertArrayEquals(new float[] {1f, 2f, 3.5f, -4f}, t.asFloats());
        assertEquals(16, t.byteSize());
        assertEquals(4, t.elementCount());
        assertFalse(t.data().isDirect(), "small tensors live on the heap (they are copied into the engine anyway)");
        assertTrue(Tensor.ofFloats(new long[] {4096}, new float[4096]).data().isDirect(), "large ones are direct (zero-copy)");
        assertEquals(Float.floatToIntBits(1f), t.data().order(ByteOrder.LITTLE_ENDIAN).getInt(0));
        long[] shape = t.shape();
        shape[0] = 99;
        assertArrayEquals(new long[] {2, 2}, t.shape(), "shape() is a copy");
    }

    @Test
    void everyPrimitiveFactoryRoundTrips() {
        assertArrayEquals(new int[] {1, -2, 3}, Tensor.ofInts(new long[] {3}, 1, -2, 3).asInts());
        assertArrayEquals(new long[] {1L << 40, -7}, Tensor.ofLongs(new long[] {2}, 1L << 40, -7).asLongs());
        assertArrayEquals(new double[] {0.25, 1e300}, Tensor.ofDoubles(new long[] {2}, 0.25, 1e300).asDoubles());
        assertArrayEquals(new short[] {-1, 7}, Tensor.ofShorts(new long[] {2}, (short) -1, (short) 7).asShorts());
        assertArrayEquals(new boolean[] {true, false}, Tensor.ofBooleans(new long[] {2}, true, false).asBooleans());
        assertEquals(DataType.INT64, Tensor.ofLongs(new long[] {1}, 5).dataType());
        assertEquals(DataType.BOOL, Tensor.ofBooleans(new long[] {0}).dataType());
    }

    @Test
    void bytesUseTritonsSerialisation() {
        Tensor t = Tensor.ofStrings(new long[] {3}, "héllo", "", "x");
        assertEquals(DataType.BYTES, t.dataType());
        assertArrayEquals(new String[] {"héllo", "", "x"}, t.asStrings());
        ByteBuffer d = t.data();
        assertEquals(6, d.getInt(0), "4-byte little-endian length, then the UTF-8 bytes");
        assertEquals(4 + 6 + 4 + 0 + 4 + 1, t.byteSize());
        byte[][] raw = Tensor.ofBytes(new long[] {1, 2}, new byte[] {0, 1}, new byte[] {(byte) 255}).asBytes();
        assertArrayEquals(new byte[] {(byte) 255}, raw[1]);
    }

    @Test
    void badTensorsAreInvalidArgument() {
        TritonLiteException e = assertThrows(TritonLiteException.class, () -> Tensor.ofFloats(new long[] {3}, 1f, 2f));
        assertEquals(TritonLiteException.Code.INVALID_ARG, e.code());
        assertEquals(3, e.codeValue());
        assertThrows(TritonLiteException.class, () -> Tensor.ofInts(new long[] {-1}, 1));
        assertThrows(TritonLiteException.class, () -> Tensor.ofStrings(new long[] {2}, "one"));
        e = assertThrows(TritonLiteException.class, () -> Tensor.ofInts(new long[] {1}, 1).asFloats());
        assertEquals("the tensor is INT32, not FP32", e.getMessage());
        e = assertThrows(TritonLiteException.class,
                () -> Tensor.of(DataType.FP32, new long[] {2}, ByteBuffer.allocateDirect(7)));
        assertTrue(e.getMessage().contains("byte size 7 does not match shape [2] of FP32 (8 bytes expected)"), e.getMessage());
        assertThrows(TritonLiteException.class, () -> Tensor.of(DataType.INVALID, new long[] {1}, ByteBuffer.allocate(0)));
        ByteBuffer truncated = ByteBuffer.allocateDirect(5).order(ByteOrder.LITTLE_ENDIAN).putInt(9).put((byte) 1);
        truncated.flip();
        assertThrows(TritonLiteException.class, () -> Tensor.of(DataType.BYTES, new long[] {1}, truncated));
    }

    @Test
    void directBuffersAreWrappedNotCopied() {
        ByteBuffer direct = ByteBuffer.allocateDirect(8).order(ByteOrder.LITTLE_ENDIAN);
        direct.putFloat(0, 1f).putFloat(4, 2f);
        Tensor t = Tensor.of(DataType.FP32, new long[] {2}, direct);
        direct.putFloat(4, 42f);
        assertArrayEquals(new float[] {1f, 42f}, t.asFloats(), "same memory");

        ByteBuffer heap = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        heap.putFloat(0, 1f).putFloat(4, 2f);
        Tensor c = Tensor.of(DataType.FP32, new long[] {2}, heap);
        heap.putFloat(4, 42f);
        assertArrayEquals(new float[] {1f, 42f}, c.asFloats(), "heap buffers are wrapped too");
        assertTrue(c.directBuffer().isDirect(), "and copied only when the engine needs direct memory");
        assertArrayEquals(new float[] {1f, 42f}, Tensor.of(DataType.FP32, new long[] {2}, c.directBuffer()).asFloats());

        Tensor z = Tensor.allocate(DataType.INT32, 2, 2);
        z.data().putInt(12, 7);
        assertArrayEquals(new int[] {0, 0, 0, 7}, z.asInts());
    }

    @Test
    void enumsUseTritonsNumbers() {
        assertEquals(11, DataType.FP32.code());
        assertEquals(13, DataType.BYTES.code());
        assertEquals(DataType.BF16, DataType.fromCode(14));
        assertEquals(DataType.INVALID, DataType.fromCode(99));
        assertEquals(0, DataType.BYTES.byteSize());
        assertEquals(TritonLiteException.Code.CANCELLED, TritonLiteException.Code.fromValue(7));
        assertEquals(TritonLiteException.Code.UNKNOWN, new TritonLiteException(42, "x").code());
    }

    @Test
    void requestsPackEverythingForOneCrossing() {
        InferRequest r = new InferRequest("m").version(2).input("A", Tensor.ofInts(new long[] {1}, 5)).output("B", "B")
                .id("r1").sequence(9, true, false).parameter("tag", "q\"x").parameter("n", 3);
        Object[] p = r.packed();
        assertEquals("m", p[0]);
        assertEquals(2L, p[1]);
        assertArrayEquals(new String[] {"A"}, (String[]) p[2]);
        assertArrayEquals(new int[] {8}, (int[]) p[3]);
        assertArrayEquals(new String[] {"B"}, (String[]) p[6]);
        assertEquals(InferRequest.SEQUENCE_START, p[9]);
        assertEquals("{\"tag\":\"q\\\"x\",\"n\":3}", p[12]);
        assertThrows(TritonLiteException.class, () -> r.parameter("bad", new Object()));
        assertFalse(r.inputs().isEmpty());
    }
}
