"""`StepFormat`: the one owner of "the model's next step".

For a toolset and an output type it builds the step's JSON schema, describes the format in
the prompt, echoes an accepted step into the history, parses and validates a reply once
(carrying the validated arguments forward), and hands a backend the step's branches as data
(`OutputSchema.actions`). With the default `StepOptions`:

```json
{"thought": "<bounded string>",
 "action": {"anyOf": [{"tool": "<name>", "arguments": {<that tool's argument schema>}},
                      ...,
                      {"tool": "final_answer", "answer": <the output type's schema>}]}}
```

a union discriminated by `tool`, with `additionalProperties: false` everywhere and every string
bounded. An agent with handoffs (`Agent(handoffs=[...])`) has one more branch kind per target,
`{"tool": "transfer_to_<agent>", "arguments": {}}`, which is always the only action of its step.
With `parallel_calls > 1` the step holds `"actions"`: either the final answer alone or one to
`parallel_calls` tool calls, never both. The options (`agentlib.models.profiles.StepOptions`)
move the thought, rename the keys and change how tools are described; a model's
profile chooses them. Formats are cached per (toolset, output type, options): building one
again costs a dictionary look-up.

This module builds the schema and writes steps; the prompt text is written by
`agentlib._step_prompt`, replies are read by `agentlib._step_parsing` (`ParsedStep`,
`ParsedCall` and `extract_json` are re-exported here, their public home), and the budget
arithmetic is `agentlib._step_schema`'s.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from agentlib import _step_parsing, _step_prompt
from agentlib import _tool_call_format as tool_call_format
from agentlib._json_schema import bound_and_close, bound_arrays
from agentlib._output import OutputSpec, output_spec
from agentlib._step_parsing import (
    ParsedCall,
    ParsedStep,
    Rejection,
    extract_json,
    rejected_values,
)
from agentlib._step_schema import MAX_ITEMS as _MAX_ITEMS
from agentlib._step_schema import NO_ARGUMENTS as _NO_ARGUMENTS
from agentlib._step_schema import answer_object as _answer_object
from agentlib._step_schema import content_bytes as _content_bytes
from agentlib._step_schema import fitting as _fitting
from agentlib._step_schema import skeleton as _skeleton
from agentlib._step_schema import string_costs as _string_costs
from agentlib._string_constraints import Path, tighten
from agentlib.errors import ConfigurationError
from agentlib.models.base import FINAL_ANSWER, ActionBranch, OutputSchema, StepActions
from agentlib.models.profiles import StepOptions, WorkedExample
from agentlib.tool import Tool

__all__ = [
    "FINAL_ANSWER",
    "MIN_CALL_STRING_LENGTH",
    "ParsedCall",
    "ParsedStep",
    "Rejection",
    "StepFormat",
    "StepOptions",
    "extract_json",
    "rejected_values",
]

_SCHEMA_NAME = "agent_step"
MIN_CALL_STRING_LENGTH = 16
"""The shortest bound a call's strings get when a step may hold several calls: the step holds
fewer calls rather than shorter strings (`StepFormat.calls_per_step`)."""
_ToolKey = tuple[str, str, str]
_HandoffKey = tuple[str, str]
"""A handoff branch: `(branch name, description)`."""


class StepFormat:
    """The step format for one toolset and output type (immutable; use `StepFormat.build`).

    Attributes:
        output: The step's JSON schema for models, with its branches as data.
        answer: The output type's schema and validator.
        tool_names: The tools the step may call, in order.
        parallel_calls: How many tool calls one step may hold.
        options: The format's variants.
        max_tokens: The token budget the string bounds were fitted to (`None`: not fitted).
        thought_length: The thought's bound in characters, after fitting.
        string_length: The largest bound given to a free string, after fitting.
        action_key: `action`, or `actions` when a step may hold several calls.
        handoff_names: The handoff branches (`transfer_to_<agent>`), in order.
    """

    __slots__ = (
        "_call_branches",
        "_excluded",
        "_handoffs",
        "_keys",
        "_tools",
        "action_key",
        "answer",
        "calls_per_step",
        "handoff_names",
        "max_tokens",
        "name_key",
        "options",
        "output",
        "parallel_calls",
        "string_length",
        "thought_length",
        "tool_names",
    )

    def __init__(
        self,
        tool_keys: tuple[_ToolKey, ...],
        answer: OutputSpec,
        *,
        parallel_calls: int,
        options: StepOptions,
        max_tokens: int | None = None,
        handoffs: tuple[_HandoffKey, ...] = (),
        excluded: frozenset[Rejection] = frozenset(),
    ) -> None:
        if parallel_calls < 1:
            raise ConfigurationError(f"parallel_calls must be at least 1, got {parallel_calls}")
        clashes = sorted({name for name, _ in handoffs} & {key[0] for key in tool_keys})
        if clashes or len({name for name, _ in handoffs}) < len(handoffs):
            raise ConfigurationError(
                f"handoff names must differ from each other and from the tools' names; "
                f"clashing: {', '.join(clashes) or 'two handoffs'}; give the agents distinct names"
            )
        self._handoffs = handoffs
        self.handoff_names = tuple(name for name, _ in handoffs)
        self._keys = tool_keys
        self._tools = tuple(
            (name, description, json.loads(parameters))
            for name, description, parameters in tool_keys
        )
        self.answer = answer
        self.tool_names = tuple(key[0] for key in tool_keys)
        self.parallel_calls = parallel_calls
        self.options = options
        self.max_tokens = max_tokens
        self.action_key = "actions" if parallel_calls > 1 else "action"
        # The `<tool_call>` blocks hold `{"name": ..., "arguments": ...}`, as in training.
        self.name_key = "name" if options.tool_format == "tool_call" else options.key_shape
        self._excluded = excluded
        self._call_branches: tuple[list[dict[str, Any]], dict[str, Any]] = ([], {})
        self.calls_per_step = parallel_calls
        """The most tool calls the schema lets one step hold: `parallel_calls`, fewer when
        that many would leave a call's strings shorter than `MIN_CALL_STRING_LENGTH` within
        `max_tokens` (`_schemas`)."""
        schema, constraint = self._schemas()
        self.output = OutputSchema(
            _SCHEMA_NAME,
            schema,
            actions=self._actions(),
            constraint=constraint,
            grammar=self._grammar(),
        )

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        tools: Sequence[Tool],
        output_type: Any = str,
        *,
        parallel_calls: int = 1,
        options: StepOptions | None = None,
        max_tokens: int | None = None,
        handoffs: Sequence[tuple[str, str]] = (),
    ) -> StepFormat:
        """Build (or fetch from the cache) the format for `tools` and `output_type`.

        Args:
            tools: The tools the model may call.
            output_type: The type of the final answer (or a raw JSON schema as a dict).
            parallel_calls: The most tool calls one step may hold.
            options: The format's variants; the defaults when omitted.
            max_tokens: The step's token budget: string bounds shrink so that a step always
                closes within it (see `fit_strings`); `None` keeps the options' bounds.
            handoffs: `(branch name, description)` of each agent the model may hand the
                conversation to.
        """
        options = options or StepOptions()
        keys = tuple(_tool_key(item) for item in tools)
        if isinstance(output_type, Mapping):
            output_key: tuple[str, Any] = ("json-schema", json.dumps(output_type, sort_keys=True))
        else:
            output_key = ("type", output_type)
        handoff_keys = tuple((name, description) for name, description in handoffs)
        try:
            return _cached(keys, output_key, parallel_calls, options, max_tokens, handoff_keys)
        except TypeError:  # an unhashable output type: build without the cache
            return cls(
                keys,
                output_spec(output_type),
                parallel_calls=parallel_calls,
                options=options,
                max_tokens=max_tokens,
                handoffs=handoff_keys,
            )

    def narrowed(self) -> StepFormat:
        """This format with its thought and string bounds halved (for a retry after a cut)."""
        options = replace(
            self.options,
            max_thought_length=max(1, self.thought_length // 2),
            max_string_length=max(1, self.string_length // 2),
        )
        return StepFormat(
            self._keys,
            self.answer,
            parallel_calls=self.parallel_calls,
            options=options,
            max_tokens=self.max_tokens,
            handoffs=self._handoffs,
            excluded=self._excluded,
        )

    def excluding(self, rejected: Sequence[Rejection]) -> StepFormat:
        """This format with `rejected` values made impossible under constraint (for a retry).

        The step's schema is unchanged; only `output.constraint` (what token-level
        constraint engines enforce) refuses each string at its place, so a retry after a
        validation failure cannot write the failed value again.
        """
        excluded = self._excluded | frozenset(rejected)
        if excluded == self._excluded:
            return self
        return StepFormat(
            self._keys,
            self.answer,
            parallel_calls=self.parallel_calls,
            options=self.options,
            max_tokens=self.max_tokens,
            handoffs=self._handoffs,
            excluded=excluded,
        )

    def only(self, name: str | None) -> StepFormat:
        """This format with one tool (or handoff) left, or none (`None`): the final answer.

        Tool-first decoding (`agentlib._tool_first`) writes a step's arguments under it, after
        the tool was chosen, so the model sees that tool's description alone. The values
        excluded from that branch (`excluding`) stay excluded.
        """
        return StepFormat(
            tuple(key for key in self._keys if key[0] == name),
            self.answer,
            parallel_calls=self.parallel_calls,
            options=self.options,
            max_tokens=self.max_tokens,
            handoffs=tuple(item for item in self._handoffs if item[0] == name),
            excluded=frozenset(
                item for item in self._excluded if item[0] == (name or FINAL_ANSWER)
            ),
        )

    def _payload_key(self, name: str) -> str:
        return "answer" if name == FINAL_ANSWER and self.name_key == "tool" else "arguments"

    def _branch_schema(self, name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        payload_key = self._payload_key(name)
        return {
            "type": "object",
            "properties": {
                self.name_key: {"type": "string", "const": name},
                payload_key: dict(payload),
            },
            "required": [self.name_key, payload_key],
            "additionalProperties": False,
        }

    def _final_payload(self) -> dict[str, Any]:
        """The final branch's payload: the answer, or `{"answer": ...}` in the `name` shape."""
        if self.name_key == "tool":
            return self.answer.json_schema
        return _answer_object(self.answer.json_schema)

    def _with_items(self, name: str, payload: Mapping[str, Any], calls: int) -> dict[str, Any]:
        """`payload` with `maxItems` on every array without one, fitted to the token budget.

        The most items (up to `_MAX_ITEMS`) for which `calls` such actions, strings empty,
        take at most half the budget; at least one item (more only if `minItems` says so).
        """
        if self.max_tokens is None or '"array"' not in json.dumps(payload):
            return dict(payload)
        for items in range(_MAX_ITEMS, 1, -1):
            bounded = bound_arrays(payload, items)
            _, fixed = _string_costs(bounded)
            if self._skeleton_length(name, bounded, calls) + calls * fixed <= self.max_tokens // 2:
                return bounded
        return bound_arrays(payload, 1)

    def _skeleton_length(self, name: str, payload: Mapping[str, Any], calls: int) -> int:
        """The UTF-8 bytes of a step of `calls` such actions with every free string empty."""
        empty = _skeleton(payload)
        if name != FINAL_ANSWER:
            action = self.call_action(name, empty if isinstance(empty, dict) else {})
        elif self.name_key == "tool":
            action = self.final_action(empty)  # the payload is the answer itself
        else:
            action = self.final_action(empty.get("answer") if isinstance(empty, dict) else None)
        return len(self._line("", [action] * calls).encode())

    def _bounds(self, payloads: Sequence[tuple[str, Mapping[str, Any], int]]) -> list[int]:
        """The thought's bound, then each payload's string bound, fitted to `max_tokens`.

        Counted in UTF-8 bytes, the worst case in tokens: every vocabulary token holds at
        least one byte (checked on the SmolLM2 vocabulary in the tests). A free string of `n`
        characters takes at most `worst_case_bytes(n)`: under constraint at most a quarter of
        its characters may be escaped or non-ASCII (`agentlib._string_constraints`). The
        budget is shared by the thought (at most a quarter of it, and at most half of what
        the widest branch's syntax leaves), then by each branch's free strings (its `calls`
        calls per step). Arrays have `maxItems` by then (`bound_arrays`); numbers count at
        their widest under constraint (`agentlib._number_constraints`). Not covered: strings
        with a pattern or format but no `maxLength` (counted empty), values of any type
        (`Any`, untyped), and toolsets whose syntax alone fills the budget.
        """
        thought = self.options.max_thought_length
        strings = self.options.max_string_length
        if self.max_tokens is None:
            return [thought] + [strings] * len(payloads)
        budget = self.max_tokens
        costs = [
            (self._skeleton_length(name, payload, calls), *_string_costs(payload), calls)
            for name, payload, calls in payloads
        ]
        if self.options.thought != "none":
            widest = max((skeleton + calls * fixed for skeleton, _, fixed, calls in costs))
            thought = min(thought, _fitting(min(budget // 4, (budget - widest) // 2)))
        bounds = [thought]
        spent = _content_bytes(thought) if self.options.thought != "none" else 0
        for skeleton, free, fixed, calls in costs:
            room = budget - spent - skeleton - calls * fixed
            bounds.append(min(strings, _fitting(room // max(1, calls * free))))
        return bounds

    def _fitted(
        self, calls: int
    ) -> tuple[list[tuple[str, Mapping[str, Any], int]], int, list[int]]:
        """Each branch's payload with `calls` calls per step, and the bounds fitted to them."""
        payloads: list[tuple[str, Mapping[str, Any], int]] = [
            (name, self._with_items(name, parameters, calls), calls)
            for name, _, parameters in self._tools
        ]
        payloads.append((FINAL_ANSWER, self._with_items(FINAL_ANSWER, self._final_payload(), 1), 1))
        thought_bound, *string_bounds = self._bounds(payloads)
        return payloads, thought_bound, string_bounds

    def _schemas(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The step's schema, and the stricter one for constraint engines (`tighten`).

        With several calls per step the budget is shared by all of them: eight calls of a tool
        with two strings left one character for each under 512 tokens, and SmolLM2 wrote
        `"artist": "T"` eight times (BFCL parallel). So the step holds fewer calls
        (`calls_per_step`) until each call's strings get `MIN_CALL_STRING_LENGTH` characters
        (or `max_string_length`, if smaller), and one call at least.
        """
        calls = self.parallel_calls
        payloads, thought_bound, string_bounds = self._fitted(calls)
        floor = min(self.options.max_string_length, MIN_CALL_STRING_LENGTH)
        while calls > 1 and min(string_bounds[:-1], default=floor) < floor:
            calls -= 1
            payloads, thought_bound, string_bounds = self._fitted(calls)
        self.calls_per_step = calls
        self.thought_length = thought_bound
        self.string_length = max(string_bounds)
        bounded = [
            (name, bound_and_close(payload, bound))
            for (name, payload, _), bound in zip(payloads, string_bounds, strict=True)
        ]
        thought = {"type": "string", "maxLength": thought_bound}
        plain = [self._branch_schema(name, payload) for name, payload in bounded]
        strict = [
            self._branch_schema(
                name,
                tighten(
                    payload, placeholders=name != FINAL_ANSWER, excluded=self._excluded_in(name)
                ),
            )
            for name, payload in bounded
        ]
        handoffs = [self._branch_schema(name, _NO_ARGUMENTS) for name in self.handoff_names]
        # The `<tool_call>` grammar (`_grammar`) embeds the strict calls; its plain-text answer
        # keeps the schema's bound (the format has its own answer lexeme).
        self._call_branches = ([*strict[:-1], *handoffs], plain[-1])
        schema = self._assemble(thought, plain, handoffs)
        constraint = self._assemble(tighten(thought, placeholders=False), strict, handoffs)
        return schema, constraint

    def _excluded_in(self, name: str) -> dict[Path, list[str]]:
        """The rejected values of branch `name`, by path in its payload (`tighten`'s shape)."""
        found: dict[Path, list[str]] = {}
        prefix = self._final_prefix() if name == FINAL_ANSWER else ()
        for branch, path, value in sorted(self._excluded):
            if branch == name:
                found.setdefault((*prefix, *path), []).append(value)
        return found

    def _final_prefix(self) -> Path:
        """Where the answer sits in the final branch's payload."""
        return () if self.name_key == "tool" else ("answer",)

    def _assemble(
        self,
        thought: dict[str, Any],
        branches: list[dict[str, Any]],
        handoffs: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """The step object from the thought's schema and every branch (tools, then final)."""
        *calls, final = branches
        action: dict[str, Any]
        if self.parallel_calls == 1:
            action = {"anyOf": [*calls, *handoffs, final]}
        else:
            # Whatever the parser refuses the schema makes impossible: the final answer (or a
            # handoff) alone, or tool calls only (issue 25, item 1).
            alone = {
                "type": "array",
                "items": {"anyOf": [*handoffs, final]} if handoffs else final,
                "minItems": 1,
                "maxItems": 1,
            }
            shapes = [alone]
            if calls:
                shapes.insert(
                    0,
                    {
                        "type": "array",
                        "items": {"anyOf": calls},
                        "minItems": 1,
                        "maxItems": self.calls_per_step,
                    },
                )
            action = {"anyOf": shapes}
        properties: dict[str, Any] = {}
        if self.options.thought == "before":
            properties["thought"] = thought
        properties[self.action_key] = action
        if self.options.thought == "after":
            properties["thought"] = thought
        # Closed here and in each branch (`bound_and_close`): one walk over 300 tools, not two.
        return {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        }

    def _grammar(self) -> str | None:
        """The `<tool_call>` format's grammar (`None` for the JSON format: its schema is it)."""
        if self.options.tool_format != "tool_call":
            return None
        calls, final = self._call_branches
        answer = final["properties"]["arguments"]["properties"]["answer"]
        return tool_call_format.grammar(calls, answer, parallel_calls=self.calls_per_step)

    def _actions(self) -> StepActions:
        branches = [
            ActionBranch(
                name=name,
                description=description or f"Call the tool '{name}'.",
                parameters=parameters,
            )
            for name, description, parameters in self._tools
        ]
        branches.extend(
            ActionBranch(
                name=name, description=description, parameters=_NO_ARGUMENTS, is_handoff=True
            )
            for name, description in self._handoffs
        )
        branches.append(
            ActionBranch(
                name=FINAL_ANSWER,
                description="Give the final answer to the task.",
                parameters=_answer_object(self.answer.json_schema),
                is_final=True,
            )
        )
        return StepActions(
            branches=tuple(branches), parallel_calls=self.parallel_calls, assemble=self.assemble
        )

    # -- writing steps --------------------------------------------------------------------

    def step(self, thought: str, actions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """A step as JSON data, from its thought and its action objects."""
        action: Any = list(actions) if self.parallel_calls > 1 else actions[0]
        if self.options.thought == "none":
            return {self.action_key: action}
        if self.options.thought == "after":
            return {self.action_key: action, "thought": thought}
        return {"thought": thought, self.action_key: action}

    def call_action(self, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """One tool-call action as JSON data (`arguments` is used as given, not copied)."""
        return {self.name_key: name, "arguments": arguments}

    def final_action(self, answer: Any) -> dict[str, Any]:
        """The final-answer action as JSON data."""
        payload = _jsonable(answer)
        if self.name_key == "tool":
            return {"tool": FINAL_ANSWER, "answer": payload}
        return {"name": FINAL_ANSWER, "arguments": {"answer": payload}}

    def assemble(self, thought: str, calls: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
        """The step's text from a thought and `(branch name, arguments)` pairs.

        For the final answer the arguments are `{"answer": ...}` (its `ActionBranch`'s
        parameters); backends with native tool calls use this to turn calls into a step.
        """
        actions = [
            self.final_action(arguments.get("answer") if isinstance(arguments, Mapping) else None)
            if name == FINAL_ANSWER
            else self.call_action(name, arguments)
            for name, arguments in calls
        ]
        return self.render_step(thought, actions)

    def render_step(self, thought: str, actions: Sequence[Mapping[str, Any]]) -> str:
        """A step's text in this format, from its thought and its action objects."""
        if self.options.tool_format == "tool_call":
            return tool_call_format.render(actions)
        return json.dumps(self.step(thought, actions), ensure_ascii=False, default=str)

    def echo(self, parsed: ParsedStep) -> str:
        """The accepted step as compact JSON, as the model sees it in the history."""
        if parsed.is_final:
            actions = [self.final_action(parsed.answer)]
        elif parsed.handoff is not None:
            actions = [self.call_action(parsed.handoff, {})]
        else:
            actions = [self.call_action(call.name, call.arguments) for call in parsed.calls]
        return self.render_step(parsed.thought, actions)

    # -- the prompt (written by `agentlib._step_prompt`) ------------------------------------

    def render_prompt(
        self, instructions: str | None, *, examples: Sequence[WorkedExample] = ()
    ) -> str:
        """The system prompt: instructions, worked examples, the format, its rules, the tools."""
        return _step_prompt.render_prompt(self, instructions, examples=examples)

    def describe(self, example: WorkedExample | None = None) -> str:
        """The format part of the prompt: filled examples, never a template to copy.

        Small models copy template placeholders (`"<tool name>"`, `{...}`) as values (issue
        25, item 4), so the prompt shows real steps: a call of `example`'s tool (or of the
        first tool, with arguments generated from its schema) and a final answer.
        """
        return _step_prompt.describe(self, example)

    def _line(self, thought: str, actions: Sequence[Mapping[str, Any]]) -> str:
        return self.render_step(thought, actions)

    def rules(self) -> str:
        """The rules of the format, as prompt lines."""
        return _step_prompt.rules(self)

    def describe_tools(self) -> str:
        """Each tool with its arguments, in the style the options ask for."""
        return _step_prompt.describe_tools(self)

    def render_example(self, example: WorkedExample) -> str:
        """A worked example (task, call, observation, answer) in this format's shape."""
        return _step_prompt.render_example(self, example)

    # -- reading steps (`agentlib._step_parsing`) ------------------------------------------

    def parse(self, text: str, tools: Mapping[str, Tool]) -> ParsedStep:
        """Validate a model's raw step against the format and the live tools, once.

        Raises:
            ModelOutputError: The step is invalid; the message names the tool, the field and
                the problem, ready to be shown to the model on a retry.
        """
        return _step_parsing.parse(self, text, tools)


def _tool_key(item: Tool) -> _ToolKey:
    # Not sort_keys: property order is generation order for constrained decoding.
    return (item.name, item.description, json.dumps(item.parameters))


@functools.lru_cache(maxsize=128)
def _cached(
    tool_keys: tuple[_ToolKey, ...],
    output_key: tuple[str, Any],
    parallel_calls: int,
    options: StepOptions,
    max_tokens: int | None,
    handoffs: tuple[_HandoffKey, ...] = (),
) -> StepFormat:
    kind, value = output_key
    output_type = json.loads(value) if kind == "json-schema" else value
    return StepFormat(
        tool_keys,
        output_spec(output_type),
        parallel_calls=parallel_calls,
        options=options,
        max_tokens=max_tokens,
        handoffs=handoffs,
    )


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    return value
