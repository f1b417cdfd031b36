"""agentlib's built-in tools, installed as `agentlib.tools`.

Each family is its own module with its own extra: `agentlib.tools.python` (sandboxed
interpreter), `agentlib.tools.web` (`web`), `agentlib.tools.sql` (`sql`), `agentlib.tools.cypher`
(`graph`), `agentlib.tools.retrieval` (`retrieval`). Nothing is imported here, so importing one
family never pulls another's dependencies.
"""
