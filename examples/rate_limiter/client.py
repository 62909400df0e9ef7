"""Triton's rate limiter: two models share one "gpu_slot", so they never run at the same time, and
priority decides who goes first while both wait.

    python examples/rate_limiter/client.py                 # in-process engine (both parts)

    tritonlite serve --model-repository examples/rate_limiter/model_repository \\
        --rate-limit execution_count --rate-limit-resource gpu_slot:1
    python examples/rate_limiter/client.py --url 127.0.0.1:8000    # part 1 over HTTP with tritonclient

Part 1 sends 8 requests to each model at once; every response carries the [start, end] of the
execution that served it, and the client counts executions that overlapped (none: the limiter lets
one model at a time hold the slot). Part 2 (in-process, where ``engine.rate_limiter.waiting()`` shows
who waits) holds the slot with one detector request, queues 6 requests per model, lets go, and prints
the order they ran in: the limiter serves the waiting model with the lowest executions x priority, so
detector (priority 1) gets two turns for each classifier (priority 2) turn.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent / "model_repository"
MODELS = ("detector", "classifier")


def overlap_report(spans: list[tuple[int, int]]) -> str:
    """How many executions, the most running at once, and how many started before the previous one ended."""
    spans = sorted(set(spans))  # a batch's requests share one execution
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda p: (p[0], p[1]))
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    overlapping = sum(1 for a, b in zip(spans, spans[1:]) if b[0] < a[1])
    return f"{len(spans)} executions, at most {most} at a time, {overlapping} overlapping"


def in_process() -> None:
    from tritonlite import InferenceEngine

    options = {"rate_limit": "execution_count", "rate_limit_resources": ["gpu_slot:1"]}  # the CLI flags' names
    x = {"X": np.ones(1, np.float32)}
    with InferenceEngine(REPO, **options) as engine:
        print(f"resources: {engine.rate_limiter.resources()}")
        futures = [engine.submit(model, x) for _ in range(8) for model in MODELS]
        spans = [tuple(f.result(timeout=60).as_numpy("SPAN").tolist()) for f in futures]
        print(f"exclusive: {overlap_report(spans)}")

    # a fresh engine: the limiter weighs executions since load (count x priority), so part 1 would tilt part 2
    with InferenceEngine(REPO, **options) as engine:
        with tempfile.TemporaryDirectory() as tmp:
            release = Path(tmp) / "release"
            holder = engine.submit("detector", x, parameters={"hold_until_exists": str(release)})
            queued = [(model, engine.submit(model, x)) for model in MODELS for _ in range(6)]
            deadline = time.monotonic() + 30
            while sorted(engine.rate_limiter.waiting()) != ["classifier"]:  # detector's next waits in its own queue
                assert time.monotonic() < deadline, engine.rate_limiter.waiting()
                time.sleep(0.001)
            release.touch()
            holder.result(timeout=60)
            ran = sorted((f.result(timeout=60).as_numpy("SPAN")[0], model) for model, f in queued)
        order = " ".join(model[0].upper() for _, model in ran)
        print(f"priority: order after the slot was freed: {order}")
        last_d = max(i for i, (_, model) in enumerate(ran) if model == "detector")
        d = 1 + 6  # the holder and the 6 queued
        c = [model for _, model in ran[:last_d]].count("classifier")
        print(f"priority: by detector's last turn: detector {d} runs x priority 1 = {d}, "
              f"classifier {c} runs x priority 2 = {2 * c} (the limiter serves the lowest product first)")


def over_http(url: str) -> None:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url, concurrency=16)  # 16 connections: all requests in flight at once
    try:
        inp = httpclient.InferInput("X", [1], "FP32")
        inp.set_data_from_numpy(np.ones(1, np.float32))
        pending = [client.async_infer(model, [inp]) for _ in range(8) for model in MODELS]
        spans = [tuple(p.get_result().as_numpy("SPAN").tolist()) for p in pending]
    finally:
        client.close()
    print(f"exclusive over HTTP: {overlap_report(spans)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a tritonlite/Triton HTTP endpoint serving model_repository with the rate limiter on")
    args = parser.parse_args()
    if args.url:
        over_http(args.url)
    else:
        in_process()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
