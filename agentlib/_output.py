"""Output types: from a Python type (or a raw JSON schema) to a JSON schema and a validator.

Shared by the step schema (the final answer) and `generate` (one structured object).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from agentlib._json_schema import close_objects, inline_refs, strip_titles
from agentlib._validation import describe_validation_error
from agentlib.errors import ConfigurationError

__all__ = ["OutputSpec", "OutputValidationError", "output_spec"]


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
    schema = close_objects(strip_titles(inline_refs(raw)))

    def validate(value: Any) -> Any:
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            raise OutputValidationError(describe_validation_error(exc, prefix="field")) from exc

    return OutputSpec(
        json_schema=schema, validate=validate, is_object=schema.get("type") == "object"
    )


def _raw_schema_spec(schema: Mapping[str, Any]) -> OutputSpec:
    # Imported here, not at module level: jsonschema costs ~50 ms of `import agentlib`
    # (measured with -X importtime) and only raw-schema outputs need it.
    import jsonschema

    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigurationError(f"the output JSON schema is not valid: {exc.message}") from exc
    inlined = close_objects(inline_refs(schema))
    validator = validator_class(schema)

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
    hashable types.

    Raises:
        ConfigurationError: The type has no JSON schema, or the raw schema is invalid.
    """
    if isinstance(output_type, Mapping):
        return _raw_schema_spec(output_type)
    try:
        return _cached_spec(output_type)
    except TypeError:  # unhashable annotation
        return _adapter_spec(output_type)
