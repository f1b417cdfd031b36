"""What the tabs compute, without a browser: the tool picker, step previews, answer checks."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("gradio")

from demos.chat import step_preview
from demos.sql_explorer import disagreement, open_sample

from ..test_cli import write_plugin
from .conftest import ROOT


def test_a_plugins_tool_appears_in_the_chat_tabs_picker_like_ours(tmp_path: Path) -> None:
    plugins = write_plugin(tmp_path / "site")
    code = "from demos.chat import tool_choices; print(list(tool_choices(embedder='hashing')))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": f"{plugins}{os.pathsep}{ROOT}"},
    )
    assert result.returncode == 0, result.stderr
    picker = ast.literal_eval(result.stdout)  # a printed list of labels
    assert picker[:2] == ["calculator", "python (sandboxed)"] and "shout" in picker


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"thought": "I use the calc', ("I use the calc", None, None)),
        ('{"thought": "Multiply.", "action": {"tool": "calcul', ("Multiply.", "calcul", None)),
        (
            '{"thought": "Done.", "action": {"tool": "final_answer", "answer": "39',
            ("Done.", "final_answer", "39"),
        ),
        ('{"thou', ("", None, None)),
        ("", ("", None, None)),
    ],
)
def test_a_partial_step_previews_its_thought_tool_and_answer(
    text: str, expected: tuple[str, str | None, str | None]
) -> None:
    assert step_preview(text) == expected


def test_an_answer_with_numbers_the_rows_do_not_hold_is_flagged() -> None:
    database = open_sample()
    try:
        result = database.run_sql("SELECT COUNT(*) AS n FROM customers")
        (count,) = result.rows[0]
        assert disagreement(f"There are {count} customers.", "How many customers?", result) is None
        warning = disagreement("There are 10 customers.", "How many customers?", result)
        assert warning is not None and "10" in warning and "row count (1)" in warning
        listing = database.run_sql("SELECT name FROM genres")
        assert disagreement(f"There are {listing.row_count} genres.", "?", listing) is None
        first = listing.rows[0][0]
        assert disagreement(f"{first} is one of them.", "Which genres?", listing) is None
        vague = disagreement("The answer to a question, read from rows.", "Which?", listing)
        assert vague is not None and "names no value from the" in vague
    finally:
        database.close()


def test_the_model_menu_offers_what_the_secrets_unlock_and_never_a_test_model() -> None:
    from demos._shared import EMBEDDED, default_models

    assert list(default_models({})) == [EMBEDDED]
    menu = default_models({"HF_TOKEN": "hf_x", "AGENTLIB_DEMO_HF_MODELS": "a/b, c/d"})
    assert list(menu) == [EMBEDDED, "Hugging Face router: a/b", "Hugging Face router: c/d"]
    assert [entry.spec for entry in menu.values()] == ["local", "hf:a/b", "hf:c/d"]
    menu = default_models({"OPENAI_API_KEY": "sk-x", "AGENTLIB_DEMO_MODEL": "gpt-4o-mini"})
    assert menu["OpenAI-compatible: gpt-4o-mini"].spec == "openai:gpt-4o-mini"
    assert not any("test" in label.lower() for label in menu)
