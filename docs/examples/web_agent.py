"""An agent that searches, reads a page and answers, all on this machine.

A small web server on 127.0.0.1 plays the web, `InMemorySearchBackend` plays the search engine
and `ScriptedModel` plays the model. Loopback is refused by default, so the example opens it
with `allowed_hosts`. With a real model and `WebTools()`, the same agent searches with ddgs.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agentlib.tools.web import FetchConfig, InMemorySearchBackend, SearchResult, WebTools

from agentlib import Agent, ScriptedModel
from agentlib.models.testing import call, final

PAGE = b"""<html><head><title>How sea otters use tools</title></head><body>
<nav>Home | Animals | Shop</nav>
<article><h1>How sea otters use tools</h1>
<p>Sea otters float on their backs and crack clams against a stone held on the chest.
Many keep the same stone for weeks in a pouch of loose skin under the forearm.</p>
</article><footer>Subscribe to our newsletter.</footer></body></html>"""


class Handler(BaseHTTPRequestHandler):
    """Serves the article at every path."""

    def do_GET(self) -> None:
        """Answer with the article."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the example's output quiet."""


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/otters"

search = InMemorySearchBackend(
    [SearchResult(title="How sea otters use tools", url=url, snippet="Otters crack clams.")]
)
web = WebTools(search, fetch=FetchConfig(allowed_hosts=("127.0.0.1",)))

model = ScriptedModel(
    [
        call("web_search", "Find a source.", query="sea otters tools"),
        call("fetch_page", "Read the first result.", url=url),
        final("They crack clams on a stone they keep for weeks.", "The page says so."),
    ]
)
result = Agent(model, tools=[web]).run("How do sea otters use tools?")

for step in result.steps[:2]:
    print(step.observations[0].content, end="\n\n")
print(result.output)
assert "keep the same stone for weeks" in result.steps[1].observations[0].content
assert "newsletter" not in result.steps[1].observations[0].content
server.shutdown()
