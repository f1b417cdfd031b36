"""README's example: the embedded model answers with the calculator, offline."""

from agentlib import Agent, LocalModel
from agentlib.tools.calculator import calculator

agent = Agent(LocalModel(), tools=[calculator])  # SmolLM2-135M, embedded, offline
result = agent.run("What is 17 * 23?")
print(result.output)  # 391
print(result.stop_reason, result.generation_path)  # final_answer constrained
assert result.output is not None and "391" in result.output
