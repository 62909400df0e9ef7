package org.tritonlite;

/** Every error of the binding, carrying Triton's error code (the same codes as the Python and C APIs). */
public class TritonLiteException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** Triton's error codes ({@code TRITONSERVER_Error_Code}), in enum order. */
    public enum Code {
        UNKNOWN, INTERNAL, NOT_FOUND, INVALID_ARG, UNAVAILABLE, UNSUPPORTED, ALREADY_EXISTS, CANCELLED;

        private static final Code[] BY_VALUE = values();

        /** Triton's number for this code. */
        public int value() {
            return ordinal();
        }

        /** The code with Triton's number {@code value}; {@link #UNKNOWN} for unknown numbers. */
        public static Code fromValue(int value) {
            return value >= 0 && value < BY_VALUE.length ? BY_VALUE[value] : UNKNOWN;
        }
    }

    private final Code code;

    public TritonLiteException(Code code, String message) {
        super(message);
        this.code = code == null ? Code.UNKNOWN : code;
    }

    /** Used by the Python side of the binding. */
    public TritonLiteException(int code, String message) {
        this(Code.fromValue(code), message);
    }

    public TritonLiteException(Code code, String message, Throwable cause) {
        super(message, cause);
        this.code = code == null ? Code.UNKNOWN : code;
    }

    /** Triton's error code. */
    public Code code() {
        return code;
    }

    /** Triton's error code as its number (0 UNKNOWN ... 7 CANCELLED). */
    public int codeValue() {
        return code.value();
    }

    @Override
    public String toString() {
        return "TritonLiteException[" + code + "]: " + getMessage();
    }
}
