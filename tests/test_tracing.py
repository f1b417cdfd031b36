"""OpenTelemetry spans of real runs: the span tree, the GenAI attributes, content opt-in, OTLP."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentlib import Agent, Approve, ScriptedModel, tool
from agentlib._tracing import render_span_tree
from agentlib.models.testing import call, final


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@tool
def fail(reason: str) -> str:
    """Always fails.

    Args:
        reason: Why.
    """
    raise RuntimeError(reason)


@tool(requires_approval=True)
def transfer(amount: int) -> str:
    """Move money.

    Args:
        amount: In euros.
    """
    return f"moved {amount}"


@pytest.fixture
def exporter() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield provider, memory
    provider.shutdown()


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_span_tree_and_genai_attributes_of_a_run(
    exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, memory = exporter
    model = ScriptedModel([call("add", "Sum.", a=2, b=3), call("fail", reason="boom"), final("5")])
    agent = Agent(model, tools=[add, fail], name="calculator", tracing=provider)

    result = agent.run("What is 2 + 3?")

    assert result.ok
    spans = memory.get_finished_spans()
    [run] = by_name(spans, "invoke_agent calculator")
    steps = [by_name(spans, f"step {n}")[0] for n in (1, 2, 3)]
    chats = by_name(spans, "chat scripted")
    [tool_add] = by_name(spans, "execute_tool add")
    [tool_fail] = by_name(spans, "execute_tool fail")
    assert len(spans) == 1 + 3 + 3 + 2
    assert run.parent is None
    assert all(parent_of(step) == run.context.span_id for step in steps)
    assert [parent_of(chat) for chat in chats] == [step.context.span_id for step in steps]
    assert parent_of(tool_add) == steps[0].context.span_id
    assert parent_of(tool_fail) == steps[1].context.span_id
    assert {span.context.trace_id for span in spans} == {run.context.trace_id}

    assert run.attributes is not None
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run.attributes["gen_ai.agent.name"] == "calculator"
    # a model name without a provider prefix (`openai:gpt-4o`) is reported under agentlib
    assert run.attributes["gen_ai.provider.name"] == "agentlib"
    assert run.attributes["gen_ai.request.model"] == "scripted"
    assert run.attributes["gen_ai.usage.input_tokens"] == result.usage.input_tokens
    assert run.attributes["gen_ai.usage.output_tokens"] == result.usage.output_tokens
    assert run.attributes["gen_ai.response.finish_reasons"] == ("final_answer",)

    chat = chats[0].attributes
    assert chat is not None and chats[0].kind.name == "CLIENT"
    assert chat["gen_ai.operation.name"] == "chat"
    assert chat["gen_ai.request.model"] == "scripted"
    assert chat["gen_ai.request.max_tokens"] == 512
    assert chat["gen_ai.usage.input_tokens"] == result.steps[0].usage.input_tokens
    assert chat["gen_ai.usage.output_tokens"] == result.steps[0].usage.output_tokens
    assert chat["gen_ai.response.finish_reasons"] == ("stop",)

    tool_attributes = tool_add.attributes
    assert tool_attributes is not None
    assert tool_attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool_attributes["gen_ai.tool.name"] == "add"
    assert tool_attributes["gen_ai.tool.call.id"] == result.steps[0].calls[0].id
    assert tool_attributes["gen_ai.tool.type"] == "function"
    assert tool_attributes["gen_ai.tool.description"] == "Add two integers."
    assert tool_fail.attributes is not None
    assert tool_fail.attributes["error.type"] == "RuntimeError"
    assert tool_fail.status.status_code.name == "ERROR"


def test_contents_are_recorded_only_when_asked(
    exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, memory = exporter
    secret = "my card is 4111-1111"
    script = [call("add", a=2, b=3), final("5")]
    Agent(ScriptedModel(script), tools=[add], tracing=provider).run(secret)
    private = json.dumps([dict(span.attributes or {}) for span in memory.get_finished_spans()])
    assert secret not in private and "gen_ai.tool.call.arguments" not in private
    memory.clear()

    agent = Agent(ScriptedModel(script), tools=[add], tracing=provider, trace_content=True)
    agent.run(secret)
    spans = memory.get_finished_spans()
    [tool_span] = by_name(spans, "execute_tool add")
    assert tool_span.attributes is not None
    assert json.loads(str(tool_span.attributes["gen_ai.tool.call.arguments"])) == {"a": 2, "b": 3}
    assert tool_span.attributes["gen_ai.tool.call.result"] == "5"
    [run] = by_name(spans, "invoke_agent agent")
    assert run.attributes is not None
    assert secret in str(run.attributes["gen_ai.input.messages"])
    assert (
        json.loads(str(run.attributes["gen_ai.output.messages"]))[0]["parts"][0]["content"] == "5"
    )


def test_run_span_joins_the_callers_trace_and_resume_links_back(
    exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, memory = exporter
    agent = Agent(
        ScriptedModel([call("transfer", amount=9), final("moved")]),
        tools=[transfer],
        tracing=provider,
    )
    with provider.get_tracer("app").start_as_current_span("request") as outer:
        paused = agent.run("pay 9")
    result = agent.resume(paused, {"call_1": Approve()})

    assert result.ok
    first, second = by_name(memory.get_finished_spans(), "invoke_agent agent")
    assert parent_of(first) == outer.get_span_context().span_id
    assert first.attributes is not None and second.attributes is not None
    assert first.attributes["agentlib.stop_reason"] == "approval_required"
    assert first.attributes["agentlib.approval.pending"] == ("call_1",)
    assert second.attributes["agentlib.resumed"] is True
    assert [link.context.span_id for link in second.links] == [first.context.span_id]
    [tool_span] = by_name(memory.get_finished_spans(), "execute_tool transfer")
    assert tool_span.attributes is not None
    assert tool_span.attributes["agentlib.approval"] == "approved"


def test_span_tree_renders_for_a_terminal(
    exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, memory = exporter
    Agent(ScriptedModel([call("add", a=1, b=1), final("2")]), tools=[add], tracing=provider).run(
        "1+1"
    )
    lines = render_span_tree(memory.get_finished_spans()).splitlines()
    assert lines[0].startswith("invoke_agent agent")
    assert lines[1].startswith("├─ step 1") and lines[-2].startswith("└─ step 2")
    assert lines[2].startswith("│  ├─ chat scripted") and "tokens" in lines[2]
    assert lines[3].startswith("│  └─ execute_tool add") and "call=call_1" in lines[3]


class _Collector(BaseHTTPRequestHandler):
    """A loopback OTLP/HTTP receiver: keeps each POST body sent to /v1/traces."""

    bodies: list[bytes]
    paths: list[str]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.paths.append(self.path)
        self.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def test_spans_reach_an_otlp_http_collector() -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    handler = type("Collector", (_Collector,), {"bodies": [], "paths": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        provider = TracerProvider()
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        agent = Agent(
            ScriptedModel([call("add", a=4, b=5), final("9")]), tools=[add], tracing=provider
        )
        assert agent.run("4+5").ok
        provider.shutdown()  # flushes the batch
    finally:
        server.shutdown()
        server.server_close()

    assert handler.paths and set(handler.paths) == {"/v1/traces"}
    names: list[str] = []
    attributes: dict[str, Any] = {}
    for body in handler.bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                assert scope.scope.name == "agentlib"
                for span in scope.spans:
                    names.append(span.name)
                    if span.name == "execute_tool add":
                        attributes = {a.key: a.value.string_value for a in span.attributes}
    assert sorted(names) == sorted(
        [
            "invoke_agent agent",
            "step 1",
            "step 2",
            "chat scripted",
            "chat scripted",
            "execute_tool add",
        ]
    )
    assert attributes["gen_ai.tool.name"] == "add"
    assert attributes["gen_ai.tool.call.id"] == "call_1"


def test_tracing_off_never_loads_opentelemetry() -> None:
    code = (
        "import sys\n"
        "from agentlib import Agent, ScriptedModel\n"
        "from agentlib.models.testing import final\n"
        "assert Agent(ScriptedModel([final('x')])).run('t').ok\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_trace_prints_the_span_tree(capsys: pytest.CaptureFixture[str]) -> None:
    from agentlib.cli import main

    from .models._openai_server import chat, run_server

    def reply(body: dict[str, Any]) -> Any:
        last = body["messages"][-1]["content"]
        if last.startswith("Observation"):
            answer = last.rsplit("\n", 1)[-1]
            return chat({"thought": "Done.", "action": {"tool": "final_answer", "answer": answer}})
        return chat(
            {
                "thought": "Compute.",
                "action": {"tool": "calculator", "arguments": {"expression": "6*7"}},
            }
        )

    with run_server(reply) as server:
        code = main(
            [
                "run",
                "What is 6*7?",
                "--model",
                f"openai-compatible:{server.base_url}#test-model",
                "--tools",
                "calculator",
                "--trace",
            ]
        )
    captured = capsys.readouterr()
    assert code == 0 and captured.out.strip() == "42"
    tree = captured.err[captured.err.index("invoke_agent") :].splitlines()
    assert tree[0].startswith("invoke_agent agent") and "finish=final_answer" in tree[0]
    assert tree[1].startswith("├─ step 1")
    assert tree[2].startswith("│  ├─ chat test-model") and "tokens" in tree[2]
    assert tree[3].startswith("│  └─ execute_tool calculator  ") and "call=call_1" in tree[3]
    assert tree[4].startswith("└─ step 2")
