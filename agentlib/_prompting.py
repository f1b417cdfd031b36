"""What the loop shows the model besides the step (which `StepFormat` renders and echoes).

The observation messages, the history fitted to the context window, and the check that a
task is not empty and fits before the model is called.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentlib.errors import ConfigurationError
from agentlib.models.base import Message, Model, TokenCounter
from agentlib.steps import Observation

__all__ = ["check_task", "fit_to_context", "observation_message"]

SHORTENED = "…[shortened to fit the context: {total} characters]"
CHARS_PER_TOKEN = 4  # a deliberate over-estimate for English and code; keeps prompts in budget


def check_task(task: str, model: Model, *, system_prompt: str, reserve_tokens: int) -> None:
    """Refuse a task that is empty or cannot fit the model's context, before the model runs.

    The task's length is counted with the model's tokenizer when it has one (`TokenCounter`),
    else estimated from its characters.

    Raises:
        ConfigurationError: The task is empty, or longer than what fits.
    """
    if not isinstance(task, str) or not task.strip():
        raise ConfigurationError(
            f"the task is empty ({task!r}); pass the question or instruction to work on"
        )
    window = model.capabilities.context_window
    if len(task) + len(system_prompt) + reserve_tokens <= window:
        return  # a token holds at least one character: this fits without counting
    task_tokens = _count(model, task)
    available = window - _count(model, system_prompt) - reserve_tokens
    if task_tokens > available:
        raise ConfigurationError(
            f"the task is {task_tokens} tokens long but at most {max(0, available)} fit in "
            f"{model.name}'s context window of {window} tokens (after the system prompt and "
            f"{reserve_tokens} tokens kept for the reply); shorten the task or use a model "
            "with a larger context"
        )


def _count(model: Model, text: str) -> int:
    if isinstance(model, TokenCounter):
        return model.count_tokens(text)
    return len(text) // CHARS_PER_TOKEN


def observation_message(observations: Sequence[Observation], *, repeated: bool = False) -> str:
    """The user message that carries a step's observations back to the model."""
    parts = []
    for observation in observations:
        status = "error" if observation.is_error else "result"
        parts.append(f"Observation ({observation.tool_name} {status}):\n{observation.content}")
    if repeated:
        # Small models (seen with SmolLM2-135M) loop on a call whose result they already have;
        # the loop stops them after max_repeated_calls, and this tells them why first.
        parts.append(
            "You already made this exact call and got this result. Do not repeat it: "
            "give the final_answer now, or try something different."
        )
    return "\n\n".join(parts)


def fit_to_context(
    messages: list[Message], *, context_window: int, reserve_tokens: int, first: int
) -> list[Message]:
    """Shorten observations (oldest first, visibly) until the prompt fits the context window.

    Only messages from index `first` on are shortened: the system prompt, the conversation's
    history (already fitted by its memory strategy) and the task stay whole, and so does the
    newest message.
    """
    budget_chars = max(1, context_window - reserve_tokens) * CHARS_PER_TOKEN
    total = sum(len(message.content) for message in messages)
    if total <= budget_chars:
        return messages
    fitted = list(messages)
    for keep in (400, 100, 0):
        for position in range(first, len(fitted) - 1):
            message = fitted[position]
            if message.role != "user" or len(message.content) <= keep + 80:
                continue
            shortened = message.content[:keep] + SHORTENED.format(total=len(message.content))
            total -= len(message.content) - len(shortened)
            fitted[position] = Message(role="user", content=shortened)
            if total <= budget_chars:
                return fitted
    return fitted
