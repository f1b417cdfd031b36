"""A safe arithmetic tool: evaluates expressions without running code.

The expression is parsed with `ast` and only numbers, arithmetic operators, parentheses and a
few math functions are evaluated; anything else is refused. Exponents and results are bounded
so that `9**9**9` cannot eat the host's CPU or memory. For real computation, use the sandboxed
interpreter in `agentlib.tools.python`.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from agentlib import ToolError, tool

__all__ = ["EXAMPLE", "calculator", "evaluate"]

EXAMPLE = (
    "Example:\n"
    "Task: What is 6 + 4?\n"
    '{"thought": "I use the calculator.", '
    '"action": {"tool": "calculator", "arguments": {"expression": "6 + 4"}}}\n'
    "Observation (calculator result):\n"
    "10\n"
    '{"thought": "The result is 10.", "action": {"tool": "final_answer", "answer": "10"}}'
)
"""A worked example for the system prompt. Tiny models (SmolLM2-135M) need one: without it
they ramble in the thought and never give the final answer; with it they call the tool and
answer (seen with `agentlib run "What is 17 * 23?"`)."""

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "min": min,
    "max": max,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_MAX_EXPONENT = 10_000
_MAX_DIGITS = 4_000
_MAX_LENGTH = 500


def _check_size(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > _MAX_DIGITS * 4:
        raise ToolError("the result is too large to compute safely")
    return value


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise ToolError(f"exponents above {_MAX_EXPONENT} are not allowed")
        return _check_size(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        return _check_size(_FUNCTIONS[node.func.id](*(_evaluate(arg) for arg in node.args)))
    allowed = ", ".join(sorted(_FUNCTIONS))
    raise ToolError(
        f"unsupported element {ast.dump(node)[:60]!r}: use numbers, + - * / // % **, "
        f"parentheses, pi, e and the functions {allowed}"
    )


def evaluate(expression: str) -> int | float:
    """Evaluate an arithmetic expression safely.

    Raises:
        ToolError: The expression is not plain arithmetic, is malformed, or divides by zero.
    """
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if len(text) > _MAX_LENGTH:
        raise ToolError(f"the expression is longer than {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"cannot parse {expression!r}: {exc.msg}") from exc
    try:
        result = _evaluate(tree)
    except ZeroDivisionError as exc:
        raise ToolError("division by zero") from exc
    except (OverflowError, ValueError, TypeError) as exc:
        raise ToolError(f"cannot evaluate {expression!r}: {exc}") from exc
    if isinstance(result, float) and result.is_integer() and abs(result) < 2**53:
        return int(result)
    return result  # type: ignore[no-any-return]


@tool
def calculator(expression: str) -> int | float:
    """Calculate the value of an arithmetic expression, like 17 * 23 or (2 + 3) / 4.

    Args:
        expression: The arithmetic expression to calculate.
    """
    return evaluate(expression)
