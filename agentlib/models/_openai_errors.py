"""How `OpenAIModel` turns the `openai` SDK's exceptions into one clear `ModelError`.

This is the boundary STYLE.md asks for: every SDK exception is translated here, with
`status_code` and `retryable` set and a message that says what to do, so the rest of agentlib
never sees an `openai` exception. The `mentions_*` tests are also what `auto` mode reads to
decide whether the server rejected the `response_format` itself (and so it may step down).
"""

from __future__ import annotations

import openai

from agentlib.errors import ModelError

__all__ = [
    "malformed",
    "mentions_invalid_schema",
    "mentions_response_format",
    "one_line",
    "translate_error",
]


def mentions_response_format(message: str) -> bool:
    """Whether a server's error text is about the `response_format` (or `json_schema`)."""
    lowered = message.lower()
    return "response_format" in lowered or "json_schema" in lowered


def malformed(base_url: str, exc: ValueError) -> ModelError:
    """The error for a body that is not JSON (the SDK lets it through as a `ValueError`)."""
    return ModelError(
        f"malformed response from {base_url}: the body is not valid JSON ({one_line(exc)}); "
        "check that the server is OpenAI-compatible",
        retryable=True,
    )


def mentions_invalid_schema(message: str) -> bool:
    """Whether a server understood the format but refused this schema."""
    return "invalid schema" in message.lower()


def one_line(text: object, limit: int = 300) -> str:
    """`text` on one line, cut to `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _server_message(exc: openai.APIError) -> str:
    """The server's own error text, from the usual JSON shapes, on one line."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            for key in ("message", "detail", "msg"):
                if error.get(key):
                    return one_line(error[key])
        elif isinstance(error, str):
            return one_line(error)
        if body.get("detail"):
            return one_line(body["detail"])
    elif isinstance(body, str) and body.strip():
        return one_line(body)
    return one_line(exc.message)


def translate_error(
    exc: openai.OpenAIError, *, model: str, base_url: str, timeout: float | None = None
) -> ModelError:
    """Turn an `openai` SDK exception into one clear `ModelError` line saying what to do."""
    if isinstance(exc, openai.APITimeoutError):
        waited = f" after {timeout:g} s" if timeout is not None else ""
        return ModelError(
            f"the request to {base_url} timed out{waited}; the server may be overloaded or the "
            "model slow: raise timeout= or ask for fewer tokens",
            retryable=True,
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        reason = f" ({one_line(cause)})" if cause else ""
        return ModelError(
            f"cannot reach the server at {base_url}{reason}; start the server, or fix base_url "
            "(or OPENAI_BASE_URL)",
            retryable=True,
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return ModelError(
            f"malformed response from {base_url}: {one_line(exc.message)}; check that the "
            "server is OpenAI-compatible",
            status_code=exc.status_code,
            retryable=True,
        )
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc, model=model, base_url=base_url)
    if isinstance(exc, openai.APIError):
        return ModelError(
            f"malformed response from {base_url}: {one_line(exc.message)}", retryable=True
        )
    return ModelError(f"the OpenAI client failed: {one_line(exc)}")


def _status_error(exc: openai.APIStatusError, *, model: str, base_url: str) -> ModelError:
    status = exc.status_code
    detail = _server_message(exc)
    if status == 401:
        text = (
            f"{base_url} rejected the API key (401: {detail}); set a valid key in "
            "OPENAI_API_KEY or pass api_key="
        )
    elif status == 403:
        text = f"{base_url} denied access (403: {detail}); check the key's permissions"
    elif status == 404:
        text = (
            f"model {model!r} was not found at {base_url} (404: {detail}); check the model "
            "name, and that base_url ends with /v1"
        )
    elif status == 429:
        text = f"rate limited by {base_url} (429: {detail}); wait and retry, or slow down"
    elif mentions_invalid_schema(detail):
        text = (
            f"{base_url} rejected the schema ({status}: {detail}); simplify the output type, or "
            "leave the keyword it names out of strict_keywords= so it moves into descriptions"
        )
    elif status >= 500 and not mentions_response_format(detail):
        text = f"the server at {base_url} failed ({status}: {detail}); retry later"
    elif mentions_response_format(detail):
        text = (
            f"{base_url} rejected the structured-output request ({status}: {detail}); this "
            "server may not support this response_format: use mode='auto', "
            "mode='json_object' or mode='prompted'"
        )
    else:
        text = f"{base_url} rejected the request ({status}: {detail})"
    retryable = status in (408, 409, 429) or (
        status >= 500 and not mentions_response_format(detail)
    )
    return ModelError(text, status_code=status, retryable=retryable)
