"""Token streaming: `StreamingModel.agenerate_streaming` and `Agent.stream(text=True)`.

Real HTTP to a loopback OpenAI-compatible server speaking SSE, and the embedded model (slow).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentlib import Agent, OpenAIModel, TextEvent, ThoughtEvent, tool
from agentlib.models.base import StreamingModel

from .models._openai_server import MODEL, chat, run_server, stream
from .models.test_openai import CITY, STEP, USER


@tool
def add(a: int, b: int = 0) -> int:
    """Add two integers.

    Args:
        a: The first.
        b: The second.
    """
    return a + b


def _model(base_url: str, **options: Any) -> OpenAIModel:
    return OpenAIModel(MODEL, base_url=base_url, max_retries=0, **options)


async def test_openai_streaming_reports_each_piece_and_returns_the_checked_response() -> None:
    pieces = ['{"name": "Ki', 'ev", "country": "Ukraine"', ', "population": null}']
    with run_server([stream(pieces)]) as server:
        model = _model(server.base_url, mode="json_schema")
        assert isinstance(model, StreamingModel)
        seen: list[str] = []
        response = await model.agenerate_streaming(
            USER, on_text=seen.append, output=CITY, max_tokens=32
        )
    assert seen == pieces
    assert response.path == "strict_schema" and response.finish_reason == "stop"
    assert json.loads(response.text)["name"] == "Kiev"
    assert server.chat_requests[0]["stream"] is True


async def test_openai_streaming_in_tools_mode_rebuilds_the_step_from_the_call() -> None:
    reply = stream([], tool_call=("add", ['{"a": 4', ', "b": 5}']))
    with run_server([reply]) as server:
        seen: list[str] = []
        response = await _model(server.base_url, mode="tools").agenerate_streaming(
            USER, on_text=seen.append, output=STEP.output
        )
    assert seen == []  # a tool call has no content to show while it is written
    assert json.loads(response.text)["action"] == {"tool": "add", "arguments": {"a": 4, "b": 5}}
    assert response.path == "native_tools"


def _agent_reply(body: dict[str, Any]) -> Any:
    last = body["messages"][-1]["content"]
    if last.startswith("Observation"):
        step = {"thought": "It is 40.", "action": {"tool": "final_answer", "answer": 40}}
    else:
        step = {"thought": "I add them.", "action": {"tool": "add", "arguments": {"a": 17}}}
    text = json.dumps(step)
    if not body.get("stream"):
        return chat(step)
    return stream([text[i : i + 7] for i in range(0, len(text), 7)])


async def test_agent_stream_with_text_yields_each_steps_text_before_its_events() -> None:
    with run_server(_agent_reply) as server:
        agent: Agent[int] = Agent(_model(server.base_url), tools=[add], output_type=int)
        events = [event async for event in agent.stream("17 + 23?", text=True)]
    result = events[-1].result  # type: ignore[union-attr]
    assert result.ok and result.output == 40
    for index, step in enumerate(result.steps, start=1):
        streamed = "".join(e.delta for e in events if isinstance(e, TextEvent) and e.step == index)
        assert json.loads(streamed) == json.loads(step.raw_output)
        positions = [i for i, e in enumerate(events) if getattr(e, "step", None) == index]
        kinds = [type(events[i]).__name__ for i in positions]
        assert kinds.index("ThoughtEvent") > kinds.index("TextEvent")
        assert "TextEvent" not in kinds[kinds.index("ThoughtEvent") :]


async def test_agent_stream_without_text_yields_no_text_events() -> None:
    with run_server(_agent_reply) as server:
        agent: Agent[int] = Agent(_model(server.base_url), tools=[add], output_type=int)
        events = [event async for event in agent.stream("17 + 23?")]
    assert not any(isinstance(event, TextEvent) for event in events)
    assert all(body.get("stream") is None for body in server.chat_requests)
    assert any(isinstance(event, ThoughtEvent) for event in events)


async def test_stopping_the_stream_mid_step_cancels_the_model_call() -> None:
    with run_server(_agent_reply) as server:
        agent: Agent[int] = Agent(_model(server.base_url), tools=[add], output_type=int)
        stream_ = agent.stream("17 + 23?", text=True)
        async for event in stream_:
            if isinstance(event, TextEvent):
                break
        await stream_.aclose()  # type: ignore[attr-defined]
    assert len(server.chat_requests) == 1


@pytest.mark.slow
async def test_the_embedded_model_streams_its_steps_token_by_token() -> None:
    pytest.importorskip("llama_cpp")
    from agentlib import LocalModel
    from agentlib.tools.calculator import calculator

    agent = Agent(LocalModel(), tools=[calculator], max_steps=3)
    events = [event async for event in agent.stream("What is 17 * 23?", text=True)]
    result = events[-1].result  # type: ignore[union-attr]
    assert result.steps
    step = result.steps[0]
    pieces = [e.delta for e in events if isinstance(e, TextEvent) and e.step == 1]
    assert len(pieces) > 5  # token by token, not one piece
    assert "".join(pieces) == step.raw_output
    assert step.generation_path == "constrained"
    assert step.usage.output_tokens >= len(pieces) - 1
