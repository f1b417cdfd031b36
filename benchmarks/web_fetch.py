"""How long fetch_page takes on loopback, split into the network part and the extraction.

    python benchmarks/web_fetch.py [--runs 30]

A `ThreadingHTTPServer` on 127.0.0.1 serves a long HTML article (about 60 KB, with navigation
and footer boilerplate), a 10-page PDF and a 5 MB text file (with `max_bytes` at 1 MB, so the
cap is hit). Each is fetched `--runs` times through `WebTools.afetch` (address check, download,
decoding, extraction); `download` is the same request made with plain httpx, so the rest is
the tool's own work. Reports medians.
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


ROUTES = {
    "/article": (article(), "text/html; charset=utf-8"),
    "/report.pdf": (pdf(), "application/pdf"),
    "/huge.txt": (b"otters " * 750_000, "text/plain; charset=utf-8"),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body, content_type = ROUTES[self.path]
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    asyncio.run(main(parser.parse_args().runs))
