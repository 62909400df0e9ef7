"""A third-party tritonlite backend: ``Y = X * scale + offset``.

``scale`` comes from the model file ``<version>/affine.json`` (the version directory is the backend's to
read), ``offset`` from the config's ``parameters``. It shows the whole backend API
(:mod:`tritonlite.backends.base`):

- a backend object with ``name`` and ``create_instance(ctx)``, and optionally ``auto_complete_config(ctx)``;
- an instance with ``execute(requests)`` and ``close()``; deriving from
  :class:`tritonlite.backends.batching.FrameworkInstance` means writing only ``run(feeds, output_names)``,
  a mapping of named numpy arrays to named numpy arrays, batched along dimension 0.

It registers itself in ``pyproject.toml`` under the ``tritonlite.backends`` entry-point group, so after
``pip install examples/custom_backend`` a config.pbtxt with ``backend: "example_affine"`` finds it.
"""

from __future__ import annotations

import json
from typing import Mapping, Sequence

import numpy as np

from tritonlite.backends.base import LoadContext
from tritonlite.backends.batching import FrameworkInstance
from tritonlite.errors import InvalidArgumentError

__all__ = ["AffineBackend", "AffineInstance"]

MODEL_FILE = "affine.json"


class AffineInstance(FrameworkInstance):
    """One model instance; the engine calls ``execute`` (inherited) from the instance's thread."""

    def __init__(self, ctx: LoadContext) -> None:
        super().__init__(ctx.config)
        path = ctx.model_path if ctx.model_path.is_file() else ctx.version_dir / MODEL_FILE
        if not path.is_file():
            raise InvalidArgumentError(f"model '{ctx.model_name}' version {ctx.model_version} has no {MODEL_FILE}")
        self.scale = np.float32(json.loads(path.read_text())["scale"])
        offset = ctx.config.parameters["offset"].string_value if "offset" in ctx.config.parameters else "0"
        self.offset = np.float32(offset)
        self.input_name = ctx.config.input[0].name
        self.output_name = ctx.config.output[0].name

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str]) -> Mapping[str, np.ndarray]:
        return {self.output_name: feeds[self.input_name] * self.scale + self.offset}


class AffineBackend:
    """The object the entry point names: a zero-argument factory, created once per engine."""

    name = "example_affine"

    def auto_complete_config(self, ctx: LoadContext) -> None:
        """Optional: fill what config.pbtxt leaves out (called unless strict_model_config)."""
        cfg = ctx.config
        if not cfg.input:
            cfg.input.add(name="X", data_type=11).dims.append(-1)  # 11 = TYPE_FP32
        if not cfg.output:
            cfg.output.add(name="Y", data_type=11).dims.append(-1)

    def create_instance(self, ctx: LoadContext) -> AffineInstance:
        return AffineInstance(ctx)
