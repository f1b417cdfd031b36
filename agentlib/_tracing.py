"""OpenTelemetry spans for runs, steps, model calls and tool calls (the GenAI conventions).

Off by default: an agent without `tracing=` never imports OpenTelemetry, and each hook in the
loop is one `None` check (`model_span(None, ...)` hands back a shared no-op). With tracing on,
a run is one `invoke_agent {name}` span; each step a `step {n}` span under it; each model
attempt a `chat {model}` span (kind CLIENT) and each tool call an `execute_tool {tool}` span
under its step, with the `gen_ai.*` attributes of the OpenTelemetry GenAI semantic conventions
(operation, provider, model, token usage, finish reasons, tool name, type and call id).
Prompts, answers, tool arguments and results are recorded only with `trace_content=True`
(`gen_ai.input.messages`, `gen_ai.output.messages`, `gen_ai.tool.call.arguments`,
`gen_ai.tool.call.result`). Spans go to the `TracerProvider` given, or the global one: nothing
leaves the process unless the application configured an exporter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from agentlib.errors import MissingExtraError

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from agentlib.models.base import Message, ModelResponse
    from agentlib.steps import Observation, RunResult, Step, ToolCall
    from agentlib.tool import Tool

__all__ = ["RunTrace", "Tracing", "model_span", "render_span_tree", "tool_span"]

_FAILED = frozenset({"invalid_output", "model_error", "time_budget", "token_budget", "cancelled"})


def _import_otel() -> Any:
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise MissingExtraError("opentelemetry", "otel", feature="tracing") from exc
    return trace


def _split_model_name(name: str) -> tuple[str, str]:
    """`openai:gpt-4o-mini` -> (`openai`, `gpt-4o-mini`); a bare name has provider `agentlib`."""
    provider, colon, model = name.partition(":")
    return (provider, model) if colon else ("agentlib", name)


def _messages_json(messages: Sequence[Message]) -> str:
    return json.dumps(
        [
            {"role": m.role, "parts": [{"type": "text", "content": m.content}]}
            for m in messages
            if m.role != "system"
        ],
        ensure_ascii=False,
    )


class Tracing:
    """An agent's tracing configuration: its tracer and whether contents are recorded."""

    def __init__(self, provider: TracerProvider | None, *, record_content: bool) -> None:
        trace = _import_otel()
        from agentlib import __version__

        source = provider if provider is not None else trace.get_tracer_provider()
        self.tracer: Tracer = source.get_tracer("agentlib", __version__)
        self.record_content = record_content

    def start_run(
        self,
        *,
        agent_name: str,
        model_name: str,
        task: str,
        system_prompt: str,
        resumed_from: Mapping[str, str] | None = None,
    ) -> RunTrace:
        """Open the run's span (a child of the caller's current span, if any)."""
        return RunTrace(
            self,
            agent_name=agent_name,
            model_name=model_name,
            task=task,
            system_prompt=system_prompt,
            resumed_from=resumed_from,
        )


class RunTrace:
    """The spans of one run in flight: the run's, the current step's."""

    def __init__(
        self,
        tracing: Tracing,
        *,
        agent_name: str,
        model_name: str,
        task: str,
        system_prompt: str,
        resumed_from: Mapping[str, str] | None,
    ) -> None:
        trace = _import_otel()
        self._trace = trace
        self.tracer = tracing.tracer
        self.record_content = tracing.record_content
        self.provider, self.model = _split_model_name(model_name)
        links = []
        if resumed_from:
            links.append(trace.Link(_span_context(trace, resumed_from)))
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent_name,
            "gen_ai.provider.name": self.provider,
            "gen_ai.request.model": self.model,
            "agentlib.resumed": resumed_from is not None,
        }
        if self.record_content:
            attributes["gen_ai.system_instructions"] = json.dumps(
                [{"type": "text", "content": system_prompt}], ensure_ascii=False
            )
            attributes["gen_ai.input.messages"] = _messages_json([_message("user", task)])
        self.run: Span = self.tracer.start_span(
            f"invoke_agent {agent_name}",
            kind=trace.SpanKind.INTERNAL,
            attributes=attributes,
            links=links,
        )
        self.run_context: Context = trace.set_span_in_context(self.run)
        self.step: Span | None = None
        self.step_context: Context = self.run_context

    def reference(self) -> dict[str, str]:
        """The run span's ids, kept in a checkpoint so the resumed run links back to it."""
        context = self.run.get_span_context()
        return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}

    def step_started(self, index: int) -> None:
        self.step_finished(None)
        self.step = self.tracer.start_span(
            f"step {index}", context=self.run_context, attributes={"agentlib.step.index": index}
        )
        self.step_context = self._trace.set_span_in_context(self.step)

    def step_finished(self, step: Step | None) -> None:
        if self.step is None:
            return
        if step is not None:
            self.step.set_attributes(
                {
                    "agentlib.step.is_final": step.is_final,
                    "agentlib.step.retries": step.retries,
                    "agentlib.step.tool_calls": len(step.calls),
                    "agentlib.generation_path": step.generation_path,
                }
            )
        self.step.end()
        self.step, self.step_context = None, self.run_context

    def finish(self, result: RunResult[Any]) -> None:
        """Record how the run ended and close its spans."""
        self.step_finished(None)
        run = self.run
        run.set_attributes(
            {
                "gen_ai.usage.input_tokens": result.usage.input_tokens,
                "gen_ai.usage.output_tokens": result.usage.output_tokens,
                "gen_ai.response.finish_reasons": [result.stop_reason],
                "agentlib.stop_reason": result.stop_reason,
                "agentlib.steps": len(result.steps),
                "agentlib.model_requests": result.usage.requests,
            }
        )
        if result.pending:
            run.set_attribute("agentlib.approval.pending", [r.call.id for r in result.pending])
        if self.record_content and result.ok:
            from agentlib.tool import render_observation

            run.set_attribute(
                "gen_ai.output.messages",
                _messages_json([_message("assistant", render_observation(result.output))]),
            )
        if result.stop_reason in _FAILED or result.stop_reason in ("max_steps", "repeated_call"):
            run.set_attribute("error.type", result.stop_reason)
            run.set_status(self._trace.Status(self._trace.StatusCode.ERROR, result.error))
        run.end()


def _message(role: str, content: str) -> Message:
    from agentlib.models.base import Message

    return Message(role=role, content=content)  # type: ignore[arg-type]


def _span_context(trace: Any, reference: Mapping[str, str]) -> Any:
    return trace.SpanContext(
        trace_id=int(reference["trace_id"], 16),
        span_id=int(reference["span_id"], 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )


class _NullSpan:
    """What the hooks get with tracing off: every method does nothing."""

    def __enter__(self) -> _NullSpan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def record(self, value: Any) -> None:
        return None


_NULL = _NullSpan()


class _LiveSpan:
    """A model or tool span, current while its work runs (so nested client spans attach)."""

    def __init__(self, run: RunTrace, span: Span) -> None:
        self.run = run
        self.span = span
        self._token: object = None

    def __enter__(self) -> Self:
        from opentelemetry import context

        self._token = context.attach(self.run._trace.set_span_in_context(self.span))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        from opentelemetry import context

        context.detach(self._token)  # type: ignore[arg-type]
        if exc is not None:
            self.span.set_attribute("error.type", type(exc).__name__)
            self.span.record_exception(exc)
            self.span.set_status(
                self.run._trace.Status(self.run._trace.StatusCode.ERROR, str(exc) or None)
            )
        self.span.end()


class _ModelSpan(_LiveSpan):
    def record(self, response: ModelResponse) -> None:
        attributes: dict[str, Any] = {
            "gen_ai.usage.input_tokens": response.input_tokens,
            "gen_ai.usage.output_tokens": response.output_tokens,
            "agentlib.generation_path": response.path,
        }
        if response.model_name:
            attributes["gen_ai.response.model"] = response.model_name
        if response.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = [response.finish_reason]
        if self.run.record_content:
            attributes["gen_ai.output.messages"] = _messages_json(
                [_message("assistant", response.text)]
            )
        self.span.set_attributes(attributes)


class _ToolSpan(_LiveSpan):
    def record(self, observation: Observation) -> None:
        if observation.is_error:
            self.span.set_attribute("error.type", observation.error_type or "ToolError")
            self.span.set_status(self.run._trace.Status(self.run._trace.StatusCode.ERROR))
        if self.run.record_content:
            self.span.set_attribute("gen_ai.tool.call.result", observation.content)


def model_span(
    run: RunTrace | None, messages: Sequence[Message], max_tokens: int | None
) -> _ModelSpan | _NullSpan:
    """The span of one model call (a no-op without tracing); `record(response)` fills it."""
    if run is None:
        return _NULL
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": run.provider,
        "gen_ai.request.model": run.model,
        "gen_ai.output.type": "json",
    }
    if max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = max_tokens
    if run.record_content:
        attributes["gen_ai.input.messages"] = _messages_json(messages)
    span = run.tracer.start_span(
        f"chat {run.model}",
        context=run.step_context,
        kind=run._trace.SpanKind.CLIENT,
        attributes=attributes,
    )
    return _ModelSpan(run, span)


def tool_span(
    run: RunTrace | None, call: ToolCall, tool: Tool, approval: str | None = None
) -> _ToolSpan | _NullSpan:
    """The span of one tool call (a no-op without tracing); `record(observation)` fills it."""
    if run is None:
        return _NULL
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": call.tool_name,
        "gen_ai.tool.call.id": call.id,
        "gen_ai.tool.type": "function",
    }
    if tool.description:
        attributes["gen_ai.tool.description"] = tool.description
    if approval is not None:
        attributes["agentlib.approval"] = approval
    if run.record_content:
        from agentlib.memory._format import jsonable

        attributes["gen_ai.tool.call.arguments"] = json.dumps(
            jsonable(dict(call.arguments)), ensure_ascii=False
        )
    span = run.tracer.start_span(
        f"execute_tool {call.tool_name}",
        context=run.step_context,
        kind=run._trace.SpanKind.INTERNAL,
        attributes=attributes,
    )
    return _ToolSpan(run, span)


def render_span_tree(spans: Sequence[ReadableSpan]) -> str:
    """Finished spans as an indented tree with durations and the key attributes, for a terminal."""
    by_id = {span.context.span_id: span for span in spans if span.context is not None}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent if parent in by_id else None, []).append(span)
    for group in children.values():
        group.sort(key=lambda item: item.start_time or 0)
    lines: list[str] = []

    def walk(span: ReadableSpan, prefix: str, last: bool, root: bool) -> None:
        branch = "" if root else ("└─ " if last else "├─ ")
        lines.append(f"{prefix}{branch}{_describe(span)}")
        kids = children.get(span.context.span_id if span.context else None, [])
        inner = prefix if root else prefix + ("   " if last else "│  ")
        for position, child in enumerate(kids):
            walk(child, inner, position == len(kids) - 1, False)

    for root in children.get(None, []):
        walk(root, "", True, True)
    return "\n".join(lines)


def _describe(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    seconds = ((span.end_time or 0) - (span.start_time or 0)) / 1e9
    parts = [f"{span.name}  {seconds * 1000:.1f} ms"]
    if "gen_ai.usage.input_tokens" in attributes:
        parts.append(
            f"tokens {attributes['gen_ai.usage.input_tokens']!s} in / "
            f"{attributes.get('gen_ai.usage.output_tokens', 0)!s} out"
        )
    for key, label in (
        ("gen_ai.response.finish_reasons", "finish"),
        ("gen_ai.tool.call.id", "call"),
        ("agentlib.approval", "approval"),
        ("error.type", "error"),
    ):
        value = attributes.get(key)
        if value is not None:
            items = value if isinstance(value, tuple | list) else [value]
            shown = ",".join(v.decode() if isinstance(v, bytes) else str(v) for v in items)
            parts.append(f"{label}={shown}")
    return "  ".join(parts)
