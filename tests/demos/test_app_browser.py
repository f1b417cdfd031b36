"""The demos in a real browser: Chromium (Debian's) driven by Playwright against the app on
loopback, with a deterministic model so that what appears can be checked exactly."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import SESSION_TIMEOUT, descendants

pytestmark = pytest.mark.browser

TIMEOUT = 90_000  # generous: CI machines are shared and slow under load


def _open(browser: Any, url: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(url)
    page.wait_for_selector("#chat-input textarea")
    return page


def _ask(page: Any, text: str) -> None:
    page.fill("#chat-input textarea", text)
    page.click("#chat-send")


def test_chat_streams_the_steps_and_the_answer(browser: Any, demo_url: str) -> None:
    page = _open(browser, demo_url)
    _ask(page, "What is 17 * 23?")
    chat = page.locator("#agent-chat")
    chat.get_by_text("The answer is 391.").wait_for()
    text = chat.inner_text()
    assert "calculator" in text  # the tool call is shown as a labelled message
    # The step panel's title previews the thought, and says how long the step took.
    assert "Step 1 · Multiply with the calculator." in text
    assert "generation: scripted" in text or "Run details" in text
    page.locator("#chat-status").get_by_text("Answered in").wait_for()  # after the answer
    page.context.close()


def test_stop_cancels_a_running_agent(browser: Any, demo_url: str) -> None:
    page = _open(browser, demo_url)
    _ask(page, "Think slowly about 2 * 3")
    page.locator("#agent-chat").get_by_text("Think slowly about 2 * 3").wait_for()
    page.wait_for_timeout(500)
    page.click("#chat-stop")
    page.locator("#agent-chat").get_by_text("Stopped.").wait_for()
    # The app is still usable after a cancelled run.
    _ask(page, "What is 6 * 7?")
    page.locator("#agent-chat").get_by_text("The answer is 42.").wait_for()
    page.context.close()


def test_two_sessions_do_not_see_each_others_history(browser: Any, demo_url: str) -> None:
    first = _open(browser, demo_url)
    second = _open(browser, demo_url)
    _ask(first, "What is 3 * 5?")
    first.locator("#agent-chat").get_by_text("The answer is 15.").wait_for()
    _ask(first, "Do you remember?")
    first.locator("#agent-chat").get_by_text("I see 1 earlier answer(s)").wait_for()
    _ask(second, "Do you remember?")
    second.locator("#agent-chat").get_by_text("I see 0 earlier answer(s)").wait_for()
    assert "3 * 5" not in second.locator("#agent-chat").inner_text()
    first.context.close()
    second.context.close()


def test_a_message_sent_while_a_run_finishes_is_not_lost(browser: Any, demo_url: str) -> None:
    # Typed and sent before the first run has ended: it runs after it, with its history.
    page = _open(browser, demo_url)
    _ask(page, "What is 4 * 5?")
    _ask(page, "Do you remember?")
    chat = page.locator("#agent-chat")
    chat.get_by_text("The answer is 20.").wait_for()
    chat.get_by_text("I see 1 earlier answer(s)").wait_for()
    assert page.locator("#chat-input textarea").input_value() == ""
    page.context.close()


def test_extraction_shows_validated_json_and_the_generation_path(
    browser: Any, demo_url: str
) -> None:
    page = _open(browser, demo_url)
    page.get_by_role("tab", name="Structured extraction").click()
    page.click("#extract-run")
    page.locator("#extract-status").get_by_text("has the schema's shape").wait_for()
    assert "Gothenburg" in page.locator("#extract-output").inner_text()
    status = page.locator("#extract-status").inner_text()
    assert "scripted test model" in status and "Shape is not truth" in status
    assert "Valid against the schema" not in status
    page.context.close()


def test_extraction_rejects_a_broken_schema_clearly(browser: Any, demo_url: str) -> None:
    page = _open(browser, demo_url)
    page.get_by_role("tab", name="Structured extraction").click()
    editor = page.locator("#extract-schema .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type('{"type": "objekt"')
    page.click("#extract-run")
    page.locator("#extract-status").get_by_text("Could not extract").wait_for()
    assert "schema is not valid" in page.locator("#extract-status").inner_text()
    page.context.close()


def test_chat_offers_the_sample_database_as_a_tool(browser: Any, demo_url: str) -> None:
    page = _open(browser, demo_url)
    tools = page.locator("#chat-tools")
    for name in ("SQL (sample music store)", "graph (sample movies)", "docs search"):
        assert tools.get_by_label(name).count() == 1, name
    tools.get_by_label("SQL (sample music store)").check()
    _ask(page, "Which tables are there?")
    chat = page.locator("#agent-chat")
    chat.get_by_text("The answer is").wait_for()
    text = chat.inner_text()
    assert "Tool call · list_tables" in text
    # The final answer quotes the observation's last line: a table of the real sample schema.
    assert "tracks: track_id, name, album_id, genre_id" in text
    page.context.close()


def _sql_tab(browser: Any, url: str) -> Any:
    page = _open(browser, url)
    page.get_by_role("tab", name="SQL explorer").click()
    page.wait_for_selector("#sql-question textarea")
    return page


def test_sql_explorer_shows_the_query_its_rows_and_an_answer(
    browser: Any, demo_url: str, tmp_path: Path
) -> None:
    from agentlib.tools.sql import create_music_store

    # The same deterministic sample, queried directly: the genre with the most tracks.
    create_music_store(tmp_path / "music.db")
    with sqlite3.connect(tmp_path / "music.db") as connection:
        genre, count = connection.execute(
            "SELECT g.name, COUNT(*) FROM tracks t JOIN genres g ON t.genre_id = g.genre_id "
            "GROUP BY g.name ORDER BY COUNT(*) DESC LIMIT 1"
        ).fetchone()
    page = _sql_tab(browser, demo_url)
    page.fill("#sql-question textarea", "Which genres have the most tracks?")
    page.click("#sql-ask")
    page.locator("#sql-answer").get_by_text("comes first").wait_for()
    answer = page.locator("#sql-answer").inner_text()
    assert f"{genre} comes first, with {count}." in answer
    assert "from the 5 row(s) below" in answer and "⚠" not in answer
    shown_sql = page.locator("#sql-query .cm-content").inner_text()
    assert "JOIN genres" in shown_sql and "ON tracks.genre_id = genres.genre_id" in shown_sql
    rows = page.locator("#sql-rows").inner_text()
    assert genre in rows and str(count) in rows
    status = page.locator("#sql-status").inner_text()
    assert "scripted test model" in status and "sample music store" in status
    page.context.close()


def test_sql_explorer_says_when_the_answer_disagrees_with_the_rows(
    browser: Any, demo_url: str
) -> None:
    page = _sql_tab(browser, demo_url)
    page.fill("#sql-question textarea", "How many customers are there (miscount)?")
    page.click("#sql-ask")
    page.locator("#sql-answer").get_by_text("There are 7777").wait_for()
    answer = page.locator("#sql-answer").inner_text()
    assert "from the 1 row(s) below" in answer
    assert "7777, which is neither the row count (1) nor a value in the rows" in answer
    page.context.close()


def test_sql_explorer_refuses_a_non_sqlite_upload_and_queries_a_real_one(
    browser: Any, demo_url: str, tmp_path: Path
) -> None:
    fake = tmp_path / "notes.db"
    fake.write_text("name,age\nAda,36\n")
    garden = tmp_path / "garden.db"
    with sqlite3.connect(garden) as connection:
        connection.execute("CREATE TABLE plants (plant_id INTEGER PRIMARY KEY, name TEXT)")
        connection.executemany(
            "INSERT INTO plants (name) VALUES (?)", [("fern",), ("ivy",), ("moss",)]
        )
    page = _sql_tab(browser, demo_url)
    upload = page.locator("#sql-upload input[type=file]")
    upload.set_input_files(str(fake))
    page.locator("#sql-database").get_by_text("not a SQLite database").wait_for()
    page.locator("#sql-upload button[aria-label='Clear']").click()
    page.locator("#sql-database").get_by_text("sample music store").wait_for()
    upload.set_input_files(str(garden))
    page.locator("#sql-database").get_by_text("garden.db").wait_for()
    page.fill("#sql-question textarea", "How many plants are there?")
    page.click("#sql-ask")
    page.locator("#sql-answer").get_by_text("The answer is 3.").wait_for()
    assert "FROM plants" in page.locator("#sql-query .cm-content").inner_text()
    assert "garden.db" in page.locator("#sql-status").inner_text()
    page.context.close()


def _docs_tab(browser: Any, url: str) -> Any:
    page = _open(browser, url)
    page.get_by_role("tab", name="Docs Q&A").click()
    page.wait_for_selector("#docs-question textarea")
    return page


def test_docs_qa_cites_the_project_docs(browser: Any, demo_url: str) -> None:
    page = _docs_tab(browser, demo_url)
    page.fill("#docs-question textarea", "How do I deploy the demos to a Hugging Face Space?")
    page.click("#docs-ask")
    page.locator("#docs-answer").get_by_text("Sources").wait_for()
    answer = page.locator("#docs-answer").inner_text()
    assert "how-to/demos.md" in answer and "Deploy to a Hugging Face Space" in answer
    sources = page.locator("#docs-sources").inner_text()
    assert "how-to/demos.md" in sources and "cited" in sources
    assert "scripted test model" in page.locator("#docs-status").inner_text()
    page.context.close()


def test_docs_qa_answers_from_uploaded_files_with_their_headings(
    browser: Any, demo_url: str, tmp_path: Path
) -> None:
    pump = tmp_path / "pump.md"
    pump.write_text("# Pump\n\n## Care\n\nReplace the filter every six months.\n")
    cats = tmp_path / "cats.txt"
    cats.write_text("Cats purr when they are content.\n")
    page = _docs_tab(browser, demo_url)
    page.locator("#docs-upload input[type=file]").set_input_files([str(pump), str(cats)])
    page.locator("#docs-upload-status").get_by_text("Indexed").wait_for()
    page.fill("#docs-question textarea", "How often should the filter be replaced?")
    page.click("#docs-ask")
    page.locator("#docs-answer").get_by_text("Sources").wait_for()
    assert "pump.md, Pump > Care" in page.locator("#docs-answer").inner_text()
    assert "your files" in page.locator("#docs-status").inner_text()
    page.context.close()


def _graph_workers(server: Any) -> int:
    return sum("cypher" in command for command in descendants(server.pid))


def _count_movies(browser: Any, url: str) -> Any:
    page = _open(browser, url)
    page.locator("#chat-tools").get_by_label("graph (sample movies)").check()
    _ask(page, "How many movies are there?")
    page.locator("#agent-chat").get_by_text("The answer is").wait_for()
    return page


def _wait_for_workers(server: Any, count: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while (now := _graph_workers(server)) != count and time.monotonic() < deadline:
        time.sleep(0.5)
    return now


def test_closing_the_tab_stops_the_sessions_worker_processes(
    browser: Any, demo_server: tuple[str, Any]
) -> None:
    url, server = demo_server
    before = _graph_workers(server)
    page = _count_movies(browser, url)
    assert _graph_workers(server) > before  # the session's own query worker
    page.context.close()
    # Closed at once on unload, far sooner than the idle timeout.
    assert _wait_for_workers(server, before, SESSION_TIMEOUT / 2) == before


def test_an_idle_session_is_closed_after_the_timeout_and_reopens_on_use(
    browser: Any, demo_server: tuple[str, Any]
) -> None:
    url, server = demo_server
    before = _graph_workers(server)
    page = _count_movies(browser, url)
    assert _graph_workers(server) > before
    # The tab stays open but idle: its worker goes within the timeout (plus the reaper's period).
    assert _wait_for_workers(server, before, SESSION_TIMEOUT * 2 + 5) == before
    _ask(page, "How many movies are there, again?")
    page.locator("#agent-chat").get_by_text("The answer is").nth(1).wait_for()
    page.context.close()
