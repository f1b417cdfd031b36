"""Assemble a folder to push to a Hugging Face Space (Gradio SDK, CPU hardware).

    python demos/make_space.py path/to/space-repo

Spaces install `requirements.txt` before the repository is copied in, so the project comes
from the package index like any dependency: the requirements pin our distribution (name and
version read from pyproject.toml) with the extras the demos use, and the third-party versions
the tests ran (`demos/requirements.txt`). The folder then holds only the demos and the docs the
Docs tab searches, never a copy of the library that could shadow the installed one. The Space
runs `demos/app.py`, the same app `agentlib demo` launches.
"""

from __future__ import annotations

import argparse
import shutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("local", "web", "sql", "graph", "retrieval", "demos")
"""The extras the demo tabs need."""
COPIED = ("demos", "docs")
IGNORED = shutil.ignore_patterns(
    "__pycache__", "*.pyc", ".pytest_cache", "images", "make_space.py", "SPACE_README.md"
)
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
"""PyTorch's CPU-only wheels: a tenth of the size of the default CUDA build."""


def distribution() -> tuple[str, str]:
    """The project's distribution name and version, from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return str(project["name"]), str(project["version"])


def requirements_text() -> str:
    """The Space's requirements.txt: the project pinned with its extras, then the tested pins."""
    name, version = distribution()
    pins = (ROOT / "demos" / "requirements.txt").read_text()
    return (
        "# Written by demos/make_space.py. Spaces install this before the repository is\n"
        "# copied in: the project is an ordinary pinned requirement.\n"
        f"--extra-index-url {TORCH_INDEX}\n"
        f"{name}[{','.join(EXTRAS)}]=={version}\n"
        f"{pins}"
    )


def make_space(target: Path) -> Path:
    """Write the Space's files into `target` (created if needed) and return it."""
    target.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        shutil.copytree(ROOT / name, target / name, ignore=IGNORED, dirs_exist_ok=True)
    shutil.copy2(ROOT / "demos" / "SPACE_README.md", target / "README.md")
    (target / "requirements.txt").write_text(requirements_text())
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", type=Path, help="the Space repository's folder")
    args = parser.parse_args()
    print(f"Space files written to {make_space(args.target)}")


if __name__ == "__main__":
    main()
