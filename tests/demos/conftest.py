"""Launch the demo app on loopback with deterministic models, and drive it with Chromium."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "images"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SESSION_TIMEOUT = 15
"""The test app's idle-session timeout, in seconds (the Space's default is 900)."""


def wait_until_serving(url: str, server: subprocess.Popen[Any], timeout: float = 120) -> None:
    """Wait until `url` answers 200, failing if the server exits or takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            pytest.fail(f"the demo app exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"the demo app did not start within {timeout:.0f} s")
            time.sleep(0.5)


def stop(server: subprocess.Popen[Any]) -> None:
    """Terminate a server process (kill it if it does not stop within 10 s)."""
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


MCP_SERVER = ROOT / "tests" / "tools" / "mcp_sdk_server.py"


@pytest.fixture(scope="session")
def record_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file the demo's MCP server's `record` tool appends to (host state to judge by)."""
    return tmp_path_factory.mktemp("mcp") / "record.txt"


@pytest.fixture(scope="session")
def demo_server(record_file: Path) -> Iterator[tuple[str, subprocess.Popen[Any]]]:
    """The demo app with a deterministic model, served by a separate process on loopback,
    with the SDK's test MCP server (a stdio subprocess, `--mcp`) in its tool picker.

    A separate process keeps gradio's server threads and event loops out of the test process.
    """
    pytest.importorskip("gradio")
    port = _free_port()
    mcp = shlex.join([sys.executable, str(MCP_SERVER), f"--record={record_file}"])
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.demos._serve", str(port), "--mcp", mcp],
        cwd=ROOT,
        env={
            **os.environ,
            "GRADIO_ANALYTICS_ENABLED": "False",
            "PYTHONWARNINGS": "ignore",
            "AGENTLIB_DEMO_SESSION_TIMEOUT": str(SESSION_TIMEOUT),
        },
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, server)
        yield url, server
    finally:
        stop(server)


@pytest.fixture(scope="session")
def demo_url(demo_server: tuple[str, subprocess.Popen[Any]]) -> str:
    """The deterministic demo app's address."""
    return demo_server[0]


def descendants(pid: int) -> list[str]:
    """The command lines of every live process below `pid` (read from /proc)."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":  # a zombie has exited: only its parent has yet to reap it
            continue
        parents[int(entry.name)] = int(fields[1])
        commands[int(entry.name)] = command.strip()
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent:
                found.append(commands[child])
                frontier.append(child)
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API keeps an event loop running in this
    # thread while it is open, which would break later tests that call asyncio.run().
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
