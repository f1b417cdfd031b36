"""Downloading one page safely and having it turned into Markdown: the engine behind `fetch_page`.

Every hop (the first request and each redirect, followed by hand) is checked by the
`AddressPolicy` and then sent to the checked IP address with the original `Host` header and
TLS server name, so the address that was judged is the address that is contacted. Proxies from
the environment are ignored for the same reason. The body is streamed and reading stops at the
size cap; content types other than HTML, text and PDF are refused before the body is read.
Extraction runs in a worker process (`_extractor.py`) within what is left of `total_timeout`
and under a memory limit. Every failure, whatever raised it (httpx, IDNA, the resolver, a
charset), leaves as a `ToolError` that says what was wrong.
"""

from __future__ import annotations

import asyncio
import codecs
import ssl
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

from agentlib import ConfigurationError, ToolError
from agentlib._optional import optional_imports

with optional_imports("web", feature="agentlib.tools.web"):
    import httpx

from ._extractor import extractor_for
from ._guard import AddressPolicy, IPAddress, Resolver, system_resolver

__all__ = ["FetchConfig", "FetchedPage", "PageFetcher", "parse_url"]

PageKind = Literal["html", "text", "pdf"]

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})
_UNLABELLED_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_SNIFFED_TYPES: dict[PageKind, str] = {
    "pdf": "application/pdf",
    "html": "text/html",
    "text": "text/plain",
}
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchConfig:
    """How `fetch_page` downloads: what it may reach, how much, and for how long."""

    allowed_hosts: tuple[str, ...] = ()
    """IP addresses, networks (`10.0.0.0/8`) or host names that may be fetched although they
    are private, loopback or link-local. Empty by default: only public addresses."""
    max_bytes: int = 5_000_000
    """The most bytes read from one response; HTML and text past it are cut, PDFs refused."""
    connect_timeout: float = 5.0
    """Seconds to wait for a connection."""
    read_timeout: float = 10.0
    """Seconds to wait for the next piece of the response."""
    total_timeout: float = 30.0
    """Seconds for the whole call: the download, redirects included, and the extraction."""
    max_redirects: int = 5
    """How many redirects to follow; each one is checked like the first URL."""
    max_pdf_pages: int = 50
    """The most PDF pages whose text is extracted."""
    extraction_memory_mb: int = 1024
    """Memory the extraction worker may add on top of its loaded parsers (`RLIMIT_AS`); a page
    that needs more is refused with a `ToolError`. The host process itself holds only the
    download (at most `max_bytes`) and the text."""
    include_links: bool = False
    """Keep links in the Markdown (longer text, but the model can follow them)."""
    verify: bool | ssl.SSLContext = field(default=True, compare=False)
    """TLS certificate checks: `True` uses the certifi CA bundle; pass an `ssl.SSLContext` to
    trust a private CA. Certificates are checked against the URL's host name, not the
    address connected to."""
    user_agent: str = "Mozilla/5.0 (compatible; agentlib/0.1; +https://pypi.org/project/agentlib/)"
    """The `User-Agent` header sent."""
    resolver: Resolver | None = field(default=None, compare=False)
    """How host names become addresses; `None` asks the system. Inject one for split-horizon
    DNS or tests."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_hosts", tuple(self.allowed_hosts))
        for name in (
            "max_bytes",
            "connect_timeout",
            "read_timeout",
            "total_timeout",
            "extraction_memory_mb",
        ):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"FetchConfig.{name} must be positive")
        if self.max_redirects < 0 or self.max_pdf_pages < 1:
            raise ConfigurationError(
                "FetchConfig.max_redirects must be 0 or more and max_pdf_pages 1 or more"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchedPage:
    """A downloaded page as text."""

    url: str
    """The URL that was asked for."""
    final_url: str
    """The URL the text came from, after redirects."""
    media_type: str
    """The content type served (or sniffed), such as `text/html` or `application/pdf`."""
    title: str
    """The page's title, or an empty string."""
    text: str
    """The main text, as Markdown for HTML pages."""
    download_truncated: bool = False
    """Whether the download stopped at `FetchConfig.max_bytes`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Download:
    url: str
    media_type: str
    charset: str | None
    kind: PageKind | None
    body: bytes
    truncated: bool


def parse_url(url: str) -> httpx.URL:
    """Parse `url`, accepting only http and https addresses with a host."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ToolError(f"{url!r} is not a valid URL ({exc}); give a full http(s) address") from exc
    if parsed.scheme not in ("http", "https"):
        scheme = parsed.scheme or "no scheme"
        raise ToolError(f"cannot fetch {url!r}: only http and https URLs are allowed, not {scheme}")
    if not parsed.host:
        raise ToolError(f"{url!r} has no host; give a full address like https://example.com/")
    if parsed.port is not None and not 0 < parsed.port <= 65535:
        raise ToolError(f"{url!r} has the port {parsed.port}, which is not between 1 and 65535")
    _check_host_name(url, parsed)
    try:
        return parsed.copy_with(username=None, password=None, fragment=None)
    except (httpx.InvalidURL, ValueError) as exc:  # `data:,hi` parses, but not rebuilt
        raise ToolError(f"{url!r} is not a valid URL ({exc}); give a full http(s) address") from exc


def _check_host_name(url: str, parsed: httpx.URL) -> None:
    """Refuse host names DNS cannot carry (RFC 1035), which IDNA would fail on later."""
    host = parsed.raw_host.decode("ascii", errors="replace").rstrip(".")
    if ":" in host or host.startswith("["):
        return  # an IPv6 literal
    if len(host) > 253:
        raise ToolError(f"{url!r} has a host name of {len(host)} characters; the most is 253")
    for label in host.split("."):
        if not label:
            raise ToolError(f"{url!r} has an empty part in its host name")
        if len(label) > 63:
            raise ToolError(
                f"{url!r} has a host name part of {len(label)} characters; the most is 63"
            )


def _classify(media_type: str, url: httpx.URL) -> PageKind | None:
    """The page kind for a content type; `None` means sniff the body."""
    if media_type in _HTML_TYPES:
        return "html"
    if media_type in _PDF_TYPES:
        return "pdf"
    if (
        media_type.startswith("text/")
        or media_type in _TEXT_TYPES
        or media_type.endswith(("+json", "+xml"))
    ):
        return "text"
    if media_type in _UNLABELLED_TYPES:
        return None
    raise ToolError(
        f"{url} is {media_type}, which fetch_page cannot read; it reads HTML pages, "
        "plain text and PDF documents"
    )


def _sniff(body: bytes, url: str) -> PageKind:
    if body.startswith(b"%PDF-"):
        return "pdf"
    head = body[:2048].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
        return "html"
    if any(body.startswith(mark) for mark, _ in _BYTE_ORDER_MARKS) or b"\x00" not in body[:4096]:
        return "text"
    raise ToolError(f"{url} is binary data, which fetch_page cannot read")


def _request_for(download: _Download, config: FetchConfig) -> tuple[str, dict[str, Any]]:
    """The media type shown, and what the extraction worker needs."""
    kind = download.kind
    media_type = download.media_type
    if kind is None:
        kind = _sniff(download.body, download.url)
        media_type = _SNIFFED_TYPES[kind]
    if kind == "pdf" and download.truncated:
        raise ToolError(
            f"{download.url} is a PDF larger than the {config.max_bytes}-byte download "
            "limit, so it cannot be read"
        )
    request = {
        "kind": kind,
        "charset": download.charset,
        "url": download.url,
        "include_links": config.include_links,
        "max_pdf_pages": config.max_pdf_pages,
    }
    return media_type, request


class PageFetcher:
    """Downloads pages under a `FetchConfig`: checked addresses, bounded size and time."""

    def __init__(self, config: FetchConfig) -> None:
        self.config = config
        self.policy = AddressPolicy(config.allowed_hosts)
        self._resolver: Resolver = config.resolver or system_resolver

    async def check(self, url: str) -> httpx.URL:
        """Parse `url` and check that its host may be fetched, without connecting."""
        parsed = parse_url(url)
        await self.policy.resolve(parsed.host, _port(parsed), self._resolver)
        return parsed

    async def fetch(self, url: str) -> FetchedPage:
        """Download `url` and extract its text, all within `total_timeout`.

        Raises:
            ToolError: The URL is refused, the server fails or is too slow, or the content
                cannot be read in time and memory; the message says which.
        """
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.config.total_timeout):
                download = await self._download(url)
        except TimeoutError:
            raise ToolError(
                f"fetching {url} took longer than {self.config.total_timeout:g} seconds; "
                "the server is too slow, try another source"
            ) from None
        except ToolError:
            raise
        except (
            httpx.HTTPError,
            httpx.InvalidURL,
            OSError,
            ValueError,
            LookupError,
            ExceptionGroup,
        ) as exc:
            # What the checks above do not foresee still leaves as a ToolError, not as an
            # exception of httpx, the resolver or a codec.
            raise ToolError(f"fetching {url} failed: {type(exc).__name__}: {exc}") from exc
        media_type, request = _request_for(download, self.config)
        extractor = extractor_for(self.config.extraction_memory_mb, self.config.max_bytes)
        remaining = self.config.total_timeout - (time.monotonic() - started)
        title, text = await extractor.extract(
            request, download.body, timeout=remaining, url=download.url
        )
        return FetchedPage(
            url=url,
            final_url=download.url,
            media_type=media_type,
            title=title,
            text=text,
            download_truncated=download.truncated,
        )

    def _client(self) -> httpx.AsyncClient:
        config = self.config
        return httpx.AsyncClient(
            verify=config.verify,
            trust_env=False,  # an environment proxy would connect somewhere we did not check
            follow_redirects=False,
            timeout=httpx.Timeout(
                connect=config.connect_timeout,
                read=config.read_timeout,
                write=config.read_timeout,
                pool=config.connect_timeout,
            ),
            # No connection reuse: a pooled TLS connection to the same IP could carry a
            # request for another host name than the one its certificate was checked for.
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={
                "User-Agent": config.user_agent,
                "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,"
                "application/pdf;q=0.8,*/*;q=0.1",
                "Accept-Encoding": "gzip, deflate",
            },
        )

    async def _download(self, url: str) -> _Download:
        current = parse_url(url)
        async with self._client() as client:
            for _ in range(self.config.max_redirects + 1):
                addresses = await self.policy.resolve(current.host, _port(current), self._resolver)
                result = await self._request(client, current, addresses)
                if isinstance(result, _Download):
                    return result
                current = result
        raise ToolError(f"{url} redirected more than {self.config.max_redirects} times; giving up")

    async def _request(
        self, client: httpx.AsyncClient, url: httpx.URL, addresses: list[IPAddress]
    ) -> _Download | httpx.URL:
        """One GET to the first reachable checked address; a redirect returns its target."""
        for position, address in enumerate(addresses):
            try:
                return await self._request_address(client, url, address)
            except httpx.ConnectError as exc:
                if position == len(addresses) - 1:
                    raise ToolError(f"cannot connect to {url.host}: {exc}") from exc
            except httpx.ConnectTimeout as exc:
                raise ToolError(
                    f"connecting to {url.host} timed out after "
                    f"{self.config.connect_timeout:g} seconds"
                ) from exc
            except httpx.TimeoutException as exc:
                raise ToolError(
                    f"{url.host} stopped sending data for {self.config.read_timeout:g} seconds"
                ) from exc
            except httpx.HTTPError as exc:
                raise ToolError(f"fetching {url} failed: {type(exc).__name__}: {exc}") from exc
            except httpx.InvalidURL as exc:  # httpx joins a redirect's Location itself
                raise ToolError(
                    f"{url} redirected to a Location that is not a valid URL ({exc}); "
                    "fetch_page cannot follow it"
                ) from exc
        raise ToolError(f"the host {url.host!r} has no address to connect to")

    async def _request_address(
        self, client: httpx.AsyncClient, url: httpx.URL, address: IPAddress
    ) -> _Download | httpx.URL:
        target = url.copy_with(host=str(address))
        headers = {"Host": url.netloc.decode("ascii")}
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        async with client.stream("GET", target, headers=headers, extensions=extensions) as response:
            if response.status_code in _REDIRECT_CODES:
                location = response.headers.get("location")
                if not location:
                    raise ToolError(f"{url} redirected without saying where to")
                try:
                    target = url.join(location)
                except (httpx.InvalidURL, ValueError, TypeError) as exc:
                    raise ToolError(
                        f"{url} redirected to {location!r}, which is not a URL fetch_page can "
                        f"follow ({exc})"
                    ) from None
                return parse_url(str(target))
            if response.status_code >= 400:
                raise ToolError(
                    f"{url} answered HTTP {response.status_code} {response.reason_phrase}"
                )
            media_type, charset = _content_type(response.headers.get("content-type", ""))
            kind = _classify(media_type, url)
            declared = response.headers.get("content-length", "")
            if kind == "pdf" and declared.isdigit() and int(declared) > self.config.max_bytes:
                raise ToolError(
                    f"{url} is a PDF of {int(declared)} bytes, over the "
                    f"{self.config.max_bytes}-byte download limit"
                )
            body, truncated = await _read_capped(response, self.config.max_bytes)
        return _Download(
            url=str(url),
            media_type=media_type,
            charset=charset,
            kind=kind,
            body=body,
            truncated=truncated,
        )


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _content_type(header: str) -> tuple[str, str | None]:
    media_type, _, parameters = header.partition(";")
    charset = None
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("'\"")
    return media_type.strip().lower(), charset


async def _read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """Read and decompress the body, stopping once it passes `max_bytes` decompressed bytes.

    Decompression is done here rather than by httpx so that it is bounded too: a small gzip
    body can expand a thousandfold, and httpx inflates each network chunk whole.
    """
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
        raise ToolError(f"{response.url} uses the unsupported content encoding {encoding!r}")
    decompressor = None if encoding in ("identity", "") else _Inflater()
    body = bytearray()
    async for chunk in response.aiter_raw():
        room = max_bytes - len(body)
        data = chunk if decompressor is None else decompressor.inflate(chunk, room + 1)
        if len(data) > room:
            body += data[:room]
            return bytes(body), True
        body += data
    return bytes(body), False


class _Inflater:
    """Inflates gzip or zlib data (and raw deflate, which some servers send), bounded."""

    def __init__(self) -> None:
        self._decompressor = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header
        self._started = False

    def inflate(self, chunk: bytes, limit: int) -> bytes:
        try:
            data = self._decompressor.decompress(chunk, limit)
        except zlib.error as exc:
            if self._started:
                raise ToolError(f"the compressed response is corrupt ({exc})") from exc
            self._decompressor = zlib.decompressobj(wbits=-15)
            data = self._decompressor.decompress(chunk, limit)
        self._started = True
        return data
