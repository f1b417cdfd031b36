"""Check that the environment holds every package of the lock, at the lock's version.

pip installs with `-c constraints.txt`, and a constraint only limits versions: a package that
pip does not resolve at all is silently absent. Python 3.11's pip 23.2 missed `lxml_html_clean`
that way (it does not match justext's `lxml[html_clean]` to lxml's normalized extra), and 14
tests failed far from the cause. This check names such a package at install time instead.

Usage: python scripts/check_lock.py [constraints.txt]
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)")


def normalize(name: str) -> str:
    """The PEP 503 form of a distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def public(version: str) -> str:
    """A version without its local label (`2.13.0+cpu` is `2.13.0`)."""
    return version.partition("+")[0]


def main(path: str = "constraints.txt") -> int:
    """Print each difference between the lock and the environment; 1 when there is one."""
    installed = {
        normalize(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }
    problems = []
    pins = 0
    for line in Path(path).read_text().splitlines():
        match = PIN.match(line)
        if not match:
            continue
        pins += 1
        name, version = normalize(match[1]), match[2]
        have = installed.get(name)
        if have is None:
            problems.append(
                f"{name}=={version} is in the lock but not installed: pip did not resolve it "
                "(declare it directly in pyproject.toml's extras)"
            )
        elif public(have) != public(version):
            problems.append(f"{name} is {have}, the lock says {version}")
    for problem in problems:
        print(f"lock check: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"lock check: all {pins} packages of {path} installed at their locked versions")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
