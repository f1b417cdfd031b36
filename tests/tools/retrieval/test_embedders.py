from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from agentlib import ModelError
from agentlib.tools.retrieval import (
    Embedder,
    HashingEmbedder,
    IndexMismatchError,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
)


def test_hashing_embedder_is_deterministic_and_normalised() -> None:
    embedder = HashingEmbedder(64)
    first = embedder.embed(["the cat sat", "dogs bark loudly", ""])
    second = HashingEmbedder(64).embed(["the cat sat", "dogs bark loudly", ""])
    assert first.dtype == np.float32 and first.shape == (3, 64)
    assert np.array_equal(first, second)
    assert np.allclose(np.linalg.norm(first[:2], axis=1), 1.0)
    assert isinstance(embedder, Embedder)


def test_hashing_embedder_puts_texts_sharing_words_closer() -> None:
    query, near, far = HashingEmbedder(256).embed(
        ["volcano eruption lava", "the volcano eruption sent lava down", "tax forms are due"]
    )
    assert query @ near > query @ far


class _EmbeddingsHandler(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]]
    dimension = 8
    fail_with: int | None = None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, **body})
        if type(self).fail_with:
            payload = json.dumps({"error": {"message": "overloaded", "type": "server"}}).encode()
            self.send_response(type(self).fail_with or 500)
        else:
            data = [
                {"object": "embedding", "index": i, "embedding": self._vector(text)}
                for i, text in enumerate(body["input"])
            ]
            data.reverse()  # servers may answer out of order; the index field decides
            payload = json.dumps(
                {
                    "object": "list",
                    "data": data,
                    "model": body["model"],
                    "usage": {"prompt_tokens": 1, "total_tokens": 1},
                }
            ).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _vector(self, text: str) -> list[float]:
        return [float(len(text)), 1.0] + [0.0] * (type(self).dimension - 2)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def embeddings_server() -> Iterator[tuple[str, type[_EmbeddingsHandler]]]:
    handler = type("Handler", (_EmbeddingsHandler,), {"requests": [], "fail_with": None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    server.shutdown()
    server.server_close()


def test_openai_embedder_batches_requests_and_normalises(
    embeddings_server: tuple[str, type[_EmbeddingsHandler]],
) -> None:
    url, handler = embeddings_server
    embedder = OpenAIEmbedder("tiny-embed", base_url=url, api_key="x", batch_size=2)
    vectors = embedder.embed(["a", "bbb", "cc", "dddd", "e"])
    assert vectors.shape == (5, 8)
    assert [len(r["input"]) for r in handler.requests] == [2, 2, 1]
    assert handler.requests[0]["path"] == "/v1/embeddings"
    assert handler.requests[0]["model"] == "tiny-embed"
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    # Rows follow the input order even though the server answered in reverse.
    expected = np.array([[len(t), 1.0] for t in ["a", "bbb", "cc", "dddd", "e"]])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors[:, :2], expected)
    assert embedder.name == "openai:tiny-embed" and embedder.dimension == 8


def test_openai_embedder_turns_http_errors_into_model_errors(
    embeddings_server: tuple[str, type[_EmbeddingsHandler]],
) -> None:
    url, handler = embeddings_server
    handler.fail_with = 400
    embedder = OpenAIEmbedder("tiny-embed", base_url=url, api_key="x")
    with pytest.raises(ModelError, match="answered 400") as info:
        embedder.embed(["a"])
    assert info.value.status_code == 400 and not info.value.retryable


def test_openai_embedder_refuses_vectors_of_an_unexpected_dimension(
    embeddings_server: tuple[str, type[_EmbeddingsHandler]],
) -> None:
    url, _ = embeddings_server
    embedder = OpenAIEmbedder("tiny-embed", base_url=url, api_key="x", dimension=384)
    with pytest.raises(IndexMismatchError, match="returned 8-d vectors, expected 384-d"):
        embedder.embed(["a"])


def test_importing_the_package_and_the_embedder_does_not_import_torch() -> None:
    code = (
        "import sys, agentlib\n"
        "from agentlib.tools.retrieval import SentenceTransformerEmbedder, Collection\n"
        "SentenceTransformerEmbedder()\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'sentence_transformers' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_bundled_minilm_embeds_offline_with_384_normalised_dimensions() -> None:
    embedder = SentenceTransformerEmbedder()
    vectors = embedder.embed(
        ["How do I reset my password?", "Steps to change a forgotten password", "Rainfall in Peru"]
    )
    assert vectors.shape == (3, 384) and embedder.dimension == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert embedder.count_tokens("hello world") == 2
    assert embedder.max_tokens == 256
