"""One run's checkpoints: the snapshot of its state, and the writer that stores them in order.

The format is `agentlib._checkpoint`'s; the loop (`agentlib._run`, and `agentlib._run_tools`
for a step's calls) decides when to write: when the run starts, before a step's calls run
(they are in flight from then on), after each call of a step with several, after each step,
on a pause for approval, and at the end.
A call whose observation reached the store is never run again on resume; one that was in
flight is reported as `interrupted` (`interrupted`), or run again if its tool is idempotent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agentlib import _checkpoint
from agentlib.errors import ConfigurationError
from agentlib.memory._format import dump_step
from agentlib.steps import ApprovalRequest, Observation, StopReason, ToolCall

if TYPE_CHECKING:
    from agentlib._approval_flow import Resolved
    from agentlib._run_state import Accepted, RunState
    from agentlib.agent import Agent
    from agentlib.memory.stores import CheckpointStore

__all__ = ["CheckpointWriter", "interrupted", "open_step", "snapshot"]


def snapshot(
    agent: Agent[Any],
    state: RunState,
    status: _checkpoint.RunStatus,
    *,
    step: _checkpoint.OpenStep | None = None,
    pending: tuple[ApprovalRequest, ...] = (),
    decided: Mapping[str, Resolved] | None = None,
    stop_reason: StopReason | None = None,
    error: str | None = None,
    dumped_steps: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The run as it stands, as checkpoint data (`dumped_steps`: see `_checkpoint.dump`)."""
    return _checkpoint.dump(
        run_id=state.run_id,
        agent_name=agent.name,
        status=status,
        tools=tuple(item.name for item in agent.tools),
        task=state.task,
        messages=state.messages,
        first_shortenable=state.first_shortenable,
        steps=state.steps,
        usage=state.usage,
        paths=state.paths,
        next_call_id=state.next_call_id,
        last_signature=state.last_signature,
        repeats=state.repeats,
        elapsed=time.perf_counter() - state.started,
        step=step,
        pending=pending,
        decisions={key: item.stored() for key, item in (decided or {}).items()},
        trace=state.trace.reference() if state.trace is not None else None,
        stop_reason=stop_reason,
        error=error,
        dumped_steps=dumped_steps,
    )


def open_step(
    accepted: Accepted, index: int, observations: tuple[Observation, ...] = ()
) -> _checkpoint.OpenStep:
    """The step as a checkpoint holds it while its calls run (or wait for approval)."""
    return _checkpoint.OpenStep(
        index=index,
        raw_output=accepted.response.text,
        retries=accepted.retries,
        generation_path=accepted.response.path,
        usage=accepted.usage,
        model_seconds=accepted.model_seconds,
        calls=accepted.calls,
        observations=observations,
    )


def interrupted(call: ToolCall) -> Observation:
    """What the model sees of a call that was running when the run's process died."""
    return Observation(
        call_id=call.id,
        tool_name=call.tool_name,
        content=(
            "interrupted: the run stopped while this call was running, so it may or may not "
            "have taken effect; it was not run again (check before repeating it)"
        ),
        is_error=True,
        error_type="Interrupted",
    )


class CheckpointWriter:
    """Writes one run's checkpoints to a store, in the order their snapshots were taken.

    Store calls are synchronous; they run in a worker thread, one at a time.
    """

    def __init__(self, agent: Agent[Any], state: RunState, store: CheckpointStore) -> None:
        self.agent = agent
        self.state = state
        self.store = store
        self._lock = asyncio.Lock()
        self._steps: list[dict[str, Any]] = []
        """The run's steps in their JSON form, so far (recorded steps never change)."""

    async def claim(self, *, check_unused: bool) -> None:
        """Write the new run's first checkpoint.

        Raises:
            ConfigurationError: `check_unused` and the run's id is in the store already.
        """
        run_id = self.state.run_id
        if check_unused:
            existing = await asyncio.to_thread(self.store.load_checkpoint, run_id)
            if existing is not None:
                raise ConfigurationError(
                    f"run {run_id!r} is already in the checkpoint store "
                    f"(status {existing.get('status')!r}); continue it with "
                    "agent.resume(run_id), or give the new run another id"
                )
        await self.save("running")

    async def save(self, status: _checkpoint.RunStatus, **parts: Any) -> None:
        """Write the run as it stands now (`parts`: as for `snapshot`)."""
        async with self._lock:  # taken under the lock, so a later snapshot is written later
            steps = self.state.steps
            self._steps.extend(dump_step(step) for step in steps[len(self._steps) :])
            data = snapshot(self.agent, self.state, status, dumped_steps=self._steps, **parts)
            await asyncio.to_thread(self.store.save_checkpoint, self.state.run_id, data)

    async def write(self, data: Mapping[str, Any]) -> None:
        """Write `data`, a snapshot taken earlier."""
        async with self._lock:
            await asyncio.to_thread(self.store.save_checkpoint, self.state.run_id, data)
