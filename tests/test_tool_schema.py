"""Tools from JSON-schema function specs: `Tool.from_schema`, `Tool.from_openai`, tool names."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from agentlib import Agent, ConfigurationError, ScriptedModel, Tool, ToolError
from agentlib.actions import build_step_schema, parse_step
from agentlib.models.testing import call, final
from agentlib.tool import safe_tool_names

DATA = Path(__file__).parent / "data"

TRIP = {
    "type": "object",
    "properties": {
        "from": {"type": "string", "description": "Where the trip starts."},
        "class": {"type": "string", "enum": ["economy", "business"]},
        "dry-run": {"type": "boolean"},
        "stops": {"type": "array", "items": {"$ref": "#/$defs/stop"}},
    },
    "required": ["from", "class"],
    "$defs": {
        "stop": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "nights": {"type": "integer"}},
            "required": ["city"],
        }
    },
}


def book(**arguments: Any) -> dict[str, Any]:
    return {"booked": arguments}


def test_any_property_name_reaches_the_function_as_a_keyword() -> None:
    trip = Tool.from_schema("travel.book", "Book a trip.", TRIP, book)
    result = trip.call({"from": "Oslo", "class": "economy", "dry-run": True})
    assert result == {"booked": {"from": "Oslo", "class": "economy", "dry-run": True}}


def test_schema_is_kept_with_refs_inlined_and_objects_closed() -> None:
    trip = Tool.from_schema("travel.book", "Book a trip.", TRIP, book)
    assert (trip.name, trip.description) == ("travel.book", "Book a trip.")
    assert list(trip.parameters["properties"]) == ["from", "class", "dry-run", "stops"]
    assert trip.parameters["required"] == ["from", "class"]
    assert trip.parameters["additionalProperties"] is False
    assert trip.parameters["properties"]["stops"]["items"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}, "nights": {"type": "integer"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    assert "$defs" not in trip.parameters
    assert "$defs" in TRIP  # the caller's schema is left as it was


def test_invalid_arguments_name_each_problem_like_a_decorated_tool() -> None:
    trip = Tool.from_schema("travel.book", "Book a trip.", TRIP, book)
    with pytest.raises(ToolError) as caught:
        trip.call({"class": "first", "stops": [{"nights": 2}], "seats": 3})
    message = str(caught.value)
    assert message.startswith("invalid arguments for tool 'travel.book': ")
    assert "argument 'from' is required but missing" in message
    assert "argument 'seats' is not a known argument" in message
    assert "argument 'class': 'first' is not one of ['economy', 'business']" in message
    assert "argument 'stops.0.city' is required but missing" in message
    assert caught.value.tool_name == "travel.book"


def test_values_are_passed_as_sent_without_coercion() -> None:
    trip = Tool.from_schema("travel.book", "Book a trip.", TRIP, book)
    with pytest.raises(ToolError, match="argument 'dry-run': 'yes' is not of type 'boolean'"):
        trip.validate({"from": "Oslo", "class": "economy", "dry-run": "yes"})
    sent = {"from": "Oslo", "class": "economy", "stops": [{"city": "Bergen", "nights": 2}]}
    assert trip.validate(sent) == sent


def test_async_function_is_awaited() -> None:
    async def lookup(**arguments: Any) -> str:
        return f"found {arguments['key']}"

    found = Tool.from_schema(
        "kv-get", "Read a key.", {"properties": {"key": {"type": "string"}}}, lookup
    )
    assert found.is_async
    assert found.call({"key": "a"}) == "found a"
    assert found.parameters["type"] == "object"


def test_empty_parameters_mean_no_arguments() -> None:
    clock = Tool.from_schema("now", "The time.", {}, lambda: "noon")
    assert clock.parameters == {"type": "object", "properties": {}, "additionalProperties": False}
    assert clock.call() == "noon"
    with pytest.raises(ToolError, match="argument 'tz' is not a known argument"):
        clock.call({"tz": "UTC"})


def test_openai_spec_registers_with_or_without_its_envelope() -> None:
    function = {"name": "math.factorial", "description": "n!", "parameters": TRIP, "strict": True}
    wrapped = Tool.from_openai({"type": "function", "function": function}, book)
    bare = Tool.from_openai(function, book)
    assert wrapped.name == bare.name == "math.factorial"
    assert wrapped.description == bare.description == "n!"
    assert wrapped.parameters == bare.parameters


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "function", "function": {"description": "x"}}, "needs a 'name'"),
        ({"name": "f", "parameters": {"type": "dict", "properties": {}}}, "not a valid JSON"),
        ({"name": "f", "parameters": {"type": "string"}}, "must be an object schema"),
        ({"name": "f", "parameters": ["a"]}, "must be a JSON schema"),
        ({"name": "f", "parameters": {"properties": {"a": {"type": "float"}}}}, "properties/a"),
        ({"name": "bad name", "parameters": {}}, "tool name 'bad name' is not valid"),
        ({"name": "final_answer", "parameters": {}}, "reserved"),
    ],
)
def test_bad_specs_are_configuration_errors_that_say_what_to_fix(
    spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Tool.from_openai(spec, book)


def test_schema_tool_enters_the_step_schema_and_the_loop() -> None:
    trip = Tool.from_schema("travel.book", "Book a trip.", TRIP, book)
    step = build_step_schema([trip], str)
    branch = step.output.schema["properties"]["action"]["anyOf"][0]
    assert branch["properties"]["tool"]["const"] == "travel.book"
    assert branch["properties"]["arguments"]["properties"]["from"]["maxLength"] == 4000
    text = json.dumps(call("travel.book", "Book it.", **{"from": "Oslo", "class": "business"}))
    parsed = parse_step(text, step, {"travel.book": trip})
    assert [(c.name, dict(c.arguments)) for c in parsed.calls] == [
        ("travel.book", {"from": "Oslo", "class": "business"})
    ]

    model = ScriptedModel(
        [call("travel.book", **{"from": "Oslo", "class": "business"}), final("ok")]
    )
    result = Agent(model, tools=[trip]).run("Book Oslo in business class.")
    assert result.stop_reason == "final_answer", result.error
    observation = result.steps[0].observations[0]
    assert observation.value == {"booked": {"from": "Oslo", "class": "business"}}


def test_safe_names_map_one_to_one_and_leave_fitting_names_alone() -> None:
    names = ["add", "math.factorial", "math_factorial", "a.b.c", "x" * 60 + ".tool", "ok-1"]
    mapping = safe_tool_names(names)
    assert mapping["add"] == "add" and mapping["ok-1"] == "ok-1"
    assert mapping["math_factorial"] == "math_factorial"  # the fitting name keeps its name
    assert mapping["math.factorial"] == "math_factorial_2"
    assert mapping["a.b.c"] == "a_b_c"
    assert len(set(mapping.values())) == len(names)
    assert all(len(safe) <= 64 for safe in mapping.values())


def _bfcl_specs() -> list[dict[str, Any]]:
    with gzip.open(DATA / "bfcl_v4_functions.jsonl.gz", "rt") as handle:
        return [json.loads(line) for line in handle]


def test_every_bfcl_v4_function_spec_registers_unchanged() -> None:
    specs = _bfcl_specs()
    assert len(specs) == 1105
    for spec in specs:
        function = spec["function"]
        item = Tool.from_openai(spec, book)
        assert item.name == function["name"]
        assert item.description == function["description"]
        assert list(item.parameters["properties"]) == list(function["parameters"]["properties"])
        assert item.parameters.get("required", []) == function["parameters"].get("required", [])
    dotted = [spec for spec in specs if "." in spec["function"]["name"]]
    assert len(dotted) == 536


def _without_added_closing(schema: Any, original: Any) -> Any:
    """`schema` less the `additionalProperties: false` it has and `original` has not."""
    if isinstance(schema, dict):
        return {
            key: _without_added_closing(
                value, original.get(key) if isinstance(original, dict) else None
            )
            for key, value in schema.items()
            if not (
                key == "additionalProperties" and value is False and key not in (original or {})
            )
        }
    if isinstance(schema, list):
        originals = original if isinstance(original, list) else []
        return [
            _without_added_closing(value, originals[index] if index < len(originals) else None)
            for index, value in enumerate(schema)
        ]
    return schema


def test_every_bfcl_v4_spec_keeps_its_parameters_but_for_closed_objects() -> None:
    # Registered unchanged (issue 25): types, descriptions, enums, defaults, nesting as
    # written; the only change is closing objects that said nothing about other keys.
    for spec in _bfcl_specs():
        parameters = spec["function"]["parameters"]
        registered = Tool.from_openai(spec, book).parameters
        assert _without_added_closing(registered, parameters) == parameters, spec["function"][
            "name"
        ]
        assert registered.get("additionalProperties") is False


def test_every_bfcl_v4_step_schema_compiles_for_constrained_decoding() -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    llamacpp_tokenizers = pytest.importorskip("llguidance.llamacpp")
    from llguidance import LLMatcher

    from agentlib.models.local import default_model_path
    from agentlib.models.outlines import llguidance_grammar

    llama = llama_cpp.Llama(model_path=str(default_model_path()), vocab_only=True, verbose=False)
    with warnings.catch_warnings():
        # llguidance's vocabulary reader calls a function llama-cpp-python deprecated.
        warnings.filterwarnings("ignore", "llama_token_get_attr", DeprecationWarning)
        tokenizer = llamacpp_tokenizers.lltokenizer_from_vocab(
            llama_cpp.llama_model_get_vocab(llama.model)
        )
    llama.close()
    tools = [Tool.from_openai(spec, book) for spec in _bfcl_specs()]
    for start in range(0, len(tools), 5):  # five tools per step, as in BFCL's multiple category
        step = build_step_schema(tools[start : start + 5], str, parallel_calls=4)
        grammar = llguidance_grammar(step.output.enforced)  # what OutlinesModel compiles
        is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar, tokenizer)
        assert (is_error, messages) == (False, []), [tool.name for tool in tools[start : start + 5]]
