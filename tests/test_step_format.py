from __future__ import annotations

import inspect
import json
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

import jsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from inline_snapshot import snapshot
from pydantic import BaseModel, Field

from agentlib import Agent, ModelOutputError, ScriptedModel, Tool, tool
from agentlib.models.profiles import FORMAT_EXAMPLE, PROFILES, StepOptions
from agentlib.models.testing import call, final, parallel
from agentlib.step_format import FINAL_ANSWER, MIN_CALL_STRING_LENGTH, StepFormat
from agentlib.tools.calculator import calculator
from tests._constraint import SmolLM2Constraint, as_generated, smollm2
from tests.test_actions import Filter, search


@tool
def lookup(filters: list[Filter], exact: bool = False) -> str:
    """Look records up.

    Args:
        filters: Conditions that must all hold.
        exact: Match exactly.
    """
    return str(filters)


@tool
def scale(value: float, unit: Literal["m", "km"] | None = None, note: str = "") -> str:
    """Scale a value.

    Args:
        value: The value.
        unit: The unit.
        note: A note.
    """
    return f"{value}{unit}"


class Answer(BaseModel):
    city: str
    population: int


TOOLS = [search, lookup, scale]
TOOLS_BY_NAME = {item.name: item for item in TOOLS}


# -- a small generator of JSON values from the schemas the step format builds ----------------


def values_of(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Every value `schema` admits (for the keywords step schemas use)."""
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([values_of(item) for item in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        optional = [name for name in properties if name not in required]
        return st.fixed_dictionaries(
            {name: values_of(properties[name]) for name in properties if name in required},
            optional={name: values_of(properties[name]) for name in optional},
        )
    if kind == "array":
        return st.lists(
            values_of(schema.get("items", {})),
            min_size=schema.get("minItems", 0),
            max_size=schema.get("maxItems", 3),
        )
    if kind == "string":
        return st.text(max_size=min(schema.get("maxLength", 20), 20))
    if kind == "integer":
        return st.integers(schema.get("minimum", -1000), schema.get("maximum", 1000))
    if kind == "number":
        return st.floats(schema.get("minimum", -1e6), schema.get("maximum", 1e6), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    raise AssertionError(f"unexpected schema {schema}")


OPTIONS = st.builds(
    StepOptions,
    thought=st.sampled_from(["before", "after", "none"]),
    key_shape=st.sampled_from(["tool", "name"]),
)
OUTPUT_TYPES = st.sampled_from([str, int, Answer, list[str], Literal["yes", "no"]])
TOOLSETS = st.lists(st.sampled_from(TOOLS), unique=True, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    tools=TOOLSETS,
    output_type=OUTPUT_TYPES,
    parallel_calls=st.integers(1, 3),
    options=OPTIONS,
)
def test_every_step_the_schema_admits_parses(
    data: st.DataObject,
    tools: list[Any],
    output_type: Any,
    parallel_calls: int,
    options: StepOptions,
) -> None:
    step_format = StepFormat.build(
        tools, output_type, parallel_calls=parallel_calls, options=options
    )
    step = data.draw(values_of(dict(step_format.output.schema)))
    jsonschema.validate(step, step_format.output.schema)
    parsed = step_format.parse(json.dumps(step), {item.name: item for item in tools})
    assert parsed.is_final or 1 <= len(parsed.calls) <= parallel_calls
    # What the loop echoes is again a step the schema admits.
    jsonschema.validate(json.loads(step_format.echo(parsed)), step_format.output.schema)


def _length_in_tokens_at_most(value: Any) -> int:
    """The step's worst-case token count: one per character, strings at their bound."""
    return len(json.dumps(value, ensure_ascii=False))


def _longest(schema: dict[str, Any]) -> Any:
    """The admitted value with every string at its bound (and the widest branch)."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return max(schema["enum"], key=lambda item: len(json.dumps(item)))
    if "anyOf" in schema:
        return max(
            (_longest(item) for item in schema["anyOf"]), key=lambda item: len(json.dumps(item))
        )
    kind = schema.get("type")
    if kind == "object":
        return {name: _longest(sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [_longest(schema["items"])] * schema.get("maxItems", 1)
    if kind == "string":
        return "x" * schema["maxLength"]
    return {"integer": 1, "number": 1.5, "boolean": False, "null": None}[str(kind)]


@settings(max_examples=40, deadline=None)
@given(
    tools=TOOLSETS,
    output_type=OUTPUT_TYPES,
    parallel_calls=st.integers(1, 3),
    options=OPTIONS,
    max_tokens=st.integers(160, 2048),
)
def test_a_step_at_its_string_bounds_fits_the_token_budget(
    tools: list[Any],
    output_type: Any,
    parallel_calls: int,
    options: StepOptions,
    max_tokens: int,
) -> None:
    # Below this the JSON syntax of the calls alone (names, keys, numbers) fills the budget:
    # no string bound can help there.
    assume(max_tokens >= 160 * parallel_calls)
    step_format = StepFormat.build(
        tools, output_type, parallel_calls=parallel_calls, options=options, max_tokens=max_tokens
    )
    longest = _longest(dict(step_format.output.schema))
    assert _length_in_tokens_at_most(longest) <= max_tokens


def test_parallel_schema_refuses_a_final_answer_beside_calls() -> None:
    step_format = StepFormat.build(TOOLS, str, parallel_calls=3)
    schema = step_format.output.schema
    mixed = {
        "thought": "",
        "actions": [
            {"tool": "search", "arguments": {"query": "x"}},
            {"tool": FINAL_ANSWER, "answer": "done"},
        ],
    }
    two_finals = {
        "thought": "",
        "actions": [{"tool": FINAL_ANSWER, "answer": "a"}, {"tool": FINAL_ANSWER, "answer": "b"}],
    }
    for step in (mixed, two_finals):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(step, schema)
        with pytest.raises(ModelOutputError, match="only action"):
            step_format.parse(json.dumps(step), TOOLS_BY_NAME)


@tool
def play(artist: str, duration: float) -> str:
    """Play songs of an artist.

    Args:
        artist: The artist.
        duration: Minutes to play.
    """
    return artist


def test_a_parallel_step_holds_fewer_calls_rather_than_one_character_strings() -> None:
    # Eight calls in 512 tokens once left one character per string: SmolLM2 wrote
    # "artist": "T" eight times on BFCL parallel.
    step_format = StepFormat.build([play], str, parallel_calls=8, max_tokens=512)
    assert 1 < step_format.calls_per_step < 8
    calls = step_format.output.schema["properties"]["actions"]["anyOf"][0]
    assert calls["maxItems"] == step_format.calls_per_step
    artist = calls["items"]["anyOf"][0]["properties"]["arguments"]["properties"]["artist"]
    assert artist["maxLength"] >= MIN_CALL_STRING_LENGTH
    assert _length_in_tokens_at_most(_longest(dict(step_format.output.schema))) <= 512
    # The prompt and the parser say the same number.
    assert f"at most {step_format.calls_per_step} tool calls" in step_format.describe()
    one = {"tool": "play", "arguments": {"artist": "Adele", "duration": 20}}
    too_many = json.dumps({"thought": "", "actions": [one] * (step_format.calls_per_step + 1)})
    with pytest.raises(ModelOutputError, match=f"at most {step_format.calls_per_step} actions"):
        step_format.parse(too_many, {"play": play})
    step_format.parse(json.dumps({"thought": "", "actions": [one] * 2}), {"play": play})
    # Without a budget, or with room for all of them, the step holds every call asked for.
    assert StepFormat.build([play], str, parallel_calls=8).calls_per_step == 8
    assert StepFormat.build([play], str, parallel_calls=8, max_tokens=4096).calls_per_step == 8


def test_identical_calls_of_a_step_run_once_when_the_options_say_so() -> None:
    taylor = {"tool": "play", "arguments": {"artist": "Taylor Swift", "duration": 20}}
    maroon = {"tool": "play", "arguments": {"duration": 15, "artist": "Maroon 5"}}
    text = json.dumps({"thought": "", "actions": [taylor, maroon, taylor, dict(maroon)]})
    distinct = StepFormat.build(
        [play], str, parallel_calls=4, options=StepOptions(distinct_calls=True)
    )
    calls = distinct.parse(text, {"play": play}).calls
    assert [call.arguments["artist"] for call in calls] == ["Taylor Swift", "Maroon 5"]
    # By default every call runs, identical or not (a tool may be meant to run twice).
    assert (
        len(StepFormat.build([play], str, parallel_calls=4).parse(text, {"play": play}).calls) == 4
    )
    assert PROFILES["smollm2"].step.distinct_calls


def test_budgeted_bounds_snapshot() -> None:
    step_format = StepFormat.build([search], str, max_tokens=256)
    schema = step_format.output.schema
    thought = schema["properties"]["thought"]
    query = schema["properties"]["action"]["anyOf"][0]["properties"]["arguments"]["properties"][
        "query"
    ]
    answer = schema["properties"]["action"]["anyOf"][1]["properties"]["answer"]
    assert (thought["maxLength"], query["maxLength"], answer["maxLength"]) == snapshot((37, 50, 73))


# -- the prompt ------------------------------------------------------------------------------


def test_the_prompt_shows_filled_examples_never_a_template() -> None:
    for parallel_calls in (1, 2):
        step_format = StepFormat.build(TOOLS, Answer, parallel_calls=parallel_calls)
        prompt = step_format.render_prompt(None)
        assert "<tool name>" not in prompt and "{...}" not in prompt and '"..."' not in prompt
        format_lines = step_format.describe().splitlines()
        call, answer = [line for line in format_lines if line.startswith("{")]
        # The call shown is of a tool the agent does not have, with real values: a made-up
        # call of its own tool ("a", 1) is what small models copied (FORMAT_EXAMPLE).
        shown = json.loads(call)
        actions = shown["actions"] if parallel_calls > 1 else [shown["action"]]
        assert {item["tool"] for item in actions} == {FORMAT_EXAMPLE.tool}
        assert FORMAT_EXAMPLE.tool not in TOOLS_BY_NAME
        assert f'task "{FORMAT_EXAMPLE.task}"' in step_format.describe()
        assert len(actions) == parallel_calls  # a parallel format shows calls side by side
        step_format.parse(answer, TOOLS_BY_NAME)  # the answer is a step the format accepts


def test_a_worked_example_of_an_offered_tool_is_the_call_shown() -> None:
    example = PROFILES["smollm2"].examples[0]
    tools = [*TOOLS, calculator]
    prompt = StepFormat.build(tools, str).render_prompt(None, examples=(example,))
    assert f"Task: {example.task}" in prompt and FORMAT_EXAMPLE.tool not in prompt
    # With an int answer, the example's answer is shown as the type takes it.
    described = StepFormat.build(tools, int).describe(example)
    assert '"answer": 10}' in described


def test_the_tool_list_says_what_is_required_and_shows_no_null_default_on_a_plain_type() -> None:
    @tool
    def count(word: str, limit: int = None) -> int:  # type: ignore[assignment]  # noqa: RUF013
        """Count a word.

        Args:
            word: The word.
            limit: The most to count.
        """
        return 0

    text = StepFormat.build([count, search], str).describe_tools()
    assert "required: word; optional: limit" in text
    assert "required: query; optional: max_results" in text
    assert '"default":null' not in text and '"default":5' in text


def test_signature_descriptions_are_compact_python() -> None:
    options = StepOptions(tool_descriptions="signature")
    text = StepFormat.build(TOOLS, str, options=options).describe_tools()
    assert text.splitlines()[0] == ("- search(query: str, max_results: int = 5): Search the web.")
    assert '- scale(value: float, unit: Literal["m", "km"] | None = None, note: str = \'\')' in text
    assert "    query: What to search for." in text


def test_tool_examples_are_one_generated_call_per_tool() -> None:
    step_format = StepFormat.build(TOOLS, str, options=StepOptions(tool_examples=True))
    examples = [
        line.removeprefix("  example: ")
        for line in step_format.describe_tools().splitlines()
        if line.startswith("  example: ")
    ]
    assert len(examples) == len(TOOLS)
    for line in examples:
        assert step_format.parse(line, TOOLS_BY_NAME).calls


def test_abstaining_wording_is_an_option() -> None:
    wording = "If no tool fits, say so with final_answer."
    rules = StepFormat.build(TOOLS, str, options=StepOptions(final_answer_wording=wording))
    assert f"- {wording}" in rules.rules()


# -- the variants drive the loop end to end -------------------------------------------------


@pytest.mark.parametrize("thought", ["before", "after", "none"])
@pytest.mark.parametrize("key_shape", ["tool", "name"])
@pytest.mark.parametrize("parallel_calls", [1, 2])
def test_every_variant_runs_a_scripted_agent(
    thought: Literal["before", "after", "none"],
    key_shape: Literal["tool", "name"],
    parallel_calls: int,
) -> None:
    first = call("search", "look", query="paris", max_results=1)
    if parallel_calls > 1:
        first = parallel(first, call("scale", value=2, unit="km"), thought="both")
    model = ScriptedModel([first, final({"city": "Paris", "population": 2})])
    agent = Agent(
        model,
        tools=TOOLS,
        output_type=Answer,
        parallel_calls=parallel_calls,
        step_options=StepOptions(thought=thought, key_shape=key_shape),
    )
    result = agent.run("Population of Paris?")
    assert result.ok and result.output == Answer(city="Paris", population=2)
    assert result.steps[0].observations[0].content == '["paris"]'
    echoed = json.loads(model.requests[1].messages[-2].content)
    assert set(echoed) == ({"actions"} if parallel_calls > 1 else {"action"}) | (
        set() if thought == "none" else {"thought"}
    )
    action = echoed["actions"][0] if parallel_calls > 1 else echoed["action"]
    assert action[key_shape] == "search"


def test_the_name_shape_final_answer_is_wrapped_in_arguments() -> None:
    step_format = StepFormat.build(TOOLS, int, options=StepOptions(key_shape="name"))
    text = json.dumps({"thought": "", "action": {"name": FINAL_ANSWER, "arguments": {"answer": 7}}})
    assert step_format.parse(text, TOOLS_BY_NAME).answer == 7
    bare = json.dumps({"thought": "", "action": {"name": FINAL_ANSWER, "arguments": 7}})
    with pytest.raises(ModelOutputError, match="answer"):
        step_format.parse(bare, TOOLS_BY_NAME)


def test_the_branches_are_data_for_backends() -> None:
    step_format = StepFormat.build(TOOLS, int, parallel_calls=2)
    actions = step_format.output.actions
    assert actions is not None and actions.parallel_calls == 2
    assert [branch.name for branch in actions.branches] == [*step_format.tool_names, FINAL_ANSWER]
    assert [branch.is_final for branch in actions.branches] == [False, False, False, True]
    text = actions.assemble("t", [("search", {"query": "x"}), ("scale", {"value": 1.0})])
    parsed = step_format.parse(text, TOOLS_BY_NAME)
    assert [c.name for c in parsed.calls] == ["search", "scale"]
    final_text = actions.assemble("t", [(FINAL_ANSWER, {"answer": 3})])
    assert step_format.parse(final_text, TOOLS_BY_NAME).answer == 3


# -- generated toolsets ------------------------------------------------------------------------


class Address(BaseModel):
    street: str
    number: int


FIELD_TYPES: list[Any] = [
    str,
    int,
    float,
    bool,
    Literal["a", "b"],
    list[str],
    int | None,
    Address,
    list[Address],
    Annotated[int, Field(ge=0, le=10**18)],  # a declared range past the default digits
    Annotated[float, Field(ge=0, le=1)],
]


def _make_tool(name: str, fields: list[tuple[str, Any, bool]]) -> Tool:
    def function(**arguments: Any) -> str:
        return "ok"

    parameters = [
        inspect.Parameter(
            field,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=kind,
            default=None if optional else inspect.Parameter.empty,
        )
        for field, kind, optional in fields
    ]
    function.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    function.__annotations__ = {
        field: kind | None if optional else kind for field, kind, optional in fields
    }
    function.__name__ = name
    function.__doc__ = f"The tool {name}."
    return Tool(function)


GENERATED_TOOLSETS = st.lists(
    st.lists(st.tuples(st.sampled_from(FIELD_TYPES), st.booleans()), min_size=0, max_size=4),
    min_size=0,
    max_size=3,
).map(
    lambda specs: [
        _make_tool(
            f"tool_{index}", [(f"p{n}", kind, optional) for n, (kind, optional) in enumerate(spec)]
        )
        for index, spec in enumerate(specs)
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    tools=GENERATED_TOOLSETS,
    output_type=st.sampled_from([str, int, Address, list[Address], bool | None]),
    parallel_calls=st.integers(1, 3),
    options=OPTIONS,
)
def test_every_step_a_generated_toolset_admits_parses(
    data: st.DataObject,
    tools: list[Tool],
    output_type: Any,
    parallel_calls: int,
    options: StepOptions,
) -> None:
    step_format = StepFormat.build(
        tools, output_type, parallel_calls=parallel_calls, options=options, max_tokens=1024
    )
    step = data.draw(values_of(dict(step_format.output.schema)))
    parsed = step_format.parse(json.dumps(step), {item.name: item for item in tools})
    assert parsed.is_final or 1 <= len(parsed.calls) <= parallel_calls


# -- the token budget on SmolLM2's vocabulary --------------------------------------------------


def _widest(schema: dict[str, Any]) -> Any:
    """The costliest value the constraint admits: strings at their bound, a quarter of their
    characters 4-byte emoji, arrays at `maxItems`, the widest branch."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return max(schema["enum"], key=lambda item: len(json.dumps(item, ensure_ascii=False)))
    if "anyOf" in schema:
        return max(
            (_widest(item) for item in schema["anyOf"]),
            key=lambda item: len(json.dumps(item, ensure_ascii=False).encode()),
        )
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(item for item in kind if item != "null")
    if kind == "object":
        return {name: _widest(sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [_widest(schema["items"])] * schema["maxItems"]
    if kind == "string":
        length = schema["maxLength"]
        return "😀" * (length // 4) + "x" * (length - length // 4)
    if kind in ("integer", "number"):
        return _WideNumber(_widest_number(schema, str(kind)))
    return {"boolean": False, "null": None}[str(kind)]


class _WideNumber(str):
    """A number's JSON text, written raw by `_as_text` (a float would lose its digits)."""

    __slots__ = ()


_UNBOUNDED = "9" * 1000  # what a constraint without a digit bound lets through


def _widest_number(schema: dict[str, Any], kind: str) -> str:
    """The longest number text the constraint admits at `schema` (its bounds and step)."""
    lower = schema.get("minimum", schema.get("exclusiveMinimum"))
    upper = schema.get("maximum", schema.get("exclusiveMaximum"))
    if lower is None or upper is None:
        return "-" + _UNBOUNDED if lower is None else _UNBOUNDED
    side = lower if lower < 0 else upper
    sign = "-" if side < 0 else ""
    if kind == "integer":
        return str(int(side))
    step = schema.get("multipleOf")
    if step is None:
        return f"{sign}0.{_UNBOUNDED}"
    fraction = max(0, -Decimal(repr(step)).normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"{sign}{int(abs(side)) - 1}.{'9' * fraction}"


def _as_text(value: Any) -> str:
    """`as_generated(value)`, numbers written as `_WideNumber` says."""
    marked = _mark_numbers(value)
    return re.sub(r'"\\u0000([-0-9.]+)"', r"\1", as_generated(marked))


def _mark_numbers(value: Any) -> Any:
    if isinstance(value, _WideNumber):
        return "\x00" + value
    if isinstance(value, dict):
        return {key: _mark_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mark_numbers(item) for item in value]
    return value


def test_every_smollm2_token_holds_at_least_one_byte() -> None:
    # Why a step's UTF-8 bytes bound its tokens, whatever tokenization the constraint allows.
    pytest.importorskip("llama_cpp")
    tokenizer = smollm2()
    lengths = [
        len(tokenizer.decode_bytes([token]))
        for token in range(tokenizer.vocab_size)
        if not tokenizer.is_special_token(token)
    ]
    assert len(lengths) > 49_000 and min(lengths) >= 1


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tools=GENERATED_TOOLSETS,
    output_type=st.sampled_from([str, Address, list[Address], list[str]]),
    parallel_calls=st.integers(1, 3),
    options=OPTIONS,
    max_tokens=st.integers(256, 2048),
)
def test_a_step_at_its_bounds_fits_the_budget_on_smollm2(
    tools: list[Tool],
    output_type: Any,
    parallel_calls: int,
    options: StepOptions,
    max_tokens: int,
) -> None:
    # Non-ASCII text, arrays without `maxItems` (list[str], list[Address]) and numbers at
    # their most digits included.
    pytest.importorskip("llama_cpp")
    assume(max_tokens >= 200 * parallel_calls)
    step_format = StepFormat.build(
        tools, output_type, parallel_calls=parallel_calls, options=options, max_tokens=max_tokens
    )
    text = _as_text(_widest(dict(step_format.output.enforced)))
    constraint = SmolLM2Constraint(step_format.output.enforced)
    assert constraint.accepts(text)  # the constraint admits this step: the bound is reached
    assert len(text.encode()) <= max_tokens  # the worst tokenization: a byte a token
    assert len(constraint.tokens(text)) <= max_tokens  # SmolLM2's own tokenization
