"""Fixtures for the retrieval tests: real files written to tmp_path, and a tiny PDF writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlib.tools.retrieval import HashingEmbedder


def write_pdf(path: Path, pages: list[str], *, title: str | None = None) -> Path:
    """Write a real PDF with one text line per page (Helvetica), byte offsets computed."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for page_id, text in zip(page_ids, pages, strict=True):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>".encode()
        )
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info_id = None
    if title is not None:
        objects.append(f"<< /Title ({title}) >>".encode())
        info_id = len(objects)
    body = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, content in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % number + content + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        body += b"%010d 00000 n \n" % offset
    info = f" /Info {info_id} 0 R" if info_id else ""
    body += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\n".encode()
    body += b"startxref\n%d\n%%%%EOF\n" % xref
    path.write_bytes(bytes(body))
    return path


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(128)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A small folder of real documents in every supported format."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "install.md").write_text(
        "# Installation\n\nInstall agentlib with pip.\n\n"
        "## Extras\n\nThe retrieval extra adds numpy, bm25s and usearch.\n\n"
        "## Troubleshooting\n\nIf the compiler is missing, install build-essential.\n",
        encoding="utf-8",
    )
    (folder / "cats.txt").write_text(
        "Cats sleep for most of the day. A cat purrs when it is content.\n", encoding="utf-8"
    )
    (folder / "volcano.html").write_text(
        "<html><head><title>Volcanoes</title></head><body>"
        "<nav>Home | About | Contact</nav>"
        "<article><h1>Volcanoes</h1><p>A volcano is a rupture in the crust of a planet that "
        "lets hot lava, volcanic ash and gases escape from a magma chamber below the surface."
        "</p><p>Mount Etna in Sicily is one of the most active volcanoes in the world and has "
        "erupted many times in recorded history.</p></article>"
        "<footer>Copyright 2026</footer></body></html>",
        encoding="utf-8",
    )
    write_pdf(
        folder / "manual.pdf",
        ["The pump must be primed before first use.", "Replace the filter every six months."],
        title="Pump manual",
    )
    (folder / "faq.jsonl").write_text(
        '{"question": "refunds", "answer": "Refunds are issued within 14 days.", "lang": "en"}\n'
        '{"question": "shipping", "answer": "Shipping to Norway takes five days.", "lang": "en"}\n',
        encoding="utf-8",
    )
    hidden = folder / ".cache"
    hidden.mkdir()
    (hidden / "secret.txt").write_text("hidden file, never indexed", encoding="utf-8")
    return folder
