"""The exact public surface (as httpx's tests/test_exported_members.py pins its own)."""

from __future__ import annotations

import inspect

import agentlib

EXPORTED = {
    "Agent",
    "AgentEvent",
    "AgentlibError",
    "ApprovalRequest",
    "ApprovalRequestEvent",
    "Approve",
    "CancelToken",
    "ConfigurationError",
    "Conversation",
    "Deny",
    "ErrorEvent",
    "FinalAnswerEvent",
    "FunctionModel",
    "Generation",
    "LocalModel",
    "Message",
    "MissingExtraError",
    "Model",
    "ModelCapabilities",
    "ModelError",
    "ModelOutputError",
    "ModelResponse",
    "Observation",
    "OpenAIModel",
    "OutlinesModel",
    "OutputSchema",
    "RunFinishedEvent",
    "RunResult",
    "ScriptedModel",
    "Step",
    "StepStartedEvent",
    "StopReason",
    "StoreError",
    "TestModel",
    "TextEvent",
    "ThoughtEvent",
    "Tool",
    "ToolCall",
    "ToolCallEvent",
    "ToolError",
    "ToolResultEvent",
    "Toolset",
    "Usage",
    "agenerate",
    "agenerate_result",
    "fence_untrusted",
    "generate",
    "generate_result",
    "render_observation",
    "tool",
}


def test_the_exported_names_are_exactly_the_public_api() -> None:
    assert set(agentlib.__all__) == EXPORTED
    assert {name for name in dir(agentlib) if not name.startswith("_")} == EXPORTED
    defined = {
        name
        for name, value in vars(agentlib).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    defined -= {"annotations", "TYPE_CHECKING"}
    lazy = {"Conversation", "LocalModel", "OpenAIModel", "OutlinesModel"}
    assert defined - lazy <= EXPORTED and EXPORTED - lazy <= defined


def test_every_public_class_reports_agentlib_as_its_module() -> None:
    classes = [getattr(agentlib, name) for name in sorted(EXPORTED)]
    wrong = {
        cls.__name__: cls.__module__
        for cls in classes
        if inspect.isclass(cls) and cls.__module__ != "agentlib"
    }
    assert wrong == {}
