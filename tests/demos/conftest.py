"""Launch the demo app on loopback with deterministic models, and drive it with Chromium."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agentlib import FunctionModel, Message, OutputSchema
from agentlib.models.testing import call, final

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def demo_brain(messages: Sequence[Message], output: OutputSchema | None) -> Any:
    """A deterministic model for the demos: arithmetic through the calculator, slow on demand."""
    task = next(
        m.content
        for m in reversed(messages)
        if m.role == "user" and not m.content.startswith("Observation")
    )
    last = messages[-1].content
    if output is not None and output.name != "agent_step":  # structured extraction
        return {"name": "Maria Svensson", "age": 34, "city": "Gothenburg"}
    if "slowly" in task:
        await asyncio.sleep(60)
    if last.startswith("Observation"):
        value = last.rsplit("\n", 1)[-1]
        return final(f"The answer is {value}.", "I have the result.")
    if "remember" in task.lower():
        turns = sum(1 for m in messages if m.role == "assistant")
        return final(f"I see {turns} earlier answer(s) in this conversation.")
    match = re.search(r"(\d+)\s*\*\s*(\d+)", task)
    if match:
        return call("calculator", "Multiply with the calculator.", expression=match.group(0))
    return final("I can only multiply.")


@pytest.fixture(scope="session")
def demo_url() -> Iterator[str]:
    pytest.importorskip("gradio")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from demos.app import CSS, build_app

    app = build_app({"Deterministic test model": lambda: FunctionModel(demo_brain)})
    port = _free_port()
    app.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        css=CSS,
        share=False,
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield instance
        finally:
            instance.close()


def dumps(value: object) -> str:
    return json.dumps(value)
