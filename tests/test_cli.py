"""`agentlib run`: steps on stderr, the answer on stdout, one clear line per error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentlib.cli import main

from .models._openai_server import chat, run_server


def _arithmetic(body: dict[str, Any]) -> Any:
    messages = body["messages"]
    if messages[-1]["content"].startswith("Observation"):
        value = messages[-1]["content"].rsplit("\n", 1)[-1]
        step = {"thought": "Done.", "action": {"tool": "final_answer", "answer": value}}
    else:
        step = {
            "thought": "Use the calculator.",
            "action": {"tool": "calculator", "arguments": {"expression": "17 * 23"}},
        }
    return chat(step)


def test_run_streams_steps_and_prints_the_answer(capsys: pytest.CaptureFixture[str]) -> None:
    with run_server(_arithmetic) as server:
        code = main(
            [
                "run",
                "What is 17 * 23?",
                "--model",
                f"openai-compatible:{server.base_url}#test-model",
                "--tools",
                "calculator",
            ]
        )
        sent = server.chat_requests[0]
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.strip() == "391"
    assert "[step 1] thought: Use the calculator." in captured.err
    assert '[step 1] → calculator({"expression": "17 * 23"})' in captured.err
    assert "[step 1] ← 391" in captured.err
    assert sent["response_format"]["type"] == "json_schema"


def test_json_output_holds_the_whole_result(capsys: pytest.CaptureFixture[str]) -> None:
    with run_server(_arithmetic) as server:
        code = main(
            [
                "run",
                "What is 17 * 23?",
                "--json",
                "--tools",
                "calculator",
                "--model",
                f"openai-compatible:{server.base_url}#test-model",
            ]
        )
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["output"] == "391" and result["ok"] is True
    assert result["stop_reason"] == "final_answer"
    assert result["steps"][0]["calls"][0]["tool_name"] == "calculator"
    assert result["generation_paths"] == ["strict_schema"]


def test_unreachable_server_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["run", "hi", "--tools", "none", "--model", "openai-compatible:http://127.0.0.1:9/v1#m"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "127.0.0.1:9" in err[0]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--model", "gpt4"], "unknown --model 'gpt4'"),
        (["--model", "openai-compatible:localhost"], "takes <base_url>#<model>"),
        (["--tools", "hammer"], "unknown tool 'hammer'"),
        (["--tools", "sql:"], "needs a database URL"),
    ],
)
def test_configuration_errors_are_one_line_with_what_to_do(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "hi", *arguments])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("agentlib: ") and message in err[0]


def test_openai_without_a_key_says_which_variable_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert main(["run", "hi", "--model", "openai:gpt-4o-mini"]) == 2
    assert "set OPENAI_API_KEY" in capsys.readouterr().err


def _chatty(body: dict[str, Any]) -> Any:
    tasks = [m["content"] for m in body["messages"] if m["role"] == "user"]
    return chat({"thought": "", "action": {"tool": "final_answer", "answer": f"I saw {tasks}"}})


def test_chat_remembers_earlier_turns_across_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "chat.db")
    with run_server(_chatty) as server:
        model = f"openai-compatible:{server.base_url}#test-model"
        lines = iter(["first question", "exit"])
        monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
        assert main(["chat", "--model", model, "--tools", "none", "--store", store]) == 0
        lines = iter(["second question"])  # then EOF
        monkeypatch.setattr("builtins.input", lambda prompt="": _next_or_eof(lines))
        assert main(["chat", "--model", model, "--tools", "none", "--store", store]) == 0
    captured = capsys.readouterr()
    assert "continuing 1 earlier turn(s)" in captured.err
    assert "agent> I saw ['first question', 'second question']" in captured.out


def _next_or_eof(lines: Iterator[str]) -> str:
    try:
        return next(lines)
    except StopIteration:
        raise EOFError from None


@pytest.mark.slow
def test_the_readme_command_answers_on_the_embedded_model() -> None:
    """README's main command, end to end: the real CLI, the embedded model, offline."""
    pytest.importorskip("llama_cpp")
    executable = shutil.which("agentlib") or ""
    command = [executable] if executable else [sys.executable, "-m", "agentlib.cli"]
    result = subprocess.run(
        [*command, "run", "What is 17 * 23?"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "391" in result.stdout
    assert "calculator" in result.stderr


PLUGIN = '''
from agentlib import FunctionModel, tool
from agentlib.catalogue import ModelSpec, ToolSpec
from agentlib.models.testing import call, final


@tool
def shout(text: str) -> str:
    """Say it louder.

    Args:
        text: What to say.
    """
    return text.upper() + "!"


async def _brain(messages, output):
    last = messages[-1].content
    if last.startswith("Observation"):
        return final(last.rsplit("\\n", 1)[-1], "Done.")
    return call("shout", "Shout it.", text=messages[-1].content)


def register(catalogue):
    catalogue.add_tool(ToolSpec(name="shout", factory=lambda argument: shout,
                                description="shout (a plugin's tool)"))
    catalogue.add_model(ModelSpec(prefix="shouter", factory=lambda argument, options:
                                  FunctionModel(_brain), description="shouter"))
'''


def write_plugin(folder: Path) -> Path:
    """A third-party package with an `agentlib.plugins` entry point, as pip would install it."""
    (folder / "agentlib_shout").mkdir(parents=True)
    (folder / "agentlib_shout" / "__init__.py").write_text(PLUGIN)
    info = folder / "agentlib_shout-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: agentlib-shout\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[agentlib.plugins]\nshout = agentlib_shout:register\n")
    return folder


def test_a_plugin_packages_tool_and_model_work_in_agentlib_run(tmp_path: Path) -> None:
    plugins = write_plugin(tmp_path / "site")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentlib.cli",
            "run",
            "hello",
            "--model",
            "shouter",
            "--tools",
            "shout,calculator",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(plugins)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "HELLO!"
    assert '→ shout({"text": "hello"})' in result.stderr
    # Without the package on the path, the name is unknown, and the message lists the built-ins.
    missing = subprocess.run(
        [sys.executable, "-m", "agentlib.cli", "run", "hello", "--tools", "shout"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2
    assert "unknown tool 'shout'; known: calculator, python" in missing.stderr
