"""Type inference of the public generics; `mypy` checks the `assert_type` calls.

At run time `assert_type` does nothing, so these tests also check the values.
"""

from __future__ import annotations

from typing import assert_type

from pydantic import BaseModel

from agentlib import Agent, RunResult, ScriptedModel, generate
from agentlib.models.testing import final


class Answer(BaseModel):
    value: int


def test_agent_output_type_flows_into_the_result() -> None:
    agent = Agent(ScriptedModel([final({"value": 3})]), output_type=Answer)
    assert_type(agent, Agent[Answer])
    result = agent.run("x")
    assert_type(result, RunResult[Answer])
    assert_type(result.output, Answer | None)
    assert result.output == Answer(value=3)


def test_default_output_type_is_str() -> None:
    agent = Agent(ScriptedModel([final("hi")]))
    assert_type(agent, Agent[str])
    assert agent.run("x").output == "hi"


def test_generate_returns_the_requested_type() -> None:
    value = generate(ScriptedModel([{"value": 4}]), Answer, "x")
    assert_type(value, Answer)
    assert value.value == 4
