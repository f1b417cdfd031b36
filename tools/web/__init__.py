"""Web search and page fetching for agents: `WebTools` with `web_search` and `fetch_page`.

Search goes through a `SearchBackend`: `DDGSBackend` (the `ddgs` metasearch library, the
default), `SearXNGBackend` (a self-hosted SearXNG instance), or `InMemorySearchBackend` (fixed
results, for tests and docs); any object with the same `asearch` method plugs in.

`fetch_page` refuses what a model should not reach: non-http(s) URLs and, unless allowed,
private, loopback, link-local and cloud metadata addresses (checked on every redirect, and
connected to as checked). Downloads are bounded in size and time. Both tools fence what they
return as untrusted data, so instructions inside a page are not taken as instructions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
from typing import Annotated, Literal

from pydantic import Field

from agentlib import ConfigurationError, Toolset, tool
from agentlib._optional import optional_imports

with optional_imports("web", feature="agentlib.tools.web"):
    import httpx  # noqa: F401  (checked here so a missing extra names itself first)

from ._cache import WebCache
from ._fetch import FetchConfig, FetchedPage, PageFetcher, parse_url
from ._format import format_page, format_results
from ._search import (
    DDGSBackend,
    InMemorySearchBackend,
    SearchBackend,
    SearchKind,
    SearchResult,
    SearchUnavailableError,
    SearXNGBackend,
    TimeRange,
)

__all__ = [
    "DDGSBackend",
    "FetchConfig",
    "FetchedPage",
    "InMemorySearchBackend",
    "SearXNGBackend",
    "SearchBackend",
    "SearchKind",
    "SearchResult",
    "SearchUnavailableError",
    "TimeRange",
    "WebCache",
    "WebTools",
]

logger = logging.getLogger(__name__)


class WebTools(Toolset):
    """The `web_search` and `fetch_page` tools, sharing a backend, a fetch policy and a cache.

    Args:
        backend: The search engine; `DDGSBackend()` when omitted (made on first search).
        fetch: What `fetch_page` may reach and how it downloads; public addresses only by
            default.
        cache: An on-disk cache for searches and fetches; none by default.
        region: The search region passed to the backend (ddgs style: `us-en`, `wt-wt`).
        max_chars: How many characters of page text (or of search results) one observation
            shows. Keep it about 400 below the agent's `max_observation_chars` (4000), so the
            loop never cuts the closing fence.
        search_retries: How many times a rate-limited or timed-out search is tried again.
        retry_backoff: Seconds before the first retry; doubled for each further one.

    Raises:
        ConfigurationError: A limit is not positive.
    """

    def __init__(
        self,
        backend: SearchBackend | None = None,
        *,
        fetch: FetchConfig | None = None,
        cache: WebCache | None = None,
        region: str | None = None,
        max_chars: int = 3000,
        search_retries: int = 2,
        retry_backoff: float = 1.0,
    ) -> None:
        super().__init__()
        if max_chars < 200 or search_retries < 0 or retry_backoff < 0:
            raise ConfigurationError(
                "WebTools needs max_chars >= 200, search_retries >= 0 and retry_backoff >= 0"
            )
        self._backend = backend
        self.fetch_config = fetch or FetchConfig()
        """The fetch policy in force."""
        self.cache = cache
        """The cache, if any."""
        self.region = region
        self.max_chars = max_chars
        self.search_retries = search_retries
        self.retry_backoff = retry_backoff
        self._fetcher = PageFetcher(self.fetch_config)

    @property
    def backend(self) -> SearchBackend:
        """The search backend (the default `DDGSBackend` is made on first use)."""
        if self._backend is None:
            self._backend = DDGSBackend()
        return self._backend

    async def asearch(
        self,
        query: str,
        *,
        kind: SearchKind = "text",
        time_range: TimeRange | None = None,
        max_results: int = 5,
    ) -> list[SearchResult]:
        """Search through the backend, with the cache and bounded retries.

        Raises:
            SearchUnavailableError: The backend failed, after retries when they made sense.
        """
        key = json.dumps([query, kind, time_range, max_results, self.region])
        if self.cache is not None and (cached := self.cache.get("search", key)) is not None:
            return [SearchResult(**item) for item in cached]
        for attempt in range(self.search_retries + 1):
            try:
                results = await self.backend.asearch(
                    query,
                    kind=kind,
                    region=self.region,
                    time_range=time_range,
                    max_results=max_results,
                )
                break
            except SearchUnavailableError as exc:
                if not exc.retryable or attempt == self.search_retries:
                    raise
                delay = self.retry_backoff * 2**attempt * (1 + random.random() / 2)
                logger.info("search failed (%s); retrying in %.1f s", exc.reason, delay)
                await asyncio.sleep(delay)
        if self.cache is not None:
            self.cache.put("search", key, [dataclasses.asdict(result) for result in results])
        return results

    async def afetch(self, url: str) -> FetchedPage:
        """Fetch `url` under the fetch policy, through the cache.

        Raises:
            ToolError: The URL is refused or cannot be fetched or read.
        """
        key = str(parse_url(url))
        if self.cache is not None and (cached := self.cache.get("page", key)) is not None:
            # Checked again: the cache may have been filled under a more open policy.
            await self._fetcher.check(key)
            return FetchedPage(**cached)
        page = await self._fetcher.fetch(key)
        if self.cache is not None:
            self.cache.put("page", key, dataclasses.asdict(page))
        return page

    @tool
    async def web_search(
        self,
        query: str,
        kind: Literal["text", "news"] = "text",
        time_range: Literal["any", "day", "week", "month", "year"] = "any",
        max_results: Annotated[int, Field(ge=1, le=10)] = 5,
    ) -> str:
        """Search the web; returns the top results, each with title, URL and snippet.

        Args:
            query: What to search for, as a few keywords.
            kind: `text` for web pages, `news` for recent news articles.
            time_range: Only results from the past `day`, `week`, `month` or `year`; `any`
                for no limit.
            max_results: How many results to return, from 1 to 10.
        """
        results = await self.asearch(
            query,
            kind=kind,
            time_range=None if time_range == "any" else time_range,
            max_results=max_results,
        )
        return format_results(
            query, results, kind=kind, time_range=time_range, max_chars=self.max_chars
        )

    @tool
    async def fetch_page(self, url: str, offset: Annotated[int, Field(ge=0)] = 0) -> str:
        """Download a web page or PDF and return its main text as Markdown.

        Args:
            url: The http or https address, usually a URL from web_search.
            offset: Where to start reading, in characters; 0 for the beginning. A shortened
                page ends with the offset to continue from.
        """
        page = await self.afetch(url)
        return format_page(page, offset=offset, max_chars=self.max_chars)
