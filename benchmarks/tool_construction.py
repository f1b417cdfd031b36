"""Cold cost of building tools and the step schema for large, MCP-like toolsets.

MCP servers bring hundreds of tools, each a JSON-schema spec; an agent builds one `Tool` per
spec (`Tool.from_schema`, the path `MCPToolset` uses) and then the step format over all of
them. "Cold" is the first build in a fresh process (imports of agentlib and jsonschema are
done before the clock starts, so the number is the build, not the imports); each size runs in
its own subprocess, `--repeats` times, and the median is reported.

    python benchmarks/tool_construction.py [--sizes 100 300] [--repeats 5]

Target (issue 18): tools + step schema for 300 tools <= 50 ms cold. Wall time on a shared,
loaded machine overstates it several times over; the CPU-time column (this process's
`process_time`) is the steadier number there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

_TYPES = (
    {"type": "string", "description": "A name or key."},
    {"type": "integer", "description": "A count.", "minimum": 0},
    {"type": "number", "description": "An amount."},
    {"type": "boolean", "description": "A switch."},
    {"type": "string", "enum": ["asc", "desc"], "description": "An order."},
    {"type": "array", "items": {"type": "string"}, "description": "A list of names."},
)


def mcp_like_specs(count: int) -> list[dict[str, object]]:
    """`count` tool specs shaped like a real MCP `tools/list` reply (1 to 6 parameters)."""
    specs = []
    for index in range(count):
        width = 1 + index % 6
        properties = {
            f"param_{slot}": dict(_TYPES[(index + slot) % len(_TYPES)]) for slot in range(width)
        }
        if index % 7 == 0:  # a nested object, as servers with option objects send
            properties["options"] = {
                "type": "object",
                "properties": {"verbose": {"type": "boolean"}, "limit": {"type": "integer"}},
            }
        specs.append(
            {
                "name": f"service_{index % 13}_action_{index}",
                "description": f"Perform action {index} on service {index % 13}.",
                "inputSchema": {
                    "type": "object",
                    "properties": properties,
                    "required": list(properties)[: 1 + width // 2],
                },
            }
        )
    return specs


_CHILD = """
import json, sys, time
import agentlib, jsonschema, pydantic
# pydantic's first TypeAdapter scans entry points for plugins (~60 ms, once per process, paid
# by any pydantic use, the MCP SDK's included): done here so the clock measures the build.
pydantic.TypeAdapter(int)
from agentlib import Tool
from agentlib.step_format import StepFormat
sys.path.insert(0, sys.argv[2])
from tool_construction import mcp_like_specs
specs = mcp_like_specs(int(sys.argv[1]))
def run(**arguments):
    return arguments
cpu = time.process_time()
start = time.perf_counter()
tools = [Tool.from_schema(s["name"], s["description"], s["inputSchema"], run) for s in specs]
built = time.perf_counter()
step = StepFormat.build(tools, str)
done = time.perf_counter()
cpu = time.process_time() - cpu
assert len(step.tool_names) == len(specs)
print(json.dumps({"tools": built - start, "step": done - built, "total": done - start, "cpu": cpu}))
"""


def cold(size: int) -> dict[str, float]:
    """One cold build of `size` tools and their step schema, in a fresh process."""
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, str(size), str(Path(__file__).resolve().parent)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    print(
        f"python {platform.python_version()} on {platform.machine()}; median of "
        f"{arguments.repeats} fresh processes (milliseconds)\n"
    )
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| tools | construct tools | step schema | total (wall) | total (CPU) |")
    print("|---:|---:|---:|---:|---:|")
    for size in arguments.sizes:
        runs = [cold(size) for _ in range(arguments.repeats)]
        median = {key: statistics.median(run[key] for run in runs) * 1000 for key in runs[0]}
        print(
            f"| {size} | {median['tools']:.1f} | {median['step']:.1f} | {median['total']:.1f} "
            f"| {median['cpu']:.1f} |"
        )


if __name__ == "__main__":
    main()
