"""The Space folder: metadata header, app file, pinned requirements."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_make_space_writes_a_runnable_space(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "demos" / "make_space.py"), str(tmp_path)], check=True
    )
    readme = (tmp_path / "README.md").read_text()
    header = yaml.safe_load(readme.split("---")[1])
    assert header["sdk"] == "gradio"
    assert (tmp_path / header["app_file"]).is_file()
    import gradio

    assert header["sdk_version"] == gradio.__version__
    requirements = (tmp_path / "requirements.txt").read_text().splitlines()
    packages = [line for line in requirements if line and not line.startswith(("#", "-", "."))]
    assert packages and all(re.search(r"==\d", line) for line in packages), packages
    assert (tmp_path / "pyproject.toml").is_file() and (
        tmp_path / "agentlib" / "agent.py"
    ).is_file()


def test_app_starts_as_a_script_from_the_space_folder(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "demos" / "make_space.py"), str(tmp_path)], check=True
    )
    code = (
        "import runpy, sys; sys.argv=['app.py']; "
        "ns = runpy.run_path('demos/app.py', run_name='space_check'); "
        "app = ns['build_app'](); print(type(app).__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("Blocks")
