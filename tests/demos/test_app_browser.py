"""The demos in a real browser: Chromium (Debian's) driven by Playwright against the app on
loopback, with a deterministic model so that what appears can be checked exactly."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import SCREENSHOTS

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
    assert "Step 1 · thought" in text
    assert "generation: scripted" in text or "Run details" in text
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "demo-chat.png"), full_page=True)
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


def test_extraction_shows_validated_json_and_the_generation_path(
    browser: Any, demo_url: str
) -> None:
    page = _open(browser, demo_url)
    page.get_by_role("tab", name="Structured extraction").click()
    page.click("#extract-run")
    page.locator("#extract-status").get_by_text("Valid against the schema").wait_for()
    assert "Gothenburg" in page.locator("#extract-output").inner_text()
    assert "scripted test model" in page.locator("#extract-status").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "demo-extraction.png"), full_page=True)
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
