"""Stream a reply's text as it is generated."""

import asyncio
import os

from agentlib import Message
from agentlib.models import OpenAIModel


async def main() -> None:
    model = OpenAIModel(os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    messages = [Message(role="user", content="Say hello in three languages.")]
    async for piece in model.astream(messages, max_tokens=60):
        print(piece, end="", flush=True)
    print()


asyncio.run(main())
