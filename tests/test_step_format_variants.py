"""The step variants that change how a step is generated: `<tool_call>` blocks, tool-first."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from agentlib import Agent, ConfigurationError, FunctionModel, ModelOutputError, ScriptedModel
from agentlib.models.base import Message, ModelCapabilities, ModelResponse, OutputSchema, Sampling
from agentlib.models.profiles import DEFAULT_RETRY_TEMPERATURE, StepOptions
from agentlib.models.testing import call, final, parallel
from agentlib.step_format import FINAL_ANSWER, StepFormat
from tests._constraint import ByteConstraint, as_generated
from tests.test_agent import book
from tests.test_step_format import TOOLS, TOOLS_BY_NAME, Answer

TOOL_CALL = StepOptions(tool_format="tool_call", thought="none")
TOOL_FIRST = StepOptions(decoding="tool_first")


# -- the <tool_call> format ------------------------------------------------------------------


def test_tool_call_steps_are_blocks_and_the_answer_is_plain_text() -> None:
    step_format = StepFormat.build(TOOLS, str, options=TOOL_CALL, max_tokens=512)
    text = step_format.assemble("", [("search", {"query": "paris"})])
    assert text == '<tool_call>\n{"name": "search", "arguments": {"query": "paris"}}\n</tool_call>'
    parsed = step_format.parse(text, TOOLS_BY_NAME)
    assert [(c.name, dict(c.values)) for c in parsed.calls] == [
        ("search", {"query": "paris", "max_results": 5})
    ]
    answer = step_format.parse("Paris is the capital.", TOOLS_BY_NAME)
    assert answer.is_final and answer.answer == "Paris is the capital."
    assert step_format.assemble("", [(FINAL_ANSWER, {"answer": "Paris."})]) == "Paris."


def test_the_grammar_admits_what_the_format_writes_and_nothing_else() -> None:
    step_format = StepFormat.build(TOOLS, str, options=TOOL_CALL, parallel_calls=2, max_tokens=512)
    grammar = step_format.output.grammar
    assert grammar is not None
    constraint = ByteConstraint(step_format.output.schema, lark=grammar)
    two = step_format.assemble("", [("search", {"query": "x"}), ("scale", {"value": 1.5})])
    assert constraint.accepts(two)
    assert constraint.accepts(step_format.assemble("", [(FINAL_ANSWER, {"answer": "Paris."})]))
    three = step_format.assemble("", [("search", {"query": "x"})] * 3)
    assert not constraint.accepts(three)  # more blocks than parallel_calls
    assert not constraint.accepts('<tool_call>\n{"name": "serach", "arguments": {}}\n</tool_call>')
    assert not constraint.accepts("")  # an empty answer
    assert not constraint.accepts("Paris <tool_call>")  # no call hidden in an answer


def test_a_structured_answer_is_its_json_and_is_validated() -> None:
    step_format = StepFormat.build(TOOLS, Answer, options=TOOL_CALL)
    parsed = step_format.parse('{"city": "Paris", "population": 2}', TOOLS_BY_NAME)
    assert parsed.answer == Answer(city="Paris", population=2)
    with pytest.raises(ModelOutputError, match="population"):
        step_format.parse('{"city": "Paris"}', TOOLS_BY_NAME)
    constraint = ByteConstraint({}, lark=step_format.output.grammar)
    assert constraint.accepts('{"city": "Paris", "population": 2}')
    assert not constraint.accepts("Paris")


def test_a_backend_without_grammars_gets_the_json_step_and_the_parser_reads_it() -> None:
    step_format = StepFormat.build(TOOLS, str, options=TOOL_CALL)
    text = json.dumps({"action": {"name": "search", "arguments": {"query": "x"}}})
    assert ByteConstraint(step_format.output.schema).accepts(text)
    assert step_format.parse(text, TOOLS_BY_NAME).calls[0].name == "search"


def test_bad_blocks_are_refused_with_a_message() -> None:
    step_format = StepFormat.build(TOOLS, str, options=TOOL_CALL)
    with pytest.raises(ModelOutputError, match="at most 1"):
        step_format.parse(step_format.assemble("", [("search", {"query": "x"})] * 2), TOOLS_BY_NAME)
    with pytest.raises(ModelOutputError, match="unknown tool 'nope'"):
        step_format.parse('<tool_call>\n{"name": "nope", "arguments": {}}\n</tool_call>', {})
    with pytest.raises(ModelOutputError, match="end with </tool_call>"):
        step_format.parse('<tool_call>\n{"name": "search"', TOOLS_BY_NAME)


def test_the_prompt_lists_tools_as_the_chat_template_does() -> None:
    prompt = StepFormat.build(TOOLS, str, options=TOOL_CALL).render_prompt(None)
    listed = prompt.split("<tools>\n", 1)[1].split("\n</tools>", 1)[0].splitlines()
    assert [json.loads(line)["function"]["name"] for line in listed] == [
        "search",
        "lookup",
        "scale",
    ]
    assert json.loads(listed[0])["type"] == "function"
    assert '"thought"' not in prompt


@pytest.mark.parametrize("parallel_calls", [1, 2])
def test_a_scripted_agent_runs_in_the_tool_call_format(parallel_calls: int) -> None:
    first = call("search", query="paris", max_results=1)
    if parallel_calls > 1:
        first = parallel(first, call("scale", value=2, unit="km"))
    model = ScriptedModel([first, final({"city": "Paris", "population": 2})])
    agent = Agent(
        model,
        tools=TOOLS,
        output_type=Answer,
        parallel_calls=parallel_calls,
        step_options=TOOL_CALL,
    )
    result = agent.run("Population of Paris?")
    assert result.ok and result.output == Answer(city="Paris", population=2)
    echoed = model.requests[1].messages[-2].content
    assert echoed.startswith('<tool_call>\n{"name": "search"')
    assert echoed.count("<tool_call>") == parallel_calls


def test_the_tool_call_format_has_no_thought() -> None:
    with pytest.raises(ConfigurationError, match="thought='none'"):
        StepOptions(tool_format="tool_call")
    with pytest.raises(ConfigurationError, match="tool_format='json' only"):
        StepOptions(tool_format="tool_call", thought="none", decoding="tool_first")


# -- tool-first decoding ---------------------------------------------------------------------


class ToolFirstScript:
    """Plays a run tool-first: names `plan[i]` at the choice, then fills its one branch."""

    def __init__(self, plan: Sequence[str]) -> None:
        self.plan = list(plan)
        self.requests: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, messages: Sequence[Message], output: OutputSchema | None) -> Any:
        assert output is not None
        schema = dict(output.schema)
        self.requests.append((output.name, messages[0].content, schema))
        if output.name == "agent_step_choice":
            names = schema["properties"]["action"]["properties"]["tool"]["enum"]
            assert self.plan[0] in names
            return {"thought": "I choose.", "action": {"tool": self.plan.pop(0)}}
        (branch,) = schema["properties"]["action"]["anyOf"]
        name = branch["properties"]["tool"]["const"]
        thought = schema["properties"]["thought"]["const"]
        if name == FINAL_ANSWER:
            return {"thought": thought, "action": {"tool": name, "answer": "done"}}
        return {"thought": thought, "action": {"tool": name, "arguments": {"query": "paris"}}}


def test_tool_first_chooses_then_writes_only_that_tools_arguments() -> None:
    script = ToolFirstScript(["search", FINAL_ANSWER])
    result = Agent(FunctionModel(script), tools=TOOLS, step_options=TOOL_FIRST).run("Paris?")
    assert result.ok and result.output == "done"
    assert [c.tool_name for c in result.steps[0].calls] == ["search"]
    assert result.steps[0].thought == "I choose."
    assert [name for name, _, _ in script.requests] == ["agent_step_choice", "agent_step"] * 2
    choice_prompt, call_prompt = script.requests[0][1], script.requests[1][1]
    assert "- lookup: Look records up." in choice_prompt and '"filters"' not in choice_prompt
    assert "- search:" in call_prompt and "lookup" not in call_prompt.split("Tools:")[1]


def test_tool_first_choice_offers_every_branch() -> None:
    script = ToolFirstScript([FINAL_ANSWER])
    Agent(FunctionModel(script), tools=TOOLS, step_options=TOOL_FIRST).run("Paris?")
    names = script.requests[0][2]["properties"]["action"]["properties"]["tool"]["enum"]
    assert names == ["search", "lookup", "scale", FINAL_ANSWER]


def test_tool_first_choice_that_names_no_branch_is_retried_with_the_parsers_message() -> None:
    replies = iter(["not json", json.dumps({"thought": "", "action": {"tool": FINAL_ANSWER}})])

    def model(messages: Sequence[Message], output: OutputSchema | None) -> Any:
        if output is not None and output.name == "agent_step_choice":
            return next(replies)
        return {"thought": "", "action": {"tool": FINAL_ANSWER, "answer": "ok"}}

    result = Agent(FunctionModel(model), tools=TOOLS, step_options=TOOL_FIRST).run("Paris?")
    assert result.ok and result.output == "ok"
    assert result.steps[0].retries == 1


class _ToolFirstBooking:
    """Books tool-first: chooses `book`, writes `cities[i]`, and answers once one was booked.

    Records each request's `(output, sampling)`; `sampling` is `None` for a model that does
    not take it (as `FunctionModel` does not).
    """

    def __init__(self, agent_format: StepFormat, cities: list[str]) -> None:
        self.format, self.cities = agent_format, cities
        self.requests: list[tuple[OutputSchema, Sampling | None]] = []

    def reply(self, output: OutputSchema | None, sampling: Sampling | None = None) -> str:
        assert output is not None
        written = sum(1 for item, _ in self.requests if item.name == "agent_step")
        self.requests.append((output, sampling))
        booked = written >= len(self.cities)
        if output.name == "agent_step_choice":
            tool = FINAL_ANSWER if booked else "book"
            return json.dumps({"thought": "I book it.", "action": {"tool": tool}})
        if booked:
            return as_generated(self.format.step("I book it.", [self.format.final_action("ok")]))
        return _booking(self.format, self.cities[written])


def _booking(step_format: StepFormat, city: str) -> str:
    return as_generated(
        step_format.step("I book it.", [step_format.call_action("book", {"city": city})])
    )


class _SamplingBooking:
    """`_ToolFirstBooking` as a user's model that takes `sampling=` (no agentlib base class)."""

    name = "sampling-tool-first"
    capabilities = ModelCapabilities(supports_sampling=True)

    def __init__(self) -> None:
        self.script: _ToolFirstBooking | None = None

    async def agenerate(
        self,
        messages: Sequence[Message],
        *,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
    ) -> ModelResponse:
        assert self.script is not None
        return ModelResponse(text=self.script.reply(output, sampling), path="scripted")


def test_a_tool_first_retry_excludes_the_refused_value() -> None:
    script: list[_ToolFirstBooking] = []
    model = FunctionModel(lambda messages, output: script[0].reply(output))
    agent = Agent(model, tools=[book], step_options=TOOL_FIRST, max_tokens_per_step=400)
    script.append(_ToolFirstBooking(agent.step_format, ["Parsi", "Paris"]))
    result = agent.run("Fly me to Paris")
    assert result.ok and result.steps[0].retries == 1
    assert [call.arguments for call in result.steps[0].calls] == [{"city": "Paris"}]
    names = [output.name for output, _ in script[0].requests]
    assert names == ["agent_step_choice", "agent_step"] * 3
    first, retry = script[0].requests[1][0], script[0].requests[3][0]
    assert retry.schema == first.schema  # what servers and prompts see is unchanged
    assert ByteConstraint(first.enforced).accepts(_booking(agent.step_format, "Parsi"))
    assert not ByteConstraint(retry.enforced).accepts(_booking(agent.step_format, "Parsi"))
    assert ByteConstraint(retry.enforced).accepts(_booking(agent.step_format, "Paris"))


def test_a_tool_first_retry_is_sampled_in_both_requests() -> None:
    model = _SamplingBooking()
    agent = Agent(model, tools=[book], step_options=TOOL_FIRST, max_tokens_per_step=400)
    model.script = _ToolFirstBooking(agent.step_format, ["Parsi", "Paris"])
    assert agent.run("Fly me to Paris").ok
    retry = Sampling(temperature=DEFAULT_RETRY_TEMPERATURE, seed=1)
    samplings = [sampling for _, sampling in model.script.requests]
    assert samplings == [None, None, retry, retry, None, None]  # the next step starts greedy


# -- the embedded model, end to end ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides", [{"tool_format": "tool_call", "thought": "none"}, {"decoding": "tool_first"}]
)
def test_the_embedded_model_writes_valid_steps_in_each_variant(overrides: dict[str, Any]) -> None:
    """Real SmolLM2 under each variant's constraint: every step parses, a call is a real one.

    (Under `tool_call` the 135M model answers in text rather than calling, see
    benchmarks/tool_calling.md; tool-first calls the calculator.)
    """
    pytest.importorskip("llama_cpp")
    from dataclasses import replace

    from agentlib import LocalModel
    from agentlib.tools.calculator import calculator

    model = LocalModel()
    options = replace(model.profile.step, **overrides)
    agent = Agent(model, tools=[calculator], max_steps=3, step_options=options)
    result = agent.run("What is 17 * 23?")
    assert result.stop_reason != "invalid_output", result.error
    first = result.steps[0]
    if overrides.get("decoding") == "tool_first":
        assert [c.tool_name for c in first.calls] == ["calculator"]
        assert first.observations[0].content == "391"
    else:
        assert first.calls or (first.is_final and str(result.output).strip())


class _VocabularyWithTags:
    """The two answers of llguidance's `LLTokenizer` that `bind_special_tokens` asks for."""

    def tokenize_str(self, text: str) -> list[int]:
        return {"<tool_call>": [151657], "</tool_call>": [151658]}.get(text, [1, 2, 3])

    def is_special_token(self, token: int) -> bool:
        return token in (151657, 151658)


def test_the_tags_become_the_models_special_tokens_when_its_vocabulary_has_them() -> None:
    from agentlib._tool_call_format import bind_special_tokens

    grammar = StepFormat.build(TOOLS, str, options=TOOL_CALL, max_tokens=512).output.grammar
    assert grammar is not None
    bound = bind_special_tokens(grammar, _VocabularyWithTags())
    assert "open: <[151657]>\n" in bound and "close: <[151658]>\n" in bound
    assert '"<tool_call>"' not in bound
    # A vocabulary that spells the tag in several tokens (bytes here) keeps the text.
    assert bind_special_tokens(grammar, ByteConstraint._tokenizer or _byte_tokenizer()) == grammar


def _byte_tokenizer() -> Any:
    ByteConstraint({"type": "string"})
    return ByteConstraint._tokenizer


def test_a_reply_whose_special_tags_were_dropped_is_read_as_calls() -> None:
    # llama-cpp-python leaves special tokens out of the text: `\n{block}\n` per call.
    step_format = StepFormat.build(TOOLS, str, options=TOOL_CALL, parallel_calls=2, max_tokens=512)
    text = (
        '\n{"name": "search", "arguments": {"query": "x"}}\n'
        '\n\n{"name": "scale", "arguments": {"value": 1.5}}\n'
    )
    assert [c.name for c in step_format.parse(text, TOOLS_BY_NAME).calls] == ["search", "scale"]
    assert step_format.parse("Paris.", TOOLS_BY_NAME).answer == "Paris."
