"""The ``python`` backend: runs Triton ``model.py`` files in this process (DESIGN decision 3).

Loading a model is: optional auto-complete (the model's static ``auto_complete_config`` edits the
config in Triton's JSON form), then one :class:`PythonModelInstance` per instance-group count.
"""

from __future__ import annotations

import json

from tritonlite.backends.base import LoadContext
from tritonlite.backends.python import pb_utils
from tritonlite.backends.python._env import isolation_options
from tritonlite.backends.python.instance import PythonModelInstance
from tritonlite.backends.python.isolated import IsolatedPythonInstance
from tritonlite.backends.python.loader import find_model_class, import_model_module
from tritonlite.config import config_to_json, parse_json_config
from tritonlite.errors import InternalError, InvalidArgumentError


class PythonBackend:
    """Backend table entry for ``backend: "python"``."""

    name = "python"

    def auto_complete_config(self, ctx: LoadContext) -> None:
        """Let ``TritonPythonModel.auto_complete_config`` fill the config; ``ctx.config`` is replaced in place."""
        module = import_model_module(ctx.model_name, ctx.model_version, ctx.model_path, ctx.version_dir, ctx.model_dir)
        cls = find_model_class(module, ctx.model_name, ctx.model_path)
        hook = getattr(cls, "auto_complete_config", None)
        if hook is None:
            return
        data = config_to_json(ctx.config)
        data["name"] = data.get("name") or ctx.model_name  # Triton names the config before auto-complete
        current = pb_utils.ModelConfig(json.dumps(data))
        try:
            returned = hook(current)
        except Exception as exc:
            raise InvalidArgumentError(
                f"auto_complete_config function in model '{ctx.model_name}' failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(returned, pb_utils.ModelConfig):
            raise InternalError(
                f"auto_complete_config function in model '{ctx.model_name}' must return a valid pb.ModelConfig object."
            )
        ctx.config.CopyFrom(parse_json_config(json.dumps(returned._model_config)))

    def create_instance(self, ctx: LoadContext) -> PythonModelInstance | IsolatedPythonInstance:
        """In-process by default; a child process when the config asks for isolation (see ``_env``)."""
        options = isolation_options(ctx.config, ctx.model_name, ctx.model_dir)
        if options is not None:
            return IsolatedPythonInstance(ctx, options)
        return PythonModelInstance(ctx)


__all__ = ["PythonBackend"]
