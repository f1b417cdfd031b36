from __future__ import annotations

import json
from pathlib import Path

import pypdf
import pytest

from agentlib import ConfigurationError
from agentlib.tools.retrieval import (
    DirectoryLoader,
    DocumentLoadError,
    HTMLLoader,
    JSONLoader,
    MarkdownLoader,
    PDFLoader,
    TextLoader,
    load_file,
)

from .conftest import write_pdf


def test_text_loader_reads_text_and_records_source_and_title(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Hello there.\nSecond line.", encoding="utf-8")
    [document] = TextLoader().load(path)
    assert document.text == "Hello there.\nSecond line."
    assert document.metadata == {"source": str(path), "title": "notes"}


def test_markdown_title_comes_from_the_first_heading(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text("Intro line\n\n# The Guide\n\nBody.", encoding="utf-8")
    [document] = MarkdownLoader().load(path)
    assert document.metadata["title"] == "The Guide"
    assert "# The Guide" in document.text


def test_html_loader_keeps_the_main_text_and_drops_navigation(corpus: Path) -> None:
    [document] = HTMLLoader().load(corpus / "volcano.html")
    assert "Mount Etna" in document.text
    assert "Home | About" not in document.text
    assert "Copyright" not in document.text
    assert document.metadata["title"] == "Volcanoes"


def test_pdf_loader_returns_one_document_per_page_with_page_numbers(corpus: Path) -> None:
    documents = PDFLoader().load(corpus / "manual.pdf")
    assert [d.metadata["page"] for d in documents] == [1, 2]
    assert "primed" in documents[0].text and "filter" in documents[1].text
    assert documents[0].metadata["title"] == "Pump manual"


def test_json_loader_reads_the_chosen_field_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "items.json"
    records = [
        {"body": {"text": "First body"}, "name": "one", "tag": "a"},
        {"body": {"text": "Second body"}, "name": "two", "tag": "b"},
    ]
    path.write_text(json.dumps(records), encoding="utf-8")
    documents = JSONLoader(
        text_field="body.text", title_field="name", metadata_fields=["tag"]
    ).load(path)
    assert [d.text for d in documents] == ["First body", "Second body"]
    assert documents[1].metadata == {
        "source": str(path),
        "record": 2,
        "title": "two",
        "tag": "b",
    }


def test_jsonl_loader_reports_the_record_without_the_field(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "ok"}\n{"other": "missing"}\n', encoding="utf-8")
    with pytest.raises(
        DocumentLoadError, match=r"rows\.jsonl.*record 2 has no text in field 'text'"
    ):
        JSONLoader().load(path)


def test_directory_loader_walks_every_format_and_skips_hidden_files(corpus: Path) -> None:
    documents = DirectoryLoader(loaders={".jsonl": JSONLoader(text_field="answer")}).load(corpus)
    sources = sorted({Path(d.source).name for d in documents})
    assert sources == ["cats.txt", "faq.jsonl", "install.md", "manual.pdf", "volcano.html"]
    assert not any("hidden file" in d.text for d in documents)


def test_directory_loader_can_skip_bad_files_and_lists_them(corpus: Path) -> None:
    (corpus / "empty.txt").write_text("   \n", encoding="utf-8")
    loader = DirectoryLoader(skip_errors=True, loaders={".jsonl": JSONLoader(text_field="answer")})
    documents = loader.load(corpus)
    assert [error.path.name for error in loader.skipped] == ["empty.txt"]
    assert any(d.source.endswith("cats.txt") for d in documents)


def test_directory_loader_raises_on_the_first_bad_file_by_default(corpus: Path) -> None:
    (corpus / "empty.txt").write_bytes(b"")
    with pytest.raises(DocumentLoadError, match=r"empty\.txt.*empty"):
        DirectoryLoader(loaders={".jsonl": JSONLoader(text_field="answer")}).load(corpus)


def test_missing_file_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentLoadError, match=r"nope\.txt.*does not exist") as info:
        TextLoader().load(tmp_path / "nope.txt")
    assert info.value.path == tmp_path / "nope.txt"
    assert isinstance(info.value, ConfigurationError)


def test_a_directory_given_to_a_file_loader_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentLoadError, match="DirectoryLoader"):
        TextLoader().load(tmp_path)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "blank.md"
    path.write_text("\n\n  \t\n", encoding="utf-8")
    with pytest.raises(DocumentLoadError, match=r"blank\.md.*empty"):
        MarkdownLoader().load(path)


def test_undecodable_bytes_name_the_file_and_suggest_an_encoding(tmp_path: Path) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes("Café crème, naïve façade".encode("cp1252"))
    with pytest.raises(DocumentLoadError, match=r"legacy\.txt.*not valid utf-8.*encodings="):
        TextLoader().load(path)
    [document] = TextLoader(encodings=("utf-8", "cp1252")).load(path)
    assert document.text == "Café crème, naïve façade"


def test_utf16_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "wide.txt"
    path.write_bytes("Grüße aus Köln".encode("utf-16"))
    assert TextLoader().load(path)[0].text == "Grüße aus Köln"


def test_an_unknown_encoding_name_is_refused_up_front() -> None:
    with pytest.raises(DocumentLoadError, match="unknown encoding 'klingon-8'"):
        TextLoader(encodings=("klingon-8",))


def test_a_scanned_pdf_without_text_says_it_needs_ocr(tmp_path: Path) -> None:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=612, height=792)
    writer.add_blank_page(width=612, height=792)
    path = tmp_path / "scan.pdf"
    with path.open("wb") as file:
        writer.write(file)
    with pytest.raises(DocumentLoadError, match=r"scan\.pdf.*2 page\(s\).*OCR"):
        PDFLoader().load(path)


def test_a_corrupt_pdf_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\nthis is not really a pdf at all\n")
    with pytest.raises(DocumentLoadError, match=r"broken\.pdf"):
        PDFLoader().load(path)


def test_load_file_refuses_unknown_suffixes_and_lists_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "data.xyz"
    path.write_text("something", encoding="utf-8")
    with pytest.raises(DocumentLoadError, match=r"no loader for '\.xyz'.*\.md"):
        load_file(path)


def test_pdf_helper_round_trips_through_pypdf(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "one.pdf", ["Only page (with parentheses)"])
    assert "Only page (with parentheses)" in pypdf.PdfReader(path).pages[0].extract_text()
