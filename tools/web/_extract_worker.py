"""The program that turns downloaded pages into text for `fetch_page`, in a process of its own.

The host (`_extractor.py`) starts it as `python -I _extract_worker.py <memory_mb>`. It imports
the parsers (trafilatura, pypdf, charset_normalizer) once, caps its address space at what they
take plus `memory_mb` (`RLIMIT_AS`), then answers requests on stdin/stdout until stdin closes.
Each request and reply is a 4-byte big-endian length and that many bytes: a JSON header, then
for a request the body. Parsing a hostile page can take minutes (a PDF of nested forms, a
quadratic corner of a parser) or gigabytes (a 5 MB table); here the host can kill it at its
deadline and the memory limit stops it, without touching the host process.

It never imports agentlib: errors travel back as `{"error": message}` (or `{"missing":
package}` for an absent optional dependency) and the host raises them.
"""

from __future__ import annotations

import codecs
import io
import json
import os
import re
import resource
import struct
import sys
from html import unescape
from typing import Any, BinaryIO

_SINGLE_BYTE_CODECS = frozenset({"ascii", "latin-1", "iso8859-1", "cp1252"})
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_META_SCAN_BYTES = 8192
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_TITLE_SCAN_CHARS = 200_000
_MAX_HEADER_BYTES = 1 << 16


class PageError(Exception):
    """The page cannot be read; the message says why, for the model."""


class MissingPackageError(Exception):
    """An optional parser is not installed; the argument names the package."""


# --- decoding ---------------------------------------------------------------------------------


def _codec(label: str | None) -> str | None:
    """The codec a charset label names; `None` for no label or one Python does not know.

    Raises:
        PageError: The label names a codec that is not a text encoding (`rot13`, `base64`,
            `zlib`, `hex`, `undefined`): no page is written in those.
    """
    if not label:
        return None
    cleaned = label.strip().strip("'\"")
    try:
        info = codecs.lookup(cleaned)
    except LookupError:
        return None  # unknown labels are common on the web; the body is decoded without one
    # `_is_text_encoding` is how `str.encode`/`bytes.decode` themselves refuse these codecs.
    if not getattr(info, "_is_text_encoding", True) or info.name == "undefined":
        raise PageError(
            f"the page declares the charset {cleaned!r}, which is not a text encoding, so "
            "its text cannot be decoded"
        )
    return info.name


def _decode_strict(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except UnicodeDecodeError as exc:
        # A download cut at the size cap can end inside a multi-byte character.
        if exc.start >= len(body) - 4:
            return body.decode(codec, errors="replace")
        return None
    except (UnicodeError, LookupError, ValueError):
        return None  # a codec that cannot decode arbitrary bytes (idna, punycode, ...)


def _meta_charset(body: bytes) -> str | None:
    """The `<meta charset>` (or `content="...; charset=..."`) label in the first 8 KB."""
    match = _META_CHARSET.search(body[:_META_SCAN_BYTES])
    return match.group(1).decode("ascii", errors="ignore") if match else None


def decode_body(body: bytes, declared: str | None, *, html: bool) -> str:
    """Decode a response body into text.

    The order: a byte-order mark, the declared charset, the HTML `<meta>` charset, UTF-8,
    then detection. A single-byte charset (latin-1, windows-1252, ASCII) declared for a body
    that is valid UTF-8 with non-ASCII characters is taken as a wrong label, and the body read
    as UTF-8.

    Raises:
        PageError: A label names a codec that is not a text encoding.
    """
    for mark, mark_codec in _BYTE_ORDER_MARKS:
        if body.startswith(mark):
            return body.decode(mark_codec, errors="replace")
    labels: list[str | None] = [declared]
    if html:
        labels.append(_meta_charset(body))
    for label in labels:
        codec = _codec(label)
        if codec is None:
            continue
        if codec in _SINGLE_BYTE_CODECS and not body.isascii():
            as_utf8 = _decode_strict(body, "utf-8")
            if as_utf8 is not None:
                return as_utf8
        text = _decode_strict(body, codec)
        if text is not None:
            return text
    as_utf8 = _decode_strict(body, "utf-8")
    if as_utf8 is not None:
        return as_utf8
    return _detect_and_decode(body)


def _detect_and_decode(body: bytes) -> str:
    try:
        import charset_normalizer
    except ImportError:  # a trafilatura dependency; without it, replace what does not decode
        return body.decode("utf-8", errors="replace")
    best = charset_normalizer.from_bytes(body[:100_000]).best()
    if best is None:
        return body.decode("utf-8", errors="replace")
    # Short Western texts fit many Latin code pages about equally well, and the detector's
    # pick among them (cp775, cp1257, ...) is close to random. windows-1252 is what the web
    # means in that case (it is the WHATWG default for unlabelled Western pages).
    if all("Latin" in alphabet or "Punctuation" in alphabet for alphabet in best.alphabets):
        try:
            return body.decode("cp1252")
        except UnicodeDecodeError:
            pass
    return body.decode(best.encoding, errors="replace")


# --- HTML and PDF -----------------------------------------------------------------------------


def page_title(html: str) -> str:
    """The first `<title>` element's text, found with plain searches (linear in the page).

    A regex `<title[^>]*>(.*?)</title>` is quadratic on a page of unclosed `<title>` tags
    (measured at 34-68 s on 200 KB); trafilatura's metadata extraction also hunts for dates and
    authors (155 ms of the 210 ms spent on a 53 KB article).
    """
    head = html[:_TITLE_SCAN_CHARS]
    lowered = head.lower()
    start = lowered.find("<title")
    if start == -1:
        return ""
    opened = lowered.find(">", start)
    end = lowered.find("</title", opened) if opened != -1 else -1
    if end == -1:
        return ""
    return " ".join(unescape(head[opened + 1 : end]).split())


def html_to_markdown(html: str, url: str, include_links: bool) -> tuple[str, str]:
    try:
        import trafilatura
    except ModuleNotFoundError as exc:
        if exc.name != "trafilatura":  # installed but broken: keep the real error (issue 14)
            raise
        raise MissingPackageError("trafilatura") from exc
    text = trafilatura.extract(
        html,
        url=url,
        output_format="markdown",
        include_links=include_links,
        include_tables=True,
        include_comments=False,
        favor_recall=True,
    )
    if not text:
        # Short or unusual pages defeat main-text extraction; keep all their visible text.
        text = trafilatura.html2txt(html) or ""
    return page_title(html), text.strip()


def pdf_to_text(body: bytes, max_pages: int) -> tuple[str, str]:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ModuleNotFoundError as exc:
        if exc.name != "pypdf":  # installed but broken: keep the real error (issue 14)
            raise
        raise MissingPackageError("pypdf") from exc
    try:
        reader = PdfReader(io.BytesIO(body))
        if reader.is_encrypted and not reader.decrypt(""):
            raise PageError("the PDF is encrypted with a password, so its text cannot be read")
        pages = reader.pages
        texts = [page.extract_text().strip() for page in list(pages)[:max_pages]]
        title = str(reader.metadata.title or "") if reader.metadata else ""
    except (PyPdfError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise PageError(f"cannot read the PDF ({type(exc).__name__}: {exc})") from exc
    text = "\n\n".join(part for part in texts if part)
    if len(pages) > max_pages:
        text += f"\n\n[only the first {max_pages} of {len(pages)} pages were read]"
    return title.strip(), text


def extract(header: dict[str, Any], body: bytes) -> dict[str, str]:
    """Turn one request into `{"title", "text"}`."""
    kind = header["kind"]
    if kind == "pdf":
        title, text = pdf_to_text(body, int(header["max_pdf_pages"]))
    else:
        decoded = decode_body(body, header.get("charset"), html=kind == "html")
        if kind == "html":
            title, text = html_to_markdown(decoded, header["url"], bool(header["include_links"]))
        else:
            title, text = "", decoded.strip()
    return {"title": title, "text": text}


# --- the loop ---------------------------------------------------------------------------------


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _read_frame(stream: BinaryIO, limit: int) -> bytes | None:
    prefix = _read_exactly(stream, 4)
    if prefix is None:
        return None
    (size,) = struct.unpack(">I", prefix)
    if size > limit:
        raise ValueError(f"a frame of {size} bytes is over the {limit}-byte limit")
    return _read_exactly(stream, size)


def _write_frame(stream: BinaryIO, data: bytes) -> None:
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def _answer(header: dict[str, Any], body: bytes, limit: int) -> dict[str, Any]:
    try:
        reply = extract(header, body)
        # libxml2 does not always raise when an allocation fails: it stops parsing and lxml
        # returns what it has, so a parse that came near the limit may be cut short.
        if _peak_address_space() > limit - max(32 << 20, limit // 10):
            return {"memory": True}
        return reply
    except PageError as exc:
        return {"error": str(exc)}
    except MissingPackageError as exc:
        return {"missing": str(exc)}
    except MemoryError:
        return {"memory": True}
    except RecursionError:
        return {"error": "the page is nested too deeply to be read"}
    except Exception as exc:  # a parser's own failure on hostile input
        return {"error": f"cannot read the page ({type(exc).__name__}: {str(exc)[:200]})"}


def _limit_memory(memory_mb: int) -> int:
    with open("/proc/self/statm") as handle:
        in_use = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = in_use + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return limit


def _peak_address_space() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    """Entry point: `python -I _extract_worker.py <memory_mb> <max_body_bytes>`."""
    memory_mb, max_body = int(sys.argv[1]), int(sys.argv[2])
    for name in ("trafilatura", "pypdf", "charset_normalizer"):
        try:
            __import__(name)
        except ImportError:
            continue
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a parser's print must not corrupt the replies
    limit = _limit_memory(memory_mb)
    while True:
        header_data = _read_frame(requests, _MAX_HEADER_BYTES)
        body = _read_frame(requests, max_body) if header_data is not None else None
        if header_data is None or body is None:
            return
        reply = _answer(json.loads(header_data), body, limit)
        _write_frame(replies, json.dumps(reply).encode())
        if "memory" in reply:
            return  # after running out of memory the parsers' state is not to be trusted;
            # VmPeak never comes down either


if __name__ == "__main__":
    main()
