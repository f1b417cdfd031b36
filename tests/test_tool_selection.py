"""`Agent(max_tools=N)`: each run is offered the tools most relevant to its task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from agentlib import (
    Agent,
    Approve,
    ConfigurationError,
    FunctionModel,
    Message,
    OutputSchema,
    ScriptedModel,
    Tool,
)
from agentlib.models.testing import call, final
from agentlib.tools.mcp import select_tools

SERVICES = ["invoice", "customer", "ticket", "shipment", "refund", "contract"]
ACTIONS = ["create", "read", "update", "delete", "archive"]


def _tool(service: str, action: str, done: list[str], *, risky: bool = False) -> Tool:
    def run(**arguments: Any) -> str:
        done.append(f"{service}_{action} {arguments['id']}")
        return f"{action} {service} {arguments['id']}: done"

    made = Tool.from_schema(
        f"{service}_{action}",
        f"{action.capitalize()} a {service} record.",
        {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
        run,
    )
    if risky:
        made.requires_approval = True
    return made


def _catalogue(done: list[str], **options: Any) -> list[Tool]:
    return [_tool(service, action, done, **options) for service in SERVICES for action in ACTIONS]


class Recorder:
    """A model that records what each request offered, and calls the task's tool."""

    def __init__(self, tool_name: str) -> None:
        self.tool_name = tool_name
        self.offered: list[list[str]] = []
        self.prompts: list[str] = []

    async def __call__(self, messages: Sequence[Message], output: OutputSchema | None) -> Any:
        assert output is not None and output.actions is not None
        self.offered.append([branch.name for branch in output.actions.branches])
        self.prompts.append(messages[0].content)
        if messages[-1].content.startswith("Observation"):
            return final("done")
        return call(self.tool_name, id="S-17")


def test_a_run_is_offered_only_the_tools_chosen_for_its_task() -> None:
    done: list[str] = []
    tools = _catalogue(done)
    brain = Recorder("shipment_archive")
    agent = Agent(FunctionModel(brain), tools=tools, max_tools=4)
    result = agent.run("Archive the shipment record S-17.")
    assert result.ok and done == ["shipment_archive S-17"]
    assert len(result.tools_offered) == 4 and "shipment_archive" in result.tools_offered
    expected = [item.name for item in select_tools(tools, result.task, max_tools=4)]
    assert list(result.tools_offered) == expected
    # The step schema and the prompt hold the chosen tools only, every step.
    for offered in brain.offered:
        assert set(offered) - {"final_answer"} == set(expected)
    assert "invoice_delete" not in brain.prompts[0] and "shipment_archive" in brain.prompts[0]
    # The agent itself still knows every tool.
    assert len(agent.tools) == 30 and len(agent.step_format.tool_names) == 30


def test_another_task_is_offered_other_tools() -> None:
    agent = Agent(
        ScriptedModel([call("refund_create", id="R-1"), final("ok"), final("ok")]),
        tools=_catalogue([]),
        max_tools=3,
    )
    first = agent.run("Create a refund record R-1.")
    second = agent.run("Read the customer record C-9.")
    assert "refund_create" in first.tools_offered
    assert "customer_read" in second.tools_offered and "refund_create" not in second.tools_offered


def test_a_tool_that_was_not_offered_cannot_be_called() -> None:
    done: list[str] = []
    agent = Agent(
        ScriptedModel([call("invoice_delete", id="I-1")] * 5), tools=_catalogue(done), max_tools=2
    )
    result = agent.run("Archive the shipment record S-17.")
    assert "invoice_delete" not in result.tools_offered
    assert result.stop_reason == "invalid_output" and done == []


def test_without_max_tools_or_with_few_tools_every_tool_is_offered() -> None:
    tools = _catalogue([])
    script = [final("ok")]
    assert len(Agent(ScriptedModel(script), tools=tools).run("x").tools_offered) == 30
    few = Agent(ScriptedModel(script), tools=tools[:3], max_tools=5).run("x")
    assert list(few.tools_offered) == [item.name for item in tools[:3]]


def test_a_paused_run_resumes_with_the_same_tools_offered() -> None:
    done: list[str] = []
    brain = Recorder("shipment_archive")
    agent = Agent(FunctionModel(brain), tools=_catalogue(done, risky=True), max_tools=4)
    paused = agent.run("Archive the shipment record S-17.")
    assert paused.stop_reason == "approval_required" and done == []
    resumed = agent.resume(paused, {paused.pending[0].call.id: Approve()})
    assert resumed.ok and done == ["shipment_archive S-17"]
    assert resumed.tools_offered == paused.tools_offered
    assert brain.offered[-1] == brain.offered[0]


def test_max_tools_below_one_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="max_tools must be at least 1"):
        Agent(ScriptedModel([final("x")]), tools=_catalogue([]), max_tools=0)
