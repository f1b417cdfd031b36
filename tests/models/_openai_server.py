"""A small OpenAI-compatible HTTP server for tests: real HTTP on 127.0.0.1, scripted replies.

It records every request it receives (`server.requests`) and answers each
`POST /v1/chat/completions` with the next scripted `Reply` (a list), or with what a function of
the request body returns (like `FunctionModel`, for agent runs). `GET /v1/models` lists the
model. Replies cover chat completions, tool calls, refusals, streaming (SSE), HTTP errors,
malformed bodies and slow answers.

`strict_server(values)` emulates a provider's strict mode (OpenAI's Structured Outputs): it
rejects, with a 400 like OpenAI's, a `response_format` or strict tool schema that breaks the
documented rules (`strict_rule_violations`, written independently of agentlib's own checks),
and answers each request with the next intended value as a strict server would send it:
every property present (an absent one as `null`) and unknown keys dropped (`as_strict_reply`).
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
    "STRICT_LIMITS",
    "OpenAIServer",
    "RecordedRequest",
    "Reply",
    "as_strict_reply",
    "chat",
    "error",
    "raw",
    "run_server",
    "slow",
    "stream",
    "strict_rule_violations",
    "strict_server",
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


# -- strict mode, as OpenAI documents it ------------------------------------------------------

STRICT_LIMITS = {"properties": 5000, "nesting": 10, "enum values": 1000, "string length": 120_000}
"""OpenAI's Structured Outputs guide, "Supported schemas": 5,000 object properties, 10 levels
of nesting, 1,000 enum values, 120,000 characters of names and enum/const values."""

_STRICT_TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}
_STRICT_KEYS = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "enum",
    "const",
    "description",
    "title",
    "$ref",
    "$defs",
    # the value keywords the guide lists as supported
    "pattern",
    "format",
    "multipleOf",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
}


def strict_rule_violations(schema: Any) -> list[str]:
    """Every way `schema` breaks OpenAI's documented strict-mode rules (empty when none)."""
    rules = _StrictRules(schema.get("$defs", {}) if isinstance(schema, dict) else {})
    if not isinstance(schema, dict) or schema.get("type") != "object":
        rules.found.append("the root must be an object")
    elif "anyOf" in schema:
        rules.found.append("the root must not be anyOf")
    if isinstance(schema, dict):
        rules.visit({k: v for k, v in schema.items() if k != "$defs"}, "$", 0)
        for name, definition in rules.definitions.items():
            rules.visit(definition, f"$defs.{name}", 0)
    for what, limit in STRICT_LIMITS.items():
        if rules.totals[what] > limit:
            rules.found.append(f"{rules.totals[what]} {what} exceeds the limit of {limit}")
    return rules.found


class _StrictRules:
    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions
        self.found: list[str] = []
        self.totals = {"properties": 0, "nesting": 0, "enum values": 0, "string length": 0}
        self.totals["string length"] += sum(len(name) for name in definitions)

    def visit(self, node: Any, where: str, depth: int) -> None:
        if not isinstance(node, dict):
            self.found.append(f"{where}: a schema must be an object, got {json.dumps(node)}")
            return
        self.found.extend(
            f"In context={where}, '{key}' is not permitted"
            for key in node
            if key not in _STRICT_KEYS
        )
        if "$ref" in node:
            ref = node["$ref"]
            if ref != "#" and ref.removeprefix("#/$defs/") not in self.definitions:
                self.found.append(f"{where}: reference {ref} cannot be resolved")
            return
        if "anyOf" in node:
            for index, branch in enumerate(node["anyOf"]):
                self.visit(branch, f"{where}.anyOf[{index}]", depth)
            return
        kinds = self.types(node, where)
        self.values(node, where)
        if "object" in kinds:
            self.object(node, where, depth)
        if "array" in kinds:
            if "items" not in node:
                self.found.append(f"{where}: an array must have items")
            else:
                self.visit(node["items"], f"{where}[]", depth)

    def types(self, node: dict[str, Any], where: str) -> list[Any]:
        kind = node.get("type")
        kinds = kind if isinstance(kind, list) else [kind]
        if kind is None and "enum" not in node and "const" not in node:
            self.found.append(f"{where}: schema must have a type")
        if any(item is not None and item not in _STRICT_TYPES for item in kinds):
            self.found.append(f"{where}: unknown type {kind}")
        mixed = len([item for item in kinds if item != "null"]) > 1
        if mixed and ("object" in kinds or "array" in kinds):
            self.found.append(f"{where}: a type list may not mix object or array with others")
        return kinds

    def values(self, node: dict[str, Any], where: str) -> None:
        values = node.get("enum", [])
        self.totals["enum values"] += len(values)
        for value in [*values, *([node["const"]] if "const" in node else [])]:
            if isinstance(value, str):
                self.totals["string length"] += len(value)
            elif isinstance(value, dict | list):
                self.found.append(f"{where}: enum and const values must be scalars")

    def object(self, node: dict[str, Any], where: str, depth: int) -> None:
        self.totals["nesting"] = max(self.totals["nesting"], depth + 1)
        properties = node.get("properties")
        if not isinstance(properties, dict):
            self.found.append(f"{where}: an object must list its properties")
            properties = {}
        if node.get("additionalProperties") is not False:
            self.found.append(f"{where}: additionalProperties must be false")
        if sorted(node.get("required", [])) != sorted(properties):
            self.found.append(f"{where}: every property must be required")
        self.totals["properties"] += len(properties)
        self.totals["string length"] += sum(len(name) for name in properties)
        for name, sub in properties.items():
            self.visit(sub, f"{where}.{name}", depth + 1)


def as_strict_reply(value: Any, schema: Any, root: Any = None) -> Any:
    """`value` as a strict server sends it under `schema`: absent properties as `null`,
    unknown keys dropped, union branches chosen by what fits."""
    import jsonschema

    root = schema if root is None else root
    if not isinstance(schema, dict):
        return value
    if "$ref" in schema:
        ref = schema["$ref"]
        target = root if ref == "#" else root["$defs"][ref.removeprefix("#/$defs/")]
        return as_strict_reply(value, target, root)
    if "anyOf" in schema:
        for branch in schema["anyOf"]:
            candidate = as_strict_reply(value, branch, root)
            # The branch read inside the whole document, so `#` and `#/$defs/...` resolve.
            within = jsonschema.Draft202012Validator(root).evolve(schema=branch)
            if within.is_valid(candidate):
                return candidate
        return value
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        return {
            name: as_strict_reply(value.get(name), sub, root)
            for name, sub in schema["properties"].items()
        }
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [as_strict_reply(item, schema["items"], root) for item in value]
    return value


def _sent_schema(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        envelope = response_format["json_schema"]
        return f"response_format '{envelope['name']}'", envelope["schema"]
    for entry in body.get("tools") or []:
        function = entry.get("function", {})
        if function.get("strict"):
            return f"function '{function['name']}'", function.get("parameters")
    return "", None


def strict_server(values: Iterable[Any]) -> Responder:
    """A responder emulating strict mode that answers with `values` in turn (see the module
    docstring); a value that is a `Reply` is sent as it is."""
    queue = list(values)
    lock = threading.Lock()

    def respond(body: dict[str, Any]) -> Reply:
        name, schema = _sent_schema(body)
        if schema is not None:
            violations = strict_rule_violations(schema)
            if violations:
                return error(400, f"Invalid schema for {name}: {'; '.join(violations)}")
        with lock:
            if not queue:
                return error(500, "the test server's script ran out of replies")
            value = queue.pop(0)
        if isinstance(value, Reply):
            return value
        reply = as_strict_reply(value, schema) if schema is not None else value
        if body.get("tools") and schema is not None:
            function = body["tools"][0]["function"]["name"]
            return tool_calls((function, reply))
        return chat(json.dumps(reply))

    return respond
