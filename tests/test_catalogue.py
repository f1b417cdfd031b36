"""The catalogue: built-in tools and models by name, and plugins through entry points."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from agentlib import ConfigurationError, Tool
from agentlib.catalogue import Catalogue, ToolSpec, default_catalogue, load_plugins


def test_the_built_ins_register_through_the_plugin_function() -> None:
    catalogue = default_catalogue()
    assert {"calculator", "python", "web", "sql", "cypher"} <= set(catalogue.tools)
    assert {"local", "openai", "openai-compatible", "hf"} <= set(catalogue.models)
    tools, specs = catalogue.build_tools("calculator, none")
    assert [spec.name for spec in specs] == ["calculator"]
    assert isinstance(tools[0], Tool) and tools[0].name == "calculator"


def test_plain_sql_is_the_sample_music_store_and_sql_url_opens_that_database(
    tmp_path: Path,
) -> None:
    pytest.importorskip("sqlalchemy")
    from agentlib.tools.sql import create_music_store

    catalogue = default_catalogue()
    (sample,), _ = catalogue.build_tools("sql")
    create_music_store(tmp_path / "mine.db")
    (mine,), _ = catalogue.build_tools(f"sql:sqlite:///{tmp_path / 'mine.db'}")
    try:
        query = "SELECT COUNT(*) FROM customers"
        assert sample.run_sql(query).rows == mine.run_sql(query).rows
        assert "customers" in sample.tables
    finally:
        sample.close()
        mine.close()


def test_the_local_model_defaults_to_the_calculator_alone() -> None:
    catalogue = default_catalogue()
    assert catalogue.models["local"].default_tools == ("calculator",)
    assert catalogue.models["openai"].default_tools == ("calculator", "python")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hammer", "unknown tool 'hammer'; known: calculator, python, web, sql:<sqlalchemy url>"),
        ("sql:", "needs a database URL"),
    ],
)
def test_bad_tool_names_say_what_is_known(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        default_catalogue().build_tools(spec)


def test_hugging_face_models_need_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="set HF_TOKEN"):
        default_catalogue().build_model("hf:Qwen/Qwen2.5-7B-Instruct")
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    model = default_catalogue().build_model("hf:Qwen/Qwen2.5-7B-Instruct")
    assert model.name == "openai:Qwen/Qwen2.5-7B-Instruct"
    assert model.base_url == "https://router.huggingface.co/v1"  # type: ignore[attr-defined]


def test_a_broken_plugin_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    catalogue = Catalogue()
    broken = EntryPoint(name="broken", value="no_such_module:register", group="agentlib.plugins")
    working = EntryPoint(
        name="ok", value="tests.test_catalogue:_register_echo", group="agentlib.plugins"
    )
    with caplog.at_level(logging.ERROR, logger="agentlib.catalogue"):
        load_plugins(catalogue, [broken, working])
    assert "echo" in catalogue.tools
    assert "the agentlib plugin 'broken' failed to load" in caplog.text


def _register_echo(catalogue: Catalogue) -> None:
    def echo(text: str) -> str:
        """Return the text.

        Args:
            text: Anything.
        """
        return text

    catalogue.add_tool(ToolSpec(name="echo", factory=lambda _: Tool(echo), description="echo"))
