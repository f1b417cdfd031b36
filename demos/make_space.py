"""Assemble a folder to push to a Hugging Face Space (Gradio SDK, CPU hardware).

    python demos/make_space.py path/to/space-repo

It copies the library, the tools and the demos, writes the Space's README.md (the metadata
header: sdk, app_file) from demos/SPACE_README.md, and the pinned requirements.txt. The Space
then runs `demos/app.py`, the same app `agentlib demo` launches.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ["agentlib", "tools", "demos", "pyproject.toml", "README.md", "docs"]
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "images")


def make_space(target: Path) -> Path:
    """Write the Space's files into `target` (created if needed) and return it."""
    target.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = ROOT / name
        destination = target / ("PROJECT_README.md" if name == "README.md" else name)
        if source.is_dir():
            shutil.copytree(source, destination, ignore=IGNORED, dirs_exist_ok=True)
        else:
            shutil.copy2(source, destination)
    shutil.copy2(ROOT / "demos" / "SPACE_README.md", target / "README.md")
    shutil.copy2(ROOT / "demos" / "requirements.txt", target / "requirements.txt")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", type=Path, help="the Space repository's folder")
    args = parser.parse_args()
    print(f"Space files written to {make_space(args.target)}")


if __name__ == "__main__":
    main()
