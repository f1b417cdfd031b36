"""Output types: from a Python type (or a raw JSON schema) to a JSON schema and a validator.

Shared by the step schema (the final answer) and `generate` (one structured object).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from agentlib._formats import format_checker
from agentlib._json_schema import bound_strings, close_objects, inline_refs, strip_titles
from agentlib._validation import describe_validation_error
from agentlib.errors import ConfigurationError
from agentlib.models.base import OutputSchema

__all__ = ["WRAPPED_KEY", "OutputSpec", "OutputValidationError", "output_spec", "request_schema"]

WRAPPED_KEY = "value"
"""The key a non-object output is wrapped under: servers require an object at the root."""


class OutputValidationError(ValueError):
    """An answer does not fit the output type; the message says where and why."""


@dataclass(frozen=True, slots=True, eq=False)
class OutputSpec:
    """An output type's JSON schema and its validator."""

    json_schema: dict[str, Any]
    """The schema: refs inlined, objects closed, titles dropped."""
    validate: Callable[[Any], Any]
    """Turns a JSON value into the typed output, or raises `OutputValidationError`."""
    is_object: bool
    """Whether the schema's top level is an object (servers require that for the root)."""


def _adapter_spec(output_type: Any) -> OutputSpec:
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(output_type)
        raw = adapter.json_schema()
    except Exception as exc:  # pydantic raises several types for unsupported annotations
        raise ConfigurationError(
            f"cannot build a JSON schema for output type {output_type!r}: {exc}"
        ) from exc
    schema = close_objects(strip_titles(inline_refs(raw, recursive=True)))

    def validate(value: Any) -> Any:
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            raise OutputValidationError(describe_validation_error(exc, prefix="field")) from exc

    return OutputSpec(
        json_schema=schema, validate=validate, is_object=schema.get("type") == "object"
    )


def _raw_schema_spec(schema: Mapping[str, Any] | bool) -> OutputSpec:
    # Imported here, not at module level: jsonschema costs ~50 ms of `import agentlib`
    # (measured with -X importtime) and only raw-schema outputs need it.
    import jsonschema

    if schema is False:
        raise ConfigurationError(
            "the output schema `false` accepts no value at all; give a schema that some "
            "value can satisfy (`true` accepts any JSON value)"
        )
    try:
        # An unknown `$schema` is read as 2020-12 (jsonschema's default, without its warning).
        validator_class = jsonschema.validators.validator_for(
            schema, default=jsonschema.Draft202012Validator
        )
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigurationError(f"the output JSON schema is not valid: {exc.message}") from exc
    inlined = close_objects(inline_refs(schema, recursive=True))
    # `format` is an assertion here, not an annotation: a reply whose `date` is 2024-02-30 is
    # as wrong as one whose number is a string (`_formats.format_checker`).
    validator = validator_class(schema, format_checker=format_checker())

    def validate(value: Any) -> Any:
        errors = sorted(validator.iter_errors(value), key=lambda error: list(error.path))
        if errors:
            described = "; ".join(
                f"at '{'.'.join(str(part) for part in error.path) or '$'}': {error.message}"
                for error in errors[:5]
            )
            raise OutputValidationError(described)
        return value

    return OutputSpec(
        json_schema=inlined, validate=validate, is_object=inlined.get("type") == "object"
    )


@functools.lru_cache(maxsize=256)
def _cached_spec(output_type: Any) -> OutputSpec:
    return _adapter_spec(output_type)


def output_spec(output_type: Any) -> OutputSpec:
    """The `OutputSpec` of a type, or of a raw JSON schema given as a dict.

    Types: pydantic models, dataclasses, TypedDicts, Literals, enums, `str`, ... Cached for
    hashable types. A raw schema is a dict, or a boolean schema (`True` accepts any JSON
    value; `False` none, so it is refused).

    Raises:
        ConfigurationError: The type has no JSON schema, or the raw schema is invalid.
    """
    if isinstance(output_type, Mapping | bool):
        return _raw_schema_spec(output_type)
    try:
        return _cached_spec(output_type)
    except TypeError:  # unhashable annotation
        return _adapter_spec(output_type)


def request_schema(spec: OutputSpec, name: str, max_string_length: int) -> OutputSchema:
    """The schema a model is asked to keep to for `spec`: the one `generate` sends.

    A non-object output is wrapped as `{"value": ...}` (servers require an object at the root;
    recursive definitions move to the wrapper, references to the root follow them), and every
    unbounded string gets `maxLength: max_string_length`.
    """
    schema = spec.json_schema
    if not spec.is_object:
        inner = dict(schema)
        definitions = dict(inner.pop("$defs", {}))
        if _refers_to_root(inner) or any(_refers_to_root(d) for d in definitions.values()):
            definitions["_root"] = _retarget_root(inner)
            definitions = {key: _retarget_root(value) for key, value in definitions.items()}
            inner = {"$ref": "#/$defs/_root"}
        schema = {
            "type": "object",
            "properties": {WRAPPED_KEY: inner},
            "required": [WRAPPED_KEY],
            "additionalProperties": False,
        }
        if definitions:
            schema["$defs"] = definitions
    return OutputSchema(name, bound_strings(schema, max_string_length))


def _refers_to_root(node: Any) -> bool:
    if isinstance(node, dict):
        return node.get("$ref") == "#" or any(_refers_to_root(v) for v in node.values())
    if isinstance(node, list):
        return any(_refers_to_root(item) for item in node)
    return False


def _retarget_root(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("$ref") == "#":
            return {**node, "$ref": "#/$defs/_root"}
        return {key: _retarget_root(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_retarget_root(item) for item in node]
    return node
