"""Model backends, all behind the `Model` protocol in `agentlib.models.base`.

Backends with heavy dependencies (`OpenAIModel`, `OutlinesModel`, `LocalModel`) are imported
lazily, on first attribute access, so `import agentlib` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentlib._lazy import lazy_exports
from agentlib.models.base import (
    GenerationPath,
    Message,
    Model,
    ModelCapabilities,
    ModelResponse,
    OutputSchema,
    Sampling,
    SamplingModel,
)
from agentlib.models.testing import FunctionModel, ScriptedModel, TestModel

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
    "Sampling",
    "SamplingModel",
    "ScriptedModel",
    "TestModel",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "LocalModel": "agentlib.models.local",
        "OpenAIModel": "agentlib.models.openai",
        "OutlinesModel": "agentlib.models.outlines",
    },
    __all__,
)
