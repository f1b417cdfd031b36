"""`compile_schema_guarded`: compile an untrusted JSON schema without risking the host process.

Constraint engines are not perfect: on real-world schemas outlines-core 0.2.14 timed out on
2.4 % and crashed its process on a few with 1-2.5 GB allocations. A schema pasted by a user is
therefore compiled first in a child process (`_schema_worker.py`) with `RLIMIT_AS` and a
wall-clock timeout; only a schema that passes is compiled in-process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agentlib._json_schema import finite_numbers
from agentlib.errors import ConfigurationError

__all__ = ["LLGUIDANCE_OVERRIDES", "compile_schema_guarded", "constraint_schema"]

LLGUIDANCE_OVERRIDES: dict[str, Any] = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
    "coerce_one_of": True,
    # Strings may escape only a quote, a backslash, a newline and a tab (the step format's
    # choice, issue 25: with every escape a small model filled strings with `\u001b`s).
    "json_allowed_escapes": '"\\nt',
}
"""llguidance's JSON options for every compilation, in-process (`OutlinesModel`) and guarded:
fixed separators and no free whitespace (with free whitespace a small model can emit newlines
until it runs out of tokens); `oneOf` generated as `anyOf` (llguidance cannot enforce "exactly
one"; the reply is validated against the schema itself, so one matching two branches is
refused and retried, as on the strict path) instead of refusing the schema."""


def constraint_schema(schema: Mapping[str, Any], backend: str) -> dict[str, Any]:
    """The schema a backend compiles for `schema`: numbers kept finite for llguidance.

    llguidance's JSON grammar allows any exponent, so `1e999` (no double) could be produced;
    `finite_numbers` rules that out. outlines_core ignores numeric bounds, so it gets the
    schema as it is (a reply with an overflowing number is refused when it is parsed).
    """
    return finite_numbers(schema) if backend == "llguidance" else dict(schema)


_WORKER = Path(__file__).with_name("_schema_worker.py")
_BACKENDS = ("llguidance", "outlines_core")


def compile_schema_guarded(
    schema: Mapping[str, Any],
    *,
    backend: str = "llguidance",
    timeout: float = 5.0,
    memory_mb: int = 1024,
) -> None:
    """Compile `schema` for `backend` in a child process bounded in time and memory.

    For llguidance the grammar is built and validated (without a tokenizer); for
    outlines_core the regex and its automaton are built. The host process is never at risk:
    a runaway compile is killed when it passes `timeout`, and an allocation beyond
    `memory_mb` fails in the child.

    Args:
        schema: The JSON schema, as a dict.
        backend: `llguidance` or `outlines_core`.
        timeout: Seconds the compilation may take.
        memory_mb: The child's address-space limit in MiB (its interpreter needs ~200).

    Raises:
        ConfigurationError: The backend does not support a keyword of the schema (named in
            the message), or compiling took longer than `timeout` or more than `memory_mb`.
    """
    if backend not in _BACKENDS:
        raise ConfigurationError(
            f"unknown constraint backend {backend!r}; use 'llguidance' or 'outlines_core'"
        )
    # What the in-process compilers compile (outlines.py): the same schema transformation
    # and options, so a schema that passes here compiles there.
    request_body = {
        "schema": constraint_schema(schema, backend),
        "backend": backend,
        "memory_mb": memory_mb,
        "overrides": LLGUIDANCE_OVERRIDES,
    }
    try:
        request = json.dumps(request_body)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"the schema is not JSON-serializable: {exc}") from exc
    try:
        completed = subprocess.run(
            [sys.executable, "-I", str(_WORKER)],
            input=request,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ConfigurationError(
            f"the {backend} backend took longer than {timeout:g} s to compile the schema; "
            "simplify it (fewer alternatives, bounded repetitions, simpler patterns)"
        ) from exc
    _raise_for_verdict(completed, backend, memory_mb)


def _raise_for_verdict(
    completed: subprocess.CompletedProcess[str], backend: str, memory_mb: int
) -> None:
    too_large = (
        f"compiling the schema with the {backend} backend needed more than {memory_mb} MB; "
        "simplify it (fewer alternatives, bounded repetitions, simpler patterns)"
    )
    if completed.returncode != 0:
        # A native allocation failure aborts the child (SIGABRT) instead of raising.
        stderr = completed.stderr.strip().splitlines()
        if completed.returncode < 0 or "memory" in completed.stderr.lower():
            raise ConfigurationError(too_large)
        raise ConfigurationError(
            f"compiling the schema with the {backend} backend failed: "
            f"{stderr[-1] if stderr else f'exit code {completed.returncode}'}"
        )
    verdict = json.loads(completed.stdout)
    if verdict["ok"]:
        return
    if verdict["kind"] == "memory":
        raise ConfigurationError(too_large)
    if verdict["kind"] == "unsupported":
        raise ConfigurationError(
            f"the {backend} backend cannot enforce this schema: {verdict['message']}; remove or "
            "rewrite those keywords (they would otherwise be silently ignored)"
        )
    raise ConfigurationError(
        f"compiling the schema with the {backend} backend failed: {verdict['message']}"
    )
