"""Defaults Triton always fills in after auto-complete (core ``NormalizeModelConfig`` and
``NormalizeInstanceGroup``, SPEC §4.5.4), plus the instance names derived from the groups.

Kept separate from validation: normalising never fails, and the JSON the servers return is the
normalised config.
"""

from __future__ import annotations

from typing import NamedTuple

from tritonlite.protos.model_config_pb2 import ModelConfig, ModelInstanceGroup

SEQUENCE_IDLE_DEFAULT_MICROSECONDS = 1_000_000

_KIND_NAMES = {
    ModelInstanceGroup.KIND_CPU: "CPU",
    ModelInstanceGroup.KIND_GPU: "GPU",
    ModelInstanceGroup.KIND_MODEL: "MODEL",
}


def is_ensemble(cfg: ModelConfig) -> bool:
    """Ensembles are recognised by platform or by their scheduler, as Triton does for each rule."""
    return cfg.platform == "ensemble" or cfg.HasField("ensemble_scheduling")


def normalize(
    cfg: ModelConfig,
    *,
    model_name: str,
    gpu_count: int = 0,
    default_cpu_instance_count: int = 1,
) -> None:
    """Fill Triton's always-applied defaults in place.

    ``gpu_count`` GPUs are assumed to be ids ``0..gpu_count-1``. ``default_cpu_instance_count``
    is the count for a KIND_CPU group without one (Triton: 2 for onnxruntime/tensorflow, else 1).
    """
    if not cfg.name:
        cfg.name = model_name
    if not cfg.HasField("version_policy"):
        cfg.version_policy.latest.num_versions = 1

    if cfg.HasField("dynamic_batching"):
        db = cfg.dynamic_batching
        if not db.preferred_batch_size and cfg.max_batch_size > 0:
            db.preferred_batch_size.append(cfg.max_batch_size)

    if cfg.HasField("sequence_batching"):
        sb = cfg.sequence_batching
        if sb.max_sequence_idle_microseconds == 0:
            sb.max_sequence_idle_microseconds = SEQUENCE_IDLE_DEFAULT_MICROSECONDS
        if sb.HasField("oldest") and not sb.oldest.preferred_batch_size and cfg.max_batch_size > 0:
            sb.oldest.preferred_batch_size.append(cfg.max_batch_size)

    if is_ensemble(cfg):
        return  # no pinned-memory defaults and no instance groups for ensembles

    opt = cfg.optimization
    if not opt.HasField("input_pinned_memory"):
        opt.input_pinned_memory.enable = True
    if not opt.HasField("output_pinned_memory"):
        opt.output_pinned_memory.enable = True

    _normalize_instance_groups(cfg, gpu_count, default_cpu_instance_count)


def _normalize_instance_groups(cfg: ModelConfig, gpu_count: int, cpu_count: int) -> None:
    gpus = list(range(max(gpu_count, 0)))
    if not cfg.instance_group:
        cfg.instance_group.add(name=cfg.name)  # named "<model>", not "<model>_0"
    for index, group in enumerate(cfg.instance_group):
        if not group.name:
            group.name = f"{cfg.name}_{index}"
        if group.kind == ModelInstanceGroup.KIND_AUTO:
            usable = bool(gpus) and all(g in gpus for g in group.gpus)
            group.kind = ModelInstanceGroup.KIND_GPU if usable else ModelInstanceGroup.KIND_CPU
        if group.count < 1:
            group.count = cpu_count if group.kind == ModelInstanceGroup.KIND_CPU else 1
        if group.kind == ModelInstanceGroup.KIND_GPU and not group.gpus:
            group.gpus.extend(gpus)


class InstanceName(NamedTuple):
    """One model instance Triton would create: name, ``CPU``/``GPU``/``MODEL``, device id."""

    name: str
    kind: str
    device_id: int
    passive: bool
    group_name: str


def instance_names(cfg: ModelConfig) -> list[InstanceName]:
    """Instances of a normalised config in Triton's order: ``<group>_<k>``, one per listed GPU.

    A GPU group repeats each name once per device, as Triton does. KIND_AUTO (not normalised) is
    treated as CPU.
    """
    out: list[InstanceName] = []
    for group in cfg.instance_group:
        kind = _KIND_NAMES.get(group.kind, "CPU")
        for k in range(group.count):
            name = f"{group.name}_{k}"
            if kind == "GPU":
                out.extend(
                    InstanceName(name, kind, int(d), group.passive, group.name) for d in group.gpus
                )
            else:
                out.append(InstanceName(name, kind, 0, group.passive, group.name))
    return out
