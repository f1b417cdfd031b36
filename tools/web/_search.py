"""Search backends for `web_search`: the `SearchBackend` protocol and its implementations.

`DDGSBackend` (the `ddgs` metasearch library, the default), `SearXNGBackend` (a self-hosted
SearXNG instance) and `InMemorySearchBackend` (fixed results, for tests and docs); any object
with the same `asearch` method plugs in. Failures are `SearchUnavailableError`s.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

from agentlib import ToolError
from agentlib._optional import optional_imports

with optional_imports("web", feature="agentlib.tools.web"):
    import httpx

__all__ = [
    "DDGSBackend",
    "InMemorySearchBackend",
    "SearXNGBackend",
    "SearchBackend",
    "SearchKind",
    "SearchResult",
    "SearchUnavailableError",
    "TimeRange",
    "ddgs_failure",
    "result_from_ddgs",
]

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


# Where each engine's result dict keeps a `SearchResult`'s fields (the first key present wins).
# ddgs returns text results as `{title, href, body}` and news results as
# `{date, title, body, url, image, source}`; SearXNG `{url, title, content, engine, ...}`,
# with `publishedDate` for news.
_DDGS_FIELDS = {
    "url": ("href", "url"),
    "snippet": ("body",),
    "source": ("source",),
    "published": ("date",),
}
_SEARXNG_FIELDS = {"url": ("url",), "snippet": ("content",), "published": ("publishedDate",)}
_SEARXNG_NEWS_FIELDS = {**_SEARXNG_FIELDS, "source": ("engine",)}


def _parse_result(item: Any, fields: Mapping[str, tuple[str, ...]]) -> SearchResult | None:
    """One engine's result dict as a `SearchResult`; `None` when it is no dict or has no URL."""
    if not isinstance(item, Mapping):
        return None
    values = {
        name: _clean(next((item[key] for key in keys if item.get(key)), ""))
        for name, keys in fields.items()
    }
    if not values["url"]:
        return None
    return SearchResult(title=_clean(item.get("title")) or values["url"], **values)


def result_from_ddgs(item: Mapping[str, Any]) -> SearchResult | None:
    """Map one ddgs result dict to a `SearchResult`; `None` when it has no URL.

    ddgs returns text results as `{title, href, body}` and news results as
    `{date, title, body, url, image, source}`.
    """
    return _parse_result(item, _DDGS_FIELDS)


def ddgs_failure(exc: Exception) -> SearchUnavailableError | None:
    """Translate a ddgs exception; `None` means the engines simply found nothing."""
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
        fields = _SEARXNG_NEWS_FIELDS if kind == "news" else _SEARXNG_FIELDS
        items = data.get("results", []) if isinstance(data, dict) else []
        results = (_parse_result(item, fields) for item in items)
        return [result for result in results if result is not None][:max_results]

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
