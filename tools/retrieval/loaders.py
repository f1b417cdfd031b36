"""Loaders: files to `Document`s. Text, Markdown, HTML, PDF, JSON/JSONL and whole directories.

Every loader raises `DocumentLoadError` naming the file when it cannot produce text: missing or
unreadable files, empty files, bytes that do not decode with the given encodings, unknown
encoding names, PDFs without a text layer (scanned images need OCR first), JSON without the
chosen field. Nothing is half-loaded: a loader returns every document of a file or raises.
"""

from __future__ import annotations

import codecs
import io
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from agentlib._optional import optional_imports
from agentlib.tools.retrieval.documents import Document
from agentlib.tools.retrieval.errors import DocumentLoadError

__all__ = [
    "DirectoryLoader",
    "HTMLLoader",
    "JSONLoader",
    "Loader",
    "MarkdownLoader",
    "PDFLoader",
    "TextLoader",
    "load_file",
]

logger = logging.getLogger(__name__)

_DEFAULT_ENCODINGS = ("utf-8",)
_MARKDOWN_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


@runtime_checkable
class Loader(Protocol):
    """Anything that turns one file into documents."""

    def load(self, path: str | os.PathLike[str]) -> list[Document]:
        """Read `path` and return its documents.

        Raises:
            DocumentLoadError: The file cannot be read as text; the message names it.
        """
        ...


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise DocumentLoadError(path, "the file does not exist")
    if path.is_dir():
        raise DocumentLoadError(path, "it is a directory; use DirectoryLoader for folders")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentLoadError(path, f"the file is unreadable ({exc.strerror or exc})") from exc
    if not data.strip():
        raise DocumentLoadError(path, "the file is empty")
    return data


def _check_encodings(encodings: Sequence[str]) -> tuple[str, ...]:
    for name in encodings:
        try:
            codecs.lookup(name)
        except LookupError as exc:
            raise DocumentLoadError(
                "<configuration>", f"unknown encoding {name!r}; use a Python codec name"
            ) from exc
    return tuple(encodings)


def _decode(path: Path, data: bytes, encodings: Sequence[str]) -> str:
    if data.startswith(codecs.BOM_UTF8):
        candidates: Sequence[str] = ("utf-8-sig",)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ("utf-16",)
    else:
        candidates = encodings
        if b"\x00" in data[:8192] or b"\x00" in data[-8192:]:
            # The heuristic git and grep use: text in an 8-bit or UTF-8 encoding has no NUL
            # bytes, so this is a binary file (UTF-16 text carries a BOM and is read above).
            raise DocumentLoadError(
                path,
                "it holds NUL bytes, so it is a binary file, not text; convert it to text "
                "(or, for UTF-16 text, save it with a byte-order mark)",
            )
    for encoding in candidates:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DocumentLoadError(
        path,
        f"the bytes are not valid {' or '.join(candidates)}; pass encodings=(...) with the "
        "file's encoding (for example 'latin-1' or 'cp1252')",
    )


def _read_text(path: Path, encodings: Sequence[str]) -> str:
    text = _decode(path, _read_bytes(path), encodings)
    if not text.strip():
        raise DocumentLoadError(path, "the file has no text")
    return text


@dataclass(frozen=True, slots=True, kw_only=True)
class TextLoader:
    """Plain text files; one document per file, titled by the file name."""

    encodings: Sequence[str] = _DEFAULT_ENCODINGS
    """Encodings tried in order (a UTF-8 or UTF-16 byte-order mark always wins)."""

    def __post_init__(self) -> None:
        _check_encodings(self.encodings)

    def load(self, path: str | os.PathLike[str]) -> list[Document]:
        """Read one text file."""
        file = Path(path)
        text = _read_text(file, self.encodings)
        return [Document(text=text, metadata={"source": str(file), "title": file.stem})]


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkdownLoader:
    """Markdown files; the title is the first `# ` heading, else the file name.

    The Markdown is kept as is, so `MarkdownHeaderSplitter` can split it by headings.
    """

    encodings: Sequence[str] = _DEFAULT_ENCODINGS
    """Encodings tried in order."""

    def __post_init__(self) -> None:
        _check_encodings(self.encodings)

    def load(self, path: str | os.PathLike[str]) -> list[Document]:
        """Read one Markdown file."""
        file = Path(path)
        text = _read_text(file, self.encodings)
        match = _MARKDOWN_TITLE.search(text)
        title = match.group(1) if match else file.stem
        return [Document(text=text, metadata={"source": str(file), "title": title})]


@dataclass(frozen=True, slots=True, kw_only=True)
class HTMLLoader:
    """HTML pages reduced to their main text (navigation and boilerplate removed) by trafilatura."""

    encodings: Sequence[str] = _DEFAULT_ENCODINGS
    """Encodings tried in order when the page has no byte-order mark."""

    def __post_init__(self) -> None:
        _check_encodings(self.encodings)

    def load(self, path: str | os.PathLike[str]) -> list[Document]:
        """Extract the main text of one HTML file."""
        with optional_imports("retrieval", feature="HTMLLoader"):
            import trafilatura
        file = Path(path)
        html = _read_text(file, self.encodings)
        text = trafilatura.extract(html, include_comments=False, include_tables=True)
        if not text or not text.strip():
            raise DocumentLoadError(file, "no main text was found in the HTML")
        metadata = trafilatura.extract_metadata(html)
        title = (metadata.title if metadata is not None else None) or file.stem
        return [Document(text=text, metadata={"source": str(file), "title": title})]


@dataclass(frozen=True, slots=True, kw_only=True)
class PDFLoader:
    """PDF files, one document per page with its text layer (pypdf); `page` is 1-based.

    Pages without text are skipped; a PDF with no text at all (a scan) is an error, since it
    needs OCR before it can be searched.
    """

    def load(self, path: str | os.PathLike[str]) -> list[Document]:
        """Extract the text of every page of one PDF."""
        with optional_imports("retrieval", feature="PDFLoader"):
            import pypdf
            from pypdf.errors import PdfReadError
        file = Path(path)
        data = _read_bytes(file)
        try:
            reader = pypdf.PdfReader(io.BytesIO(data))
            title = (reader.metadata.title if reader.metadata else None) or file.stem
            pages = [page.extract_text() or "" for page in reader.pages]
        except (PdfReadError, ValueError, KeyError, TypeError) as exc:
            raise DocumentLoadError(file, f"it is not a readable PDF ({exc})") from exc
        documents = [
            Document(text=text, metadata={"source": str(file), "title": title, "page": number})
            for number, text in enumerate(pages, start=1)
            if text.strip()
        ]
        if not documents:
            raise DocumentLoadError(
                file,
                f"none of its {len(pages)} page(s) has a text layer (a scanned PDF?); "
                "run OCR on it first",
            )
        return documents


@dataclass(frozen=True, slots=True, kw_only=True)
class JSONLoader:
    """JSON (a list of objects, or one object) or JSON Lines; one document per record.

    The text comes from `text_field`; `metadata_fields` are copied into the metadata, and
    `id_field`, when given, becomes `record_id`.
    """

    text_field: str = "text"
    """The record key holding the text (dots reach into nested objects: `body.text`)."""
    metadata_fields: Sequence[str] = ()
    """Record keys copied into each document's metadata."""
    title_field: str | None = "title"
    """The record key holding a title, when present."""
    id_field: str | None = None
    """The record key holding an id, stored as `record_id`."""
    encodings: Sequence[str] = _DEFAULT_ENCODINGS
    """Encodings tried in order."""

    def __post_init__(self) -> None:
        _check_encodings(self.encodings)

    def load(self, path: str | os.PathLike[str]) -> list[Document]:
        """Read one `.json` or `.jsonl` file."""
        file = Path(path)
        text = _read_text(file, self.encodings)
        records = self._records(file, text)
        documents = [self._document(file, number, record) for number, record in records]
        if not documents:
            raise DocumentLoadError(file, "it holds no records")
        return documents

    def _records(self, file: Path, text: str) -> list[tuple[int, Any]]:
        if file.suffix.lower() in (".jsonl", ".ndjson"):
            records = []
            for number, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    records.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise DocumentLoadError(file, f"line {number} is not JSON ({exc.msg})") from exc
            return records
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DocumentLoadError(
                file, f"it is not JSON ({exc.msg} at line {exc.lineno})"
            ) from exc
        items = value if isinstance(value, list) else [value]
        return list(enumerate(items, start=1))

    def _document(self, file: Path, number: int, record: Any) -> Document:
        value = _lookup(record, self.text_field)
        if not isinstance(value, str) or not value.strip():
            raise DocumentLoadError(
                file, f"record {number} has no text in field {self.text_field!r}"
            )
        metadata: dict[str, Any] = {"source": str(file), "record": number}
        title = _lookup(record, self.title_field) if self.title_field else None
        metadata["title"] = str(title) if title is not None else file.stem
        if self.id_field:
            metadata["record_id"] = _lookup(record, self.id_field)
        for key in self.metadata_fields:
            metadata[key] = _lookup(record, key)
        return Document(text=value, metadata=metadata)


def _lookup(record: Any, dotted: str) -> Any:
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


_BY_SUFFIX: dict[str, Loader] = {
    ".txt": TextLoader(),
    ".text": TextLoader(),
    ".rst": TextLoader(),
    ".md": MarkdownLoader(),
    ".markdown": MarkdownLoader(),
    ".html": HTMLLoader(),
    ".htm": HTMLLoader(),
    ".pdf": PDFLoader(),
    ".json": JSONLoader(),
    ".jsonl": JSONLoader(),
    ".ndjson": JSONLoader(),
}


def load_file(
    path: str | os.PathLike[str], *, loaders: dict[str, Loader] | None = None
) -> list[Document]:
    """Load one file with the loader its suffix calls for.

    Args:
        path: The file.
        loaders: Suffix (with the dot) to loader, overriding or adding to the defaults.

    Raises:
        DocumentLoadError: The suffix has no loader, or the loader failed.
    """
    file = Path(path)
    table = {**_BY_SUFFIX, **(loaders or {})}
    loader = table.get(file.suffix.lower())
    if loader is None:
        raise DocumentLoadError(
            file,
            f"no loader for {file.suffix or 'files without a suffix'!r}; known: "
            f"{', '.join(sorted(table))}; pass loaders={{suffix: loader}}",
        )
    return loader.load(file)


@dataclass(slots=True, kw_only=True)
class DirectoryLoader:
    """Every matching file under a folder, each with the loader its suffix calls for.

    Hidden files and folders are skipped. With `skip_errors=True`, files that fail are logged
    and listed in `skipped` instead of stopping the walk.
    """

    pattern: str = "**/*"
    """A glob relative to the folder."""
    suffixes: Sequence[str] | None = None
    """Only these suffixes (default: every suffix with a loader)."""
    loaders: dict[str, Loader] = field(default_factory=dict)
    """Suffix to loader, overriding or adding to the defaults."""
    skip_errors: bool = False
    """Log and skip files that fail instead of raising."""
    skipped: list[DocumentLoadError] = field(default_factory=list)
    """The errors of the files skipped by the last `load`."""

    def load(self, path: str | os.PathLike[str]) -> list[Document]:
        """Load every matching file under `path`, in sorted order."""
        root = Path(path)
        if not root.is_dir():
            raise DocumentLoadError(root, "it is not a directory")
        self.skipped = []
        documents: list[Document] = []
        for file in self._files(root):
            try:
                documents.extend(load_file(file, loaders=self.loaders))
            except DocumentLoadError as exc:
                if not self.skip_errors:
                    raise
                logger.warning("skipping %s", exc)
                self.skipped.append(exc)
        return documents

    def _files(self, root: Path) -> Iterable[Path]:
        known = set(self.suffixes or {**_BY_SUFFIX, **self.loaders})
        for file in sorted(root.glob(self.pattern)):
            relative = file.relative_to(root)
            if any(part.startswith(".") for part in relative.parts):
                continue
            if file.is_file() and file.suffix.lower() in known:
                yield file
