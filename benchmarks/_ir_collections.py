"""Known-item test collections built offline from public text on this machine.

No standard IR collection with relevance judgments (Cranfield, CISI, BEIR) can be loaded on
this machine: the registries it reaches ship none (see benchmarks/retrieval.md), so both
collections here are known-item sets: each query has exactly one relevant document.

- `stdlib`: CPython's standard library docstrings. Query: a function's or class's summary
  line; document: its qualified name and the rest of the docstring. Short documents.
- `manpages`: Debian's section-1 manual pages. Query: the one-line description of the NAME
  section (`ls - list directory contents` -> `list directory contents`); document: the rendered
  page without its NAME section. Long documents (hundreds to thousands of words), so chunking
  and per-document de-duplication matter.

A collection is `(documents, queries)`: `documents` maps id -> text, `queries` is a list of
`(query text, relevant id)`, shuffled with a fixed seed; the first half tunes, the second tests.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import random
import re
import subprocess
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SEED = 20261128
Collection = tuple[dict[str, str], list[tuple[str, str]]]


def stdlib(limit: int = 3000) -> Collection:
    """(documents, queries) from the standard library's docstrings (parsed, never imported)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    pairs: dict[str, tuple[str, str]] = {}
    seen_queries: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        skip = ("test", "tests", "idlelib", "site-packages", "lib2to3")
        if any(part in skip for part in relative.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        module = ".".join(relative.with_suffix("").parts)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            doc = ast.get_docstring(node) if not node.name.startswith("_") else None
            if not doc:
                continue
            lines = doc.strip().splitlines()
            summary, body = lines[0].strip(), "\n".join(lines[1:]).strip()
            if len(summary.split()) < 4 or len(body.split()) < 15:
                continue
            if summary.lower() in seen_queries:
                continue  # an ambiguous known item: the same summary on several objects
            seen_queries.add(summary.lower())
            identifier = f"{module}.{node.name}"
            pairs[identifier] = (summary, f"{identifier}\n{body}")
    items = sorted(pairs.items())
    random.Random(SEED).shuffle(items)
    items = items[:limit]
    documents = {identifier: text for identifier, (_, text) in items}
    queries = [(summary, identifier) for identifier, (summary, _) in items]
    return documents, queries


_NAME_LINE = re.compile(r"^\s*(\S.*?)\s+[-\u2010\u2013\u2014]+\s+(.+)$")


def _render(page: Path) -> str:
    environment = {**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": "", "LC_ALL": "C.UTF-8"}
    result = subprocess.run(
        ["man", "-l", "-P", "cat", str(page)],
        capture_output=True,
        env=environment,
        timeout=30,
        check=False,
    )
    text = result.stdout.decode("utf-8", errors="replace")
    return re.sub(r".\x08", "", text)  # overstrike bold/underline, if any survived


def _split_name(text: str) -> tuple[str, str] | None:
    """(description, page without its NAME section), or None when there is no NAME line."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "NAME")
    except StopIteration:
        return None
    end = start + 1
    while end < len(lines) and lines[end].strip():
        end += 1
    match = _NAME_LINE.match(" ".join(line.strip() for line in lines[start + 1 : end]))
    if not match:
        return None
    body = lines[1:start] + lines[end:-1]  # drop the running header and footer lines
    return match.group(2).strip(), "\n".join(body).strip()


def manpages(
    limit: int = 500, *, cache: Path | None = None, min_words: int = 150, max_words: int = 2500
) -> Collection:
    """(documents, queries) from section-1 manual pages, seeded sample, rendered with man(1)."""
    # Rendering takes minutes; the cache holds the largest sample made so far, and a smaller
    # one is its prefix (the pages are taken in the same seeded order).
    cache = cache or Path.home() / ".cache" / "agentlib-bench" / "manpages.json"
    if cache.is_file():
        stored = json.loads(cache.read_text(encoding="utf-8"))
        if len(stored["queries"]) >= limit:
            queries = [(q, i) for q, i in stored["queries"][:limit]]
            return {i: stored["documents"][i] for _, i in queries}, queries
    # gcloud's 16,000 generated pages (alpha/beta/GA variants of one text) are left out: they
    # are near-duplicates of each other, so a known item would not be one document.
    pages = sorted(p for p in Path("/usr/share/man/man1").glob("*.1*") if "gcloud" not in p.name)
    random.Random(SEED).shuffle(pages)
    documents: dict[str, str] = {}
    queries: list[tuple[str, str]] = []
    seen: set[str] = set()
    with ThreadPoolExecutor(max_workers=2) as pool:
        rendered = list(pool.map(_render, pages))
    for page, text in zip(pages, rendered, strict=True):
        if len(documents) >= limit:
            break
        parsed = _split_name(text)
        if parsed is None:
            continue
        description, body = parsed
        words = len(body.split())
        key = description.lower()
        if len(description.split()) < 3 or not min_words <= words <= max_words or key in seen:
            continue
        seen.add(key)
        identifier = page.name.split(".1")[0]
        if identifier in documents:
            continue
        documents[identifier] = body
        queries.append((description, identifier))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"documents": documents, "queries": queries}), encoding="utf-8")
    return documents, queries


def fingerprint(collection: Collection) -> str:
    """A short hash of the collection's text, to tell whether two runs saw the same data."""
    documents, queries = collection
    digest = hashlib.sha256()
    for identifier in sorted(documents):
        digest.update(identifier.encode() + b"\0" + documents[identifier].encode() + b"\0")
    for query, identifier in queries:
        digest.update(query.encode() + b"\0" + identifier.encode() + b"\0")
    return digest.hexdigest()[:16]
