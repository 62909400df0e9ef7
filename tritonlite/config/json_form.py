"""Triton's JSON form of a ModelConfig (``GET .../config``, SPEC §2.3).

protobuf's JSON printing quotes 64-bit integers; Triton turns them back into numbers. Rather
than list the paths, the descriptor is walked, so a 64-bit field added later is covered too.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

_INT64_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)


def config_to_json(cfg: Message) -> dict[str, Any]:
    """ModelConfig → dict as Triton prints it: proto names, defaults shown, int64 as ints."""
    data = json_format.MessageToDict(
        cfg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    _ints_in_message(data, cfg.DESCRIPTOR)
    return data


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _convert_value(value: Any, field: FieldDescriptor) -> Any:
    """Convert one non-repeated value of ``field`` (scalar or message) in place / by return."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if isinstance(value, dict):
            _ints_in_message(value, field.message_type)
        return value
    if field.type in _INT64_TYPES and isinstance(value, str):
        return int(value)
    return value


def _ints_in_message(data: dict[str, Any], desc: Descriptor) -> None:
    for name, value in data.items():
        field = desc.fields_by_name.get(name)
        if field is None:  # well-known types print differently; none occur in ModelConfig
            continue
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            for key in value:  # keys stay strings, as in Triton's output
                value[key] = _convert_value(value[key], value_field)
        elif field.is_repeated:
            data[name] = [_convert_value(item, field) for item in value]
        else:
            data[name] = _convert_value(value, field)
