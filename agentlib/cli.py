"""The command line: `agentlib run`, `agentlib chat`, `agentlib demo` and `agentlib mcp serve`.

`run` streams the steps (thought, tool call, observation) to stderr as they happen and prints
the final answer on stdout (`--json`: the whole result as JSON). Errors are one line each with
what to do, and a non-zero exit code: 1 when the run stopped without an answer, 2 for a
configuration or backend problem.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from agentlib.agent import Agent
from agentlib.approval import Approve, Deny
from agentlib.catalogue import ModelOptions, default_catalogue
from agentlib.errors import AgentlibError, ConfigurationError
from agentlib.models.base import Model
from agentlib.steps import (
    ApprovalRequest,
    ApprovalRequestEvent,
    ErrorEvent,
    FinalAnswerEvent,
    RunFinishedEvent,
    RunResult,
    ThoughtEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from agentlib.tool import Tool, Toolset

__all__ = [
    "DEFAULT_MAX_TOOLS",
    "add_mcp_arguments",
    "build_model",
    "build_tools",
    "main",
    "mcp_arguments",
    "mcp_servers",
]

_PREVIEW = 300
DEFAULT_MAX_TOOLS = 12
"""How many tools a run with `--mcp` is offered by default: what fits a small model's context."""


def build_model(spec: str, *, threads: int | None = None) -> Model:
    """Make a model from a `--model` value, through the catalogue.

    `local` (the embedded SmolLM2-135M-Instruct), `openai:<model>` (reads OPENAI_API_KEY and
    OPENAI_BASE_URL), `openai-compatible:<base_url>#<model>`, `hf:<model>` (Hugging Face's
    router, reads HF_TOKEN), or a plugin's form.

    Raises:
        ConfigurationError: The value is not one of those forms, or a key is missing.
    """
    options = ModelOptions(
        threads=threads, on_progress=lambda line: print(line, file=sys.stderr, flush=True)
    )
    return default_catalogue().build_model(spec, options)


def build_tools(spec: str) -> list[Tool | Toolset]:
    """Make the toolset from a `--tools` value: comma-separated catalogue names.

    Built in: `calculator`, `python` (the sandboxed interpreter), `web` (search and fetch),
    `sql` (the sample music store) or `sql:<sqlalchemy url>`, `cypher` (the sample movie
    graph), `none`; installed plugins add theirs.

    Raises:
        ConfigurationError: An unknown tool name.
    """
    tools, _ = default_catalogue().build_tools(spec)
    return tools


class _Printer:
    """Renders a run's events readably."""

    def __init__(self, stream: TextIO, *, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet

    def show(self, event: object) -> None:
        if self.quiet:
            return
        if isinstance(event, ThoughtEvent):
            self._line(f"[step {event.step}] thought: {event.thought}")
        elif isinstance(event, ToolCallEvent):
            arguments = json.dumps(dict(event.call.arguments), ensure_ascii=False)
            self._line(f"[step {event.step}] → {event.call.tool_name}({arguments})")
        elif isinstance(event, ToolResultEvent):
            content = event.observation.content
            if len(content) > _PREVIEW:
                content = content[:_PREVIEW] + f"… ({len(content)} characters)"
            marker = "✗" if event.observation.is_error else "←"
            self._line(f"[step {event.step}] {marker} {content}")
        elif isinstance(event, ErrorEvent) and event.will_retry:
            # A final error is reported once, by the run's stop line.
            self._line(f"[step {event.step}] invalid step: {event.message} (asking again)")
        elif isinstance(event, FinalAnswerEvent):
            self._line(f"[step {event.step}] final answer")
        elif isinstance(event, ApprovalRequestEvent):
            self._line(f"[step {event.step}] {event.request.call.tool_name} needs approval")

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def result_to_json(result: RunResult[Any]) -> dict[str, Any]:
    """A JSON-able view of a run's result (raw tool return values are left out)."""

    def clean(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {
                field.name: clean(getattr(value, field.name))
                for field in dataclasses.fields(value)
                if field.name != "value"
            }
        if isinstance(value, (list, tuple)):
            return [clean(item) for item in value]
        if isinstance(value, dict):
            return {str(key): clean(item) for key, item in value.items()}
        dump = getattr(value, "model_dump", None)
        if callable(dump):
            return dump(mode="json")
        return value

    data: dict[str, Any] = clean(result)
    data["ok"] = result.ok
    return data


async def _run_once(
    agent: Agent[Any], task: str, printer: _Printer, *, conversation: Any = None
) -> RunResult[Any]:
    result: RunResult[Any] | None = None
    approver = _TerminalApprover() if agent.require_approval or _has_risky(agent) else None
    async for event in agent.stream(task, conversation=conversation, approver=approver):
        printer.show(event)
        if isinstance(event, RunFinishedEvent):
            result = event.result
    assert result is not None
    return result


class _TerminalApprover:
    """Asks at the terminal about each call that needs approval: yes, no (with a reason), edit."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr

    def read(self, prompt: str) -> str:
        # The prompt goes to stderr with the steps: stdout holds only the answer.
        print(prompt, end="", file=self.stream, flush=True)
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    def __call__(self, request: ApprovalRequest) -> Approve | Deny:
        call = request.call
        arguments = json.dumps(dict(call.arguments), ensure_ascii=False, default=str)
        print(f"approve {call.tool_name}({arguments}) [{call.id}]?", file=self.stream)
        while True:
            try:
                answer = self.read("[y]es / [n]o / [e]dit> ").strip().lower()
            except EOFError:
                return Deny("no one answered the approval prompt")
            if answer in ("y", "yes"):
                return Approve()
            if answer in ("n", "no"):
                reason = self._ask("reason (shown to the model, optional)> ")
                return Deny(reason or "the user denied this call")
            if answer in ("e", "edit"):
                edited = self._edit(arguments)
                if edited is not None:
                    return Approve(arguments=edited)
            else:
                print("answer y, n or e", file=self.stream)

    def _ask(self, prompt: str) -> str:
        try:
            return self.read(prompt).strip()
        except EOFError:
            return ""

    def _edit(self, current: str) -> dict[str, Any] | None:
        text = self._ask(f"new arguments as JSON (now {current})> ")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            print(f"not JSON ({exc}); try again", file=self.stream)
            return None
        if not isinstance(value, dict):
            print("the arguments must be a JSON object; try again", file=self.stream)
            return None
        return value


def _tracer_provider() -> Any:
    """A provider keeping the run's spans in memory, for `--trace` to print."""
    from agentlib._optional import optional_imports

    with optional_imports("otel", feature="--trace"):
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    provider = TracerProvider()
    provider.exporter = InMemorySpanExporter()  # type: ignore[attr-defined]
    provider.add_span_processor(SimpleSpanProcessor(provider.exporter))  # type: ignore[attr-defined]
    return provider


def _make_agent(
    args: argparse.Namespace, servers: Sequence[Toolset] = (), *, tracing: Any = False
) -> Agent[Any]:
    catalogue = default_catalogue()
    family, _ = catalogue.model_spec(args.model)
    default = ",".join(family.default_tools)
    tools, _ = catalogue.build_tools(args.tools if args.tools is not None else default)
    model = build_model(args.model, threads=args.threads)
    # What the embedded model needs (a worked example, a short thought, no repetition
    # penalty) is its profile's (agentlib.models.profiles), so `Agent(LocalModel())` gets it too.
    risky = [name.strip() for name in (args.approve or "").split(",") if name.strip()]
    return Agent(
        model,
        tools=[*tools, *servers],
        # Each run is offered the --max-tools most relevant to its task (or turn, in chat).
        max_tools=args.max_tools if servers else None,
        max_steps=args.max_steps,
        tracing=tracing,
        require_approval=risky,
        approval_timeout=args.approval_timeout,
    )


def _has_risky(agent: Agent[Any]) -> bool:
    return any(item.requires_approval is not False for item in agent.tools)


# -- MCP: `--mcp` servers for run/chat, and `agentlib mcp serve` -----------------------------


def add_mcp_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--mcp SERVER` (repeatable) and `--max-tools N` to a command's parser.

    The one definition of these flags: `run`, `chat`, `demo` and the demo app's own
    `python demos/app.py` use it; `mcp_servers` reads them back.
    """
    parser.add_argument(
        "--mcp",
        action="append",
        default=[],
        metavar="SERVER",
        help="an MCP server whose tools the agent may use: a command that starts a stdio "
        'server ("python server.py") or a URL (http://127.0.0.1:8000/mcp); repeatable',
    )
    parser.add_argument(
        "--max-tools",
        type=int,
        default=DEFAULT_MAX_TOOLS,
        help="with --mcp, offer each run at most this many tools, the most relevant to the "
        f"task (default {DEFAULT_MAX_TOOLS})",
    )


def mcp_arguments(args: argparse.Namespace) -> list[str]:
    """The `--mcp`/`--max-tools` flags of parsed `args` again, to hand to another command."""
    flags = [part for server in getattr(args, "mcp", None) or [] for part in ("--mcp", server)]
    return [*flags, "--max-tools", str(args.max_tools)]


def mcp_servers(args: argparse.Namespace) -> list[Toolset]:
    """Connect to each `--mcp` server (a command or a URL); closes them all on a failure.

    Raises:
        ConfigurationError: A server cannot be started or reached.
    """
    if not getattr(args, "mcp", None):
        return []
    from agentlib.tools.mcp import MCPToolset

    servers: list[Toolset] = []
    try:
        for spec in args.mcp:
            server = MCPToolset(spec, unsupported="skip")
            server.connect()
            servers.append(server)
    except BaseException:
        for opened in servers:
            opened.close()
        raise
    return servers


def _command_mcp_serve(args: argparse.Namespace) -> int:
    from agentlib.tools.mcp import serve_mcp

    tools = build_tools(args.tools)
    if not tools:
        raise ConfigurationError("agentlib mcp serve needs --tools, e.g. --tools calculator,python")

    def ready(where: str) -> None:
        print(f"agentlib: serving MCP on {where}", file=sys.stderr, flush=True)

    serve_mcp(tools, transport=args.transport, host=args.host, port=args.port, on_ready=ready)
    return 0


def _command_run(args: argparse.Namespace) -> int:
    provider = _tracer_provider() if args.trace else None
    servers = mcp_servers(args)
    try:
        tracing = provider if provider is not None else False
        agent = _make_agent(args, servers, tracing=tracing)
        printer = _Printer(sys.stderr, quiet=args.quiet or args.json)
        result = asyncio.run(_run_once(agent, args.task, printer))
    finally:
        for server in servers:
            server.close()
    if provider is not None:
        from agentlib._tracing import render_span_tree

        print(render_span_tree(provider.exporter.get_finished_spans()), file=sys.stderr)
    if args.json:
        print(json.dumps(result_to_json(result), ensure_ascii=False, default=str))
    elif result.ok:
        output = result.output
        print(output if isinstance(output, str) else json.dumps(result_to_json(result)["output"]))
    else:
        print(
            f"agentlib: stopped without an answer ({result.stop_reason}): {result.error}",
            file=sys.stderr,
        )
    if result.ok:
        return 0
    return 2 if result.stop_reason == "model_error" else 1


def _open_conversation(args: argparse.Namespace) -> Any:
    from agentlib.memory import Conversation, SQLStore

    if args.store is None:
        return Conversation(args.conversation or "cli")
    store = SQLStore(args.store)
    return Conversation.open(store, args.conversation or "cli")


def _command_chat(args: argparse.Namespace) -> int:
    servers = mcp_servers(args)
    try:
        return _chat(args, _make_agent(args, servers))
    finally:
        for server in servers:
            server.close()


def _chat(args: argparse.Namespace, agent: Agent[Any]) -> int:
    printer = _Printer(sys.stderr, quiet=args.quiet)
    conversation = _open_conversation(args)
    earlier = len(conversation.turns)
    where = f" (continuing {earlier} earlier turn(s))" if earlier else ""
    print(f"agentlib chat{where}: type a message, or 'exit' to leave.", file=sys.stderr)
    while True:
        try:
            task = input("you> ").strip()
        except EOFError:
            return 0
        if task in ("exit", "quit"):
            return 0
        if not task:
            continue
        result = asyncio.run(_run_once(agent, task, printer, conversation=conversation))
        answer = str(result.output) if result.ok else f"(no answer: {result.stop_reason})"
        print(f"agent> {answer}", flush=True)


def _command_demo(args: argparse.Namespace) -> int:
    candidates = [
        Path.cwd() / "demos" / "app.py",
        Path(__file__).resolve().parents[1] / "demos" / "app.py",
    ]
    app = next((path for path in candidates if path.is_file()), None)
    if app is None:
        raise ConfigurationError(
            "cannot find demos/app.py: run `agentlib demo` from a checkout of agentlib"
        )
    import runpy

    sys.argv = [str(app), "--host", args.host, "--port", str(args.port), *mcp_arguments(args)]
    runpy.run_path(str(app), run_name="__main__")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentlib", description="Agents that use tools.")
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--model",
            default="local",
            help="local (default), openai:<model>, openai-compatible:<url>#<model>, "
            "hf:<model> (Hugging Face's router), or a plugin's",
        )
        sub.add_argument(
            "--tools",
            default=None,
            help="comma-separated tools: calculator, python, web, sql (the sample music store) "
            "or sql:<url>, cypher, none, or a plugin's (default: calculator on the local "
            "model, calculator,python on others)",
        )
        sub.add_argument("--max-steps", type=int, default=6, help="step limit per run")
        sub.add_argument(
            "--threads",
            type=int,
            default=None,
            help="CPU threads for the local model (default: measured best)",
        )
        sub.add_argument("--quiet", action="store_true", help="do not show the steps")
        add_mcp_arguments(sub)
        sub.add_argument(
            "--approve",
            default=None,
            metavar="TOOLS",
            help="comma-separated tool names whose calls you approve at the terminal first",
        )
        sub.add_argument(
            "--approval-timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="deny a call nobody approved within this many seconds",
        )

    run = commands.add_parser("run", help="run one task and print the answer")
    run.add_argument("task", help="what to do")
    run.add_argument("--json", action="store_true", help="print the whole result as JSON")
    run.add_argument(
        "--trace",
        action="store_true",
        help="print the run's OpenTelemetry span tree (needs agentlib-typed[otel])",
    )
    common(run)
    run.set_defaults(handler=_command_run)

    chat = commands.add_parser("chat", help="talk with an agent, turn by turn")
    chat.add_argument(
        "--store",
        default=None,
        help="keep the conversation in this database (a SQLAlchemy URL or a SQLite file path)",
    )
    chat.add_argument("--conversation", default=None, help="the conversation id (default: cli)")
    common(chat)
    chat.set_defaults(handler=_command_chat)

    demo = commands.add_parser("demo", help="launch the Gradio demos locally")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=7860)
    add_mcp_arguments(demo)
    demo.set_defaults(handler=_command_demo)

    mcp = commands.add_parser("mcp", help="MCP: serve agentlib tools to MCP clients")
    mcp_commands = mcp.add_subparsers(dest="mcp_command", required=True)
    serve = mcp_commands.add_parser("serve", help="serve built-in tools as an MCP server")
    serve.add_argument(
        "--tools",
        required=True,
        help="comma-separated tools: calculator, python, web, sql:<url>, cypher",
    )
    serve.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP: the address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="HTTP: the port (0: a free one)")
    serve.set_defaults(handler=_command_mcp_serve)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from agentlib.errors import DISTRIBUTION

    try:
        return f"agentlib {version(DISTRIBUTION)} ({DISTRIBUTION})"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "agentlib (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `agentlib` command."""
    args = _parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except AgentlibError as exc:
        print(f"agentlib: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("agentlib: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
