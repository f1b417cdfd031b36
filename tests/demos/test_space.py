"""The Space: its metadata, its pinned requirements, and a build done the way Spaces do it.

The build test is the real thing end to end: the project built as a wheel and served to pip as
a package index would (`--find-links`), a fresh venv that installs `requirements.txt` alone in
an empty folder, the Space's files copied in afterwards, `app_file` started, and every tab
asked its first example on the embedded model in Chromium. Its screenshots are the docs'.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import venv
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT, SCREENSHOTS, _free_port, stop, wait_until_serving

sys.path.insert(0, str(ROOT))
from demos.make_space import EXTRAS, distribution, make_space

# From the Spaces configuration reference (huggingface.co/docs/hub/spaces-config-reference).
SPACE_KEYS = {
    "title", "emoji", "colorFrom", "colorTo", "sdk", "python_version", "sdk_version",
    "suggested_hardware", "suggested_storage", "app_file", "app_port", "base_path",
    "fullWidth", "header", "short_description", "models", "datasets", "tags", "thumbnail",
    "pinned", "hf_oauth", "hf_oauth_scopes", "hf_oauth_expiration_minutes", "disable_embedding",
    "startup_duration_timeout", "custom_headers", "preload_from_hub", "license",
}  # fmt: skip
COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
ANSWER_TIMEOUT = 600_000  # ms: the embedded model on two shared cores, several requests queued


def _front_matter(readme: str) -> dict[str, Any]:
    match = re.match(r"---\n(.*?)\n---\n", readme, re.DOTALL)
    assert match, "the Space README starts with a YAML block between --- lines"
    header: dict[str, Any] = yaml.safe_load(match.group(1))
    return header


def _pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, pinned = line.partition("==")
            pins[re.sub(r"\[.*\]", "", name).lower()] = pinned
    return pins


def test_the_readme_front_matter_follows_the_spaces_config_reference(tmp_path: Path) -> None:
    space = make_space(tmp_path)
    header = _front_matter((space / "README.md").read_text())
    assert set(header) <= SPACE_KEYS, set(header) - SPACE_KEYS
    assert header["sdk"] == "gradio"
    assert {header["colorFrom"], header["colorTo"]} <= COLORS
    assert len(header["short_description"]) <= 60
    assert header["suggested_hardware"] in ("cpu-basic", "cpu-upgrade")
    assert (space / header["app_file"]).is_file()
    assert header["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    gradio = pytest.importorskip("gradio")
    assert str(header["sdk_version"]) == gradio.__version__


def test_requirements_pin_exactly_what_the_tests_ran() -> None:
    pins = _pins((ROOT / "demos" / "requirements.txt").read_text())
    assert pins, "demos/requirements.txt pins the demos' dependencies"
    for name, pinned in pins.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            pytest.fail(f"{name} is pinned for the Space but not installed in the tests")
        assert installed.split("+")[0] == pinned, f"{name}: pinned {pinned}, tests ran {installed}"


def test_the_space_installs_the_project_as_a_package_and_copies_no_library_source(
    tmp_path: Path,
) -> None:
    space = make_space(tmp_path)
    name, project_version = distribution()
    requirements = (space / "requirements.txt").read_text().splitlines()
    assert f"{name}[{','.join(EXTRAS)}]=={project_version}" in requirements
    assert not any(line.startswith((".", "-e", "file:")) for line in requirements)
    assert not (space / "agentlib").exists() and not (space / "tools").exists()
    assert not (space / "pyproject.toml").exists()
    assert (space / "demos" / "app.py").is_file() and list((space / "docs").rglob("*.md"))


def _pip_install(python: Path, folder: Path, wheels: Path) -> None:
    """`pip install -r requirements.txt` in `folder`, the project's wheel served from `wheels`.

    `AGENTLIB_SPACE_FIND_LINKS` adds wheel folders (an offline machine's mirror, a locally
    built llama-cpp-python) to what the index provides.
    """
    find_links = " ".join([str(wheels), *os.environ.get("AGENTLIB_SPACE_FIND_LINKS", "").split()])
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRT"))
    }
    env.update(PIP_FIND_LINKS=find_links, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_RETRIES="1")
    started = time.monotonic()
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-r", "requirements.txt"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(f"requirements installed in {time.monotonic() - started:.0f} s")


def _build_the_space_like_spaces(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh venv, requirements.txt installed alone, then the Space's files copied in."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        timeout=600,
    )
    source = make_space(tmp_path / "space")
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy2(source / "requirements.txt", app / "requirements.txt")
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"
    _pip_install(python, app, wheels)
    shutil.copytree(source, app, dirs_exist_ok=True)
    return python, app


def _ask_every_tab(page: Any) -> dict[str, str]:
    """Ask each tab's first example; return what each answered."""
    answers: dict[str, str] = {}
    page.fill("#chat-input textarea", "What is 17 * 23?")
    page.click("#chat-send")
    page.locator("#chat-status").get_by_text(re.compile("Answered|Stopped")).wait_for()
    answers["chat"] = page.locator("#agent-chat").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "demo-chat.png"), full_page=True)

    page.get_by_role("tab", name="SQL explorer").click()
    page.click("#sql-ask")
    page.locator("#sql-answer").get_by_text("Answer", exact=True).wait_for()
    answers["sql"] = page.locator("#sql-answer").inner_text()
    answers["sql rows"] = page.locator("#sql-rows").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "demo-sql.png"), full_page=True)

    page.get_by_role("tab", name="Docs Q&A").click()
    page.click("#docs-ask")
    page.locator("#docs-status").get_by_text(re.compile("Searched|Could not|Failed")).wait_for()
    answers["docs"] = page.locator("#docs-status").inner_text()
    answers["docs answer"] = page.locator("#docs-answer").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "demo-docs-qa.png"), full_page=True)

    page.get_by_role("tab", name="Structured extraction").click()
    page.click("#extract-run")
    page.locator("#extract-status").get_by_text(re.compile("shape|Could not")).wait_for()
    answers["extraction"] = page.locator("#extract-status").inner_text()
    answers["extraction output"] = page.locator("#extract-output").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "demo-extraction.png"), full_page=True)

    page.get_by_role("tab", name="Triage (multi-agent)").click()
    page.click("#triage-ask")  # the first example is in the box
    page.locator("#triage-status").get_by_text(re.compile("Answered by|Stopped|Cannot")).wait_for()
    answers["triage"] = page.locator("#triage-status").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "demo-triage.png"), full_page=True)
    return answers


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(3600)  # installing every requirement into a fresh venv takes minutes
def test_a_space_built_like_spaces_answers_on_every_tab(browser: Any, tmp_path: Path) -> None:
    python, app = _build_the_space_like_spaces(tmp_path)
    where = subprocess.run(
        [str(python), "-c", "import agentlib, agentlib.tools; print(agentlib.tools.__file__)"],
        cwd=app,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(tmp_path / "venv") in where, f"agentlib imported from {where}"
    port = _free_port()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRT"))
    }
    env.update(
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
    )
    for secret in ("HF_TOKEN", "OPENAI_API_KEY", "OPENAI_BASE_URL", "AGENTLIB_DEMO_MODEL"):
        env.pop(secret, None)
    log = (tmp_path / "app.log").open("w")
    server = subprocess.Popen(
        [str(python), "demos/app.py"], cwd=app, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/", server, timeout=600)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(ANSWER_TIMEOUT)
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#chat-input textarea")
        menu = page.locator("#agent-chat").page.content()
        assert "Deterministic" not in menu and "Embedded: SmolLM2-135M" in menu
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        answers = _ask_every_tab(page)
        context.close()
    finally:
        stop(server)
        log.close()
    print(answers)
    assert "391" in answers["chat"], answers["chat"]
    assert "Answer (from the" in answers["sql"] and answers["sql rows"].strip(), answers
    assert "Searched the agentlib docs" in answers["docs"], answers["docs"]
    assert "has the schema's shape" in answers["extraction"], answers["extraction"]
    # The embedded model routes as it will; the tab must finish a run on it, not fail to start.
    assert re.search("Answered by|Stopped", answers["triage"]), answers["triage"]
