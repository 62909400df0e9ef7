"""HTTP fuzzing of a ``tritonlite serve`` child process with hypothesis: ≥ 10,000 mutated requests.

Each request is written on a raw socket (so framing can lie: Content-Length, chunked encoding,
Inference-Header-Content-Length, compression), and every answer must be a well-formed HTTP response
that is not a 5xx (503 excepted: overload), with Triton's ``{"error": ...}`` body on errors. Afterwards
the server must be alive, ready, and its resident memory flat. The ``@example`` cases are inputs that
found bugs here (kept as regression cases).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import socket
import zlib
from pathlib import Path
from typing import Any, Iterator

import pytest
from fuzz_models import FUZZ_MODELS, build_fuzz_repo

from served import ServedProcess

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytestmark = pytest.mark.fuzz

MAX_INPUT = 256 * 1024  # small body limit: oversize and bomb cases stay cheap
DRAWS = 5  # requests drawn by hypothesis per example ...
MUTANTS = 4  # ... each sent as drawn and as this many cheap byte/token mutants
EXAMPLES = int(os.environ.get("TRITONLITE_FUZZ_EXAMPLES", "410"))  # x DRAWS x (1 + MUTANTS) = 10,250 requests
#: 503: overload (UNAVAILABLE); 501: Triton's UNSUPPORTED (SPEC §1.6: unknown Content-Encoding, client shm disabled)
ALLOWED_5XX = (501, 503)
STATS: dict[str, Any] = {"sent": 0, "status": {}, "5xx": 0, "no_answer": 0, "rss": [], "failures": []}

#: 64 MiB of zeros, deflated once (a decompression bomb of ~65 KB on the wire)
_BOMB_RAW = zlib.compress(b"\0" * (64 * 1024 * 1024), 9)
_BOMB_GZIP = gzip.compress(b"\0" * (64 * 1024 * 1024), 9)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProcess]:
    repo = build_fuzz_repo(tmp_path_factory.mktemp("fuzz_http") / "models")
    with ServedProcess(repo, ["--http-max-input-size", str(MAX_INPUT), "--allow-grpc", "false"]) as proc:
        yield proc


# ---- the raw client ----------------------------------------------------------------------------------------
def _exchange(url: str, payload: bytes, half_close: bool) -> bytes:
    host, port = url.split(":")
    with socket.create_connection((host, int(port)), timeout=10.0) as s:
        try:
            s.sendall(payload)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError:  # EPIPE, ECONNRESET, ENOTCONN: the server may answer 400 and close before reading it all
            pass
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        except socket.timeout:
            raise AssertionError(f"no complete answer within 10 s to {payload[:300]!r}") from None
        return b"".join(chunks)


def _check(url: str, payload: bytes, half_close: bool = False) -> None:
    """Send one request; a bad answer is recorded (all of them are reported at the end, unshrunk)."""
    try:
        data = _exchange(url, payload, half_close)
    except AssertionError as exc:
        STATS["no_answer"] += 1
        STATS["failures"].append(str(exc)[:400])
        return
    STATS["sent"] += 1
    if not data.startswith(b"HTTP/1.1 "):
        STATS["no_answer"] += 1
        STATS["failures"].append(f"no HTTP answer ({data[:100]!r}) to {payload[:300]!r}")
        return
    while data.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"):  # the interim answer to Expect: 100-continue
        data = data[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
    status = int(data[9:12])
    STATS["status"][status] = STATS["status"].get(status, 0) + 1
    if status >= 500 and status not in ALLOWED_5XX:
        STATS["5xx"] += 1
        STATS["failures"].append(f"{status} answer {data[-300:]!r} to {payload[:300]!r}")
        return
    head, _, body = data.partition(b"\r\n\r\n")
    if status >= 400 and b"chunked" not in head.lower():
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        doc = json.loads(body[:length])
        assert set(doc) == {"error"} and isinstance(doc["error"], str) and doc["error"], doc


# ---- request strategies -------------------------------------------------------------------------------------
MODELS = sorted(FUZZ_MODELS)
DTYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES", "BF16"]
BIG = [0, -1, -2**63, 2**31, 2**32 + 1, 2**62, 2**63 - 1, 2**63, 2**64, 2**64 + 7, 10**30]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=6), st.sampled_from(BIG))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=4), c, max_size=3),
                           max_leaves=12)
dims = st.one_of(st.integers(0, 6), st.integers(0, 6), st.sampled_from(BIG), st.integers(-5, -1), json_values)
shapes = st.one_of(st.lists(st.integers(0, 5), max_size=3), st.lists(dims, max_size=5), json_values,
                   st.just([2**32, 2**32]), st.just([2**21, 2**21, 2**21]), st.just([0, 2**63 - 1]), st.just([2**62, 4]))
names = st.one_of(st.sampled_from(["INPUT0", "INPUT1", "OUTPUT0"]), st.text(max_size=8), json_values)
datatypes = st.one_of(st.sampled_from(DTYPES), st.sampled_from(["", "fp32", "FP99", "TYPE_FP32"]), json_values)
TENSOR_PARAM_KEYS = ["binary_data_size", "binary_data", "shared_memory_region", "shared_memory_byte_size",
                     "shared_memory_offset", "classification", "binary_data_output"]
REQUEST_PARAM_KEYS = ["priority", "timeout", "sequence_id", "sequence_start", "sequence_end", "binary_data_output",
                      "shared_memory_region", "custom"]
tensor_params = st.one_of(st.dictionaries(st.sampled_from(TENSOR_PARAM_KEYS) | st.text(max_size=4), scalars, max_size=3),
                          json_values)
request_params = st.one_of(st.dictionaries(st.sampled_from(REQUEST_PARAM_KEYS) | st.text(max_size=4), scalars, max_size=3),
                           json_values)


@st.composite
def consistent_input(draw: Any, model: str) -> dict[str, Any]:
    """An input that matches the data it carries (reaches the engine's checks and the model)."""
    names_, dtype, model_dims = FUZZ_MODELS[model]
    dtype = draw(st.sampled_from([dtype, dtype, draw(st.sampled_from(DTYPES))]))
    shape = [draw(st.integers(0, 3)) if d < 0 else d for d in model_dims]
    if draw(st.booleans()) and model == "batched_uint8":
        shape = [draw(st.integers(0, 10))] + shape
    count = 1
    for d in shape:
        count *= d
    element = {"BOOL": st.booleans(), "BYTES": st.text(max_size=4), "FP32": st.floats(width=32),
               "FP16": st.floats(width=16)}.get(dtype, st.integers(0, 255))
    data = draw(st.lists(element, min_size=count, max_size=count))
    return {"name": draw(st.sampled_from(names_)), "shape": shape, "datatype": dtype, "data": data}


@st.composite
def infer_docs(draw: Any, model: str) -> Any:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(json_values)
    if kind <= 4:
        inputs = [draw(consistent_input(model)) for _ in FUZZ_MODELS[model][0]]
    else:
        entry = st.fixed_dictionaries({"name": names, "shape": shapes, "datatype": datatypes},
                                      optional={"data": json_values, "parameters": tensor_params})
        inputs = draw(st.one_of(st.lists(entry, max_size=3), json_values))
    doc: dict[str, Any] = {"inputs": inputs}
    if draw(st.booleans()):
        doc["id"] = draw(st.one_of(st.text(max_size=6), json_values))
    if draw(st.integers(0, 3)) == 0:
        doc["parameters"] = draw(request_params)
    if draw(st.integers(0, 3)) == 0:
        doc["outputs"] = draw(st.one_of(st.lists(st.fixed_dictionaries({"name": names}, optional={"parameters": tensor_params}),
                                                 max_size=2), json_values))
    return doc


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()


@st.composite
def bodies(draw: Any, model: str) -> tuple[bytes, dict[str, str]]:
    """A body and the headers it needs (some of them lying)."""
    headers: dict[str, str] = {}
    kind = draw(st.integers(0, 11))
    if kind == 0:
        return draw(st.binary(max_size=200)), headers
    doc = draw(infer_docs(model))
    body = _json_bytes(doc)
    if kind == 1:  # byte-level mutation of a JSON body
        cut = draw(st.integers(0, len(body)))
        body = body[:cut] + draw(st.binary(max_size=8)) + body[cut + draw(st.integers(0, 4)):]
    elif kind in (2, 3):  # binary tensor extension, sizes that may lie
        names_, dtype, model_dims = FUZZ_MODELS[model]
        raw = draw(st.binary(max_size=96))
        declared = draw(st.one_of(st.just(len(raw)), st.integers(-3, 200), st.sampled_from(BIG)))
        shape = draw(st.one_of(st.just([len(raw) // 4]), st.just([max(d, 1) for d in model_dims]), shapes))
        doc = {"inputs": [{"name": n, "shape": shape, "datatype": draw(st.sampled_from([dtype, *DTYPES])),
                           "parameters": {"binary_data_size": declared}} for n in names_],
               "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": draw(st.booleans())}}]}
        header = _json_bytes(doc)
        body = header + raw * len(names_)
        ihcl = draw(st.one_of(st.just(str(len(header))), st.integers(-2, len(body) + 50).map(str), st.sampled_from(BIG).map(str),
                              st.text(max_size=5)))
        headers["Inference-Header-Content-Length"] = ihcl
    elif kind == 4:  # the whole body is the single input (IHCL: 0)
        body = draw(st.binary(max_size=64))
        headers["Inference-Header-Content-Length"] = "0"
    elif kind in (5, 6):  # compression, good or bad
        enc = draw(st.sampled_from(["gzip", "deflate", "br", "gzip, deflate", "GZIP", "identity", "x-gzip"]))
        mode = draw(st.integers(0, 4))
        if mode == 0:
            body = gzip.compress(body) if "gzip" in enc.lower() else zlib.compress(body)
        elif mode == 1:
            packed = gzip.compress(body) if "gzip" in enc.lower() else zlib.compress(body)
            body = packed[: draw(st.integers(0, len(packed)))]
        elif mode == 2:
            body = draw(st.binary(max_size=64))
        elif mode == 3:
            body = _BOMB_GZIP if "gzip" in enc.lower() else _BOMB_RAW
        else:  # trailing garbage after a complete stream
            body = (gzip.compress(body) if "gzip" in enc.lower() else zlib.compress(body)) + draw(st.binary(min_size=1, max_size=8))
        headers["Content-Encoding"] = enc
    elif kind == 7:  # larger than the limit
        body = b'{"inputs":[' + b" " * (MAX_INPUT + draw(st.integers(1, 4096))) + b"]}"
    if draw(st.integers(0, 5)) == 0:
        headers["Accept-Encoding"] = draw(st.sampled_from(["gzip", "deflate", "br;q=1, gzip;q=0.5", "gzip;q=abc", "*"]))
    return body, headers


paths = st.one_of(
    st.sampled_from(MODELS).map(lambda m: f"/v2/models/{m}/infer"),
    st.sampled_from(MODELS).map(lambda m: f"/v2/models/{m}/infer"),
    st.tuples(st.sampled_from(MODELS), st.sampled_from(["1", "2", "0", "99999999999999999999999", "007"])).map(
        lambda t: f"/v2/models/{t[0]}/versions/{t[1]}/infer"),
    st.sampled_from(["/v2", "/v2/health/ready", "/v2/health/live", "/v2/models/stats", "/v2/logging", "/v2/trace/setting",
                     "/v2/repository/index", "/v2/repository/models/identity_fp32/load",
                     "/v2/repository/models/identity_fp32/unload", "/v2/systemsharedmemory/region/r/register",
                     "/v2/cudasharedmemory/region/r/register", "/v2/systemsharedmemory/status",
                     "/v2/models/identity_fp32/generate", "/v2/models/identity_fp32/config", "/v2/models/%ff%00/infer",
                     "/v2/models/identity_fp32/trace/setting", "/v2/models/identity_fp32/ready"]),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40).map(lambda p: "/" + p),
)


@st.composite
def http_requests(draw: Any) -> tuple[list[str], bytes, int, bytes]:
    """One request as (request line + headers, body, framing, chunk tail); see :func:`_assemble`."""
    path = draw(paths)
    model = path.split("/")[3] if path.startswith("/v2/models/") and path.split("/")[3] in FUZZ_MODELS else draw(st.sampled_from(MODELS))
    method = draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]))
    body, headers = draw(bodies(model))
    framing = draw(st.integers(0, 9))
    extra: list[tuple[str, str]] = []
    if draw(st.integers(0, 7)) == 0:  # absurd headers
        extra.append(draw(st.sampled_from([
            ("X-Long", "a" * draw(st.integers(1000, 300_000))),
            ("Content-Type", "application/json; charset=" + "x" * 500),
            ("Content-Length", "-5"), ("Content-Length", "abc"), ("Content-Length", "99999999999999999999999"),
            ("Transfer-Encoding", "gzip"), ("Expect", "100-continue"), ("Connection", "upgrade"), ("Upgrade", "h2c"),
            ("Inference-Header-Content-Length", "99999999999999999999999"), ("Host", "\x7f\x01"),
        ])))
        for _ in range(draw(st.integers(0, 3))):
            extra.append(("X-Many-" + str(draw(st.integers(0, 10**6))), draw(st.text(alphabet="abc ;=\t", max_size=20))))
    lines = [f"{method} {path} HTTP/1.1", "Host: fuzz", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()] + [f"{k}: {v}" for k, v in extra]
    tail = draw(st.sampled_from([b"0\r\n\r\n", b"0\r\n\r\n", b"zz\r\n", b"5\r\nab", b""]))
    return lines, body, framing * 1000 + draw(st.integers(1, 100)), tail


def _assemble(lines: list[str], body: bytes, framing: int, tail: bytes) -> tuple[bytes, bool]:
    """Raw bytes (``Connection: close``) and whether to half-close after sending (the body is cut short)."""
    framing, delta = divmod(framing, 1000)
    lines = list(lines)
    half_close = False
    if framing == 0:  # chunked body, with uneven chunk sizes
        lines.append("Transfer-Encoding: chunked")
        chunks, rest, n = [], body, delta
        while rest:
            chunks.append(b"%x\r\n" % len(rest[:n]) + rest[:n] + b"\r\n")
            rest, n = rest[n:], n * 3 + 1
        payload_body = b"".join(chunks) + tail
        half_close = not payload_body.endswith(b"0\r\n\r\n")
    elif framing == 1:  # Content-Length past the body: the server must answer once we stop sending
        lines.append(f"Content-Length: {len(body) + delta}")
        payload_body, half_close = body, True
    elif framing == 2:  # Content-Length short of the body: the rest is read as a (bad) next request
        lines.append(f"Content-Length: {max(0, len(body) - delta)}")
        payload_body = body
    else:
        lines.append(f"Content-Length: {len(body)}")
        payload_body = body
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass")
    return head + payload_body, half_close


_DIGITS = re.compile(rb"-?[0-9]+")


def _mutate(rng: Any, body: bytes) -> bytes:
    """A cheap byte/token mutation of a body (many variants per hypothesis draw)."""
    if not body:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
    op = rng.randrange(6)
    i = rng.randrange(len(body))
    if op == 0:
        return body[:i] + bytes([rng.randrange(256)]) + body[i + 1:]
    if op == 1:
        return body[:i]
    if op == 2:
        return body[:i] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6))) + body[i:]
    if op == 3:
        j = rng.randrange(i, len(body) + 1)
        return body[:j] + body[i:j] + body[j:]
    numbers = list(_DIGITS.finditer(body))
    if not numbers:
        return body[::-1]
    m = rng.choice(numbers)
    if op == 4:
        value = str(rng.choice(BIG + [-1, 0, 3, 2**31 - 1, -2**31])).encode()
    else:
        value = rng.choice([b"true", b"null", b'"7"', b"[1]", b"{}", b"1e400", b"-0.0", b"NaN"])
    return body[:m.start()] + value + body[m.end():]


def _post(model: str, doc: Any, headers: dict[str, str] | None = None) -> tuple[bytes, bool]:
    """A well-framed request, for the regression examples."""
    body = doc if isinstance(doc, bytes) else _json_bytes(doc)
    head = [f"POST /v2/models/{model}/infer HTTP/1.1", "Host: fuzz", "Connection: close", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body, False


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(batch=st.lists(http_requests(), min_size=DRAWS, max_size=DRAWS), seed=st.integers(0, 2**32 - 1))
@example(batch=[_post("identity_var_int64", {"inputs": [{"name": "INPUT0", "shape": [0, 2**64], "datatype": "INT64", "data": []}]})], seed=None)
def test_mutated_http_requests(server: ServedProcess, batch: list[Any], seed: int | None) -> None:
    rng = random.Random(seed)  # the cheap mutations derive from a drawn seed (no draws during the test)
    if len(STATS["rss"]) == 0 and STATS["sent"] >= 500:
        STATS["rss"].append(server.rss_bytes())  # after warm-up: every model has run, buffers are sized
    for item in batch:
        if isinstance(item[0], bytes):  # an explicit (regression) example: raw bytes already
            _check(server.http, *item)
            continue
        lines, body, framing, tail = item
        _check(server.http, *_assemble(lines, body, framing, tail))
        for _ in range(MUTANTS):
            _check(server.http, *_assemble(lines, _mutate(rng, body), framing, tail))
    assert server.alive(), server.errors[-30:]


def test_server_healthy_and_memory_flat_after_fuzzing(server: ServedProcess) -> None:
    failures = STATS.pop("failures")
    assert failures == [], "\n".join(failures[:15]) + f"\n... {len(failures)} bad answers; {STATS}"
    assert STATS["sent"] >= 10_000, STATS
    assert STATS["5xx"] == 0 and STATS["no_answer"] == 0, STATS
    assert server.alive()
    assert server.ready() == 200
    before, after = STATS["rss"][0], server.rss_bytes()
    STATS["rss"].append(after)
    print(f"\nHTTP fuzz: {STATS['sent']} requests, statuses {dict(sorted(STATS['status'].items()))}, "
          f"RSS {before / 2**20:.1f} -> {after / 2**20:.1f} MiB")
    assert after - before < 24 * 2**20, (before, after)
