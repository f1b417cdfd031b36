"""Agents that use agents: `Agent.as_tool` (sub-agents) and handoffs (`Agent(handoffs=...)`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agentlib import (
    Agent,
    CancelToken,
    ConfigurationError,
    FunctionModel,
    Message,
    ModelError,
    ModelOutputError,
    OutputSchema,
    RunFinishedEvent,
    ScriptedModel,
    TestModel,
    ToolCallEvent,
    ToolResultEvent,
    tool,
)
from agentlib.models.testing import call, final
from agentlib.step_format import StepFormat
from agentlib.steps import Handoff, HandoffEvent, SubagentEvent

PRICES = {"apple": 3, "pear": 5}


@tool
def price(fruit: str) -> int:
    """The price of a fruit in cents.

    Args:
        fruit: The fruit's name.
    """
    return PRICES[fruit]


def shop_agent(*replies: Any, **options: Any) -> Agent[Any]:
    return Agent(
        ScriptedModel(replies), tools=[price], name="shop", description="Knows prices.", **options
    )


# -- as_tool ------------------------------------------------------------------------------------


async def test_sub_agent_steps_are_nested_in_the_parent_result() -> None:
    child = shop_agent(call("price", fruit="pear"), final("A pear costs 5 cents."))
    parent = Agent(
        ScriptedModel(
            [call("shop", "Ask the shop.", task="What does a pear cost?"), final("5 cents")]
        ),
        tools=[child.as_tool()],
    )
    result = await parent.arun("Price of a pear?")
    assert result.ok and result.output == "5 cents"
    observation = result.steps[0].observations[0]
    assert not observation.is_error
    assert observation.content == "A pear costs 5 cents."
    assert observation.run is not None and observation.run.ok
    assert observation.run.task == "What does a pear cost?"
    child_steps = observation.run.steps
    assert [c.tool_name for c in child_steps[0].calls] == ["price"]
    assert child_steps[0].observations[0].value == 5  # the child's tool really ran
    # The child's tokens count in the parent's usage; the parent's steps hold its own only.
    own = sum(step.usage.total_tokens for step in result.steps)
    assert result.usage.total_tokens == own + observation.run.usage.total_tokens
    assert observation.run.usage.total_tokens > 0


async def test_sub_agent_events_are_wrapped_in_the_parent_stream_as_they_happen() -> None:
    child = shop_agent(call("price", fruit="apple"), final("3"))
    parent = Agent(
        ScriptedModel([call("shop", task="apple?"), final("3")]), tools=[child.as_tool()]
    )
    events = [event async for event in parent.stream("apple?")]
    kinds = [type(event).__name__ for event in events]
    first_sub = kinds.index("SubagentEvent")
    assert kinds.index("ToolCallEvent") < first_sub < kinds.index("ToolResultEvent")
    nested = [event for event in events if isinstance(event, SubagentEvent)]
    assert {event.agent_name for event in nested} == {"shop"}
    assert {event.call_id for event in nested} == {"call_1"}
    inner_calls = [e.event for e in nested if isinstance(e.event, ToolCallEvent)]
    assert [e.call.tool_name for e in inner_calls] == ["price"]
    assert isinstance(nested[-1].event, RunFinishedEvent) and nested[-1].event.result.ok
    assert isinstance(events[-1], RunFinishedEvent)


async def test_two_sub_agents_run_concurrently_in_one_step() -> None:
    from agentlib.models.testing import parallel

    apples = shop_agent(call("price", fruit="apple"), final("3"))
    pears = Agent(ScriptedModel([call("price", fruit="pear"), final("5")]), tools=[price])
    parent = Agent(
        ScriptedModel(
            [
                parallel(call("apples", task="apple?"), call("pears", task="pear?")),
                final("8 in all"),
            ]
        ),
        tools=[apples.as_tool("apples"), pears.as_tool("pears")],
        parallel_calls=2,
    )
    events = [event async for event in parent.stream("both?")]
    nested = [event for event in events if isinstance(event, SubagentEvent)]
    assert {(e.agent_name, e.call_id) for e in nested} == {
        ("apples", "call_1"),
        ("pears", "call_2"),
    }
    result = events[-1].result if isinstance(events[-1], RunFinishedEvent) else None
    assert result is not None and result.ok
    assert [o.content for o in result.steps[0].observations] == ["3", "5"]
    runs = [o.run for o in result.steps[0].observations]
    assert all(run is not None and run.ok for run in runs)


class Order(BaseModel):
    fruit: str
    count: int


class Quote(BaseModel):
    total: int


async def test_typed_input_and_output() -> None:
    seen: list[str] = []

    def child_model(messages: Sequence[Message], output: OutputSchema | None) -> Any:
        seen.append(messages[-1].content)
        if len(messages) < 4:
            return call("price", fruit="apple")
        return final({"total": 6})

    child = Agent(FunctionModel(child_model), tools=[price], output_type=Quote, name="quoter")
    quote_tool = child.as_tool(description="Quote an order.", input_type=Order)
    assert quote_tool.parameters["properties"].keys() == {"fruit", "count"}
    assert quote_tool.parameters["required"] == ["fruit", "count"]
    parent = Agent(
        ScriptedModel([call("quoter", fruit="apple", count=2), final("6")]), tools=[quote_tool]
    )
    result = await parent.arun("Two apples?")
    observation = result.steps[0].observations[0]
    assert observation.value == Quote(total=6)
    assert seen[0] == '{"fruit": "apple", "count": 2}'  # the task made from the typed input
    assert observation.content == '{"total":6}'


async def test_invalid_sub_agent_input_is_refused_before_the_child_runs() -> None:
    child = shop_agent()
    parent = Agent(
        ScriptedModel([call("shop", wrong="x"), call("shop", task="apple"), final("x")]),
        tools=[child.as_tool(max_steps=1)],
    )
    result = await parent.arun("go")
    assert result.steps[0].retries == 1  # the first call was invalid: shown to the model


async def test_sub_agent_steps_are_capped_per_call() -> None:
    calls: list[str] = []

    @tool
    def search(query: str) -> str:
        """Search.

        Args:
            query: What to look for.
        """
        calls.append(query)
        return f"nothing about {query} yet"

    looping = Agent(
        FunctionModel(lambda messages, output: call("search", query=str(len(messages)))),
        tools=[search],
        name="researcher",
        max_steps=50,
    )
    parent = Agent(
        ScriptedModel([call("researcher", task="find it"), final("gave up")]),
        tools=[looping.as_tool(max_steps=2)],
    )
    result = await parent.arun("find it")
    observation = result.steps[0].observations[0]
    assert observation.is_error and "(max_steps)" in observation.content
    assert observation.run is not None and len(observation.run.steps) == 2
    assert len(calls) == 2
    assert looping.max_steps == 50  # the cap is per call, the shared agent is unchanged
    assert result.ok  # the parent's model saw the error and answered


async def test_parent_token_budget_caps_the_child() -> None:
    looping = Agent(
        FunctionModel(lambda messages, output: call("price", fruit="apple")),
        tools=[price],
        name="spender",
        max_steps=50,
        max_repeated_calls=100,
    )
    parent = Agent(
        ScriptedModel([call("spender", task="spend")]),
        tools=[looping.as_tool()],
        token_budget=3000,
    )
    result = await parent.arun("spend")
    observation = result.steps[0].observations[0]
    assert observation.run is not None
    assert observation.run.stop_reason == "token_budget"
    assert 1 < len(observation.run.steps) < 50
    # The child's tokens count against the parent's budget, so the parent stops too.
    assert result.stop_reason == "token_budget"
    assert result.usage.total_tokens >= 3000


def test_parent_cancel_token_cancels_the_running_child() -> None:
    started = asyncio.Event()
    record: list[str] = []

    @tool
    async def wait_for_ever() -> str:
        """Wait."""
        record.append("started")
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            record.append("cancelled")
            raise
        record.append("finished")
        return "done"

    child = Agent(ScriptedModel([call("wait_for_ever")]), tools=[wait_for_ever], name="waiter")
    parent = Agent(ScriptedModel([call("waiter", task="wait")]), tools=[child.as_tool()])
    token = CancelToken()

    async def main() -> Any:
        run = asyncio.ensure_future(parent.arun("wait", cancel_token=token))
        await asyncio.wait_for(started.wait(), 5)
        token.cancel()
        return await asyncio.wait_for(run, 5)

    result = asyncio.run(main())
    assert result.stop_reason == "cancelled"
    assert record == ["started", "cancelled"]  # the child's tool was stopped, never finished


def slow_agent(record: list[str]) -> Agent[Any]:
    @tool
    async def slow() -> str:
        """Slow."""
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            record.append("cancelled")
            raise
        return "late"

    return Agent(ScriptedModel([call("slow")]), tools=[slow], name="slowpoke")


def test_the_child_time_budget_is_capped_per_call() -> None:
    record: list[str] = []
    parent = Agent(
        ScriptedModel([call("slowpoke", task="go"), final("it was too slow")]),
        tools=[slow_agent(record).as_tool(time_budget=0.2)],
        time_budget=30,
    )
    result = parent.run("go")
    observation = result.steps[0].observations[0]
    assert observation.run is not None and observation.run.stop_reason == "time_budget"
    assert observation.is_error and "(time_budget)" in observation.content
    assert record == ["cancelled"]
    assert result.ok


def test_the_parent_time_budget_stops_the_running_child() -> None:
    record: list[str] = []
    parent = Agent(
        ScriptedModel([call("slowpoke", task="go"), final("too slow")]),
        tools=[slow_agent(record).as_tool()],
        time_budget=0.3,
    )
    result = parent.run("go")
    assert record == ["cancelled"]  # the child's tool did not run on for its 30 s
    # The child's budget is the parent's remaining time: whichever deadline fires first
    # in the event loop, the child stops with the parent's budget.
    runs = [o.run for s in result.steps for o in s.observations if o.run is not None]
    assert result.stop_reason == "time_budget" or runs[0].stop_reason == "time_budget"


async def test_a_failed_child_is_an_error_observation_with_its_stop_reason() -> None:
    broken = Agent(ScriptedModel([ModelError("server down")]), name="broken")
    parent = Agent(
        ScriptedModel([call("broken", task="help"), final("I could not ask.")]),
        tools=[broken.as_tool()],
    )
    result = await parent.arun("help")
    observation = result.steps[0].observations[0]
    assert observation.is_error
    assert "agent 'broken' stopped without an answer (model_error)" in observation.content
    assert "server down" in observation.content
    assert observation.run is not None and observation.run.stop_reason == "model_error"
    assert result.ok and result.output == "I could not ask."
    # The parent's model saw the error (the observation message of its second request).
    assert isinstance(parent.model, ScriptedModel)
    assert "model_error" in parent.model.requests[1].messages[-1].content


def test_sub_agent_tool_works_outside_an_agent() -> None:
    child = shop_agent(call("price", fruit="apple"), final("3 cents"))
    assert child.as_tool().call({"task": "apple?"}) == "3 cents"


def test_as_tool_refuses_bad_input_types_and_limits() -> None:
    with pytest.raises(ConfigurationError, match="object type"):
        shop_agent().as_tool(input_type=int)
    with pytest.raises(ConfigurationError, match="max_steps"):
        shop_agent().as_tool(max_steps=0)
    with pytest.raises(ConfigurationError, match="agent name"):
        Agent(ScriptedModel([]), name="no spaces")


# -- handoffs -----------------------------------------------------------------------------------


def test_handoff_branch_is_in_the_compiled_schema_and_parsed() -> None:
    triage = Agent(ScriptedModel([]), tools=[price], name="triage", handoffs=[shop_agent()])
    step_format = triage.step_format
    assert step_format.handoff_names == ("transfer_to_shop",)
    branches = step_format.output.schema["properties"]["action"]["anyOf"]
    handoff = next(
        b for b in branches if b["properties"]["tool"].get("const") == "transfer_to_shop"
    )
    assert handoff["properties"]["arguments"] == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }
    assert step_format.output.actions is not None
    native = {b.name: b for b in step_format.output.actions.branches}
    assert native["transfer_to_shop"].is_handoff
    assert "Knows prices." in native["transfer_to_shop"].description
    assert "transfer_to_shop" in triage._system_prompt
    tools = {item.name: item for item in triage.tools}
    parsed = step_format.parse(
        '{"thought": "shop", "action": {"tool": "transfer_to_shop", "arguments": {}}}', tools
    )
    assert parsed.handoff == "transfer_to_shop" and not parsed.is_final and not parsed.calls
    assert '"transfer_to_shop"' in step_format.echo(parsed)
    with pytest.raises(ModelOutputError, match="takes no arguments"):
        step_format.parse(
            '{"thought": "", "action": {"tool": "transfer_to_shop", "arguments": {"x": 1}}}',
            tools,
        )


def test_a_handoff_is_alone_in_a_parallel_step() -> None:
    fmt = StepFormat.build([price], str, parallel_calls=3, handoffs=[("transfer_to_x", "X.")])
    alone, calls = (
        fmt.output.schema["properties"]["actions"]["anyOf"][1],
        fmt.output.schema["properties"]["actions"]["anyOf"][0],
    )
    assert alone["maxItems"] == 1 and len(alone["items"]["anyOf"]) == 2
    assert all(b["properties"]["tool"]["const"] == "price" for b in calls["items"]["anyOf"])
    with pytest.raises(ModelOutputError, match="only action"):
        fmt.parse(
            '{"thought": "", "actions": [{"tool": "transfer_to_x", "arguments": {}}, '
            '{"tool": "price", "arguments": {"fruit": "apple"}}]}',
            {"price": price},
        )


def test_handoff_names_must_not_clash_with_tools() -> None:
    @tool(name="transfer_to_shop")
    def clash() -> str:
        """Clash."""
        return ""

    with pytest.raises(ConfigurationError, match="transfer_to_shop"):
        Agent(ScriptedModel([]), tools=[clash], handoffs=[shop_agent()])


async def test_handoff_is_followed_and_recorded() -> None:
    shop = shop_agent(call("price", fruit="pear"), final("A pear costs 5 cents."))
    triage = Agent(
        ScriptedModel([call("transfer_to_shop", "A price question.")]),
        name="triage",
        handoffs=[shop],
    )
    events = [event async for event in triage.stream("What does a pear cost?")]
    result = events[-1].result if isinstance(events[-1], RunFinishedEvent) else None
    assert result is not None and result.ok
    assert result.output == "A pear costs 5 cents."
    assert result.agent_name == "shop"
    assert result.handoffs == (Handoff(step=1, from_agent="triage", to_agent="shop"),)
    assert [(s.index, s.agent_name) for s in result.steps] == [
        (1, "triage"),
        (2, "shop"),
        (3, "shop"),
    ]
    assert result.steps[0].handoff == "transfer_to_shop"
    assert result.task == "What does a pear cost?"
    assert [e for e in events if isinstance(e, HandoffEvent)] == [
        HandoffEvent(step=1, from_agent="triage", to_agent="shop")
    ]
    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert [e.step for e in results] == [2]  # the shop's steps continue the numbering
    # The shop's model saw the task and the triage's handoff step.
    assert isinstance(shop.model, ScriptedModel)
    seen = [m.content for m in shop.model.requests[0].messages]
    assert "What does a pear cost?" in seen
    assert any("transfer_to_shop" in text for text in seen)
    assert "handed this conversation to you" in seen[-1]


async def test_a_run_without_handoffs_names_its_agent() -> None:
    result = await shop_agent(final("hi")).arun("hello")
    assert result.agent_name == "shop" and result.handoffs == ()


async def test_handoffs_are_bounded() -> None:
    last = Agent(ScriptedModel([final("c answered")]), name="c")
    middle = Agent(ScriptedModel([call("transfer_to_c")]), name="b", handoffs=[last])
    first = Agent(
        ScriptedModel([call("transfer_to_b")] * 2), name="a", handoffs=[middle], max_handoffs=1
    )
    result = await first.arun("go")
    assert result.stop_reason == "handoff"
    assert result.agent_name == "b"
    assert result.output is None
    assert result.error is not None and "max_handoffs=1" in result.error
    assert result.handoffs == (Handoff(step=1, from_agent="a", to_agent="b"),)
    assert isinstance(last.model, ScriptedModel) and last.model.requests == []
    # Within the bound the chain reaches the last agent.
    first_again = Agent(ScriptedModel([call("transfer_to_b")]), name="a", handoffs=[middle])
    middle.model = ScriptedModel([call("transfer_to_c")])
    result = await first_again.arun("go")
    assert result.ok and result.agent_name == "c" and len(result.handoffs) == 2


async def test_test_model_does_not_take_handoffs_unless_asked() -> None:
    triage = Agent(TestModel(), tools=[price], name="triage", handoffs=[shop_agent(final("x"))])
    result = await triage.arun("go")
    assert result.agent_name == "triage" and result.handoffs == ()
    asked = Agent(
        TestModel(call_tools=["transfer_to_shop"]),
        name="triage",
        handoffs=[shop_agent(final("shop answer"))],
    )
    result = await asked.arun("go")
    assert result.agent_name == "shop" and result.output == "shop answer"


# -- over real HTTP: the handoff branch through an OpenAI-compatible server --------------------


async def test_a_handoff_through_a_strict_json_schema_server() -> None:
    from agentlib.models.openai import OpenAIModel
    from tests.models._openai_server import MODEL, run_server, strict_server

    step = {"thought": "A price question.", "action": {"tool": "transfer_to_shop", "arguments": {}}}
    with run_server(strict_server([step])) as server:
        triage = Agent(
            OpenAIModel(MODEL, base_url=server.base_url, max_retries=0),
            name="triage",
            handoffs=[shop_agent(call("price", fruit="pear"), final("5 cents"))],
        )
        result = await triage.arun("What does a pear cost?")
    assert result.ok and result.agent_name == "shop" and result.output == "5 cents"
    assert result.steps[0].generation_path == "strict_schema"
    sent = json.dumps(server.chat_requests[0]["response_format"])
    assert '"transfer_to_shop"' in sent  # the branch, strict-compatible


async def test_a_handoff_through_native_tool_calls() -> None:
    from agentlib.models.openai import OpenAIModel
    from tests.models._openai_server import MODEL, run_server, tool_calls

    with run_server([tool_calls(("transfer_to_shop", {}))]) as server:
        triage = Agent(
            OpenAIModel(MODEL, base_url=server.base_url, max_retries=0, mode="tools"),
            tools=[price],
            name="triage",
            handoffs=[shop_agent(final("5 cents"))],
        )
        result = await triage.arun("What does a pear cost?")
    offered = [entry["function"]["name"] for entry in server.chat_requests[0]["tools"]]
    assert offered == ["price", "transfer_to_shop", "final_answer"]
    assert result.steps[0].generation_path == "native_tools"
    assert result.steps[0].handoff == "transfer_to_shop"
    assert result.ok and result.agent_name == "shop"


def test_a_handoff_run_is_one_turn_of_a_stored_conversation(tmp_path: Path) -> None:
    from agentlib.memory import Conversation, SQLStore

    store = SQLStore(f"sqlite:///{tmp_path / 'chat.db'}")
    conversation = Conversation.open(store, "c1")
    shop = shop_agent(call("price", fruit="pear"), final("5 cents"), final("3 cents"))
    triage = Agent(
        ScriptedModel([call("transfer_to_shop"), call("transfer_to_shop")]),
        name="triage",
        handoffs=[shop],
    )
    assert triage.run("What does a pear cost?", conversation=conversation).ok
    second = triage.run("And an apple?", conversation=conversation)
    assert second.ok and second.output == "3 cents"
    # The shop's model saw the first turn (the conversation's history) in the second run.
    assert isinstance(shop.model, ScriptedModel)
    assert any("5 cents" in m.content for m in shop.model.requests[-1].messages)
    reloaded = Conversation.open(store, "c1")
    turns = reloaded.turns
    assert [turn.task for turn in turns] == ["What does a pear cost?", "And an apple?"]
    # One turn per run, its steps numbered as in the run (the stored format, version 1, does
    # not keep `agent_name` and `handoff`: the run's result has them).
    assert [step.index for step in turns[0].steps] == [1, 2, 3]
    assert [c.tool_name for c in turns[0].steps[1].calls] == ["price"]
    assert turns[0].answer == "5 cents" and turns[0].stop_reason == "final_answer"
    store.close()


@pytest.mark.slow
def test_the_embedded_model_decodes_under_a_schema_with_handoff_branches() -> None:
    from agentlib import LocalModel

    model = LocalModel(n_threads=1)
    shop = Agent(model, tools=[price], name="shop", description="Knows prices.", max_steps=2)
    triage = Agent(
        model,
        name="triage",
        instructions="Hand price questions to the shop.",
        handoffs=[shop],
        max_steps=2,
        max_tokens_per_step=96,
    )
    result = triage.run("What does a pear cost?")
    # Whatever the small model chose, every step was valid under the compiled schema (a
    # handoff, a call or an answer), and the run says who took each step.
    assert result.stop_reason in ("final_answer", "max_steps"), result.error
    assert result.steps and all(s.generation_path == "constrained" for s in result.steps)
    assert result.steps[0].agent_name == "triage"
    assert result.agent_name == ("shop" if result.handoffs else "triage")


def test_a_sub_agent_run_is_a_child_span_of_the_parent_tool_call() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    child = shop_agent(call("price", fruit="pear"), final("5"), tracing=provider)
    parent = Agent(
        ScriptedModel([call("shop", task="pear?"), final("5")]),
        tools=[child.as_tool()],
        name="boss",
        tracing=provider,
    )
    assert parent.run("pear?").ok
    spans = {span.name: span for span in memory.get_finished_spans()}
    provider.shutdown()
    tool_span, child_run = spans["execute_tool shop"], spans["invoke_agent shop"]
    assert child_run.parent is not None and tool_span.context is not None
    assert child_run.parent.span_id == tool_span.context.span_id
    assert child_run.context is not None and spans["invoke_agent boss"].context is not None
    assert child_run.context.trace_id == spans["invoke_agent boss"].context.trace_id


def test_an_approval_pause_inside_a_handoff_chain_is_resumed_by_the_agent_that_paused() -> None:
    from agentlib import Approve

    sold: list[str] = []

    @tool(requires_approval=True)
    def sell(fruit: str) -> str:
        """Sell a fruit.

        Args:
            fruit: The fruit to sell.
        """
        sold.append(fruit)
        return f"sold a {fruit}"

    shop = Agent(
        ScriptedModel([call("sell", fruit="pear"), final("Sold.")]), tools=[sell], name="shop"
    )
    triage = Agent(ScriptedModel([call("transfer_to_shop")]), name="triage", handoffs=[shop])
    paused = triage.run("Sell me a pear.")
    assert paused.stop_reason == "approval_required" and paused.agent_name == "shop"
    assert sold == []
    call_id = paused.pending[0].call.id
    resumed = shop.resume(paused, {call_id: Approve()})
    assert resumed.ok and resumed.output == "Sold." and sold == ["pear"]
