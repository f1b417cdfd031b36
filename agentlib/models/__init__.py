"""Model backends, all behind the `Model` protocol in `agentlib.models.base`.

Backends with heavy dependencies (`OpenAIModel`, `OutlinesModel`, `LocalModel`) are imported
lazily, on first attribute access, so `import agentlib` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agentlib.models.base import (
    GenerationPath,
    Message,
    Model,
    ModelCapabilities,
    ModelResponse,
    OutputSchema,
)
from agentlib.models.testing import FunctionModel, ScriptedModel

if TYPE_CHECKING:
    from agentlib.models.local import LocalModel
    from agentlib.models.openai import OpenAIModel
    from agentlib.models.outlines import OutlinesModel

__all__ = [
    "FunctionModel",
    "GenerationPath",
    "LocalModel",
    "Message",
    "Model",
    "ModelCapabilities",
    "ModelResponse",
    "OpenAIModel",
    "OutlinesModel",
    "OutputSchema",
    "ScriptedModel",
]

_LAZY = {
    "OpenAIModel": "agentlib.models.openai",
    "OutlinesModel": "agentlib.models.outlines",
    "LocalModel": "agentlib.models.local",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agentlib.models' has no attribute {name!r}")
