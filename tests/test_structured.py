from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Sequence
from typing import Literal

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from agentlib import (
    ConfigurationError,
    FunctionModel,
    Message,
    ModelOutputError,
    OutputSchema,
    ScriptedModel,
    ToolError,
    generate,
    generate_result,
)
from agentlib.models.base import ModelCapabilities, ModelResponse, Sampling
from agentlib.models.profiles import DEFAULT_RETRY_TEMPERATURE


class Person(BaseModel):
    name: str
    age: int


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Movie(TypedDict):
    title: str
    year: int


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def test_pydantic_model_is_generated_and_validated() -> None:
    model = ScriptedModel(['{"name": "Ada", "age": 36}'])
    assert generate(model, Person, "Ada Lovelace, 36") == Person(name="Ada", age=36)
    request = model.requests[0]
    assert request.output is not None and request.output.schema["required"] == ["name", "age"]
    assert "Ada Lovelace, 36" in request.messages[-1].content


@pytest.mark.parametrize(
    ("output_type", "reply", "expected"),
    [
        (Point, {"x": 1, "y": 2.5}, Point(1.0, 2.5)),
        (Movie, {"title": "Alien", "year": 1979}, {"title": "Alien", "year": 1979}),
        (Literal["yes", "no"], {"value": "yes"}, "yes"),
        (Colour, {"value": "blue"}, Colour.BLUE),
        (list[int], {"value": [1, 2, 3]}, [1, 2, 3]),
        (int, {"value": "42"}, 42),
    ],
)
def test_other_output_types(
    output_type: object, reply: dict[str, object], expected: object
) -> None:
    model = ScriptedModel([reply])
    assert generate(model, output_type, "go") == expected  # type: ignore[call-overload]


def test_non_object_types_are_wrapped_in_an_object_for_servers() -> None:
    model = ScriptedModel([{"value": "no"}])
    generate(model, Literal["yes", "no"], "?")  # type: ignore[arg-type]
    schema = model.requests[0].output
    assert schema is not None
    assert schema.schema["properties"]["value"] == {"enum": ["yes", "no"], "type": "string"}


def test_raw_json_schema_is_validated_with_jsonschema() -> None:
    schema = {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2}},
        "required": ["tags"],
    }
    model = ScriptedModel([{"tags": ["a", "b", "c"]}, {"tags": ["a", "b"]}])
    result = generate_result(model, schema, "tag it")
    assert result.output == {"tags": ["a", "b"]}
    assert result.attempts == 2
    assert "is too long" in model.requests[1].messages[-1].content


def test_invalid_raw_schema_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not valid"):
        generate(ScriptedModel([]), {"type": "objekt"}, "x")  # type: ignore[arg-type]


def test_retry_shows_the_exact_validation_error() -> None:
    def reply(messages: Sequence[Message], output: OutputSchema | None) -> str:
        if len(messages) == 2:
            return '{"name": "Ada", "age": "old"}'
        return json.dumps({"name": "Ada", "age": 36})

    model = FunctionModel(reply)
    result = generate_result(model, Person, "Ada")
    assert result.output.age == 36 and result.attempts == 2
    assert result.path == "scripted"
    feedback = model.requests[1].messages[-1].content
    assert "field 'age'" in feedback and '"old"' in feedback


def test_a_retry_is_sampled_on_a_model_that_takes_sampling() -> None:
    samplings: list[Sampling | None] = []

    class Sampled:  # a user's model, no agentlib base class
        name = "sampled"
        capabilities = ModelCapabilities(supports_json_schema=True, supports_sampling=True)

        async def agenerate(
            self,
            messages: Sequence[Message],
            *,
            output: OutputSchema | None = None,
            max_tokens: int | None = None,
            sampling: Sampling | None = None,
        ) -> ModelResponse:
            samplings.append(sampling)
            age = "old" if sampling is None else 36
            return ModelResponse(text=json.dumps({"name": "Ada", "age": age}), path="scripted")

    assert generate(Sampled(), Person, "Ada").age == 36
    assert samplings == [None, Sampling(temperature=DEFAULT_RETRY_TEMPERATURE, seed=1)]


def test_still_invalid_after_retries_raises_with_the_raw_output() -> None:
    model = ScriptedModel(["nope", "still nope"])
    with pytest.raises(ModelOutputError) as caught:
        generate(model, Person, "x", retries=1)
    assert caught.value.raw_output == "still nope"
    assert caught.value.attempts == 2
    assert "still invalid after 2 attempt(s)" in str(caught.value)


def test_unbounded_strings_get_a_bound() -> None:
    model = ScriptedModel([{"name": "A", "age": 1}])
    generate(model, Person, "x")
    assert model.requests[0].output is not None
    # The same default as the agent's step (agentlib.models.profiles.DEFAULT_MAX_STRING_LENGTH).
    assert model.requests[0].output.schema["properties"]["name"]["maxLength"] == 4000
    bounded = ScriptedModel([{"name": "A", "age": 1}])
    generate(bounded, Person, "x", max_string_length=50)
    assert bounded.requests[0].output is not None
    assert bounded.requests[0].output.schema["properties"]["name"]["maxLength"] == 50


def test_a_check_hook_refusal_is_an_invalid_attempt_shown_to_the_model() -> None:
    seen: list[int] = []

    async def even(value: int) -> None:
        seen.append(value)
        if value % 2:
            raise ToolError(f"{value} is odd; give an even number")

    model = ScriptedModel([{"value": 3}, {"value": 4}])
    result = generate_result(model, int, "An even number, please.", check=even)
    assert result.output == 4 and result.attempts == 2 and seen == [3, 4]
    assert "3 is odd; give an even number" in model.requests[1].messages[-1].content


def test_a_check_hook_that_refuses_every_attempt_raises_its_own_error() -> None:
    def never(value: int) -> None:
        raise ToolError(f"refused {value}")

    model = ScriptedModel([{"value": 1}, {"value": 2}])
    with pytest.raises(ToolError, match="refused 2"):
        generate_result(model, int, "A number.", retries=1, check=never)
    assert model.remaining == 0


def test_explicit_extra_keys_are_kept_for_constrained_decoding() -> None:
    from agentlib._json_schema import close_objects

    schema = {
        "type": "object",
        "properties": {
            "open": {"type": "object", "properties": {"a": {}}, "additionalProperties": True},
            "silent": {"type": "object", "properties": {"a": {}}},
            "needs_id": {"type": "object", "properties": {"_id": {}}, "required": ["id"]},
        },
    }
    closed = close_objects(schema)["properties"]
    assert closed["open"]["additionalProperties"] is True
    assert closed["silent"]["additionalProperties"] is False
    assert "additionalProperties" not in closed["needs_id"]  # closing would be unsatisfiable


def test_a_date_that_does_not_exist_is_retried() -> None:
    schema = {
        "type": "object",
        "properties": {"day": {"type": "string", "format": "date"}},
        "required": ["day"],
    }
    model = ScriptedModel([{"day": "2024-02-30"}, {"day": "2024-02-29"}])
    result = generate_result(model, schema, "a leap day")
    assert result.output == {"day": "2024-02-29"} and result.attempts == 2
    assert "is not a 'date'" in model.requests[1].messages[-1].content


def test_nan_and_infinity_are_not_json() -> None:
    model = ScriptedModel(['{"name": "A", "age": NaN}', '{"name": "A", "age": 1e999}'])
    with pytest.raises(ModelOutputError, match="too large for a double"):
        generate(model, Person, "x", retries=1)
