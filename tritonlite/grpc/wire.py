"""``ModelInfer`` messages decoded and encoded from cached plans, for clients that repeat themselves.

A client sends the same request shape over and over: in a serialized ``ModelInferRequest`` everything
before ``raw_input_contents`` (field 7: model, version, id, parameters, the inputs' names, datatypes
and shapes, the requested outputs) is then the same bytes every time, and only the tensors differ.
:class:`InferPlans` keys a decode plan on exactly those bytes: the first such message is parsed and
decoded in full (:func:`~tritonlite.grpc.codec.decode_infer_request`, every check), later ones only
slice their raw tensors out and rebuild the core request from the plan. Responses go the same way:
the serialized ``ModelInferResponse`` without ``raw_output_contents`` (field 6) depends only on the
model, version, id and the outputs' names, datatypes and shapes, so it is made by protobuf once and
the tensors are appended as field-6 entries.

Why it is safe: a plan is only ever used for byte-identical leading fields, and the trailing part
must be nothing but field-7 entries, one per raw input, or the message takes the full path; the
tensors themselves still go through :func:`~tritonlite.protocol.tensors.from_raw` and its size checks.
Requests that use shared memory, typed ``contents``, or outputs with classification or shared memory
are never planned. Protobuf serializes fields in field-number order, so the appended entries sit
exactly where ``SerializeToString`` would put them.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from tritonlite.grpc.codec import _NUMPY_TO_PROTOCOL, DecodedRequest, _raw_bytes, build_core_request, encode_infer_response
from tritonlite.protocol.tensors import from_raw
from tritonlite.protos import grpc_service_pb2 as pb
from tritonlite.request import InferResult

_RAW_INPUT_TAG = 0x3A  # field 7, length-delimited
_RAW_OUTPUT_TAG = b"\x32"  # field 6, length-delimited
_MAX_PLANS = 512


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result, shift = b & 0x7F, 7
    pos += 1
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _varint_bytes(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class _Plan:
    __slots__ = ("model", "version", "version_text", "request_id", "inputs", "requested", "options", "empty_final")

    def __init__(self, decoded: DecodedRequest, msg: pb.ModelInferRequest, options: Any) -> None:
        request = decoded.request
        self.model = request.model_name
        self.version = request.model_version
        self.version_text = decoded.version_text
        self.request_id = request.id
        self.inputs = tuple((t.name, t.datatype, tuple(t.shape)) for t in msg.inputs)
        self.requested = request.requested_outputs
        self.options = options
        self.empty_final = decoded.enable_empty_final

    def build(self, raws: list[bytes]) -> DecodedRequest:
        model = self.model
        inputs = {name: from_raw(datatype, shape, raw, name=name, model=model, defer=True)
                  for (name, datatype, shape), raw in zip(self.inputs, raws)}
        request = build_core_request(model, inputs, self.requested, self.version, self.request_id, self.options)
        return DecodedRequest(request, self.version_text, {}, self.empty_final)


class InferPlans:
    """Per-front caches of request decode plans and response prefixes (loop thread only)."""

    def __init__(self, parse: Callable[[bytes], Any]) -> None:
        self._parse = parse  # bytes -> message or Malformed (the servicer's deserializer)
        self._plans: dict[bytes, _Plan] = {}
        self._heads: dict[tuple[Any, ...], bytes] = {}
        #: (leading bytes, plan) of the last planned message
        self._last: tuple[bytes, _Plan] | None = None

    # ---- requests -------------------------------------------------------------------------------------
    def decode(self, payload: bytes, registry: Any, full: Callable[[Any, Any], DecodedRequest]) -> DecodedRequest | Any:
        """The decoded request of ``payload``, or the Malformed the parser returned for it.

        ``full(msg, registry)`` is the full decoder (its errors propagate, as they would without plans).
        """
        n = len(payload)
        last = self._last
        if last is not None:  # the common case: the same shape as the previous call
            prefix, plan = last
            start = len(prefix)
            if start < n and payload[start] == _RAW_INPUT_TAG and payload.startswith(prefix):
                raws = self._raws(payload, start, n, len(plan.inputs))
                if raws is not None:
                    return plan.build(raws)
        start, n = self._split(payload)
        if start >= 0:
            prefix = payload[:start]
            plan = self._plans.get(prefix)
            if plan is not None:
                raws = self._raws(payload, start, n, len(plan.inputs))
                if raws is not None:
                    self._last = (prefix, plan)
                    return plan.build(raws)
        msg = self._parse(payload)
        if not isinstance(msg, pb.ModelInferRequest):
            return msg  # Malformed
        decoded = full(msg, registry)
        if start >= 0 and self._plannable(msg, decoded):
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
                self._last = None
            plan = self._plans[payload[:start]] = _Plan(decoded, msg, decoded.options)
            self._last = (payload[:start], plan)
        return decoded

    @staticmethod
    def _split(payload: bytes) -> tuple[int, int]:
        """Offset of the first top-level field 7 (-1 when the leading fields are not all length-delimited)."""
        pos, n = 0, len(payload)
        try:
            while pos < n:
                tag = payload[pos]
                if tag == _RAW_INPUT_TAG:
                    return pos, n
                if tag & 0x07 != 2 or tag >= 0x80:
                    return -1, n
                length, pos = _varint(payload, pos + 1)
                pos += length
        except (IndexError, ValueError):
            return -1, n
        return (pos, n) if pos == n else (-1, n)

    @staticmethod
    def _raws(payload: bytes, pos: int, n: int, count: int) -> list[bytes] | None:
        raws: list[bytes] = []
        try:
            while pos < n:
                if payload[pos] != _RAW_INPUT_TAG:
                    return None
                length, p = _varint(payload, pos + 1)
                pos = p + length
                if pos > n:
                    return None
                raws.append(payload[p:pos])
        except (IndexError, ValueError):
            return None
        return raws if len(raws) == count else None

    @staticmethod
    def _plannable(msg: pb.ModelInferRequest, decoded: DecodedRequest) -> bool:
        if decoded.outputs or len(msg.raw_input_contents) != len(msg.inputs):
            return False  # output shm/classification, or inputs not all raw
        for t in msg.inputs:
            if len(t.parameters) or t.HasField("contents") or t.datatype == "BYTES":
                return False
        return True

    # ---- responses ------------------------------------------------------------------------------------
    def encode(self, result: InferResult, decoded: DecodedRequest, info: Callable[[str], Any], registry: Any) -> bytes:
        """The serialized ``ModelInferResponse`` of ``result`` (what ``encode_infer_response`` + serialize give)."""
        request = decoded.request
        if decoded.outputs or result.parameters:
            return encode_infer_response(result, decoded, info, registry).SerializeToString()
        version = result.model_version or (str(request.model_version) if request.model_version > 0 else "")
        key: list[Any] = [result.model_name or request.model_name, version, result.id or request.id]
        raws: list[bytes] = []
        for name, array in result.outputs.items():
            array = np.asarray(array)
            datatype = _NUMPY_TO_PROTOCOL.get(array.dtype)
            if datatype is None:  # BYTES, BF16/UINT16: the general path decides
                return encode_infer_response(result, decoded, info, registry).SerializeToString()
            key.append((name, datatype, array.shape))
            raws.append(_raw_bytes(array))
        head_key = tuple(key)
        head = self._heads.get(head_key)
        if head is None:
            resp = pb.ModelInferResponse(model_name=key[0], model_version=key[1], id=key[2])
            for name, datatype, shape in key[3:]:
                resp.outputs.add(name=name, datatype=datatype, shape=shape)
            head = resp.SerializeToString()
            if len(self._heads) >= _MAX_PLANS:
                self._heads.clear()
            self._heads[head_key] = head
        parts = [head]
        for raw in raws:
            parts.append(_RAW_OUTPUT_TAG)
            parts.append(_varint_bytes(len(raw)))
            parts.append(raw)
        return b"".join(parts)


__all__ = ["InferPlans"]
