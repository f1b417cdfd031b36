"""Any llama.cpp GGUF file through Outlines: here the embedded one stands in for a bigger model."""

import outlines
from llama_cpp import Llama

from agentlib import Agent, OutlinesModel, tool
from agentlib.models.local import default_model_path

# Put the path of a stronger model here, e.g. a Qwen2.5-7B-Instruct GGUF file.
llama = Llama(model_path=str(default_model_path()), n_threads=1, n_ctx=2048, verbose=False)
model = OutlinesModel(outlines.from_llamacpp(llama), inference_kwargs={"temperature": 0.0})


@tool
def weather(city: str) -> str:
    """Get today's weather in a city.

    Args:
        city: The city's name, like Paris.
    """
    return {"paris": "sunny, 21 °C"}.get(city.lower(), "unknown")


agent = Agent(model, tools=[weather], max_steps=1, max_tokens_per_step=200)
result = agent.run("What is the weather in Paris?")
step = result.steps[0]
assert step.generation_path == "constrained"  # the step was valid by construction
print(step.calls or step.final_answer)
print(model.guide_cache_info())  # the step schema was compiled once, then cached
