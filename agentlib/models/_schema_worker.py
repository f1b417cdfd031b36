"""The child side of `compile_schema_guarded`: compile one JSON schema under a memory bound.

Run as a script by path (`python -I _schema_worker.py`), never imported by agentlib: it
imports only the constraint backend, so it starts in about 0.1 s. It reads
`{"schema": ..., "backend": ..., "memory_mb": ..., "overrides": ...}` (llguidance's JSON
options) as JSON on stdin and writes
`{"ok": true}` or `{"ok": false, "kind": "unsupported" | "memory" | "error", "message": ...}`
on stdout. A crash (a native abort when an allocation fails) shows as a negative exit code.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any, cast

# outlines_core needs a vocabulary to build its index; the index's automaton (the part that
# explodes on pathological schemas) depends on the regex, so printable ASCII is enough to
# expose it cheaply.
_PROBE_VOCABULARY = [chr(code) for code in range(32, 127)]


def _limit_memory(memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _check_llguidance(schema: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    from llguidance import LLMatcher

    grammar = LLMatcher.grammar_from_json_schema(schema, overrides=cast(Any, overrides))
    is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error:
        return {"ok": False, "kind": "unsupported", "message": "; ".join(messages)}
    return {"ok": True}


def _check_outlines_core(schema: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    from outlines_core import Index, Vocabulary
    from outlines_core.json_schema import build_regex_from_schema

    try:
        regex = build_regex_from_schema(json.dumps(schema), r"[ ]?")
    except Exception as exc:  # outlines_core raises several types for unsupported schemas
        return {"ok": False, "kind": "unsupported", "message": str(exc)}
    eos = len(_PROBE_VOCABULARY)
    vocabulary = Vocabulary(eos, {token: [i] for i, token in enumerate(_PROBE_VOCABULARY)})
    Index(regex, vocabulary)
    return {"ok": True}


def main() -> None:
    """Read the request on stdin, compile, and write the verdict on stdout."""
    request = json.loads(sys.stdin.read())
    _limit_memory(int(request["memory_mb"]))
    check = _check_llguidance if request["backend"] == "llguidance" else _check_outlines_core
    try:
        verdict = check(request["schema"], request.get("overrides", {}))
    except MemoryError:
        verdict = {"ok": False, "kind": "memory", "message": "ran out of memory"}
    except Exception as exc:  # report any other failure to the parent with its type
        verdict = {"ok": False, "kind": "error", "message": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(verdict))


if __name__ == "__main__":
    main()
