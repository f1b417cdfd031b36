"""Optional dependencies: an absent one gets the install hint, a broken one its real error.

The core-only checks run in a real virtual environment holding only the core dependencies
(`core_venv`), never by hiding modules from this process.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentlib._optional import available, optional_imports
from agentlib.errors import DISTRIBUTION, BrokenDependencyError, MissingExtraError

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = set(PYPROJECT["project"]["optional-dependencies"])


# --- the helper, on real packages written to disk ---


@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path for packages the test writes; they are unloaded afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_an_absent_package_is_a_missing_extra_with_the_hint() -> None:
    with pytest.raises(MissingExtraError) as info, optional_imports("web", feature="fetch_page"):
        import agentlib_test_no_such_package  # type: ignore[import-not-found]  # noqa: F401
    assert info.value.package == "agentlib_test_no_such_package"
    assert info.value.extra == "web"
    assert str(info.value) == (
        "fetch_page needs the 'agentlib_test_no_such_package' package, which is not installed; "
        f'install it with: pip install "{DISTRIBUTION}[web]"'
    )


def test_a_package_whose_dependency_is_missing_is_broken_not_missing(packages: Path) -> None:
    # The shape of issue 14: trafilatura installed, lxml_html_clean (its dependency) absent.
    (packages / "extractor").mkdir()
    (packages / "extractor" / "__init__.py").write_text("from extractor import core\n")
    (packages / "extractor" / "core.py").write_text("import agentlib_test_clean_html\n")
    with pytest.raises(BrokenDependencyError) as info, optional_imports("web", feature="fetch"):
        import extractor  # type: ignore[import-not-found]  # noqa: F401
    error = info.value
    assert (error.package, error.dependency, error.origin) == (
        "extractor",
        "agentlib_test_clean_html",
        "extractor.core",
    )
    assert isinstance(error.__cause__, ModuleNotFoundError)
    message = str(error)
    assert "'extractor' package, which is installed but fails to import" in message
    assert "No module named 'agentlib_test_clean_html'" in message
    assert "the broken dependency is 'agentlib_test_clean_html'" in message
    assert f'pip install "{DISTRIBUTION}[web]"' in message
    assert "not installed" not in message


def test_any_error_raised_while_a_package_imports_is_kept(packages: Path) -> None:
    (packages / "native_thing.py").write_text("raise OSError('libfoo.so: cannot open')\n")
    with pytest.raises(BrokenDependencyError) as info, optional_imports("local"):
        import native_thing  # type: ignore[import-not-found]  # noqa: F401
    assert "OSError: libfoo.so: cannot open (in 'native_thing')" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)


def test_a_name_missing_from_an_installed_package_is_broken() -> None:
    with pytest.raises(BrokenDependencyError) as info, optional_imports("sql"):
        from json import agentlib_no_such_name  # type: ignore[attr-defined]  # noqa: F401
    assert info.value.dependency == "json"
    assert "cannot import name 'agentlib_no_such_name'" in str(info.value)


def test_a_submodule_missing_from_an_installed_package_is_broken() -> None:
    with pytest.raises(BrokenDependencyError) as info, optional_imports("sql"):
        import json.agentlib_no_such_module  # type: ignore[import-not-found]  # noqa: F401
    assert info.value.dependency == "json.agentlib_no_such_module"


def test_agentlib_errors_and_interrupts_pass_through_unchanged() -> None:
    with pytest.raises(MissingExtraError, match="'x' package"), optional_imports("web"):
        raise MissingExtraError("x", "sql")
    with pytest.raises(KeyboardInterrupt), optional_imports("web"):
        raise KeyboardInterrupt


def test_available_finds_without_importing() -> None:
    assert available("json")
    assert not available("agentlib_test_no_such_package")
    assert not available("agentlib_test_no_such_package.sub")


# --- every optional import goes through the helper (a static check of the sources) ---

CORE = {"pydantic", "pydantic_core", "openai", "outlines", "outlines_core", "jsonschema"}
CORE |= {"referencing"}  # jsonschema's own dependency
CORE |= {"typing_extensions", "agentlib", "demos", "tests"}
# Imports that are not an extra's entry point, each with the reason.
ALLOWED = {
    # numba: an optional speed-up of outlines_core, named in its own ConfigurationError.
    ("agentlib/models/_guides.py", "numba"),
    # numpy and torch arrive with the model object the caller passed (llama.cpp, transformers).
    ("agentlib/models/_guides.py", "numpy"),
    ("agentlib/models/_guides.py", "torch"),
    # A script run by path in a child process (it does not import agentlib); the parent checks.
    ("agentlib/models/_schema_worker.py", "llguidance"),
    ("tools/cypher/_worker.py", "grandcypher"),
    ("tools/cypher/_worker.py", "lark"),
    ("tools/cypher/_worker.py", "ladybug"),
    ("tools/sql/_worker.py", "duckdb"),
    # The page-extraction worker reports an absent package to its parent, which raises
    # MissingExtraError; a broken one's real error comes back as the page's error.
    ("tools/web/_extract_worker.py", "trafilatura"),
    ("tools/web/_extract_worker.py", "pypdf"),
    # A fallback: without charset_normalizer (a trafilatura dependency) bytes are replaced.
    ("tools/web/_extract_worker.py", "charset_normalizer"),
}


def _sources() -> list[Path]:
    files = [*(ROOT / "agentlib").rglob("*.py"), *(ROOT / "tools").rglob("*.py")]
    files += (ROOT / "demos").rglob("*.py")
    return sorted(path for path in files if "data" not in path.relative_to(ROOT).parts)


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name.partition(".")[0] for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module.partition(".")[0]]
    return []


def _guarded(tree: ast.Module) -> tuple[set[str], set[int]]:
    """The packages imported inside `optional_imports` blocks, and those import nodes' ids."""
    packages: set[str] = set()
    nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(
            isinstance(item.context_expr, ast.Call)
            and getattr(item.context_expr.func, "id", None) == "optional_imports"
            for item in node.items
        ):
            for inner in ast.walk(node):
                packages.update(_imported(inner))
                nodes.add(id(inner))
    return packages, nodes


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }


def test_every_optional_import_goes_through_the_helper() -> None:
    """A module that imports an optional package guards it with `optional_imports` at least once
    (its entry point: later imports of the same package run after that one succeeded), or is a
    private module of a package whose `__init__` guards it."""
    stdlib = set(sys.stdlib_module_names)
    unguarded = []
    for path in _sources():
        tree = ast.parse(path.read_text())
        guarded, _ = _guarded(tree)
        if path.name.startswith("_") and path.name != "__init__.py":
            face = ast.parse((path.parent / "__init__.py").read_text())
            guarded |= _guarded(face)[0]
        skip = _type_checking_nodes(tree)
        relative = path.relative_to(ROOT).as_posix()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            for package in _imported(node):
                if package in stdlib or package in CORE or package in guarded:
                    continue
                if (relative, package) not in ALLOWED:
                    unguarded.append(f"{relative}:{node.lineno} imports {package}")
    assert unguarded == []


# --- the distribution name ---


def test_the_distribution_is_ours_and_every_hint_names_it() -> None:
    assert PYPROJECT["project"]["name"] == DISTRIBUTION == "agentlib-typed"
    assert str(MissingExtraError("x", "sql")).endswith(f'pip install "{DISTRIBUTION}[sql]"')
    texts = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *_sources()]
    texts += [ROOT / "demos" / "requirements.txt", *(ROOT / "tests").rglob("*.py")]
    stale = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in texts
        for line in path.read_text().splitlines()
        if re.search(r"install (-\S+ )*\"?agentlib\\?\[", line)
    ]
    assert stale == []


def test_version_names_the_distribution() -> None:
    from importlib.metadata import version

    result = subprocess.run(
        [sys.executable, "-m", "agentlib.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == f"agentlib {version(DISTRIBUTION)} ({DISTRIBUTION})"


# --- a real venv with only the core dependencies ---


def _core_venv_key() -> str:
    digest = hashlib.sha256()
    for part in (sys.version, str(ROOT), json.dumps(PYPROJECT["project"]["dependencies"])):
        digest.update(part.encode())
    digest.update((ROOT / "constraints.txt").read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def core_venv() -> Path:
    """A venv with agentlib (editable, this checkout) and only its core dependencies.

    Built once per checkout and lock under ~/.cache/agentlib-tests (about a minute; the
    packages come from pip's cache), then reused: the editable install follows the sources.
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "agentlib-tests"
    venv = cache / f"core-venv-{_core_venv_key()}"
    python = venv / "bin" / "python"
    if (venv / ".complete").exists():
        return python
    building = cache / f"{venv.name}.building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
    # The venv's paths are absolute: build it where it will live, then mark it complete.
    shutil.rmtree(venv, ignore_errors=True)
    building.rename(venv)
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "-c", ROOT / "constraints.txt", "-e", ROOT],
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))},
    )
    (venv / ".complete").touch()
    return python


# Runs in the core venv: import every module of agentlib, agentlib.tools and demos, then call
# the entry points that import their extra lazily. One JSON line per check.
PROBE = r"""
import importlib, json, sys, tempfile
from pathlib import Path

root = Path(sys.argv[1])

def record(name, call):
    try:
        call()
        outcome = {"check": name, "result": "ok"}
    except Exception as exc:
        from agentlib.errors import MissingExtraError
        kind = "missing" if isinstance(exc, MissingExtraError) else "error"
        outcome = {"check": name, "result": kind, "type": type(exc).__name__,
                   "extra": getattr(exc, "extra", None), "message": str(exc)}
    print(json.dumps(outcome))

def module_name(path):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[0] == "tools":
        parts = ["agentlib", "tools", *parts[1:]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)

files = [*root.glob("agentlib/**/*.py"), *root.glob("tools/**/*.py"), *root.glob("demos/*.py")]
files.sort()
for path in files:
    if "data" in path.relative_to(root).parts or path.name.endswith("_worker.py"):
        continue
    name = module_name(path)
    record("import " + name, lambda name=name: importlib.import_module(name))

def local_model():
    from agentlib import LocalModel
    LocalModel()

def sql_store():
    from agentlib.memory import SQLStore
    SQLStore("sqlite://")

def html_loader():
    from agentlib.tools.retrieval.loaders import HTMLLoader
    page = Path(tempfile.mkdtemp()) / "page.html"
    page.write_text("<html><body><p>Hello</p></body></html>")
    HTMLLoader().load(page)

def pdf_loader():
    from agentlib.tools.retrieval.loaders import PDFLoader
    PDFLoader().load(Path(tempfile.mkdtemp()) / "missing.pdf")

record("LocalModel()", local_model)
record("SQLStore()", sql_store)
record("HTMLLoader().load()", html_loader)
record("PDFLoader().load()", pdf_loader)
"""

# What a core-only install must answer, per extra: (check, extra). A module that imports
# without its extra is fine; these are the faces a user meets first.
EXPECTED = {
    "import agentlib.tools.web": "web",
    "import agentlib.tools.sql": "sql",
    "import agentlib.tools.cypher": "graph",
    "import agentlib.tools.retrieval.collection": "retrieval",
    "import agentlib.tools.retrieval.embedders": "retrieval",
    "import demos.app": "demos",
    "LocalModel()": "local",
    "SQLStore()": "sql",
    "HTMLLoader().load()": "retrieval",
    "PDFLoader().load()": "retrieval",
}


@pytest.fixture(scope="session")
def core_results(core_venv: Path) -> dict[str, dict[str, str]]:
    result = subprocess.run(
        [core_venv, "-c", PROBE, ROOT],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))},
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {line["check"]: line for line in lines}


def test_core_venv_has_no_optional_package(core_venv: Path) -> None:
    optional = ["httpx", "sqlalchemy", "networkx", "numpy", "gradio", "llama_cpp", "trafilatura"]
    code = f"import importlib.util as u; print([m for m in {optional!r} if u.find_spec(m)])"
    output = subprocess.run(
        [core_venv, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


def test_in_a_core_only_venv_every_module_imports_or_names_its_extra(
    core_results: dict[str, dict[str, str]],
) -> None:
    errors = [line for line in core_results.values() if line["result"] == "error"]
    assert errors == []
    for line in core_results.values():
        if line["result"] == "missing":
            assert line["extra"] in EXTRAS, line
            assert f'pip install "{DISTRIBUTION}[{line["extra"]}]"' in line["message"], line


def test_in_a_core_only_venv_each_extras_entry_point_gives_its_hint(
    core_results: dict[str, dict[str, str]],
) -> None:
    got = {check: core_results[check].get("extra") for check in EXPECTED}
    assert got == EXPECTED
    assert {"web", "sql", "graph", "retrieval", "demos", "local"} <= set(EXPECTED.values())


def test_in_a_core_only_venv_the_cli_gives_the_hint_not_a_traceback(core_venv: Path) -> None:
    for arguments, extra in ((["run", "--tools", "cypher", "hi"], "graph"), (["demo"], "demos")):
        result = subprocess.run(
            [core_venv, "-m", "agentlib.cli", *arguments],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert f'pip install "{DISTRIBUTION}[{extra}]"' in result.stderr


def test_an_installed_trafilatura_missing_its_dependency_is_reported_as_broken(
    core_venv: Path, tmp_path: Path
) -> None:
    """Issue 14 for real: trafilatura installed without its dependencies (lxml_html_clean and
    the rest) is reported with the real error, not as "not installed"."""
    target = tmp_path / "site"
    lock = ROOT / "constraints.txt"
    pip = [core_venv, "-m", "pip", "install", "-q", "--no-deps", "-c", lock, "--target", target]
    subprocess.run([*pip, "trafilatura"], check=True)
    code = (
        "from agentlib._optional import optional_imports\n"
        "with optional_imports('web', feature='fetch_page'):\n"
        "    import trafilatura\n"
    )
    result = subprocess.run(
        [core_venv, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(target)},
        timeout=120,
    )
    assert "BrokenDependencyError" in result.stderr
    assert "'trafilatura' package, which is installed but fails to import" in result.stderr
    assert "the broken dependency is '" in result.stderr
