"""BFCL v4 data and scoring for `tool_calling.py`, read from the `bfcl-eval` wheel itself.

Nothing here imports `bfcl_eval`: the wheel is opened as a zip file, its JSON-lines question
and possible-answer files are read, and its AST checker's logic for Python
(`bfcl_eval/eval_checker/ast_eval/ast_checker.py`, Apache-2.0, by the Gorilla authors) is
ported below, function by function, so a model's calls are judged as BFCL judges them.
The spec conversion follows BFCL's own OpenAI handler (`model_handler/utils.py`,
`_cast_to_openai_type` with `GORILLA_TO_OPENAPI`), except that function names keep their `.`:
agentlib accepts them, and maps them only for backends that refuse them.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CATEGORIES = ("simple_python", "multiple", "parallel", "irrelevance")

# bfcl_eval/constants/type_mappings.py: GORILLA_TO_OPENAPI
GORILLA_TO_OPENAPI = {
    "integer": "integer", "number": "number", "float": "number", "string": "string",
    "boolean": "boolean", "bool": "boolean", "array": "array", "list": "array",
    "dict": "object", "object": "object", "tuple": "array", "any": "string",
    "byte": "integer", "short": "integer", "long": "integer", "double": "number",
    "char": "string", "ArrayList": "array", "Array": "array", "HashMap": "object",
    "Hashtable": "object", "Queue": "array", "Stack": "array", "Any": "string",
    "String": "string", "Bigint": "integer",
}  # fmt: skip

# ast_checker.py: PYTHON_TYPE_MAPPING, PYTHON_NESTED_TYPE_CHECK_LIST
PYTHON_TYPE_MAPPING: dict[str, type] = {
    "string": str, "integer": int, "float": float, "boolean": bool, "array": list,
    "tuple": list, "dict": dict, "any": str,
}  # fmt: skip
PYTHON_NESTED_TYPE_CHECK_LIST = ("array", "tuple")


@dataclass(frozen=True)
class Case:
    """One BFCL question with its functions and, except for irrelevance, its possible answers."""

    id: str
    category: str
    messages: list[dict[str, str]]
    functions: list[dict[str, Any]]
    """The functions as BFCL writes them (types like `dict`, `float`, `tuple`)."""
    ground_truth: list[dict[str, Any]] | None


# -- the wheel ----------------------------------------------------------------------------------


def find_wheel(location: str | None, cache: Path) -> Path:
    """The `bfcl-eval` wheel: the given file, the newest one in the given folder, or downloaded.

    Downloading runs `pip download --no-deps bfcl-eval`: the wheel only, none of its
    dependencies, and it is never installed.
    """
    if location:
        path = Path(location)
        if path.is_file():
            return path
        wheels = sorted(path.glob("bfcl_eval-*.whl"))
        if wheels:
            return wheels[-1]
        raise SystemExit(f"no bfcl_eval-*.whl in {path}; pass the wheel's path")
    wheels = sorted(cache.glob("bfcl_eval-*.whl"))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "bfcl-eval", "-d", str(cache)],
            check=True,
        )
        wheels = sorted(cache.glob("bfcl_eval-*.whl"))
    return wheels[-1]


def _json_lines(archive: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    with archive.open(name) as handle:
        return [json.loads(line) for line in handle.read().decode().splitlines() if line.strip()]


def load_cases(wheel: Path, category: str) -> list[Case]:
    """Every case of one category, with its possible answers joined by id."""
    with zipfile.ZipFile(wheel) as archive:
        questions = _json_lines(archive, f"bfcl_eval/data/BFCL_v4_{category}.json")
        answers: dict[str, Any] = {}
        if category != "irrelevance":
            answer_file = f"bfcl_eval/data/possible_answer/BFCL_v4_{category}.json"
            answers = {row["id"]: row["ground_truth"] for row in _json_lines(archive, answer_file)}
    return [
        Case(
            id=row["id"],
            category=category,
            messages=row["question"][0],
            functions=row["function"],
            ground_truth=answers.get(row["id"]),
        )
        for row in questions
    ]


# -- the spec, as BFCL's OpenAI handler converts it ----------------------------------------------


def _cast_to_openai_type(properties: dict[str, Any]) -> dict[str, Any]:
    """`_cast_to_openai_type(properties, GORILLA_TO_OPENAPI)`, as BFCL writes it."""
    for key, value in properties.items():
        if "type" not in value:
            properties[key]["type"] = "string"
        else:
            var_type = value["type"]
            if var_type == "float":
                properties[key]["format"] = "float"
                properties[key]["description"] += " This is a float type value."
            properties[key]["type"] = GORILLA_TO_OPENAPI.get(var_type, "string")
        if properties[key]["type"] in ("array", "object"):
            if "properties" in properties[key]:
                properties[key]["properties"] = _cast_to_openai_type(properties[key]["properties"])
            elif "items" in properties[key]:
                items = properties[key]["items"]
                items["type"] = GORILLA_TO_OPENAPI[items["type"]]
                if items["type"] == "array" and "items" in items:
                    items["items"]["type"] = GORILLA_TO_OPENAPI[items["items"]["type"]]
                elif items["type"] == "object" and "properties" in items:
                    items["properties"] = _cast_to_openai_type(items["properties"])
    return properties


def openai_spec(function: Mapping[str, Any]) -> dict[str, Any]:
    """One BFCL function as an OpenAI function spec (`convert_to_tool`, names unchanged)."""
    item = copy.deepcopy(dict(function))
    item["parameters"]["type"] = "object"
    item["parameters"]["properties"] = _cast_to_openai_type(item["parameters"]["properties"])
    return {"type": "function", "function": item}


# -- the AST checker, ported (Python only) ------------------------------------------------------


def _result(valid: bool, error: str = "", error_type: str = "") -> dict[str, Any]:
    return {"valid": valid, "error": [error] if error else [], "error_type": error_type}


def _possible_answer_type(possible_answer: Sequence[Any]) -> type | None:
    for answer in possible_answer:
        if answer != "":  # an optional parameter
            return type(answer)
    return None


def _type_checker(
    param: str,
    value: Any,
    possible_answer: Sequence[Any],
    expected_type_description: str,
    expected_type_converted: type,
    nested_type_converted: type | None,
) -> dict[str, Any]:
    is_variable = False
    possible_answer_type = _possible_answer_type(possible_answer)
    if possible_answer_type is not None and possible_answer_type != expected_type_converted:
        is_variable = True
    if type(value) is expected_type_converted:
        if nested_type_converted is None:
            return {"valid": True, "error": [], "is_variable": is_variable}
        for possible_answer_item in possible_answer:
            flag = True
            if type(possible_answer_item) is list:
                for value_item in value:
                    checked = _type_checker(
                        param,
                        value_item,
                        possible_answer_item,
                        str(nested_type_converted),
                        nested_type_converted,
                        None,
                    )
                    if not checked["valid"]:
                        flag = False
                        break
            if flag:
                return {"valid": True, "error": [], "is_variable": is_variable}
        return {
            **_result(False, f"nested type checking failed for {param!r}", "type_error:nested"),
            "is_variable": False,
        }
    if possible_answer_type is not None and type(value) is possible_answer_type:
        return {"valid": True, "error": [], "is_variable": True}
    return {
        **_result(
            False,
            f"incorrect type for parameter {param!r}: expected {expected_type_description}, "
            f"got {type(value).__name__}",
            "type_error:simple",
        ),
        "is_variable": False,
    }


def standardize_string(text: str) -> str:
    """Drop spaces and `,./-_*^`, lower-case, and turn `'` into `"` (BFCL's string match)."""
    return re.sub(r"[ \,\.\/\-\_\*\^]", "", text).lower().replace("'", '"')


def _string_checker(param: str, value: str, possible_answer: Sequence[Any]) -> dict[str, Any]:
    allowed = [standardize_string(item) for item in possible_answer if type(item) is str]
    if standardize_string(value) not in allowed:
        return _result(False, f"invalid value for {param!r}: {value!r}", "value_error:string")
    return _result(True)


def _list_checker(param: str, value: list[Any], possible_answer: Sequence[Any]) -> dict[str, Any]:
    standardized = [standardize_string(item) if type(item) is str else item for item in value]
    allowed = [
        [standardize_string(item) if type(item) is str else item for item in answer]
        for answer in possible_answer
    ]
    if standardized not in allowed:
        return _result(False, f"invalid value for {param!r}: {value!r}", "value_error:list")
    return _result(True)


def _dict_checker(
    param: str, value: dict[str, Any], possible_answers: Sequence[Any]
) -> dict[str, Any]:
    result = _result(False, "", "dict_checker:unclear")
    for possible_answer in possible_answers:
        if possible_answer == "":
            continue
        result = _result(False, "", "dict_checker:unclear")
        flag = True
        for key, item in value.items():
            if key not in possible_answer:
                result = _result(False, f"unexpected dict key {key!r}", "value_error:dict_key")
                flag = False
                break
            standardized = standardize_string(item) if type(item) is str else item
            allowed = [
                standardize_string(answer) if type(answer) is str else answer
                for answer in possible_answer[key]
            ]
            if standardized not in allowed:
                result = _result(
                    False, f"invalid value for {key!r}: {item!r}", "value_error:dict_value"
                )
                flag = False
                break
        for key, allowed_values in possible_answer.items():
            if key not in value and "" not in allowed_values:
                result = _result(False, f"missing dict key {key!r}", "value_error:dict_key")
                flag = False
                break
        if flag:
            return _result(True)
    return result


def _list_dict_checker(
    param: str, value: list[Any], possible_answers: Sequence[Any]
) -> dict[str, Any]:
    result = _result(False, "", "list_dict_checker:unclear")
    for answer in possible_answers:
        if len(value) != len(answer):
            result = _result(False, "wrong number of dicts", "value_error:list_dict_count")
            continue
        flag = True
        for index, item in enumerate(value):
            result = _dict_checker(param, item, [answer[index]])
            if not result["valid"]:
                flag = False
                break
        if flag:
            return _result(True)
    return result


def _check_parameter(
    param: str, value: Any, details: Mapping[str, Any], allowed: Sequence[Any]
) -> dict[str, Any]:
    """One argument's type and value against its possible answers (BFCL's inner loop)."""
    expected_description = details["type"]
    expected_type = PYTHON_TYPE_MAPPING[expected_description]
    nested_type = None
    if expected_description in PYTHON_NESTED_TYPE_CHECK_LIST:
        nested_type = PYTHON_TYPE_MAPPING[details["items"]["type"]]
    if expected_description == "float" and type(value) is int:
        value = float(value)  # BFCL allows Python's int-to-float conversion
    checked = _type_checker(param, value, allowed, expected_description, expected_type, nested_type)
    if not checked["valid"]:
        return checked
    if not checked["is_variable"]:
        if expected_type is dict:
            return _dict_checker(param, value, allowed)
        if expected_type is list and nested_type is dict:
            return _list_dict_checker(param, value, allowed)
        if expected_type is str:
            return _string_checker(param, value, allowed)
        if expected_type is list:
            return _list_checker(param, value, allowed)
    if value not in allowed:
        return _result(False, f"invalid value for {param!r}: {value!r}", "value_error:others")
    return _result(True)


def simple_function_checker(
    description: Mapping[str, Any], call: Mapping[str, Any], possible_answer: Mapping[str, Any]
) -> dict[str, Any]:
    """BFCL's `simple_function_checker` for Python: one call against one possible answer.

    `description` is the BFCL function (its own types), `call` is `{name: arguments}`.
    """
    answers = next(iter(possible_answer.values()))
    name = description["name"]
    details = description["parameters"]["properties"]
    if name not in call:
        return _result(False, f"function {name!r} not called", "wrong_func_name")
    arguments = call[name]
    for param in description["parameters"]["required"]:
        if param not in arguments:
            return _result(False, f"missing required parameter {param!r}", "missing_required")
    for param, value in arguments.items():
        if param not in details or param not in answers:
            return _result(False, f"unexpected parameter {param!r}", "unexpected_param")
        result = _check_parameter(param, value, details[param], answers[param])
        if not result["valid"]:
            return result
    for param in answers:
        if param not in arguments and "" not in answers[param]:
            return _result(False, f"optional parameter {param!r} not given", "missing_optional")
    return _result(True)


def _find_description(functions: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    for function in functions:
        if function["name"] == name:
            return function
    raise KeyError(name)


def ast_check(case: Case, calls: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """BFCL's `ast_checker` for a Python category: `calls` are `{name: arguments}` dicts."""
    assert case.ground_truth is not None
    answers = case.ground_truth
    if "parallel" in case.category:
        if len(calls) != len(answers):
            return _result(False, "wrong number of functions", "wrong_count")
        matched: list[int] = []
        for answer in answers:
            description = _find_description(case.functions, next(iter(answer)))
            result = _result(False, "no call", "cannot_find_match")
            for index, call in enumerate(calls):
                if index in matched:
                    continue
                result = simple_function_checker(description, call, answer)
                if result["valid"]:
                    matched.append(index)
                    break
            if not result["valid"]:
                return _result(False, "a call has no match", "cannot_find_match")
        return _result(True)
    if len(calls) != 1 or len(answers) != 1:
        return _result(False, "wrong number of functions", "wrong_count")
    description = _find_description(case.functions, next(iter(answers[0])))
    return simple_function_checker(description, calls[0], answers[0])


def expected_names(case: Case) -> list[str]:
    """The function names the possible answer calls, in order (empty for irrelevance)."""
    return [next(iter(answer)) for answer in case.ground_truth or []]


def all_functions(wheel: Path, categories: Sequence[str] = CATEGORIES) -> Iterator[dict[str, Any]]:
    """Every distinct function spec of `categories`, in BFCL's own form, first seen first."""
    seen: set[str] = set()
    for category in categories:
        for case in load_cases(wheel, category):
            for function in case.functions:
                key = json.dumps(function, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    yield function
