"""tritonlite.ray's pure pieces, no cluster: which replicas the ingress may use (membership and the
control-log gate), how a request's route is read from KServe v2 HTTP and gRPC bodies, the rendezvous
pick, and the merged metrics page."""

from __future__ import annotations

import gzip
import json

import pytest

from ray_cluster import NEEDS_RAY

pytest.importorskip("ray.serve", reason=NEEDS_RAY)

from tritonlite.protos import grpc_service_pb2 as pb  # noqa: E402
from tritonlite.ray.autoscaling import pending_from_metrics_text  # noqa: E402
from tritonlite.ray.grpc_proxy import control_model_name, infer_sequence, rpc_methods  # noqa: E402
from tritonlite.ray.ingress import _sequence  # noqa: E402
from tritonlite.ray.membership import Membership, membership  # noqa: E402
from tritonlite.ray.metrics import merge_replica_pages  # noqa: E402
from tritonlite.ray.routing import rendezvous_pick, sequence_route  # noqa: E402

pytestmark = pytest.mark.ray


def test_joining_replicas_are_synced_until_a_control_call_then_gated() -> None:
    m = Membership()
    assert m.routable() is None and m.unsynced() == []
    changes: list[int] = []
    m.set_listener(lambda: changes.append(1))
    m.publish(["b", "a"])
    assert m.routable() == ("a", "b") and m.is_synced("a") and m.is_synced("b")
    m.set_control_version(1)  # a load/unload happened: newcomers replay the log first
    m.publish(["a", "b", "c"])
    assert m.unsynced() == ["c"] and not m.is_synced("c")
    m.mark_synced("c")
    assert m.unsynced() == [] and m.is_synced("c")
    m.publish(["a", "c"])  # b left: forgotten, and marking a gone replica does nothing
    m.mark_synced("b")
    assert m.routable() == ("a", "c") and not m.is_synced("b") and changes == [1, 1, 1]
    assert membership("app", "TritonReplica") is membership("app", "TritonReplica")
    assert membership("app", "TritonReplica") is not membership("other", "TritonReplica")


def test_sequence_route_of_http_bodies() -> None:
    path = "/v2/models/accum/infer"
    body = json.dumps({"inputs": [], "parameters": {"sequence_id": 42, "sequence_end": True}}).encode()
    assert _sequence(path, {}, body) == (42, True)
    assert _sequence("/v2/models/accum/versions/2/infer", {}, body) == (42, True)
    assert _sequence(path, {"content-encoding": "gzip"}, gzip.compress(body)) == (42, True)
    head = json.dumps({"inputs": [], "parameters": {"sequence_id": "s-1"}}).encode()
    assert _sequence(path, {"inference-header-content-length": str(len(head))}, head + b"\x00\x01binary") == ("s-1", False)
    assert _sequence(path, {}, b'{"parameters": {"sequence_id": true}}') == (None, False)
    assert _sequence(path, {}, b"{not json") == (None, False)  # the replica answers it with the door's 400
    assert _sequence("/v2/models/accum/ready", {}, body) == (None, False)
    assert sequence_route(42) == "seq:42" and sequence_route("s-1", end=True) == "seq-end:s-1"
    assert sequence_route(0) is None and sequence_route("") is None and sequence_route(None) is None


def test_sequence_route_of_grpc_requests() -> None:
    req = pb.ModelInferRequest(model_name="accum")
    assert infer_sequence(req.SerializeToString()) == (None, False)
    req.parameters["sequence_id"].uint64_param = 7
    req.parameters["sequence_end"].bool_param = True
    assert infer_sequence(req.SerializeToString()) == (7, True)
    req.parameters["sequence_id"].string_param = "abc"
    req.parameters["sequence_end"].bool_param = False
    assert infer_sequence(req.SerializeToString()) == ("abc", False)
    assert infer_sequence(b"\xffsequence_id\xff") == (None, False)
    load = pb.RepositoryModelLoadRequest(model_name="square").SerializeToString()
    assert control_model_name("RepositoryModelLoad", load) == "square"
    methods = rpc_methods()
    assert methods["ModelStreamInfer"] is True and methods["ModelInfer"] is False and len(methods) == 20


def test_rendezvous_pick_moves_only_the_keys_of_a_replica_that_leaves() -> None:
    ids = ["r1", "r2", "r3"]
    before = {k: rendezvous_pick(k, ids) for k in map(str, range(300))}
    assert set(before.values()) == set(ids)
    after = {k: rendezvous_pick(k, ["r1", "r3"]) for k in before}
    assert all(after[k] == v for k, v in before.items() if v != "r2")


def test_merged_metrics_page_labels_every_sample_once_per_family() -> None:
    page = ("# HELP nv_inference_request_success Number of successful inference requests\n"
            "# TYPE nv_inference_request_success counter\n"
            'nv_inference_request_success{model="m",version="1"} 3\n'
            "# HELP nv_inference_pending_request_count Instantaneous number of pending requests\n"
            "# TYPE nv_inference_pending_request_count gauge\n"
            'nv_inference_pending_request_count{model="m",version="1"} 2\n'
            'nv_inference_pending_request_count{model="n",version="1"} 1.5\n')
    merged = merge_replica_pages({"b": page, "a": page.replace(" 3\n", " 4\n")})
    lines = merged.splitlines()
    assert lines.count("# TYPE nv_inference_request_success counter") == 1
    assert lines[2:4] == ['nv_inference_request_success{replica="a",model="m",version="1"} 4',
                          'nv_inference_request_success{replica="b",model="m",version="1"} 3']
    assert pending_from_metrics_text(page) == 3.5
    assert pending_from_metrics_text(merged) == 7.0
    assert merge_replica_pages({}) == ""
