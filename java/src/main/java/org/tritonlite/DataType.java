package org.tritonlite;

/** Tensor element types; the numbers are Triton's {@code TRITONSERVER_DataType} values. */
public enum DataType {
    INVALID(0, 0),
    BOOL(1, 1),
    UINT8(2, 1),
    UINT16(3, 2),
    UINT32(4, 4),
    UINT64(5, 8),
    INT8(6, 1),
    INT16(7, 2),
    INT32(8, 4),
    INT64(9, 8),
    FP16(10, 2),
    FP32(11, 4),
    FP64(12, 8),
    /** Variable-length byte strings, serialised as Triton does: per element a 4-byte little-endian length, then the bytes. */
    BYTES(13, 0),
    /** bfloat16, carried as its raw 16-bit pattern. */
    BF16(14, 2);

    private static final DataType[] BY_CODE = values();

    private final int code;
    private final int byteSize;

    DataType(int code, int byteSize) {
        this.code = code;
        this.byteSize = byteSize;
    }

    /** Triton's enum number. */
    public int code() {
        return code;
    }

    /** Bytes per element; 0 for {@link #BYTES} (variable) and {@link #INVALID}. */
    public int byteSize() {
        return byteSize;
    }

    /** The type with Triton's enum number {@code code}; {@link #INVALID} for unknown numbers. */
    public static DataType fromCode(int code) {
        return code >= 0 && code < BY_CODE.length ? BY_CODE[code] : INVALID;
    }
}
