"""A real HTTP server on loopback for the web tool tests, and a small PDF writer.

Routes are functions of the request handler; the server records every request it receives so
tests can check what did (and did not) reach it.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]


@dataclass
class WebServer:
    """Serves `routes` on `host`, port 0, in a daemon thread."""

    host: str = "127.0.0.1"
    routes: dict[str, Handler] = field(default_factory=dict)
    received: list[ReceivedRequest] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    bytes_sent: dict[str, int] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, path: str = "/", host: str | None = None) -> str:
        name = host or self.host
        name = f"[{name}]" if ":" in name else name
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{name}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [request.path for request in self.received]

    def page(
        self,
        path: str,
        body: bytes | str,
        content_type: str | None = "text/html; charset=utf-8",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body

        def handle(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(status)
            if content_type is not None:
                handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)

        self.routes[path] = handle

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        def handle(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(status)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        self.routes[path] = handle

    def stream(
        self,
        path: str,
        chunks: Callable[[], Iterator[bytes]],
        content_type: str = "text/plain; charset=utf-8",
        *,
        delay: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send `chunks` without a length, `delay` seconds apart, until the client leaves."""

        def handle(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.send_header("Connection", "close")
            handler.end_headers()
            sent = 0
            try:
                for chunk in chunks():
                    if self.stopping.wait(delay) if delay else self.stopping.is_set():
                        return
                    handler.wfile.write(chunk)
                    handler.wfile.flush()
                    sent += len(chunk)
                    self.bytes_sent[path] = sent
            except OSError:  # the client stopped reading and closed the connection
                return

        self.routes[path] = handle

    def start(self) -> WebServer:
        server = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.received.append(ReceivedRequest(self.path, dict(self.headers.items())))
                route = server.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    self.send_error(404)
                    return
                route(self)
                self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                pass

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        self._server = Server((self.host, 0), RequestHandler)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def slow_bytes(count: int = 100, chunk: bytes = b"x") -> Callable[[], Iterator[bytes]]:
    def chunks() -> Iterator[bytes]:
        for _ in range(count):
            yield chunk

    return chunks


def delayed(handler: Handler, seconds: float, stopping: threading.Event) -> Handler:
    """Wait `seconds` (or until the server stops) before running `handler`."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        if stopping.wait(seconds):
            return
        handler(request)

    return handle


def make_pdf(lines: list[str], *, title: str = "") -> bytes:
    """A one-page PDF with `lines` in Helvetica, written by hand (no PDF library needed)."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    content = "BT /F1 12 Tf 72 720 Td 16 TL " + " ".join(f"({escape(x)}) Tj T*" for x in lines)
    content += " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        "/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        f"<< /Title ({escape(title)}) >>",
    ]
    output = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(output))
        output += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(output)
    output += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    output += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    output += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode()
    return output


def make_heavy_pdf(pages: int = 7, depth: int = 6, fan_out: int = 8) -> bytes:
    """A few KB of PDF whose pages draw forms that draw `fan_out` copies of the next form,
    `depth` levels deep: pypdf's text extraction spends tens of seconds on it."""
    font = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    first_form = len(objects) + 1
    for level in range(depth):
        if level == depth - 1:
            content, resources = "BT /F1 1 Tf (otters) Tj ET", f"<< /Font << /F1 {font} >> >>"
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
        kids.append(f"{len(objects) + 1} 0 R")
        objects.append(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject "
            f"<< /X {first_form} 0 R >> >> /Contents {len(objects) + 2} 0 R >>"
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
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return output + trailer.encode()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `condition` (for server-side effects that land just after the client returns)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def self_signed_certificate(directory: str, host_name: str) -> tuple[str, str]:
    """Write a self-signed certificate for `host_name` with openssl; return (cert, key) paths."""
    import subprocess

    certificate, key = f"{directory}/{host_name}.pem", f"{directory}/{host_name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            key,
            "-out",
            certificate,
            "-days",
            "1",
            "-subj",
            f"/CN={host_name}",
            "-addext",
            f"subjectAltName=DNS:{host_name}",
        ],
        check=True,
        capture_output=True,
    )
    return certificate, key
