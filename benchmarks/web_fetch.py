"""How long fetch_page takes on loopback, split into the network part and the extraction.

    python benchmarks/web_fetch.py [--runs 30]
    python benchmarks/web_fetch.py --worst [--total-timeout 30]

A `ThreadingHTTPServer` on 127.0.0.1 serves a long HTML article (about 60 KB, with navigation
and footer boilerplate), a 10-page PDF and a 5 MB text file (with `max_bytes` at 1 MB, so the
cap is hit). Each is fetched `--runs` times through `WebTools.afetch` (address check, download,
decoding, extraction); `download` is the same request made with plain httpx, so the rest is
the tool's own work. Reports medians.

`--worst` fetches, once each, the pages that once made extraction unbounded (a 200 KB page of
`<title>` tags, a small PDF whose pages nest form XObjects, a 5 MB HTML table) and reports the
wall time, the outcome, and how much the host process's peak RSS grew (VmHWM from
/proc/self/status, reset through /proc/self/clear_refs before each page).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from agentlib.tools.web import FetchConfig, WebTools


def article() -> bytes:
    paragraph = (
        "<p>Sea otters float on their backs and crack clams against a stone held on the "
        "chest; many keep the same stone for weeks in a pouch of loose skin.</p>"
    )
    sections = "".join(f"<h2>Section {n}</h2>" + paragraph * 3 for n in range(100))
    navigation = "<nav>" + " | ".join(f"<a href='/{n}'>Link {n}</a>" for n in range(200)) + "</nav>"
    return (
        "<html><head><meta charset='utf-8'><title>Otters</title></head><body>"
        f"{navigation}<article><h1>Otters</h1>{sections}</article>"
        "<footer>Subscribe. Cookies. All rights reserved.</footer></body></html>"
    ).encode()


def pdf(pages: int = 10) -> bytes:
    """A PDF of `pages` pages of Helvetica text, written object by object."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for number in range(pages):
        lines = " ".join(
            f"(Page {number} line {line}: otters use stones as tools.) Tj T*" for line in range(40)
        )
        content = f"BT /F1 11 Tf 72 740 Td 16 TL {lines} ET"
        page_id, content_id = len(objects) + 1, len(objects) + 2
        kids.append(f"{page_id} 0 R")
        objects.append(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 "
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> "
            f"/Contents {content_id} 0 R >>"
        )
        objects.append(f"<< /Length {len(content)} >>\nstream\n{content}\nendstream")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {pages} >>"
    output, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(output))
        output += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(output)
    output += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    output += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    output += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return output


def heavy_pdf(pages: int = 7, depth: int = 6, fan_out: int = 8) -> bytes:
    """A small PDF whose every page draws a form that draws `fan_out` copies of the next form,
    `depth` levels deep: a few KB that take `fan_out ** depth` text operations per page."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    font = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    first_form = len(objects) + 1
    for level in range(depth):
        if level == depth - 1:
            content = "BT /F1 1 Tf (otters) Tj ET"
            resources = f"<< /Font << /F1 {font} >> >>"
        else:
            content = " ".join(["q /X Do Q"] * fan_out)
            resources = f"<< /XObject << /X {first_form + level + 1} 0 R >> >>"
        objects.append(
            f"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources {resources} "
            f"/Length {len(content)} >>\nstream\n{content}\nendstream"
        )
    kids = []
    for _ in range(pages):
        content = " ".join(["q /X Do Q"] * fan_out)
        page_id, content_id = len(objects) + 1, len(objects) + 2
        kids.append(f"{page_id} 0 R")
        objects.append(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /XObject << /X {first_form} 0 R >> >> /Contents {content_id} 0 R >>"
        )
        objects.append(f"<< /Length {len(content)} >>\nstream\n{content}\nendstream")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {pages} >>"
    output, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(output))
        output += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(output)
    output += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    output += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    output += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return output


def title_tags(size: int = 200_000) -> bytes:
    return b"<html><head>" + b"<title>" * (size // 7) + b"</head><body>x</body></html>"


def big_table(size: int = 5_000_000) -> bytes:
    row = b"<tr><td>otter</td><td>stone</td><td>clam</td><td>kelp</td></tr>"
    return b"<html><body><table>" + row * (size // len(row)) + b"</table></body></html>"


WORST = {
    "/titles.html": (title_tags(), "text/html; charset=utf-8"),
    "/heavy.pdf": (heavy_pdf(), "application/pdf"),
    "/table.html": (big_table(), "text/html; charset=utf-8"),
}

ROUTES = {
    "/article": (article(), "text/html; charset=utf-8"),
    "/report.pdf": (pdf(), "application/pdf"),
    "/huge.txt": (b"otters " * 750_000, "text/plain; charset=utf-8"),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body, content_type = {**ROUTES, **WORST}[self.path]
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client stops reading at its size cap
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


async def measure(url: str, runs: int, tools: WebTools) -> tuple[float, float, int]:
    fetch_times, download_times, characters = [], [], 0
    async with httpx.AsyncClient() as client:
        for _ in range(runs):
            start = time.perf_counter()
            await client.get(url)
            download_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            page = await tools.afetch(url)
            fetch_times.append(time.perf_counter() - start)
            characters = len(page.text)
    return statistics.median(download_times), statistics.median(fetch_times), characters


async def main(runs: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    tools = WebTools(fetch=FetchConfig(allowed_hosts=("127.0.0.1",), max_bytes=1_000_000))
    await tools.afetch(f"{base}/article")  # imports trafilatura and pypdf once
    await tools.afetch(f"{base}/report.pdf")
    print(f"runs per row: {runs} (medians)\n")
    print("| page | size | download (httpx) | fetch_page (afetch) | text characters |")
    print("|---|---|---|---|---|")
    for path, (body, _) in ROUTES.items():
        download, fetch, characters = await measure(f"{base}{path}", runs, tools)
        print(
            f"| {path} | {len(body) / 1000:.0f} KB | {download * 1000:.1f} ms "
            f"| {fetch * 1000:.1f} ms | {characters:,} |"
        )
    server.shutdown()


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


async def worst(total_timeout: float) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    config = FetchConfig(allowed_hosts=("127.0.0.1",), total_timeout=total_timeout)
    tools = WebTools(fetch=config)
    await tools.afetch(f"{base}/article")  # imports and starts what extraction needs once
    await tools.afetch(f"{base}/report.pdf")
    print(f"total_timeout {total_timeout:g} s, max_bytes {config.max_bytes:,}\n")
    print("| page | size | wall time | outcome | host peak RSS growth |")
    print("|---|---|---|---|---|")
    for path, (body, _) in WORST.items():
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset VmHWM to the current RSS
        before = _status_kb("VmRSS")
        start = time.perf_counter()
        try:
            page = await tools.afetch(f"{base}{path}")
            outcome = f"{len(page.text):,} characters"
        except Exception as exc:
            outcome = f"{type(exc).__name__}: {str(exc)[:90]}"
        elapsed = time.perf_counter() - start
        growth = (_status_kb("VmHWM") - before) / 1024
        print(
            f"| {path} | {len(body) / 1000:.0f} KB | {elapsed:.2f} s | {outcome} "
            f"| {growth:.0f} MB |"
        )
    server.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--worst", action="store_true", help="the worst-case pages, once each")
    parser.add_argument("--total-timeout", type=float, default=30.0)
    arguments = parser.parse_args()
    if arguments.worst:
        asyncio.run(worst(arguments.total_timeout))
    else:
        asyncio.run(main(arguments.runs))
