"""OutlinesModel: constrained decoding with cached guides, and the guarded schema compile."""

from __future__ import annotations

import json
import os

import pytest

from agentlib import ConfigurationError, Message, OutputSchema, tool
from agentlib.actions import build_step_schema, parse_step
from agentlib.models.local import LocalModel
from agentlib.models.outlines import OutlinesModel, compile_schema_guarded


@tool
def convert_temperature(celsius: float) -> float:
    """Convert a temperature from Celsius to Fahrenheit.

    Args:
        celsius: The temperature in degrees Celsius.
    """
    return celsius * 9 / 5 + 32


@tool
def weather(city: str) -> str:
    """Look up today's weather in a city.

    Args:
        city: The city's name.
    """
    return "sunny"


TOOLS = {"convert_temperature": convert_temperature, "weather": weather}


def test_non_steerable_model_is_rejected_with_the_alternative() -> None:
    with pytest.raises(ConfigurationError, match=r"steerable Outlines model.*OpenAIModel"):
        OutlinesModel(object())


def test_guarded_compile_accepts_a_supported_schema() -> None:
    schema = build_step_schema(list(TOOLS.values())).output.schema
    compile_schema_guarded(schema, timeout=30)
    compile_schema_guarded(schema, backend="outlines_core", timeout=30)


def test_guarded_compile_names_the_unsupported_keyword_and_backend() -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    with pytest.raises(ConfigurationError) as info:
        OutlinesModel.check_schema(schema)
    assert "llguidance backend cannot enforce" in str(info.value)
    assert "uniqueItems" in str(info.value)


def test_guarded_compile_stops_a_schema_that_exhausts_memory() -> None:
    # outlines_core expands bounded repetitions into one automaton: hundreds of MB here.
    schema = {
        "type": "array",
        "items": {"type": "string", "maxLength": 2000},
        "minItems": 50,
        "maxItems": 200,
    }
    parent = os.getpid()
    with pytest.raises(ConfigurationError, match="needed more than 256 MB"):
        compile_schema_guarded(schema, backend="outlines_core", memory_mb=256, timeout=60)
    assert os.getpid() == parent


def test_guarded_compile_stops_a_schema_that_takes_too_long() -> None:
    schema = {"type": "string", "pattern": "^(([a-z]{1,50}){1,50}[0-9]{1,50}){1,50}$"}
    with pytest.raises(ConfigurationError, match="took longer than 1 s"):
        compile_schema_guarded(schema, backend="outlines_core", timeout=1.0, memory_mb=4096)


def test_guarded_compile_rejects_an_unknown_backend() -> None:
    with pytest.raises(ConfigurationError, match="unknown constraint backend 'xgrammar'"):
        compile_schema_guarded({"type": "string"}, backend="xgrammar")


@pytest.fixture(scope="module")
def local() -> LocalModel:
    return LocalModel(n_threads=1)


def _messages(task: str) -> list[Message]:
    return [
        Message(
            role="system",
            content="Reply with one JSON step. Tools: convert_temperature(celsius), weather(city).",
        ),
        Message(role="user", content=task),
    ]


@pytest.mark.slow
async def test_constrained_step_validates_and_names_a_real_tool(local: LocalModel) -> None:
    # A short thought bound keeps the step (and the test) within 80 tokens.
    step_schema = build_step_schema(list(TOOLS.values()), max_thought_length=80)
    response = await local.agenerate(
        _messages("What is the weather in Paris?"), output=step_schema.output, max_tokens=80
    )
    assert response.path == "constrained"
    step = parse_step(response.text, step_schema, TOOLS)
    assert step.is_final or step.calls[0][0] in TOOLS
    assert response.finish_reason == "stop"


@pytest.mark.slow
async def test_second_step_with_the_same_schema_reuses_the_compiled_guide(
    local: LocalModel,
) -> None:
    schema = OutputSchema(
        "reuse_probe",
        {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 20}},
            "required": ["city"],
            "additionalProperties": False,
        },
    )
    before = local.guide_cache_info()
    first = await local.agenerate(_messages("Paris?"), output=schema, max_tokens=16)
    middle = local.guide_cache_info()
    second = await local.agenerate(_messages("Rome?"), output=schema, max_tokens=16)
    after = local.guide_cache_info()
    assert middle.compilations == before.compilations + 1
    assert after.compilations == middle.compilations
    assert after.hits == middle.hits + 1
    assert set(json.loads(first.text)) == set(json.loads(second.text)) == {"city"}


@pytest.mark.slow
async def test_unsupported_keyword_fails_before_generating(local: LocalModel) -> None:
    schema = OutputSchema(
        "unique", {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    )
    with pytest.raises(ConfigurationError, match=r"llguidance.*uniqueItems"):
        await local.agenerate(_messages("Numbers?"), output=schema, max_tokens=8)
