"""Spans over OTLP/HTTP to a collector (here a tiny one on loopback, standing in for yours)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from agentlib import Agent, ScriptedModel
from agentlib.models.testing import final

received: list[str] = []


class Collector(BaseHTTPRequestHandler):
    """Keeps the names of the spans each OTLP/HTTP export holds."""

    def do_POST(self) -> None:
        """Decode one export request."""
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                received.extend(span.name for span in scope.spans)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Stay quiet."""


server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
threading.Thread(target=server.serve_forever, daemon=True).start()

# Your application configures the SDK once: an OTLP collector, Jaeger, Phoenix, Langfuse, ...
provider = TracerProvider()
endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))

Agent(ScriptedModel([final("hello")]), tracing=provider).run("Say hello.")
provider.shutdown()  # flush before exit
server.shutdown()
print(sorted(received))
