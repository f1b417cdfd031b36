"""How `web_search` and `fetch_page` show their results to a model: fenced, bounded text."""

from __future__ import annotations

from agentlib import fence_untrusted

from ._fetch import FetchedPage
from ._search import SearchKind, SearchResult

__all__ = ["format_page", "format_results"]

_SNIPPET_CHARS = 300
_TIME_RANGE_NAMES = {
    "day": "past day",
    "week": "past week",
    "month": "past month",
    "year": "past year",
}


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
