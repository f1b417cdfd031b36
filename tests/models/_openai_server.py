"""A small OpenAI-compatible HTTP server for tests: real HTTP on 127.0.0.1, scripted replies.

It records every request it receives (`server.requests`) and answers each
`POST /v1/chat/completions` with the next scripted `Reply` (a list), or with what a function of
the request body returns (like `FunctionModel`, for agent runs). `GET /v1/models` lists the
model. Replies cover chat completions, tool calls, refusals, streaming (SSE), HTTP errors,
malformed bodies and slow answers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "OpenAIServer",
    "RecordedRequest",
    "Reply",
    "chat",
    "error",
    "raw",
    "run_server",
    "slow",
    "stream",
    "tool_calls",
]

MODEL = "test-model"


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, body, content type; SSE events when `events` is set."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    events: tuple[str, ...] = ()
    delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """What the adapter sent."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: Any


def _completion(message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def chat(
    content: str | dict[str, Any] | None,
    *,
    finish_reason: str = "stop",
    refusal: str | None = None,
) -> Reply:
    """A chat completion whose message content is `content` (a dict is sent as JSON text)."""
    text = json.dumps(content) if isinstance(content, dict) else content
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if refusal is not None:
        message["refusal"] = refusal
    return Reply(body=json.dumps(_completion(message, finish_reason)).encode())


def tool_calls(*calls: tuple[str, dict[str, Any]], content: str | None = None) -> Reply:
    """A chat completion with native tool calls `(function name, arguments)`."""
    message = {
        "role": "assistant",
        "content": content,
        "tool_calls": [
            {
                "id": f"call_{index}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for index, (name, arguments) in enumerate(calls)
        ],
    }
    return Reply(body=json.dumps(_completion(message, "tool_calls")).encode())


def error(status: int, message: str, *, code: str | None = None) -> Reply:
    """An OpenAI-style error body with `status`."""
    body = {"error": {"message": message, "type": "error", "param": None, "code": code}}
    return Reply(status=status, body=json.dumps(body).encode())


def raw(body: bytes, *, status: int = 200, content_type: str = "application/json") -> Reply:
    """Exactly these bytes (for malformed bodies)."""
    return Reply(status=status, body=body, content_type=content_type)


def slow(seconds: float, reply: Reply) -> Reply:
    """`reply`, after `seconds` (cut short when the server stops)."""
    return Reply(reply.status, reply.body, reply.content_type, reply.events, seconds)


def stream(pieces: Sequence[str], *, tool_call: tuple[str, Sequence[str]] | None = None) -> Reply:
    """A streamed completion (SSE): content deltas, then optionally one tool call's fragments."""
    events = []

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return json.dumps(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    events.append(chunk({"role": "assistant", "content": ""}))
    events.extend(chunk({"content": piece}) for piece in pieces)
    if tool_call is not None:
        name, fragments = tool_call
        head = {"index": 0, "id": "call_0", "type": "function"}
        events.append(
            chunk({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
        )
        events.extend(
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
            for part in fragments
        )
    events.append(chunk({}, "tool_calls" if tool_call else "stop"))
    events.append("[DONE]")
    return Reply(content_type="text/event-stream", events=tuple(events))


Responder = Callable[[dict[str, Any]], Reply]


def _headers(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


@dataclass
class OpenAIServer:
    """The running server; `base_url` ends with `/v1`."""

    base_url: str
    requests: list[RecordedRequest] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of the chat-completion requests, in order."""
        return [item.body for item in self.requests if item.path.endswith("/chat/completions")]


def _handler(server: OpenAIServer, respond: Responder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            server.requests.append(RecordedRequest("GET", self.path, _headers(self.headers), None))
            if self.path.rstrip("/").endswith("/models"):
                body = {"object": "list", "data": [{"id": MODEL, "object": "model"}]}
                self._send(Reply(body=json.dumps(body).encode()))
            else:
                self._send(error(404, f"no route {self.path}"))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            data = self.rfile.read(length)
            try:
                body = json.loads(data)
            except json.JSONDecodeError:
                body = data.decode(errors="replace")
            server.requests.append(RecordedRequest("POST", self.path, _headers(self.headers), body))
            if not self.path.endswith("/chat/completions"):
                self._send(error(404, f"no route {self.path}"))
                return
            self._send(respond(body))

        def _send(self, reply: Reply) -> None:
            if reply.delay and server.stopping.wait(reply.delay):
                return
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                if reply.events:
                    self.send_header("Cache-Control", "no-cache")
                    self.end_headers()
                    for event in reply.events:
                        self.wfile.write(f"data: {event}\n\n".encode())
                        self.wfile.flush()
                    return
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nothing to answer

    return Handler


def _scripted(replies: Iterable[Reply]) -> Responder:
    queue = list(replies)
    lock = threading.Lock()

    def respond(body: dict[str, Any]) -> Reply:
        with lock:
            if not queue:
                return error(500, "the test server's script ran out of replies")
            return queue.pop(0)

    return respond


@contextmanager
def run_server(replies: Iterable[Reply] | Responder = ()) -> Iterator[OpenAIServer]:
    """Serve on 127.0.0.1, port 0, in a thread, for the `with` block."""
    respond = replies if callable(replies) else _scripted(replies)
    state = OpenAIServer(base_url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, respond))
    httpd.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
