"""`fetch_page` on hostile input: one error path, and extraction bounded in time and memory.

Each case is served by a real loopback server; the checks are the `ToolError` raised, the
server's log of requests, the extraction worker's process (killed at the deadline) and the
host process's own peak memory, read from /proc.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentlib import ToolError
from agentlib.tools.web import FetchConfig, WebTools

from ._web_server import WebServer, make_heavy_pdf

NOT_TEXT_CHARSETS = ["rot13", "base64", "zlib", "hex", "undefined"]


@pytest.fixture
def server() -> Iterator[WebServer]:
    web = WebServer().start()
    yield web
    web.stop()


def loopback_tools(**config: object) -> WebTools:
    return WebTools(fetch=FetchConfig(allowed_hosts=("127.0.0.1",), **config))


def extraction_workers(memory_mb: int) -> list[int]:
    """Live extraction workers started with `memory_mb` (read from /proc, no psutil)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state in ("Z", "X"):
            continue
        if any(argument.endswith(b"_extract_worker.py") for argument in arguments) and (
            str(memory_mb).encode() in arguments
        ):
            found.append(int(entry.name))
    return found


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> int:
    """Reset this process's VmHWM to its current RSS; return that RSS in KB."""
    Path("/proc/self/clear_refs").write_text("5")
    return status_kb("VmRSS")


# --- one error path -------------------------------------------------------------------------


@pytest.mark.parametrize("charset", NOT_TEXT_CHARSETS)
async def test_a_content_type_charset_that_is_not_text_is_a_clear_error(
    server: WebServer, charset: str
) -> None:
    server.page("/page", "<html><body><p>otters</p></body></html>", f"text/html; charset={charset}")
    with pytest.raises(ToolError, match=f"charset '{charset}', which is not a text encoding"):
        await loopback_tools().afetch(server.url("/page"))
    assert server.paths() == ["/page"]


@pytest.mark.parametrize("charset", NOT_TEXT_CHARSETS)
async def test_a_meta_charset_that_is_not_text_is_a_clear_error(
    server: WebServer, charset: str
) -> None:
    body = f"<html><head><meta charset='{charset}'></head><body><p>otters</p></body></html>"
    server.page("/page", body, "text/html")
    with pytest.raises(ToolError, match=f"charset '{charset}', which is not a text encoding"):
        await loopback_tools().fetch_page.acall({"url": server.url("/page")})


async def test_an_unknown_charset_label_is_ignored(server: WebServer) -> None:
    server.page("/page", "<p>otters swim</p>", "text/plain; charset=no-such-charset")
    page = await loopback_tools().afetch(server.url("/page"))
    assert "otters swim" in page.text


@pytest.mark.parametrize("location", ["data:,hi", "http://[::1", "javascript:alert(1)"])
async def test_a_redirect_to_a_location_that_cannot_be_followed_is_a_clear_error(
    server: WebServer, location: str
) -> None:
    server.redirect("/go", location)
    with pytest.raises(ToolError) as raised:
        await loopback_tools().afetch(server.url("/go"))
    assert type(raised.value) is ToolError
    assert "/go" in str(raised.value)
    assert server.paths() == ["/go"]


@pytest.mark.parametrize("port", [65536, 70000, 99_999_999_999])
async def test_a_port_out_of_range_is_refused_before_any_connection(
    server: WebServer, port: int
) -> None:
    with pytest.raises(ToolError, match=f"the port {port}, which is not between 1 and 65535"):
        await loopback_tools().afetch(f"http://127.0.0.1:{port}/page")
    server.redirect("/go", f"http://127.0.0.1:{port}/page")
    with pytest.raises(ToolError, match="not between 1 and 65535"):
        await loopback_tools().afetch(server.url("/go"))
    assert server.paths() == ["/go"]


async def test_a_host_label_over_63_characters_is_refused_before_resolving() -> None:
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    tools = WebTools(fetch=FetchConfig(allowed_hosts=("127.0.0.1",), resolver=resolver))
    label = "a" * 64
    with pytest.raises(ToolError, match="a host name part of 64 characters; the most is 63"):
        await tools.afetch(f"http://{label}.example/")
    with pytest.raises(ToolError, match="253"):
        await tools.afetch(f"http://{'.'.join(['a' * 60] * 5)}/")
    assert asked == []


async def test_a_long_label_from_the_system_resolver_is_a_tool_error() -> None:
    # Past the URL check (a redirect target is checked the same way), the system resolver's
    # own IDNA failure must still come out as a ToolError.
    from agentlib.tools.web._guard import AddressPolicy, system_resolver

    with pytest.raises(ToolError, match="cannot resolve the host"):
        await AddressPolicy().resolve("a" * 64 + ".example", 80, system_resolver)


# --- bounded extraction ---------------------------------------------------------------------


async def test_extraction_past_the_deadline_is_stopped_and_its_worker_killed(
    server: WebServer,
) -> None:
    memory_mb = 900 + secrets.randbelow(90)  # a limit of its own: a fresh, traceable worker
    server.page("/heavy.pdf", make_heavy_pdf(), "application/pdf")
    tools = loopback_tools(total_timeout=3, extraction_memory_mb=memory_mb)
    with pytest.raises(ToolError, match="did not finish within the fetch's total_timeout"):
        await tools.afetch(server.url("/heavy.pdf"))
    assert extraction_workers(memory_mb) == []  # killed, not left parsing
    # The next fetch gets a fresh worker and its own result.
    server.page("/small", "<p>Sea otters hold stones.</p>", "text/plain")
    page = await tools.afetch(server.url("/small"))
    assert "Sea otters hold stones." in page.text


async def test_a_page_that_needs_too_much_memory_is_refused_and_the_host_stays_small(
    server: WebServer,
) -> None:
    memory_mb = 40 + secrets.randbelow(20)
    row = b"<tr><td>otter</td><td>stone</td><td>clam</td><td>kelp</td></tr>"
    table = b"<html><body><table>" + row * (5_000_000 // len(row)) + b"</table></body></html>"
    server.page("/table.html", table)
    tools = loopback_tools(total_timeout=60, extraction_memory_mb=memory_mb)
    before = reset_peak_rss()
    with pytest.raises(ToolError, match=f"needs more than {memory_mb} MB|failed") as raised:
        await tools.afetch(server.url("/table.html"))
    growth_mb = (status_kb("VmHWM") - before) / 1024
    assert type(raised.value) is ToolError
    # The host holds the 5 MB download and copies of it in flight, never the parse tree
    # (which grew it by 776 MB when extraction ran in the host).
    assert growth_mb < 100
    assert extraction_workers(memory_mb) == []


async def test_a_page_of_title_tags_is_read_within_the_deadline(server: WebServer) -> None:
    server.page("/titles", b"<html><head>" + b"<title>" * 28_000 + b"</head><body>x</body>")
    page = await loopback_tools(total_timeout=20).afetch(server.url("/titles"))
    assert page.title == ""


def test_the_extraction_worker_never_imports_agentlib() -> None:
    source = Path(__file__).parents[2] / "tools" / "web" / "_extract_worker.py"
    assert os.path.exists(source)
    imports = [
        line
        for line in source.read_text().splitlines()
        if line.lstrip().startswith(("import ", "from "))
    ]
    assert not any("agentlib" in line for line in imports)
