"""An agent that runs Python in the sandbox: two calls in one run share the session's state."""

from agentlib.tools.python import PythonInterpreter

from agentlib import Agent, ScriptedModel
from agentlib.models.testing import call, final

model = ScriptedModel(
    [
        call("python", "Store the numbers first.", code="numbers = [17, 23]"),
        call("python", "Now multiply them.", code="numbers[0] * numbers[1]"),
        final("391", "17 * 23 = 391."),
    ]
)
interpreter = PythonInterpreter()  # each run gets its own session through for_run()
agent = Agent(model, tools=[interpreter])
result = agent.run("What is 17 * 23?")

for step in result.steps[:2]:
    print(step.calls[0].arguments["code"], "->", step.observations[0].content)
print(result.output)  # 391
assert result.output == "391"
assert result.steps[1].observations[0].content == "Result: 391"
