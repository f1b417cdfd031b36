"""Check a schema pasted by a user before compiling it in-process."""

from agentlib import ConfigurationError, OutlinesModel

pasted = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
try:
    # Compiles in a child process with a 5 s timeout and a 1 GiB address-space limit.
    OutlinesModel.check_schema(pasted, timeout=5.0, memory_mb=1024)
except ConfigurationError as error:
    print(error)
    # the llguidance backend cannot enforce this schema: Unimplemented keys: ["uniqueItems"]; ...
    assert "uniqueItems" in str(error)

OutlinesModel.check_schema({"type": "object", "properties": {"name": {"type": "string"}}})
print("accepted")
