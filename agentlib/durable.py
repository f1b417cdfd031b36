"""Durable, distributed runs: each agent run a DBOS workflow on PostgreSQL.

`DurableAgent` wraps an `Agent`: a run becomes a DBOS workflow, each model call and each tool
call a DBOS step whose result is checkpointed in PostgreSQL. A run whose worker dies resumes on
another worker from its last checkpoint: finished model calls and tool calls are replayed from
the database, not repeated. `DurableWorker` is one worker process: DBOS launched on the shared
database, taking runs from a DBOS queue (at most `concurrency` at a time), and recovering the
runs of workers that died (DBOS alone recovers only a restarted worker's own runs; see
`agentlib._dbos_failover`).

```python
agent = Agent(model, tools=[lookup])
durable = DurableAgent(agent, name="support")        # before the worker starts
with DurableWorker({"name": "support-app", "system_database_url": url}):
    run_id = durable.enqueue("Where is order 42?")   # any worker may run it
    result = durable.result(run_id)
```

What is exactly-once: a model call or tool call whose result was checkpointed is never made
again. A tool call in flight when its worker died is reported to the model as interrupted, as
`Agent.resume` does, or run again if its tool is `@tool(idempotent=True)`; a tool that is a DBOS
transaction (`transactional_tools`) commits its writes together with its checkpoint and runs
exactly once.

Needs the `durable` extra (`dbos`) and a PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import copy
import os
import socket
import uuid
from collections.abc import Collection, Mapping
from types import TracebackType
from typing import Any, Generic

from typing_extensions import TypeVar

from agentlib import _approval_flow, _dbos_failover, _run
from agentlib._optional import optional_imports
from agentlib._run_checkpoints import interrupted
from agentlib.agent import Agent
from agentlib.approval import Approver
from agentlib.errors import ConfigurationError
from agentlib.models.base import Message, ModelResponse, OutputSchema, Sampling
from agentlib.steps import Observation, RunResult, ToolCall
from agentlib.tool import Tool

with optional_imports("durable", feature="agentlib.durable"):
    from dbos import DBOS, DBOSConfig, SetWorkflowID, WorkflowHandleAsync

__all__ = ["DEFAULT_QUEUE", "DurableAgent", "DurableWorker"]

OutputT = TypeVar("OutputT", default=str)

DEFAULT_QUEUE = "agentlib_runs"
"""The DBOS queue `DurableAgent.enqueue` uses unless told otherwise."""


class DurableWorker:
    """One worker process: DBOS on PostgreSQL, taking runs from a queue, recovering the dead's.

    Build every `DurableAgent` first (DBOS registers workflows before launch), then start one
    worker per process; every worker of an application shares the system database.

    Args:
        config: The DBOS configuration (`name`, `system_database_url`, ...). Without an
            `executor_id` (or `DBOS__VMID`), the worker gets a unique one: DBOS's default,
            `"local"`, is shared by every process and would make a restarted worker take back
            runs that live workers are running.
        queue: The queue this worker takes runs from.
        concurrency: The most runs this worker runs at once.
        global_concurrency: The most runs of the queue running at once over all workers.
        polling_interval: Seconds between this worker's looks at the queue.
        failover_interval: Seconds between sweeps for dead workers' runs.
        lock_timeout: Seconds to wait for this worker's executor id to become free (while
            another worker finishes recovering its runs).
    """

    def __init__(
        self,
        config: DBOSConfig,
        *,
        queue: str = DEFAULT_QUEUE,
        concurrency: int = 8,
        global_concurrency: int | None = None,
        polling_interval: float = 1.0,
        failover_interval: float = 1.0,
        lock_timeout: float = 30.0,
    ) -> None:
        if concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")
        if global_concurrency is not None and global_concurrency < 1:
            raise ConfigurationError(
                f"global_concurrency must be at least 1, got {global_concurrency}"
            )
        url = config.get("system_database_url")
        if not url:
            raise ConfigurationError(
                "DurableWorker needs config['system_database_url'], the PostgreSQL database "
                "that every worker shares"
            )
        _dbos_failover.engine_url(url)  # a PostgreSQL URL, or a ConfigurationError now
        self.executor_id: str = (
            config.get("executor_id")
            or os.environ.get("DBOS__VMID")
            or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        """This worker's DBOS executor id: the runs it starts are tagged with it."""
        self.config: DBOSConfig = {**config, "executor_id": self.executor_id}
        self.queue = queue
        self.concurrency = concurrency
        self.global_concurrency = global_concurrency
        self.polling_interval = polling_interval
        self.failover_interval = failover_interval
        self.lock_timeout = lock_timeout
        self._liveness = _dbos_failover.Liveness(url, self.executor_id, config["name"])
        self._started = False

    def start(self) -> None:
        """Take this worker's liveness lock, launch DBOS and start taking runs.

        DBOS recovers at launch the runs this executor id left pending; the sweep then
        recovers those of any dead worker.

        Raises:
            ConfigurationError: Another live worker holds this executor id.
        """
        self._liveness.hold(timeout=self.lock_timeout)
        try:
            DBOS(config=self.config)
            DBOS.launch()
            DBOS.register_queue(
                self.queue,
                worker_concurrency=self.concurrency,
                global_concurrency=self.global_concurrency,
                polling_interval_sec=self.polling_interval,
                on_conflict="always_update",
            )
        except BaseException:
            self._liveness.release()
            raise
        self._liveness.watch(self.failover_interval)
        self._started = True

    async def astart(self) -> None:
        """`start` from async code (DBOS refuses to launch on a running event loop's thread)."""
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        """`stop` from async code."""
        await asyncio.to_thread(self.stop)

    async def __aenter__(self) -> DurableWorker:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.astop()

    def sweep(self) -> list[str]:
        """Recover the pending runs of dead workers now; returns their run ids."""
        return self._liveness.sweep()

    def stop(self) -> None:
        """Stop taking runs and shut DBOS down; runs still pending resume on another worker."""
        if not self._started:
            return
        self._started = False
        DBOS.destroy()
        self._liveness.release()

    def __enter__(self) -> DurableWorker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class DurableAgent(Generic[OutputT]):
    """An `Agent` whose runs are DBOS workflows: checkpointed per model and tool call.

    Build it before the worker starts, with the same `name` in every process: workers find
    the workflow by that name when they take or recover a run.

    Args:
        agent: The agent to run durably.
        name: The workflow's name, unique in the DBOS application (`agentlib.<name>`).
        transactional_tools: Tools whose function is itself a DBOS transaction
            (`@datasource.transaction()`), so its writes commit with its checkpoint and it
            runs exactly once; they get no step of their own. Make them `async` when a step
            may hold several calls, so their checkpoints are numbered in call order.
        queue: The queue `enqueue` puts runs on.
    """

    def __init__(
        self,
        agent: Agent[OutputT],
        *,
        name: str,
        transactional_tools: Collection[str] = (),
        queue: str = DEFAULT_QUEUE,
    ) -> None:
        known = {item.name for item in agent.tools}
        unknown = sorted(set(transactional_tools) - known)
        if unknown:
            raise ConfigurationError(
                f"transactional_tools names unknown tools: {', '.join(unknown)}; "
                f"known tools: {', '.join(sorted(known)) or 'none'}"
            )
        if transactional_tools and agent.parallel_calls > 1:
            # Several calls of one step start in threads in no fixed order, and a DBOS
            # transaction numbers its checkpoint when it starts: a replay could swap them.
            raise ConfigurationError(
                "transactional_tools need parallel_calls=1 (each step one call), so their "
                f"checkpoints replay in call order; the agent has parallel_calls="
                f"{agent.parallel_calls}"
            )
        self.agent = agent
        self.name = name
        self.queue = queue
        self.transactional_tools = frozenset(transactional_tools)
        self.workflow_name = f"agentlib.{name}"
        """The DBOS workflow's name (to enqueue with a `DBOSClient` from outside)."""
        self._workflow = _register(self)

    async def arun(self, task: str, *, run_id: str | None = None) -> RunResult[OutputT]:
        """Run `task` as a workflow in this process (recovered by another if this one dies).

        Args:
            task: What to do.
            run_id: The workflow id; running again with the same id returns the first run's
                result instead of starting another.
        """
        with SetWorkflowID(run_id or str(uuid.uuid4())):
            handle = await DBOS.start_workflow_async(self._workflow, task)
        result: RunResult[OutputT] = await handle.get_result()
        return result

    async def aenqueue(self, task: str, *, run_id: str | None = None) -> str:
        """Put `task` on the queue for any worker to run; returns the run id."""
        with SetWorkflowID(run_id or str(uuid.uuid4())):
            handle = await DBOS.enqueue_workflow_async(self.queue, self._workflow, task)
        return handle.get_workflow_id()

    async def aresult(self, run_id: str) -> RunResult[OutputT]:
        """Wait for the run `run_id` to finish, wherever it runs, and return its result."""
        handle: WorkflowHandleAsync[RunResult[OutputT]] = await DBOS.retrieve_workflow_async(run_id)
        result: RunResult[OutputT] = await handle.get_result()
        return result

    def run(self, task: str, *, run_id: str | None = None) -> RunResult[OutputT]:
        """Sync `arun`: wait for the run of `task` in this process."""
        handle = self._start(task, run_id)
        result: RunResult[OutputT] = handle.get_result()
        return result

    def enqueue(self, task: str, *, run_id: str | None = None) -> str:
        """Sync `aenqueue`: put `task` on the queue; returns the run id."""
        with SetWorkflowID(run_id or str(uuid.uuid4())):
            handle = DBOS.enqueue_workflow(self.queue, self._workflow, task)
        return handle.get_workflow_id()

    def result(self, run_id: str) -> RunResult[OutputT]:
        """Sync `aresult`: wait for run `run_id` and return its result."""
        result: RunResult[OutputT] = DBOS.retrieve_workflow(run_id).get_result()
        return result

    def _start(self, task: str, run_id: str | None) -> Any:
        with SetWorkflowID(run_id or str(uuid.uuid4())):
            return DBOS.start_workflow(self._workflow, task)


class _CheckpointedRun(_run.Run[Any]):
    """A run whose two seams are DBOS steps, checkpointed and replayed on recovery.

    Each model reply and each observation is a step's result. Outside a workflow
    (`DBOS.run_step_async` then calls straight through) it is a plain run.
    """

    def __init__(
        self, agent: Agent[Any], approver: Approver | None, transactional: frozenset[str]
    ) -> None:
        super().__init__(agent, approver)
        self.transactional = transactional

    async def call_model(
        self,
        messages: list[Message],
        output: OutputSchema,
        sampling: Sampling | None = None,
        *,
        max_tokens: int | None = None,
        stream: bool = True,
    ) -> ModelResponse:
        """The model call as the step `model`; a `Stop` it raises is checkpointed too."""
        outcome = await DBOS.run_step_async(
            {"name": "model"}, self._model_outcome, messages, output, sampling, max_tokens, stream
        )
        if isinstance(outcome, _Stopped):
            raise _run.Stop(outcome.reason, outcome.message)
        return outcome

    async def _model_outcome(
        self,
        messages: list[Message],
        output: OutputSchema,
        sampling: Sampling | None,
        max_tokens: int | None,
        stream: bool,
    ) -> ModelResponse | _Stopped:
        # A Stop (model error, time budget) is returned as data: DBOS pickles a raised
        # exception through its args, which would lose the stop reason.
        try:
            return await super().call_model(
                messages, output, sampling, max_tokens=max_tokens, stream=stream
            )
        except _run.Stop as stop:
            return _Stopped(stop.reason, stop.message)

    async def call_tool(
        self,
        call: ToolCall,
        item: Tool,
        values: Mapping[str, Any],
        decision: _approval_flow.Resolved | None = None,
    ) -> Observation:
        """The tool call as the step `tool:<name>`, run at most once unless it is idempotent.

        A transactional tool is its own step. An idempotent tool's call is run again when the
        run is recovered while it was in flight (a DBOS step is at-least-once). Any other call
        is first marked started (the step `start:<name>`); when the mark replays on recovery
        but the call has no result, the call was running when its worker died, and its step
        records it as interrupted instead of running it again, as `Agent.resume` does.
        """
        if item.name in self.transactional:
            return await super().call_tool(call, item, values, decision)
        run_tool = super().call_tool
        started_here = False

        async def mark_started() -> None:
            nonlocal started_here
            started_here = True  # runs only in the execution that starts the call

        if not item.idempotent:
            await DBOS.run_step_async({"name": f"start:{item.name}"}, mark_started)

        async def once() -> Observation:
            if item.idempotent or started_here:
                return await run_tool(call, item, values, decision)
            return interrupted(call)

        observation: Observation = await DBOS.run_step_async({"name": f"tool:{item.name}"}, once)
        return observation


class _Stopped:
    """A checkpointed `Stop`: the reason and message, without the exception."""

    __slots__ = ("message", "reason")

    def __init__(self, reason: Any, message: str | None) -> None:
        self.reason = reason
        self.message = message


def _register(durable: DurableAgent[Any]) -> Any:
    """Register `durable`'s run as a DBOS workflow; return the workflow function."""
    agent = _checkpointed(durable.agent, durable.transactional_tools, {})

    async def run(task: str) -> RunResult[Any]:
        # The workflow id is the run id: the same on every replay, and what callers wait on.
        return await agent.arun(task, run_id=DBOS.workflow_id)

    return DBOS.workflow(name=durable.workflow_name)(run)


def _checkpointed(
    agent: Agent[Any], transactional: frozenset[str], done: dict[int, Agent[Any]]
) -> Agent[Any]:
    """A copy of `agent`, and of every agent it may hand off to, whose runs checkpoint."""
    if id(agent) in done:  # agents may hand the conversation back and forth
        return done[id(agent)]
    copied = copy.copy(agent)  # the caller's agent keeps making plain runs
    done[id(agent)] = copied

    def make_run(agent: Agent[Any], approver: Approver | None) -> _run.Run[Any]:
        return _CheckpointedRun(agent, approver, transactional)

    copied._run_type = make_run
    # DBOS's steps are this run's checkpoints; a checkpoint store as well would refuse the
    # run id when the workflow is replayed on recovery (it is already in the store).
    copied.checkpoints = None
    copied._handoff_branches = {
        branch: (about, _checkpointed(target, transactional, done))
        for branch, (about, target) in agent._handoff_branches.items()
    }
    return copied
