"""Helpers for the framework backend tests: a config + a model file -> an instance -> batches of requests.

``execute_batch`` drives an instance the way a batching scheduler does: each request is validated
against the config (as the engine does), then the instance gets them all in one ``execute`` call, so the
concatenate/split path of :class:`~tritonlite.backends.batching.FrameworkInstance` runs for real.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from tritonlite.backends.base import LoadContext
from tritonlite.config import default_model_filename, normalize, parse_pbtxt
from tritonlite.request import InferenceRequest
from tritonlite.validation import IOSpec, normalize_request


def make_context(model_dir: Path, config: str, *, kind: str = "CPU", device_id: int = 0, version: int = 1, instance: str = "") -> LoadContext:
    """A LoadContext for ``model_dir/<version>/<default file>`` with ``config`` (pbtxt text)."""
    cfg = parse_pbtxt(config)
    name = cfg.name or model_dir.name
    cfg.name = name
    normalize(cfg, model_name=name, gpu_count=1 if kind == "GPU" else 0)
    if not cfg.default_model_filename:
        cfg.default_model_filename = default_model_filename(cfg)
    version_dir = model_dir / str(version)
    return LoadContext(
        model_name=name,
        model_version=version,
        config=cfg,
        model_dir=model_dir,
        version_dir=version_dir,
        model_path=version_dir / cfg.default_model_filename,
        instance_name=instance or f"{name}_0",
        instance_kind=kind,
        device_id=device_id,
    )


def execute_batch(instance: Any, config: Any, requests: Sequence[Mapping[str, np.ndarray]], outputs: Sequence[str] | None = None) -> list[dict[str, np.ndarray]]:
    """Validate each request against ``config`` and run them all as one batch; the outputs per request."""
    spec = IOSpec.from_config(config)
    reqs = []
    for inputs in requests:
        r = InferenceRequest(model_name=config.name, inputs=dict(inputs), requested_outputs=tuple(outputs) if outputs else None)
        normalize_request(r, spec, config.name)
        reqs.append(r)
    return [res.outputs for res in instance.execute(reqs)]
