"""Splitters: documents to `Chunk`s, with exact character offsets into the document's text.

- `RecursiveSplitter` cuts at the coarsest separator that makes pieces fit (paragraphs, then
  lines, sentences, words, characters) and packs pieces into chunks with overlap.
- `TokenSplitter` is the same, measuring sizes in tokens of the embedder's tokenizer, so a
  chunk never exceeds what the embedding model reads (256 word pieces for all-MiniLM-L6-v2).
- `MarkdownHeaderSplitter` cuts at headings, records the heading path of each chunk in
  `headings`, and splits long sections further with an inner splitter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from agentlib import ConfigurationError
from agentlib.tools.retrieval.documents import Chunk, Document, chunk_id

__all__ = [
    "MarkdownHeaderSplitter",
    "RecursiveSplitter",
    "Splitter",
    "TokenCounter",
    "TokenSplitter",
]

DEFAULT_SEPARATORS: tuple[str, ...] = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", "")

Span = tuple[int, int]


@runtime_checkable
class Splitter(Protocol):
    """Anything that cuts documents into chunks."""

    def split(self, documents: Iterable[Document]) -> list[Chunk]:
        """Return the chunks of `documents`, in order, each with its document's metadata."""
        ...


@runtime_checkable
class TokenCounter(Protocol):
    """Counts tokens the way an embedding model does (embedders implement it)."""

    def count_tokens(self, text: str) -> int:
        """The number of tokens in `text`, without special tokens."""
        ...


def _make_chunk(document: Document, text: str, start: int, end: int, **extra: object) -> Chunk:
    metadata = {**document.metadata, **extra, "start": start, "end": end}
    return Chunk(id=chunk_id(metadata, text[start:end]), text=text[start:end], metadata=metadata)


def _strip(text: str, span: Span) -> Span:
    start, end = span
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


@dataclass(frozen=True, slots=True, kw_only=True)
class RecursiveSplitter:
    """Split by separators, coarsest first, and pack the pieces into overlapping chunks."""

    chunk_size: int = 1000
    """The largest chunk, in units of `length` (characters by default)."""
    chunk_overlap: int = 150
    """How much of the previous chunk's end the next chunk repeats, in the same units."""
    separators: Sequence[str] = DEFAULT_SEPARATORS
    """Tried in order; `""` cuts anywhere and should stay last."""
    length: Callable[[str], int] = len
    """Measures a piece of text (characters by default)."""

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ConfigurationError(f"chunk_size must be at least 1, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigurationError(
                f"chunk_overlap must be between 0 and chunk_size - 1 ({self.chunk_size - 1}), "
                f"got {self.chunk_overlap}"
            )

    def split(self, documents: Iterable[Document]) -> list[Chunk]:
        """Split each document; chunks carry `start`/`end` offsets into its text."""
        chunks: list[Chunk] = []
        for document in documents:
            for start, end in self.spans(document.text):
                chunks.append(_make_chunk(document, document.text, start, end))
        return chunks

    def spans(self, text: str, start: int = 0, end: int | None = None) -> list[Span]:
        """The `(start, end)` offsets of the chunks of `text[start:end]`, whitespace trimmed."""
        stop = len(text) if end is None else end
        pieces = self._pieces(text, start, stop, tuple(self.separators))
        spans = [_strip(text, span) for span in self._pack(text, pieces)]
        return [span for span in spans if span[1] > span[0]]

    def _pieces(self, text: str, start: int, end: int, separators: tuple[str, ...]) -> list[Span]:
        if self.length(text[start:end]) <= self.chunk_size:
            return [(start, end)]
        for position, separator in enumerate(separators):
            if separator == "":
                return self._windows(text, start, end)
            if text.find(separator, start, end) == -1:
                continue
            pieces: list[Span] = []
            cursor = start
            while cursor < end:
                found = text.find(separator, cursor, end)
                stop = end if found == -1 else found + len(separator)
                if self.length(text[cursor:stop]) <= self.chunk_size:
                    pieces.append((cursor, stop))
                else:
                    pieces.extend(self._pieces(text, cursor, stop, separators[position + 1 :]))
                cursor = stop
            return pieces
        return self._windows(text, start, end)

    def _windows(self, text: str, start: int, end: int) -> list[Span]:
        """Cut anywhere: windows whose measured length fits, found by shrinking."""
        windows: list[Span] = []
        cursor = start
        while cursor < end:
            stop = min(end, cursor + self.chunk_size)
            while stop > cursor + 1 and self.length(text[cursor:stop]) > self.chunk_size:
                stop = cursor + max(1, (stop - cursor) * 3 // 4)
            windows.append((cursor, stop))
            cursor = stop
        return windows

    def _pack(self, text: str, pieces: list[Span]) -> list[Span]:
        sizes = [self.length(text[a:b]) for a, b in pieces]
        chunks: list[Span] = []
        current: list[int] = []
        total = 0
        for index, size in enumerate(sizes):
            if current and total + size > self.chunk_size:
                chunks.append((pieces[current[0]][0], pieces[current[-1]][1]))
                kept: list[int] = []
                kept_total = 0
                for previous in reversed(current):
                    if kept_total + sizes[previous] > self.chunk_overlap:
                        break
                    kept.insert(0, previous)
                    kept_total += sizes[previous]
                while kept and kept_total + size > self.chunk_size:
                    kept_total -= sizes[kept.pop(0)]
                current, total = kept, kept_total
            current.append(index)
            total += size
        if current:
            chunks.append((pieces[current[0]][0], pieces[current[-1]][1]))
        return chunks


class TokenSplitter:
    """A `RecursiveSplitter` whose sizes are tokens of the embedder's tokenizer, not characters.

    Args:
        tokenizer: Anything with `count_tokens(text)`, such as `SentenceTransformerEmbedder`.
        chunk_size: The largest chunk in tokens; keep it within the model's input limit.
        chunk_overlap: Tokens repeated between consecutive chunks.
        separators: Tried in order, coarsest first.
    """

    def __init__(
        self,
        tokenizer: TokenCounter,
        *,
        chunk_size: int = 256,
        chunk_overlap: int = 32,
        separators: Sequence[str] = DEFAULT_SEPARATORS,
    ) -> None:
        self.tokenizer = tokenizer
        self._splitter = RecursiveSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            separators=separators,
            length=tokenizer.count_tokens,
        )

    def split(self, documents: Iterable[Document]) -> list[Chunk]:
        """Split each document; chunks carry `start`/`end` offsets into its text."""
        return self._splitter.split(documents)

    def spans(self, text: str, start: int = 0, end: int | None = None) -> list[Span]:
        """The `(start, end)` offsets of the chunks of `text[start:end]`, whitespace trimmed."""
        return self._splitter.spans(text, start, end)


_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkdownHeaderSplitter:
    """Split Markdown at headings; each chunk records its heading path in `headings`.

    Headings inside fenced code blocks are ignored. A section longer than the inner splitter's
    size is split further by it, keeping the heading path.
    """

    max_level: int = 3
    """Headings up to this level (`###`) start a new section; deeper ones stay inside."""
    splitter: RecursiveSplitter | TokenSplitter = field(default_factory=RecursiveSplitter)
    """Splits sections that are too long."""

    def split(self, documents: Iterable[Document]) -> list[Chunk]:
        """Split each document by headings, then by size."""
        chunks: list[Chunk] = []
        for document in documents:
            for headings, start, end in self.sections(document.text):
                for span_start, span_end in self.splitter.spans(document.text, start, end):
                    chunks.append(
                        _make_chunk(
                            document, document.text, span_start, span_end, headings=headings
                        )
                    )
        return chunks

    def sections(self, text: str) -> list[tuple[list[str], int, int]]:
        """`(heading path, start, end)` for each section of `text`, in order."""
        sections: list[tuple[list[str], int, int]] = []
        path: list[tuple[int, str]] = []
        section_start = 0
        section_path: list[str] = []
        in_fence = False
        offset = 0
        for line in text.splitlines(keepends=True):
            if _FENCE.match(line):
                in_fence = not in_fence
            match = None if in_fence else _HEADING.match(line.rstrip("\r\n"))
            if match and len(match.group(1)) <= self.max_level:
                if offset > section_start:
                    sections.append((section_path, section_start, offset))
                level = len(match.group(1))
                path = [(depth, title) for depth, title in path if depth < level]
                path.append((level, match.group(2)))
                section_path = [title for _, title in path]
                section_start = offset
            offset += len(line)
        if offset > section_start:
            sections.append((section_path, section_start, offset))
        return sections
