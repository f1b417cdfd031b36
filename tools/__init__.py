"""agentlib's built-in tools, installed as `agentlib.tools`.

Each family is a package whose `__init__` is its face, with its own extra:
`agentlib.tools.python` (sandboxed interpreter), `agentlib.tools.web` (`web`),
`agentlib.tools.sql` (`sql`), `agentlib.tools.cypher` (`graph`), `agentlib.tools.retrieval`
(`retrieval`); `agentlib.tools.calculator` is one module. Inside a family, modules import each
other relatively; the core is reached only through `from agentlib import ...`. Nothing is
imported here, so importing one family never pulls another's dependencies.
"""
