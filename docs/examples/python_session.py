"""Use a sandbox session directly: state, errors, limits, and a timeout that replaces the worker."""

from agentlib.tools.python import PythonSession, SandboxLimits

session = PythonSession(limits=SandboxLimits(timeout=1, memory_mb=256))

first = session.run(
    "import statistics\nscores = [3, 5, 8]\nprint('mean:', statistics.mean(scores))"
)
print(first.render())  # Printed: 5.333333333333333
print(session.run("max(scores)").value)  # 8: variables persist between calls
print(session.run("import os").error)  # os is not on the import allow-list
print(session.run("open('/etc/passwd').read()").error)  # the host's files are not there

timed_out = session.run("while True:\n    pass")
print(timed_out.error)  # timed out after 1 s; session state was lost ...
print(session.run("'scores' in dir()").value)  # False: a fresh worker took over

for name, description in session.protections.items():
    print(f"{name}: {description}")
session.close()

assert timed_out.state_lost
