"""agentlib: agents that use tools and return typed, schema-valid output.

The public API is re-exported here; nothing else is public. Backends with heavy dependencies
(`OpenAIModel`, `OutlinesModel`, `LocalModel`) and `Conversation` load on first use, so
`import agentlib` is light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentlib import _lazy
from agentlib.agent import Agent, CancelToken
from agentlib.approval import Approve, Deny
from agentlib.errors import (
    AgentlibError,
    ConfigurationError,
    MissingExtraError,
    ModelError,
    ModelOutputError,
    StoreError,
    ToolError,
)
from agentlib.models.base import Message, Model, ModelCapabilities, ModelResponse, OutputSchema
from agentlib.models.testing import FunctionModel, ScriptedModel, TestModel
from agentlib.steps import (
    AgentEvent,
    ApprovalRequest,
    ApprovalRequestEvent,
    ErrorEvent,
    FinalAnswerEvent,
    Observation,
    RunFinishedEvent,
    RunResult,
    Step,
    StepStartedEvent,
    StopReason,
    TextEvent,
    ThoughtEvent,
    ToolCall,
    ToolCallEvent,
    ToolResultEvent,
    Usage,
)
from agentlib.structured import Generation, agenerate, agenerate_result, generate, generate_result
from agentlib.tool import Tool, Toolset, fence_untrusted, render_observation, tool

if TYPE_CHECKING:
    from agentlib.memory import Conversation
    from agentlib.models.local import LocalModel
    from agentlib.models.openai import OpenAIModel
    from agentlib.models.outlines import OutlinesModel

__version__ = "0.1.0"

__all__ = [
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
]


# Loaded on first use: agentlib.memory's record models cost ~45 ms of `import agentlib`
# (python -X importtime), and most programs never hold a conversation; the backends pull in
# their SDKs.
__getattr__, __dir__ = _lazy.lazy_exports(
    __name__,
    {
        "Conversation": "agentlib.memory",
        "LocalModel": "agentlib.models.local",
        "OpenAIModel": "agentlib.models.openai",
        "OutlinesModel": "agentlib.models.outlines",
    },
    __all__,
)

# Every public class reports the package as its module (`agentlib.Agent`, not
# `agentlib.agent.Agent`), as httpx does: where a class is defined is not part of the API. The
# four lazily loaded classes say so in their own bodies.
for _name in __all__:
    _value = globals().get(_name)
    if isinstance(_value, type):
        _value.__module__ = __name__
del _name, _value
