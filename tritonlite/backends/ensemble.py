"""The ``ensemble`` platform as a backend: no instances, only load-time checks of the step graph.

An ensemble runs no code of its own: :class:`tritonlite.scheduling.ensemble.EnsembleScheduler`
sends each step to its composing model through the engine. What lives here is what Triton checks
before an ensemble may load (core ``ValidateEnsembleSchedulingConfig``, ``ValidateEnsembleConfig``,
``CircularcyCheck``), with Triton's wording where it has one:

* :meth:`EnsembleBackend.check_graph` — the config alone: every step names a model and maps inputs
  and outputs, no tensor is produced twice, every step input is an ensemble input or a step output,
  the steps form no cycle, every ensemble output is written, nothing is unused;
* :meth:`EnsembleBackend.check_steps` — against the composing models' (loaded, completed) configs:
  mapped inputs/outputs exist, every required input is mapped, data types and shapes agree, batch
  sizes fit, no step reads tensors of two decoupled origins; it marks the ensemble decoupled when a
  composing model is (Triton fills ``model_transaction_policy`` the same way);
* :func:`find_ensemble_cycle` — ensembles that include each other.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from tritonlite.backends.base import LoadContext
from tritonlite.errors import InternalError, InvalidArgumentError

#: platform and backend name
ENSEMBLE = "ensemble"


def _step_label(cfg: Any, idx: int) -> str:
    return f"step {idx} (model '{cfg.ensemble_scheduling.step[idx].model_name}')"


def _dims_match(a: Sequence[int], b: Sequence[int]) -> bool:
    """Triton's CompareDimsWithWildcard: same rank, each dim equal or either one -1."""
    return len(a) == len(b) and all(x == y or x == -1 or y == -1 for x, y in zip(a, b))


def _fmt_dims(dims: Sequence[int]) -> str:
    return "[" + ",".join(str(int(d)) for d in dims) + "]"


class _Tensor:
    """What one model says about an ensemble tensor: data type and shape (plus the batch dim)."""

    __slots__ = ("model", "data_type", "dims", "full_dims")

    def __init__(self, model: str, batching: bool, data_type: int, dims: Iterable[int]) -> None:
        self.model = model
        self.data_type = data_type
        self.dims = [int(d) for d in dims]
        self.full_dims = ([-1] if batching else []) + self.dims


def _data_type_name(value: int) -> str:
    from tritonlite.protos.model_config_pb2 import DataType

    try:
        return DataType.Name(value)
    except ValueError:
        return str(value)


def _check_consistent(ensemble: str, tensor: str, seen: _Tensor, new: _Tensor) -> None:
    prefix = f"in ensemble {ensemble}, ensemble tensor {tensor}: "
    if seen.data_type != new.data_type:
        raise InvalidArgumentError(
            f"{prefix}inconsistent data type: {_data_type_name(seen.data_type)} is inferred from model {seen.model} "
            f"while {_data_type_name(new.data_type)} is inferred from model {new.model}"
        )
    # a batching and a non-batching model may share a tensor when their full shapes agree
    if not _dims_match(seen.dims, new.dims) and not _dims_match(seen.full_dims, new.full_dims):
        raise InvalidArgumentError(
            f"{prefix}inconsistent shape: {_fmt_dims(seen.full_dims)} is inferred from model {seen.model} "
            f"while {_fmt_dims(new.full_dims)} is inferred from model {new.model}"
        )


class EnsembleBackend:
    """Registered as ``ensemble``; the model manager calls its checks while loading an ensemble."""

    name = ENSEMBLE

    def create_instance(self, ctx: LoadContext) -> Any:
        raise InternalError(
            f"ensemble '{ctx.model_name}' has no instances: its steps run on their composing models' schedulers"
        )

    # ---- the config alone ---------------------------------------------------------------------------
    def check_graph(self, cfg: Any) -> None:
        """Reject a step graph that cannot run, naming the steps and tensors at fault."""
        name = cfg.name
        steps = cfg.ensemble_scheduling.step
        inputs = [t.name for t in cfg.input]
        input_set = set(inputs)
        outputs = [t.name for t in cfg.output]
        producer: dict[str, int] = {}
        for idx, step in enumerate(steps):
            if not step.model_name:
                raise InvalidArgumentError(f"must specify 'model_name' in step {idx} of ensemble '{name}'")
            if not step.input_map:
                raise InvalidArgumentError(f"must specify 'input_map' in step {idx} of ensemble '{name}'")
            if not step.output_map:
                raise InvalidArgumentError(f"must specify 'output_map' in step {idx} of ensemble '{name}'")
            for model_output in sorted(step.output_map):
                tensor = step.output_map[model_output]
                if tensor in producer:
                    raise InvalidArgumentError(
                        f"ensemble tensor '{tensor}' can appear in an output map only once for ensemble '{name}' "
                        f"step {idx}: it is produced by {_step_label(cfg, producer[tensor])} and by {_step_label(cfg, idx)}"
                    )
                if tensor in input_set:
                    raise InvalidArgumentError(
                        f"ensemble tensor '{tensor}' is an input of ensemble '{name}' and cannot also be produced by "
                        f"{_step_label(cfg, idx)}"
                    )
                producer[tensor] = idx

        consumed: set[str] = set()
        needs: list[dict[int, str]] = []  # step -> {producing step: one tensor it needs from it}
        for idx, step in enumerate(steps):
            deps: dict[int, str] = {}
            for model_input in sorted(step.input_map):
                tensor = step.input_map[model_input]
                consumed.add(tensor)
                if tensor in producer:
                    deps.setdefault(producer[tensor], tensor)
                elif tensor not in input_set:
                    raise InvalidArgumentError(
                        f"in ensemble '{name}', {_step_label(cfg, idx)} reads ensemble tensor '{tensor}' (for its input "
                        f"'{model_input}'), which is neither an ensemble input nor an output of any step"
                    )
            needs.append(deps)

        cycle = _find_step_cycle(needs)
        if cycle:
            links = ", ".join(
                f"{_step_label(cfg, a)} needs '{needs[a][b]}' from {_step_label(cfg, b)}" for a, b in zip(cycle, cycle[1:])
            )
            raise InvalidArgumentError(f"ensemble '{name}' has a cycle in its steps: {links}")

        for out in outputs:
            if out not in producer:
                if out in input_set:
                    continue  # an input passed straight through is written by the caller
                raise InvalidArgumentError(f"output '{out}' for ensemble '{name}' is not written by any step")
        for inp in inputs:
            if inp not in consumed and inp not in outputs:
                raise InvalidArgumentError(f"ensemble input '{inp}' for ensemble '{name}' is not used")
        for tensor, idx in producer.items():
            if tensor not in consumed and tensor not in outputs:
                raise InvalidArgumentError(
                    f"ensemble tensor '{tensor}' is unused in ensemble '{name}': {_step_label(cfg, idx)} writes it "
                    "but no step reads it and it is not an ensemble output"
                )

    # ---- against the composing models ---------------------------------------------------------------
    def check_steps(self, cfg: Any, step_config: Callable[[str, int], Any]) -> None:
        """Check each step against its composing model's config (``step_config(model, version)``)."""
        name = cfg.name
        batching = cfg.max_batch_size > 0
        tensors: dict[str, _Tensor] = {}
        for t in cfg.input:
            dims = t.reshape.shape if t.HasField("reshape") else t.dims
            tensors[t.name] = _Tensor(name, batching, t.data_type, dims)
        for t in cfg.output:
            dims = t.reshape.shape if t.HasField("reshape") else t.dims
            new = _Tensor(name, batching, t.data_type, dims)
            seen = tensors.get(t.name)
            if seen is not None:
                _check_consistent(name, t.name, seen, new)
            else:
                tensors[t.name] = new

        decoupled_steps: list[bool] = []
        for step in cfg.ensemble_scheduling.step:
            model = step.model_name
            mcfg = step_config(model, int(step.model_version))
            decoupled_steps.append(bool(mcfg.model_transaction_policy.decoupled))
            if mcfg.max_batch_size != 0 and mcfg.max_batch_size < cfg.max_batch_size:
                raise InvalidArgumentError(
                    f"ensemble {name} allows maximum batch size {cfg.max_batch_size}, but it contains model {model} "
                    f"which only allows maximum batch size to be {mcfg.max_batch_size}"
                )
            step_batching = mcfg.max_batch_size > 0
            model_inputs = {t.name: t for t in mcfg.input}
            for model_input, tensor in sorted(step.input_map.items()):
                if model_input not in model_inputs:
                    raise InvalidArgumentError(
                        f"in ensemble {name}, ensemble tensor {tensor} is mapping to non-existing input {model_input} "
                        f"in model {model}"
                    )
            for model_input, spec in model_inputs.items():
                tensor = step.input_map.get(model_input)
                if tensor is None:
                    if spec.optional:
                        continue
                    raise InvalidArgumentError(
                        f"in ensemble {name}, input {model_input} in model {model} is not mapped to any ensemble tensors"
                    )
                self._merge(name, tensors, tensor, _Tensor(model, step_batching, spec.data_type, spec.dims))
            model_outputs = {t.name: t for t in mcfg.output}
            for model_output, tensor in sorted(step.output_map.items()):
                spec = model_outputs.get(model_output)
                if spec is None:
                    raise InvalidArgumentError(
                        f"in ensemble {name}, ensemble tensor {tensor} is mapped from non-existing output {model_output} "
                        f"in model {model}"
                    )
                self._merge(name, tensors, tensor, _Tensor(model, step_batching, spec.data_type, spec.dims))
        # Triton fills the ensemble's transaction policy itself: decoupled when any step is
        cfg.model_transaction_policy.decoupled = self._check_decoupled_flow(cfg, decoupled_steps)

    @staticmethod
    def _check_decoupled_flow(cfg: Any, decoupled_steps: Sequence[bool]) -> bool:
        """Triton's decouple labels: every step (and the ensemble's outputs) must read tensors of one origin.

        Ensemble inputs have origin 0; a decoupled step's outputs get a new origin (each of its
        responses is a new iteration of them), a non-decoupled step's outputs keep their inputs'.
        Returns whether any origin other than 0 exists, i.e. whether the ensemble is decoupled.
        """
        name = cfg.name
        steps = cfg.ensemble_scheduling.step
        label: dict[str, int] = {t.name: 0 for t in cfg.input}
        next_label = 0
        pending = list(range(len(steps)))
        while pending:  # check_graph proved the steps acyclic: each pass places at least one
            placed = [i for i in pending if all(t in label for t in steps[i].input_map.values())]
            if not placed:
                break
            for i in placed:
                step = steps[i]
                origins = {label[t] for t in step.input_map.values()}
                if len(origins) > 1:
                    raise InvalidArgumentError(
                        f"in ensemble {name}, step of model '{step.model_name}' receives inputs originated from "
                        "different decoupled models"
                    )
                if decoupled_steps[i]:
                    next_label += 1
                    out_label = next_label
                else:
                    out_label = origins.pop() if origins else 0
                for tensor in step.output_map.values():
                    label[tensor] = out_label
            pending = [i for i in pending if i not in placed]
        if len({label.get(t.name, 0) for t in cfg.output}) > 1:
            raise InvalidArgumentError(
                f"in ensemble {name}, step of model '{name}' receives inputs originated from different decoupled models"
            )
        return next_label != 0

    @staticmethod
    def _merge(ensemble: str, tensors: dict[str, _Tensor], tensor: str, new: _Tensor) -> None:
        seen = tensors.get(tensor)
        if seen is None:
            tensors[tensor] = new
        else:
            _check_consistent(ensemble, tensor, seen, new)


def _find_step_cycle(needs: list[dict[int, str]]) -> list[int]:
    """A cycle ``[a, b, ..., a]`` (a needs b needs ... needs a) among the steps, or ``[]``."""
    state = [0] * len(needs)  # 0 new, 1 on the current path, 2 done
    path: list[int] = []

    def visit(i: int) -> list[int]:
        state[i] = 1
        path.append(i)
        for j in sorted(needs[i]):
            if state[j] == 1:
                return path[path.index(j):] + [j]
            if state[j] == 0:
                found = visit(j)
                if found:
                    return found
        path.pop()
        state[i] = 2
        return []

    for start in range(len(needs)):
        if state[start] == 0:
            found = visit(start)
            if found:
                return found
    return []


def find_ensemble_cycle(name: str, cfg: Any, steps_of: Callable[[str], Sequence[str]]) -> list[str]:
    """Ensembles that include each other: the path ``[name, ..., name]``, or ``[]``.

    ``steps_of(model)`` gives the step model names of ``model`` when it is an ensemble, else ``()``.
    """
    first = [s.model_name for s in cfg.ensemble_scheduling.step]
    done: set[str] = set()

    def visit(model: str, path: list[str]) -> list[str]:
        if model == name:
            return path + [model]
        if model in done or model in path:
            return []
        for nxt in steps_of(model):
            found = visit(nxt, path + [model])
            if found:
                return found
        done.add(model)
        return []

    for model in first:
        found = visit(model, [name])
        if found:
            return found
    return []


__all__ = ["EnsembleBackend", "ENSEMBLE", "find_ensemble_cycle"]
