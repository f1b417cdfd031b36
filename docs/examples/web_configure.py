"""Configuring the web tools: search engine, fetch limits, cache."""

from pathlib import Path

from agentlib.tools.web import DDGSBackend, FetchConfig, SearXNGBackend, WebCache, WebTools

# The default: ddgs metasearch, public addresses only, no cache.
web = WebTools()

# ddgs with chosen engines and region, tighter download limits, and a one-day cache.
web = WebTools(
    DDGSBackend(engines="duckduckgo,brave", region="uk-en", safesearch="on", timeout=10),
    fetch=FetchConfig(max_bytes=2_000_000, total_timeout=15, max_redirects=3),
    cache=WebCache(Path("web-cache"), ttl=24 * 3600),
    max_chars=3000,
)

# A self-hosted SearXNG, and an intranet host the fetcher may reach.
intranet = WebTools(
    SearXNGBackend("http://searx.internal:8080"),
    fetch=FetchConfig(allowed_hosts=("wiki.internal", "10.20.0.0/16")),
)
print([tool.name for tool in intranet.tools])  # ['web_search', 'fetch_page']
