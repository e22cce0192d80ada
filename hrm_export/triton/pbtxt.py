"""Protobuf text format for Triton's `config.pbtxt`, from plain dicts.

A config is a dict whose keys are ModelConfig field names (model_config.proto) and whose values are
    str / int / float / bool   a scalar field (strings quoted, bools as true/false)
    Enum("KIND_GPU")           an enum value, written bare
    dict                       a message
    list of scalars            a repeated scalar field: `dims: [ -1, 8 ]`
    list of dicts              a repeated message, one block per element; a map field (parameters,
                               cc_model_filenames, graph_spec.input) is a list of {"key": ..., "value": ...}
Empty lists and None values are left out. Writing the text needs no protobuf; the tests parse every
emitted file with Triton's own schema (tritonclient's model_config_pb2 and protobuf's text_format).
"""

from __future__ import annotations


class Enum(str):
    """An enum value such as TYPE_FP32 or KIND_GPU: written without quotes."""


def to_pbtxt(config: dict) -> str:
    return "\n".join(_message_lines(config, 0)) + "\n"


def _message_lines(message: dict, depth: int) -> list[str]:
    lines: list[str] = []
    for name, value in message.items():
        lines += _field_lines(name, value, depth)
    return lines


def _field_lines(name: str, value, depth: int) -> list[str]:
    pad = "  " * depth
    if value is None or (isinstance(value, list) and not value):
        return []
    if isinstance(value, dict):
        return [f"{pad}{name} {{", *_message_lines(value, depth + 1), f"{pad}}}"]
    if isinstance(value, list) and isinstance(value[0], dict):
        return [line for item in value for line in _field_lines(name, item, depth)]
    if isinstance(value, list):
        return [f"{pad}{name}: [ {', '.join(_scalar(v) for v in value)} ]"]
    return [f"{pad}{name}: {_scalar(value)}"]


def _scalar(value) -> str:
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    raise TypeError(f"no text format for {type(value).__name__} {value!r}")
