"""OutlinesModel: constrained decoding with cached guides, and the guarded schema compile."""

from __future__ import annotations

import json
import os
from typing import Any

import jsonschema
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


def _random_transformers_model() -> Any:
    """A 1-layer Llama with random weights and a byte-level tokenizer: no download, ~0.1 s.

    Random weights produce noise; only the constraint can make their output valid.
    """
    import outlines
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocabulary = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    eos = vocabulary["<|end|>"] = len(vocabulary)
    tokenizer = Tokenizer(models.BPE(vocab=vocabulary, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    hf_tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer, eos_token="<|end|>", pad_token="<|end|>"
    )
    hf_tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant: "
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocabulary), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
        eos_token_id=eos, pad_token_id=eos,
    )  # fmt: skip
    return outlines.from_transformers(LlamaForCausalLM(config), hf_tokenizer)  # type: ignore[arg-type]


SMALL_SCHEMA = OutputSchema(
    "small",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 8},
            "count": {"type": "integer", "minimum": 0, "maximum": 99},
            "unit": {"enum": ["m", "km"]},
        },
        "required": ["city", "count", "unit"],
        "additionalProperties": False,
    },
)


@pytest.fixture(scope="module")
def random_model() -> Any:
    return _random_transformers_model()


async def test_constraint_makes_a_random_model_produce_schema_valid_json(
    random_model: Any,
) -> None:
    # (outlines_core is not run here: it ignores `maximum` and let this model write 3185.)
    model = OutlinesModel(random_model)
    response = await model.agenerate(
        [Message(role="user", content="A city?")], output=SMALL_SCHEMA, max_tokens=60
    )
    assert response.path == "constrained"
    jsonschema.validate(json.loads(response.text), dict(SMALL_SCHEMA.schema))
    assert response.finish_reason == "stop"
    assert response.input_tokens > 0
    assert 0 < response.output_tokens <= 60


async def test_free_text_through_outlines_reports_the_prompted_path_and_length(
    random_model: Any,
) -> None:
    model = OutlinesModel(random_model)
    response = await model.agenerate([Message(role="user", content="Hi")], max_tokens=5)
    assert response.path == "prompted"
    assert response.output_tokens == 5
    assert response.finish_reason == "length"


async def test_guide_is_compiled_once_per_schema(random_model: Any) -> None:
    model = OutlinesModel(random_model)
    for _ in range(2):
        await model.agenerate(
            [Message(role="user", content="x")], output=SMALL_SCHEMA, max_tokens=40
        )
    other = OutputSchema("other", {"type": "object", "properties": {"a": {"type": "boolean"}}})
    await model.agenerate([Message(role="user", content="x")], output=other, max_tokens=40)
    info = model.guide_cache_info()
    assert (info.compilations, info.hits, info.size) == (2, 1, 2)


def test_unsupported_keyword_is_rejected_before_generating(random_model: Any) -> None:
    model = OutlinesModel(random_model)
    with pytest.raises(ConfigurationError) as info:
        model.compile(OutputSchema("unique", {"type": "array", "uniqueItems": True}))
    assert "llguidance backend cannot enforce the schema 'unique'" in str(info.value)
    assert "uniqueItems" in str(info.value)
    assert model.guide_cache_info().size == 0


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
    assert step.is_final or step.calls[0].name in TOOLS
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
