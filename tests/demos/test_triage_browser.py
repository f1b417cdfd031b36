"""The triage tab in Chromium: a triage agent hands each question to the SQL or docs agent."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

TIMEOUT = 90_000


def _ask(browser: Any, url: str, question: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(url)
    page.get_by_role("tab", name="Triage (multi-agent)").click()
    page.wait_for_selector("#triage-question textarea")
    page.fill("#triage-question textarea", question)
    page.click("#triage-ask")
    page.locator("#triage-status").get_by_text("Answered by").wait_for()
    return page


def test_a_data_question_is_handed_to_the_sql_agent_which_queries_the_store(
    browser: Any, demo_url: str, tmp_path: Path
) -> None:
    from agentlib.tools.sql import create_music_store

    create_music_store(tmp_path / "music.db")
    with sqlite3.connect(tmp_path / "music.db") as connection:
        genre, count = connection.execute(
            "SELECT g.name, COUNT(*) FROM tracks t JOIN genres g ON t.genre_id = g.genre_id "
            "GROUP BY g.name ORDER BY COUNT(*) DESC LIMIT 1"
        ).fetchone()
    page = _ask(browser, demo_url, "Which genre has the most tracks?")
    status = page.locator("#triage-status").inner_text()
    assert "Answered by sql (triage → sql)" in status
    chat = page.locator("#triage-chat").inner_text()
    assert "Handoff · triage → sql" in chat and "Tool call · run_query" in chat
    assert f'["{genre}",{count}]' in chat  # the answer quotes the rows the query returned
    page.context.close()


def test_a_docs_question_is_handed_to_the_docs_agent_which_searches_the_docs(
    browser: Any, demo_url: str
) -> None:
    page = _ask(browser, demo_url, "How do I deploy the demos to a Hugging Face Space?")
    assert "Answered by docs (triage → docs)" in page.locator("#triage-status").inner_text()
    chat = page.locator("#triage-chat").inner_text()
    assert "Handoff · triage → docs" in chat and "Tool call · search_documents" in chat
    assert "Tool call · run_query" not in chat
    page.context.close()
