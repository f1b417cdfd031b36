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
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol, TypeAlias, runtime_checkable

from pydantic import Field

from agentlib import (
    ConfigurationError,
    ToolError,
    Toolset,
    fence_untrusted,
    tool,
)
from agentlib._optional import optional_imports

with optional_imports("web", feature="agentlib.tools.web"):
    import httpx

from ._cache import WebCache
from ._fetch import FetchConfig, FetchedPage, PageFetcher, parse_url

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

SearchKind: TypeAlias = Literal["text", "news"]
"""`text` searches web pages, `news` recent news articles."""
TimeRange: TypeAlias = Literal["day", "week", "month", "year"]
"""How recent results must be."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchResult:
    """One search hit."""

    title: str
    """The page's title."""
    url: str
    """Where the page is."""
    snippet: str = ""
    """A short extract that matched the query."""
    source: str = ""
    """The publisher, for news results."""
    published: str = ""
    """When it was published (ISO 8601 where the engine says), for news results."""


class SearchUnavailableError(ToolError):
    """The search engine could not answer: offline, rate-limited, timed out or failing.

    The message reads `search is unavailable: <reason>`.

    Args:
        reason: What went wrong, for the model and the log.
        retryable: Whether trying again after a pause may succeed.
    """

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(f"search is unavailable: {reason}", tool_name="web_search")
        self.reason = reason
        """What went wrong."""
        self.retryable = retryable
        """Whether trying again after a pause may succeed (rate limits, timeouts)."""


@runtime_checkable
class SearchBackend(Protocol):
    """A search engine `WebTools` can use."""

    async def asearch(
        self,
        query: str,
        *,
        kind: SearchKind = "text",
        region: str | None = None,
        time_range: TimeRange | None = None,
        max_results: int = 5,
    ) -> list[SearchResult]:
        """Return at most `max_results` results; an empty list when nothing matches.

        Raises:
            SearchUnavailableError: The engine cannot answer now.
        """
        ...


class InMemorySearchBackend:
    """Searches a fixed list of results by word overlap: deterministic, for tests and docs.

    Args:
        results: The results to search; a result matches when a query word appears in its
            title or snippet. News searches only see results with a `published` date.
    """

    def __init__(self, results: Iterable[SearchResult]) -> None:
        self.results = list(results)
        """The searchable results."""
        self.queries: list[str] = []
        """Every query received, in order."""

    async def asearch(
        self,
        query: str,
        *,
        kind: SearchKind = "text",
        region: str | None = None,
        time_range: TimeRange | None = None,
        max_results: int = 5,
    ) -> list[SearchResult]:
        """Return the results sharing the most words with `query`."""
        self.queries.append(query)
        words = set(re.findall(r"\w+", query.lower()))
        scored = []
        for position, result in enumerate(self.results):
            if kind == "news" and not result.published:
                continue
            text = set(re.findall(r"\w+", f"{result.title} {result.snippet}".lower()))
            score = len(words & text)
            if score:
                scored.append((-score, position, result))
        return [result for _, _, result in sorted(scored)[:max_results]]


_DDGS_TIME_RANGES: dict[TimeRange, str] = {"day": "d", "week": "w", "month": "m", "year": "y"}
_OFFLINE = re.compile(
    r"dns|resolv|name or service not known|nodename nor servname|network is unreachable|"
    r"no route to host|connection refused|connecterror|failed to lookup|getaddrinfo",
    re.IGNORECASE,
)
_RATE_LIMITED = re.compile(r"\b(429|202)\b|rate.?limit|too many requests", re.IGNORECASE)
_URL_HOST = re.compile(r"https?://([^/\s)'\"]+)")


def _clean(text: Any) -> str:
    return " ".join(str(text or "").split())


def result_from_ddgs(item: Mapping[str, Any]) -> SearchResult | None:
    """Map one ddgs result dict to a `SearchResult`; `None` when it has no URL.

    ddgs returns text results as `{title, href, body}` and news results as
    `{date, title, body, url, image, source}`.
    """
    url = _clean(item.get("href") or item.get("url"))
    if not url:
        return None
    return SearchResult(
        title=_clean(item.get("title")) or url,
        url=url,
        snippet=_clean(item.get("body")),
        source=_clean(item.get("source")),
        published=_clean(item.get("date")),
    )


def ddgs_failure(exc: Exception) -> SearchUnavailableError | None:
    """Translate a ddgs exception; `None` means the engines simply found nothing."""
    with optional_imports("web", feature="DDGSBackend"):
        from ddgs.exceptions import RatelimitException, TimeoutException

    message = _clean(exc)
    if isinstance(exc, RatelimitException) or _RATE_LIMITED.search(message):
        return SearchUnavailableError(
            "the search engine is rate-limiting requests; wait before searching again",
            retryable=True,
        )
    if isinstance(exc, TimeoutException) or "timed out" in message.lower():
        return SearchUnavailableError("the search engine did not answer in time", retryable=True)
    if _OFFLINE.search(message):
        host = _URL_HOST.search(message)
        where = f" (could not reach {host.group(1)})" if host else ""
        return SearchUnavailableError(
            f"no network connection{where}; web search needs internet access"
        )
    if "no results found" in message.lower():
        return None
    return SearchUnavailableError(message[:300] or type(exc).__name__)


class DDGSBackend:
    """Search with `ddgs` (Dux Distributed Global Search), the default backend.

    Args:
        client: An existing `ddgs.DDGS` instance; by default one is made with `timeout` and
            `proxy`.
        timeout: Seconds per engine request.
        proxy: A proxy URL for ddgs (`socks5h://127.0.0.1:9150` for Tor).
        engines: ddgs's `backend` argument: `auto`, or engine names separated by commas.
        safesearch: `on`, `moderate` or `off`.
        region: The default region (`us-en`, `uk-en`, `de-de`, `wt-wt` for none).

    Raises:
        MissingExtraError: ddgs is not installed.
    """

    def __init__(
        self,
        client: Any | None = None,
        *,
        timeout: int = 5,
        proxy: str | None = None,
        engines: str = "auto",
        safesearch: Literal["on", "moderate", "off"] = "moderate",
        region: str = "us-en",
    ) -> None:
        if client is None:
            with optional_imports("web", feature="DDGSBackend"):
                from ddgs import DDGS
            client = DDGS(proxy=proxy, timeout=timeout)
        self.client = client
        """The `ddgs.DDGS` instance searches go through."""
        self.engines = engines
        self.safesearch = safesearch
        self.region = region

    async def asearch(
        self,
        query: str,
        *,
        kind: SearchKind = "text",
        region: str | None = None,
        time_range: TimeRange | None = None,
        max_results: int = 5,
    ) -> list[SearchResult]:
        """Search text or news with ddgs.

        Raises:
            SearchUnavailableError: ddgs failed; rate limits and timeouts are retryable.
        """
        with optional_imports("web", feature="DDGSBackend"):
            from ddgs.exceptions import DDGSException

        search = self.client.news if kind == "news" else self.client.text
        try:
            items = await asyncio.to_thread(
                search,
                query,
                region=region or self.region,
                safesearch=self.safesearch,
                timelimit=_DDGS_TIME_RANGES[time_range] if time_range else None,
                max_results=max_results,
                backend=self.engines,
            )
        except DDGSException as exc:
            failure = ddgs_failure(exc)
            if failure is None:
                return []
            raise failure from exc
        results = (result_from_ddgs(item) for item in items or ())
        return [result for result in results if result is not None][:max_results]


class SearXNGBackend:
    """Search through a SearXNG instance's JSON API (`/search?format=json`).

    The instance must have the `json` format enabled in its `settings.yml`.

    Args:
        base_url: The instance's address, such as `http://searx.internal:8080`.
        client: An existing `httpx.AsyncClient`; by default one is made per search.
        timeout: Seconds per request.
        language: The default SearXNG language (`en-US`, `de`, `all`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        language: str = "all",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.timeout = timeout
        self.language = language

    async def asearch(
        self,
        query: str,
        *,
        kind: SearchKind = "text",
        region: str | None = None,
        time_range: TimeRange | None = None,
        max_results: int = 5,
    ) -> list[SearchResult]:
        """Search the instance; `region` is passed as SearXNG's `language`.

        Raises:
            SearchUnavailableError: The instance is unreachable or answers with an error.
        """
        parameters = {
            "q": query,
            "format": "json",
            "categories": "news" if kind == "news" else "general",
            "language": region or self.language,
        }
        if time_range:
            parameters["time_range"] = time_range
        data = await self._get(parameters)
        results = []
        for item in data.get("results", []) if isinstance(data, dict) else []:
            if isinstance(item, dict) and item.get("url"):
                results.append(
                    SearchResult(
                        title=_clean(item.get("title")) or _clean(item["url"]),
                        url=_clean(item["url"]),
                        snippet=_clean(item.get("content")),
                        source=_clean(item.get("engine")) if kind == "news" else "",
                        published=_clean(item.get("publishedDate")),
                    )
                )
        return results[:max_results]

    async def _get(self, parameters: dict[str, str]) -> Any:
        url = f"{self.base_url}/search"
        try:
            if self.client is not None:
                response = await self.client.get(url, params=parameters, timeout=self.timeout)
            else:
                async with httpx.AsyncClient(timeout=self.timeout) as client:
                    response = await client.get(url, params=parameters)
        except httpx.TimeoutException as exc:
            raise SearchUnavailableError(
                "the SearXNG instance did not answer in time", retryable=True
            ) from exc
        except httpx.HTTPError as exc:
            raise SearchUnavailableError(
                f"cannot reach the SearXNG instance at {self.base_url} ({exc})"
            ) from exc
        if response.status_code == 429:
            raise SearchUnavailableError(
                "the SearXNG instance is rate-limiting requests", retryable=True
            )
        if response.status_code >= 400:
            raise SearchUnavailableError(
                f"the SearXNG instance answered HTTP {response.status_code} "
                "(is the json format enabled in its settings.yml?)",
                retryable=response.status_code >= 500,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise SearchUnavailableError("the SearXNG instance did not return JSON") from exc


_SNIPPET_CHARS = 300
_TIME_RANGE_NAMES = {
    "day": "past day",
    "week": "past week",
    "month": "past month",
    "year": "past year",
}


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


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def format_results(
    query: str,
    results: list[SearchResult],
    *,
    kind: SearchKind,
    time_range: str,
    max_chars: int = 3000,
) -> str:
    """Render search results as a fenced, numbered list of about `max_chars` at most.

    Long titles and snippets are shortened; results that do not fit are left out, and the
    text says how many.
    """
    scope = "news" if kind == "news" else "web"
    if time_range != "any":
        scope += f", {_TIME_RANGE_NAMES.get(time_range, time_range)}"
    if not results:
        return f"No {scope} results for {query!r}. Try fewer or different words" + (
            " or a wider time range." if time_range != "any" else "."
        )
    entries = []
    for number, result in enumerate(results, start=1):
        lines = [f"{number}. {_shorten(result.title, 150)}", f"   {_shorten(result.url, 300)}"]
        details = " · ".join(part for part in (result.source, result.published) if part)
        if details:
            lines.append(f"   {_shorten(details, 100)}")
        if result.snippet:
            lines.append(f"   {_shorten(result.snippet, _SNIPPET_CHARS)}")
        entries.append("\n".join(lines))
    shown: list[str] = []
    for entry in entries:
        if shown and sum(len(item) + 1 for item in shown) + len(entry) > max_chars:
            break
        shown.append(entry)
    body = fence_untrusted("\n".join(shown), source=f"{scope} search results")
    left_out = len(entries) - len(shown)
    note = f" ({left_out} more left out for length)" if left_out else ""
    return (
        f"{len(shown)} {scope} results for {query!r}{note}:\n{body}\n"
        "Use fetch_page with a URL to read a page."
    )


def format_page(page: FetchedPage, *, offset: int, max_chars: int) -> str:
    """Render at most `max_chars` characters of a page from `offset`, fenced.

    A page that goes on ends with a marker giving the offset to continue from.
    """
    text = (
        f"# {page.title}\n\n{page.text}"
        if page.title and page.title not in page.text[:300]
        else page.text
    )
    total = len(text)
    if not text.strip():
        return f"{page.final_url} ({page.media_type}) has no readable text."
    if offset >= total:
        return f"{page.final_url} has {total} characters; offset {offset} is past the end."
    end = min(total, offset + max_chars)
    if end < total:
        # Cut at a line or word boundary in the last fifth of the window, when there is one.
        boundary = max(text.rfind("\n", offset, end), text.rfind(" ", offset, end))
        if boundary > offset + max_chars * 4 // 5:
            end = boundary
    notes = []
    if page.final_url != page.url:
        notes.append(f"redirected from {page.url}")
    if page.download_truncated:
        notes.append("the download stopped at the size limit")
    header = f"Page {page.final_url} ({page.media_type}" + "".join(f"; {n}" for n in notes) + ")"
    if offset or end < total:
        header += f", characters {offset}-{end} of {total}"
    parts = [header + ":", fence_untrusted(text[offset:end], source=page.final_url)]
    if end < total:
        parts.append(
            f"[… shortened: {total - end} more characters; "
            f"call fetch_page with offset={end} to read on]"
        )
    return "\n".join(parts)
