"""Reading the host's processes from `/proc` (no psutil), for the Python sandbox's tests."""

from __future__ import annotations

from pathlib import Path


def children_of(pid: int) -> list[int]:
    """The live (not zombie) children of `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def uid_of(pid: int) -> int:
    """The real uid `pid` runs as; -1 when the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return -1
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
