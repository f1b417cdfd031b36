from __future__ import annotations

import itertools

import pytest

from agentlib import ConfigurationError
from agentlib.tools.retrieval import (
    Document,
    HashingEmbedder,
    MarkdownHeaderSplitter,
    RecursiveSplitter,
    TokenSplitter,
)

PROSE = " ".join(
    f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(60)
)


def test_chunks_respect_the_size_and_their_offsets_point_into_the_document() -> None:
    document = Document(text=PROSE, metadata={"source": "prose.txt", "title": "Prose"})
    chunks = RecursiveSplitter(chunk_size=200, chunk_overlap=50).split([document])
    assert len(chunks) > 5
    for chunk in chunks:
        assert len(chunk.text) <= 200
        assert PROSE[chunk.metadata["start"] : chunk.metadata["end"]] == chunk.text
        assert chunk.metadata["source"] == "prose.txt" and chunk.metadata["title"] == "Prose"
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.metadata["start"], chunk.metadata["end"]))
    assert all(i in covered for i, char in enumerate(PROSE) if not char.isspace())


def test_consecutive_chunks_overlap() -> None:
    chunks = RecursiveSplitter(chunk_size=200, chunk_overlap=60).split(
        [Document(text=PROSE, metadata={"source": "p"})]
    )
    overlaps = [
        previous.metadata["end"] - current.metadata["start"]
        for previous, current in itertools.pairwise(chunks)
    ]
    assert all(0 < overlap <= 60 for overlap in overlaps)


def test_paragraphs_are_kept_whole_when_they_fit() -> None:
    text = "First paragraph is short.\n\nSecond paragraph is short too.\n\nThird."
    chunks = RecursiveSplitter(chunk_size=35, chunk_overlap=0).split(
        [Document(text=text, metadata={"source": "p"})]
    )
    assert [c.text for c in chunks] == [
        "First paragraph is short.",
        "Second paragraph is short too.",
        "Third.",
    ]


def test_a_word_longer_than_the_chunk_is_cut_by_characters() -> None:
    text = "x" * 95
    chunks = RecursiveSplitter(chunk_size=30, chunk_overlap=0).split(
        [Document(text=text, metadata={"source": "p"})]
    )
    assert [len(c.text) for c in chunks] == [30, 30, 30, 5]


def test_chunk_ids_are_stable_and_distinct() -> None:
    document = Document(text=PROSE, metadata={"source": "p"})
    first = RecursiveSplitter(chunk_size=200, chunk_overlap=0).split([document])
    second = RecursiveSplitter(chunk_size=200, chunk_overlap=0).split([document])
    assert [c.id for c in first] == [c.id for c in second]
    assert len({c.id for c in first}) == len(first)


def test_bad_sizes_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="chunk_overlap"):
        RecursiveSplitter(chunk_size=100, chunk_overlap=100)
    with pytest.raises(ConfigurationError, match="chunk_size"):
        RecursiveSplitter(chunk_size=0, chunk_overlap=0)


MARKDOWN = """# Guide

Welcome text.

## Install

Run pip.

```python
# not a heading
print("hi")
```

### From source

Clone it.

## Use

Call it.
"""


def test_markdown_chunks_record_their_heading_path() -> None:
    chunks = MarkdownHeaderSplitter().split([Document(text=MARKDOWN, metadata={"source": "g.md"})])
    paths = [(c.metadata["headings"], c.text.splitlines()[0]) for c in chunks]
    assert paths == [
        (["Guide"], "# Guide"),
        (["Guide", "Install"], "## Install"),
        (["Guide", "Install", "From source"], "### From source"),
        (["Guide", "Use"], "## Use"),
    ]
    install = chunks[1]
    assert "# not a heading" in install.text
    assert MARKDOWN[install.metadata["start"] : install.metadata["end"]] == install.text
    assert install.citation() == "g.md, Guide > Install"


def test_long_markdown_sections_are_split_further_keeping_headings() -> None:
    text = "# Title\n\n" + PROSE
    chunks = MarkdownHeaderSplitter(
        splitter=RecursiveSplitter(chunk_size=150, chunk_overlap=0)
    ).split([Document(text=text, metadata={"source": "t.md"})])
    assert len(chunks) > 3
    assert all(c.metadata["headings"] == ["Title"] for c in chunks)
    assert all(len(c.text) <= 150 for c in chunks)


def test_token_splitter_measures_in_the_embedders_tokens() -> None:
    embedder = HashingEmbedder(64)
    chunks = TokenSplitter(embedder, chunk_size=40, chunk_overlap=8).split(
        [Document(text=PROSE, metadata={"source": "p"})]
    )
    counts = [embedder.count_tokens(c.text) for c in chunks]
    assert max(counts) <= 40
    assert max(counts) > 25  # chunks are packed, not one sentence each
