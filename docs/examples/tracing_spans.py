"""OpenTelemetry spans of a run, kept in memory and printed as a tree."""

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentlib import Agent, ScriptedModel, tool
from agentlib.models.testing import call, final


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))

agent = Agent(
    ScriptedModel([call("add", "Add them.", a=2, b=3), final("5")]),
    tools=[add],
    name="calculator",
    tracing=provider,  # or tracing=True for the global provider
)
agent.run("What is 2 + 3?")

spans = exporter.get_finished_spans()
names = {span.context.span_id: span.name for span in spans}
for span in sorted(spans, key=lambda span: span.start_time or 0):
    parent = names.get(span.parent.span_id) if span.parent else None
    print(f"{span.name!r:28} under {parent!r}")
tool_span = next(span for span in spans if span.name == "execute_tool add")
print({key: tool_span.attributes[key] for key in ("gen_ai.tool.name", "gen_ai.tool.call.id")})
