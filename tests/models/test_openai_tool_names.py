"""OpenAIModel's tools mode sends names the server accepts and maps the calls back."""

from __future__ import annotations

import json
from typing import Any

from agentlib import Agent, Tool
from agentlib.models.openai import OpenAIModel
from tests.models._openai_server import MODEL, chat, run_server, tool_calls

FACTORIAL = Tool.from_openai(
    {
        "name": "math.factorial",
        "description": "Compute n!.",
        "parameters": {
            "type": "object",
            "properties": {"number": {"type": "integer"}},
            "required": ["number"],
        },
    },
    lambda **arguments: 120 if arguments["number"] == 5 else 0,
)


def _reply(body: dict[str, Any]) -> Any:
    """Calls the tool by the name the server was given, then answers with the observation."""
    messages = body["messages"]
    if any(item["role"] == "user" and "120" in item["content"] for item in messages[2:]):
        return tool_calls(("final_answer", {"answer": "120"}))
    names = [item["function"]["name"] for item in body["tools"]]
    return tool_calls((names[0], {"number": 5}), content="Compute it.")


async def test_dotted_tool_names_are_mapped_for_the_server_and_back() -> None:
    with run_server(_reply) as server:
        model = OpenAIModel(MODEL, base_url=server.base_url, max_retries=0, mode="tools")
        result = await Agent(model, tools=[FACTORIAL]).arun("What is 5!?")
    sent = [item["function"]["name"] for item in server.chat_requests[0]["tools"]]
    assert sent == ["math_factorial", "final_answer"]
    assert result.stop_reason == "final_answer", result.error
    assert result.output == "120"
    assert [call.tool_name for call in result.steps[0].calls] == ["math.factorial"]
    assert result.steps[0].observations[0].content == "120"
    echoed = json.loads(server.chat_requests[1]["messages"][2]["content"])
    assert echoed["action"]["tool"] == "math.factorial"


async def test_other_modes_send_the_names_unchanged() -> None:
    step = {"thought": "t", "action": {"tool": "math.factorial", "arguments": {"number": 5}}}
    with run_server(
        [chat(step), chat({"thought": "", "action": {"tool": "final_answer", "answer": "120"}})]
    ) as server:
        model = OpenAIModel(MODEL, base_url=server.base_url, max_retries=0, mode="json_schema")
        result = await Agent(model, tools=[FACTORIAL]).arun("What is 5!?")
    assert result.output == "120", result.error
    schema = server.chat_requests[0]["response_format"]["json_schema"]["schema"]
    assert "math.factorial" in json.dumps(schema)
