"""The chat tab's Approve / Deny in Chromium, and an MCP server's tools in its picker.

The demo app runs with the SDK's test MCP server as `--mcp` (a real stdio subprocess); its
`record` tool appends to a file on the host, so each decision is judged by that file: the
call's side effect happened only after Approve, with the arguments a person edited, and never
after Deny.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

TIMEOUT = 90_000
MCP_LABEL = re.compile(r"MCP: sdk-test-server \(\d+ tools\)")


def _recorded(record_file: Path) -> list[str]:
    return record_file.read_text().splitlines() if record_file.exists() else []


def _ask_with_approval(browser: Any, url: str, task: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(url)
    page.wait_for_selector("#chat-input textarea")
    page.locator("#chat-tools").get_by_label(MCP_LABEL).check()
    page.locator("#chat-ask").get_by_role("checkbox").check()
    page.fill("#chat-input textarea", task)
    page.click("#chat-send")
    page.locator("#chat-pending").get_by_text("Approval needed").wait_for()
    return page


def test_the_picker_offers_the_mcp_servers_tools(browser: Any, demo_url: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(demo_url)
    page.wait_for_selector("#chat-input textarea")
    tools = page.locator("#chat-tools")
    assert tools.get_by_label(MCP_LABEL).count() == 1, tools.inner_text()
    context.close()


def test_approve_runs_the_waiting_call_only_then(
    browser: Any, demo_url: str, record_file: Path
) -> None:
    page = _ask_with_approval(browser, demo_url, "Record the word apple")
    pending = page.locator("#chat-pending").inner_text()
    assert "record" in pending and "has not run yet" in pending
    assert '"text": "apple"' in page.locator("#chat-arguments textarea").input_value()
    assert "waiting for your approval" in page.locator("#agent-chat").inner_text()
    page.wait_for_timeout(1000)
    assert "apple" not in _recorded(record_file)  # paused: the tool has not run
    page.click("#chat-approve")
    page.locator("#agent-chat").get_by_text("The answer is recorded apple.").wait_for()
    assert _recorded(record_file).count("apple") == 1
    assert page.locator("#chat-approve").is_hidden()
    page.context.close()


def test_deny_never_runs_the_call_and_the_model_reads_the_reason(
    browser: Any, demo_url: str, record_file: Path
) -> None:
    page = _ask_with_approval(browser, demo_url, "Record the word pear")
    page.fill("#chat-reason textarea", "not on a Sunday")
    page.click("#chat-deny")
    chat = page.locator("#agent-chat")
    chat.get_by_text("The answer is denied: not on a Sunday (the call did not run).").wait_for()
    page.wait_for_timeout(1000)
    assert "pear" not in _recorded(record_file)
    page.context.close()


def test_edited_arguments_are_what_runs(browser: Any, demo_url: str, record_file: Path) -> None:
    page = _ask_with_approval(browser, demo_url, "Record the word plum")
    page.fill("#chat-arguments textarea", '{"text": "cherry"}')
    page.click("#chat-approve")
    chat = page.locator("#agent-chat")
    chat.get_by_text("The answer is recorded cherry.").wait_for()
    # The model is told a person changed the arguments (the observation's first line).
    assert "a person changed the arguments" in chat.inner_text()
    recorded = _recorded(record_file)
    assert "cherry" in recorded and "plum" not in recorded
    page.context.close()


def test_arguments_that_are_not_json_are_refused_and_the_call_still_waits(
    browser: Any, demo_url: str, record_file: Path
) -> None:
    page = _ask_with_approval(browser, demo_url, "Record the word fig")
    page.fill("#chat-arguments textarea", "{text: fig")
    page.click("#chat-approve")
    page.locator("#chat-status").get_by_text("not valid JSON").wait_for()
    assert page.locator("#chat-approve").is_visible()
    assert "fig" not in _recorded(record_file)
    page.fill("#chat-arguments textarea", '{"text": "fig"}')
    page.click("#chat-approve")
    page.locator("#agent-chat").get_by_text("The answer is recorded fig.").wait_for()
    assert _recorded(record_file).count("fig") == 1
    page.context.close()


def test_agentlib_demo_offers_its_mcp_servers_in_the_picker(record_file: Path) -> None:
    """`agentlib demo --mcp ...`: the CLI's flags reach the app, whose picker lists the server."""
    import json
    import os
    import shlex
    import subprocess
    import sys
    import urllib.request

    from .conftest import MCP_SERVER, ROOT, _free_port, stop, wait_until_serving

    pytest.importorskip("gradio")
    port = _free_port()
    mcp = shlex.join([sys.executable, str(MCP_SERVER), f"--record={record_file}"])
    script = Path(sys.executable).with_name("agentlib")  # the installed console script
    command = [str(script), "demo", "--port", str(port), "--mcp", mcp]
    server = subprocess.Popen(
        [*command, "--max-tools", "3"],
        cwd=ROOT,
        env={
            **os.environ,
            "GRADIO_ANALYTICS_ENABLED": "False",
            "AGENTLIB_DEMO_EMBEDDER": "hashing",
        },
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_serving(url, server)
        with urllib.request.urlopen(url + "config", timeout=10) as response:
            config = json.load(response)
        pickers = [
            item["props"]["choices"]
            for item in config["components"]
            if item.get("props", {}).get("elem_id") == "chat-tools"
        ]
        assert pickers and any(MCP_LABEL.search(label) for label, _ in pickers[0])
    finally:
        stop(server)
