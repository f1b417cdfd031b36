"""Output types over the whole JSON-Schema-Test-Suite (draft 2020-12, committed in tests/data).

Every schema of the suite as a raw output type: no crash; every reference the suite resolves
locally resolves ($anchor, $id-relative, JSON pointers, boolean targets); validation agrees
with the suite; no value that is not JSON (NaN, Infinity, 1e999) is accepted, by the parser or
by the constraint; and `OutlinesModel.check_schema` says what generation then does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentlib import ConfigurationError
from agentlib._json_schema import inline_refs
from agentlib._output import OutputValidationError, output_spec, request_schema
from agentlib.actions import extract_json
from agentlib.models.outlines import OutlinesModel
from agentlib.models.profiles import DEFAULT_MAX_STRING_LENGTH
from tests._constraint import ByteConstraint, as_generated

SUITE = Path(__file__).parent / "data" / "json_schema_test_suite" / "draft2020-12"
# What the suite tests that agentlib deliberately does not do, each for a stated reason:
# remote documents are never fetched; `$dynamicRef` is refused by name; a few patterns use
# ECMA-262 syntax Python's `re` rejects (jsonschema refuses the schema itself).
REFUSAL_REASONS = re.compile(
    r"remote schemas are never fetched|`\$dynamicRef`|is not a 'regex'|`false` accepts no value"
)
# Suites whose expectations jsonschema itself does not meet (ECMA-262 regex classes; draft 7's
# `dependencies`, which 2020-12 ignores; a custom metaschema's `$vocabulary`), and `format` as
# an annotation (agentlib asserts formats: optional/format/ is the suite's assertion form).
NOT_AGREEING = {
    "optional/ecmascript-regex.json",
    "optional/dependencies-compatibility.json",
    "vocabulary.json",
}
ANNOTATION_ONLY = {"format.json"}


def _groups() -> Iterator[tuple[str, Any, list[dict[str, Any]]]]:
    for file in sorted(SUITE.rglob("*.json")):
        name = str(file.relative_to(SUITE))
        for group in json.loads(file.read_text(encoding="utf-8")):
            yield name, group["schema"], group["tests"]


GROUPS = list(_groups())


def test_the_whole_suite_is_there() -> None:
    assert len(GROUPS) > 400
    assert sum(len(tests) for _, _, tests in GROUPS) > 1700


def test_no_schema_crashes_and_every_refusal_has_a_stated_reason() -> None:
    refused: list[str] = []
    for name, schema, _tests in GROUPS:
        try:
            output_spec(schema)
        except ConfigurationError as exc:
            refused.append(str(exc))
            assert REFUSAL_REASONS.search(str(exc)), f"{name}: {exc}"
    # only remote references, $dynamicRef, ECMA-only regexes and the `false` schema
    assert len(refused) < 60


def test_validation_agrees_with_the_suite() -> None:
    disagreements = []
    for name, schema, tests in GROUPS:
        if name in NOT_AGREEING or name in ANNOTATION_ONLY:
            continue
        try:
            spec = output_spec(schema)
        except ConfigurationError:
            continue
        for case in tests:
            try:
                spec.validate(extract_json(json.dumps(case["data"])))
                valid = True
            except OutputValidationError:
                valid = False
            if valid != case["valid"]:
                disagreements.append((name, case["description"]))
    assert disagreements == []


def test_inlined_references_mean_what_the_references_meant() -> None:
    import jsonschema

    checked = 0
    for name, schema, tests in GROUPS:
        if name in NOT_AGREEING or name.startswith("optional/format") or "$ref" not in str(schema):
            continue
        try:
            inlined = inline_refs(schema, recursive=True)
        except ConfigurationError:
            continue
        validator = jsonschema.Draft202012Validator(inlined)
        for case in tests:
            assert validator.is_valid(case["data"]) == case["valid"], (name, case["description"])
            checked += 1
    assert checked > 150


@pytest.mark.parametrize(
    ("schema", "valid", "invalid"),
    [
        ({"$defs": {"b": True}, "$ref": "#/$defs/b"}, [1, "x", None], []),
        ({"$defs": {"b": False}, "properties": {"a": {"$ref": "#/$defs/b"}}}, [{}], [{"a": 1}]),
        (
            {"$defs": {"x": {"$anchor": "n", "type": "integer"}}, "items": {"$ref": "#n"}},
            [[1]],
            [["a"]],
        ),
        (
            {
                "$id": "http://example.com/root.json",
                "$defs": {"a": {"$id": "item.json", "type": "string"}},
                "properties": {"x": {"$ref": "item.json"}},
            },
            [{"x": "s"}],
            [{"x": 1}],
        ),
    ],
    ids=["ref-to-true", "ref-to-false", "anchor", "id-relative"],
)
def test_references_resolve(schema: Any, valid: list[Any], invalid: list[Any]) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(inline_refs(schema, recursive=True))
    assert all(validator.is_valid(value) for value in valid)
    assert not any(validator.is_valid(value) for value in invalid)


def test_boolean_schemas_are_output_types() -> None:
    assert output_spec(True).validate({"any": ["json"]}) == {"any": ["json"]}
    with pytest.raises(ConfigurationError, match="`false` accepts no value"):
        output_spec(False)


NON_JSON = ("NaN", "Infinity", "-Infinity", "1e999", "-1e999")
PLACEHOLDER = '"@@NUMBER@@"'


@pytest.mark.parametrize("token", NON_JSON)
def test_non_json_numbers_are_refused_by_the_parser(token: str) -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        extract_json(f'{{"x": {token}}}')


def _with_a_number_replaced(value: Any) -> str | None:
    """`value` as generated, its first number replaced by a placeholder (None: no number)."""
    found = False

    def replace(node: Any) -> Any:
        nonlocal found
        if isinstance(node, bool) or found:
            return node
        if isinstance(node, int | float):
            found = True
            return "@@NUMBER@@"
        if isinstance(node, list):
            return [replace(item) for item in node]
        if isinstance(node, dict):
            return {key: replace(item) for key, item in node.items()}
        return node

    text = as_generated(replace(value))
    return text if found else None


def test_the_constraint_never_produces_non_json_numbers() -> None:
    """For every suite schema and valid instance with a number whose place accepts `1`: that
    place accepts none of NaN, Infinity or 1e999."""
    probed = 0
    for name, schema, tests in GROUPS:
        try:
            spec = output_spec(schema)
            constraint = ByteConstraint(request_schema(spec, "s", 2000).schema)
        except (ConfigurationError, ValueError):
            continue
        for case in tests:
            template = _with_a_number_replaced(
                case["data"] if spec.is_object else {"value": case["data"]}
            )
            if (
                not case["valid"]
                or template is None
                or not constraint.accepts(template.replace(PLACEHOLDER, "1"))
            ):
                continue
            for token in NON_JSON:
                assert not constraint.accepts(template.replace(PLACEHOLDER, token)), (
                    name,
                    case["description"],
                    token,
                )
            probed += 1
    assert probed > 100


def test_check_schema_says_what_generation_does() -> None:
    """`check_schema` (a child process) and the in-process compile of what `generate` sends
    agree: on a sample of the suite, a recursive schema and an unsatisfiable `required`."""
    sample = [schema for _, schema, _ in GROUPS[::12]]
    sample += [
        {"type": "object", "properties": {"c": {"type": "array", "items": {"$ref": "#"}}}},
        {"type": "object", "properties": {"_id": {"type": "string"}}, "required": ["id"]},
    ]
    for schema in sample:
        try:
            ByteConstraint(
                request_schema(output_spec(schema), "output", DEFAULT_MAX_STRING_LENGTH).schema
            )
            compiles = True
        except (ConfigurationError, ValueError):
            compiles = False
        try:
            OutlinesModel.check_schema(schema, timeout=30)
            checked = True
        except ConfigurationError:
            checked = False
        assert checked == compiles, schema
