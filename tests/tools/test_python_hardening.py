"""Attacks that once got through the Python sandbox, each judged by the host's own state.

Shared memory that `RLIMIT_AS` does not count (memfd files, SysV and POSIX IPC), replies forged
by writing to the worker's sockets, and a project folder put on `sys.path` by a path-style
editable install. The *bare* session (no import allow-list, no audit hook, as an attacker who
removed them from inside) shows the OS layers hold on their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentlib import ToolError
from agentlib.tools.python import PythonSession, SandboxLimits, SandboxPool

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

LIMITS = SandboxLimits(timeout=20, memory_mb=128, disk_mb=16, file_mb=16, open_files=64)
MB = 1024 * 1024
# Entering the worker's IPC namespace, and a private root to read the mounts of, need root.
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (setns, private root)")


@pytest.fixture
def sandbox_limits() -> SandboxLimits:
    return LIMITS  # the `pool`, `session` and `bare` fixtures are in tests/tools/conftest.py


def host_shmem_bytes() -> int:
    """Shared memory on the whole host (`Shmem` in /proc/meminfo): tmpfs, memfd, SysV."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Shmem:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no Shmem line in /proc/meminfo")


def worker_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def process_gone(pid: int) -> bool:
    """The process has exited (it may stay a zombie until the template reaps it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def memfd_files_of(pid: int) -> list[str]:
    links = []
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            links.append(os.readlink(entry))
        except OSError:
            continue
    return [link for link in links if link.startswith("/memfd:")]


def sysv_objects_in_namespace_of(pid: int) -> dict[str, list[str]]:
    """The SysV IPC objects in the worker's IPC namespace, read from inside that namespace."""
    program = (
        "import ctypes, json, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        f"fd = os.open('/proc/{pid}/ns/ipc', os.O_RDONLY)\n"
        "assert libc.setns(fd, 0x08000000) == 0, ctypes.get_errno()\n"
        "print(json.dumps({kind: open(f'/proc/sysvipc/{kind}').read().splitlines()[1:]"
        " for kind in ('shm', 'sem', 'msg')}))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", program], check=True, capture_output=True, text=True
    ).stdout
    objects: dict[str, list[str]] = json.loads(output)
    return objects


async def test_memfd_files_cannot_hold_memory_outside_the_limit(bare: PythonSession) -> None:
    await bare.arun("1")
    worker_pid = bare.worker_pid
    assert worker_pid is not None
    before = host_shmem_bytes()
    # Forty 15 MB memfd files would be 600 MB of host memory that RLIMIT_AS never sees.
    result = await bare.arun(
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "kept, outcomes = [], []\n"
        "for attempt in range(40):\n"
        "    try:\n"
        "        fd = os.memfd_create(f'hoard{attempt}')\n"
        "    except OSError as exc:\n"
        "        outcomes.append(exc.errno)\n"
        "        fd = libc.syscall(319, b'hoard', 0)\n"  # memfd_create straight through libc
        "    if fd < 0:\n"
        "        continue\n"
        "    kept.append(fd)\n"
        "    for _ in range(15):\n"
        "        os.write(fd, b'x' * (1 << 20))\n"
        "len(kept), sorted(set(outcomes))"
    )
    assert memfd_files_of(worker_pid) == []
    assert host_shmem_bytes() - before < LIMITS.memory_mb * MB
    assert worker_rss_bytes(worker_pid) < LIMITS.memory_mb * MB + 200 * MB
    assert result.value == "(0, [1])"  # EPERM for every attempt


@as_root
async def test_sysv_and_posix_ipc_cannot_hold_memory(bare: PythonSession) -> None:
    await bare.arun("1")
    worker_pid = bare.worker_pid
    assert worker_pid is not None
    before = host_shmem_bytes()
    result = await bare.arun(
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.shmat.restype = ctypes.c_void_p\n"
        "made = []\n"
        "for _ in range(8):\n"  # 8 x 64 MB segments, written and detached: they would stay
        "    shmid = libc.shmget(0, 64 << 20, 0o1600)\n"
        "    if shmid >= 0:\n"
        "        address = libc.shmat(shmid, None, 0)\n"
        "        if address not in (None, ctypes.c_void_p(-1).value):\n"
        "            ctypes.memset(address, 1, 64 << 20)\n"
        "            libc.shmdt(ctypes.c_void_p(address))\n"
        "    made.append(shmid)\n"
        "made.append(libc.semget(0, 8, 0o1600))\n"
        "made.append(libc.msgget(0, 0o1600))\n"
        "made.append(libc.syscall(240, b'/queue', 0o102, 0o600, None))\n"  # mq_open O_CREAT|O_RDWR
        "try:\n"
        "    open('/dev/shm/hoard', 'wb').write(b'x' * (32 << 20))\n"
        "    made.append('dev/shm written')\n"
        "except OSError as exc:\n"
        "    made.append(type(exc).__name__)\n"
        "made"
    )
    objects = sysv_objects_in_namespace_of(worker_pid)
    assert objects == {"shm": [], "sem": [], "msg": []}
    assert host_shmem_bytes() - before < LIMITS.memory_mb * MB
    assert result.value is not None and "written" not in result.value
    assert result.value.count("-1") == 11


def descriptor_kinds_of(pid: int) -> list[str]:
    kinds = []
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            kinds.append(os.readlink(entry).split(":", 1)[0])
        except OSError:
            continue
    return kinds


async def test_pipes_and_socket_pairs_cannot_hold_kernel_buffers(bare: PythonSession) -> None:
    # Each unix socket can queue megabytes in the kernel, outside RLIMIT_AS.
    result = await bare.arun(
        "import os, socket\n"
        "kept, outcomes = [], []\n"
        "for _ in range(20):\n"
        "    try:\n"
        "        left, right = socket.socketpair()\n"
        "        left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)\n"
        "        left.setblocking(False)\n"
        "        kept.append((left, right))\n"
        "        left.send(b'x' * (8 << 20))\n"
        "    except OSError as exc:\n"
        "        outcomes.append(exc.errno)\n"
        "    try:\n"
        "        kept.append(os.pipe())\n"
        "    except OSError as exc:\n"
        "        outcomes.append(exc.errno)\n"
        "len(kept), sorted(set(outcomes))"
    )
    worker_pid = bare.worker_pid
    assert worker_pid is not None
    kinds = descriptor_kinds_of(worker_pid)
    assert "pipe" not in kinds
    # The session socket, and the call's own until the worker closes it after replying.
    assert kinds.count("socket") <= 2
    assert result.value == "(0, [1])"


@as_root
def test_the_ipc_namespace_is_limited_before_hand_over(pool: SandboxPool) -> None:
    python_session = PythonSession(pool, limits=LIMITS, allowed_imports=None, audit_hook=False)
    try:
        python_session.run("1")
        assert "ipc" in python_session.protections
        worker_pid = python_session.worker_pid
        program = (
            "import ctypes, json, os\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            f"namespace = os.open('/proc/{worker_pid}/ns/ipc', os.O_RDONLY)\n"
            "assert libc.setns(namespace, 0x08000000) == 0\n"
            "names = ('shmmni', 'shmall', 'shmmax', 'msgmni', 'sem')\n"
            "print(json.dumps({n: open(f'/proc/sys/kernel/{n}').read().split() for n in names}))\n"
        )
        output = subprocess.run(
            [sys.executable, "-c", program], check=True, capture_output=True, text=True
        ).stdout
    finally:
        python_session.close()
    limits = json.loads(output)
    assert limits == {
        "shmmni": ["0"],
        "shmall": ["0"],
        "shmmax": ["0"],
        "msgmni": ["0"],
        "sem": ["0", "0", "0", "0"],
    }


async def test_numpy_and_pandas_still_work_under_the_memory_filters(pool: SandboxPool) -> None:
    pytest.importorskip("pandas")
    python_session = PythonSession(pool, limits=SandboxLimits(timeout=20))
    try:
        result = await python_session.arun(
            "import numpy as np, pandas as pd\n"
            "frame = pd.DataFrame({'a': np.arange(100_000), 'b': np.random.rand(100_000)})\n"
            "frame['c'] = frame.a * frame.b\n"
            "summary = frame.groupby(frame.a % 7).c.sum().round(0)\n"
            "int(np.linalg.inv(np.eye(50) * 2).trace()), len(summary), "
            "frame.describe().shape, str(pd.Timestamp('2024-03-01', tz='Europe/Paris').tz)"
        )
    finally:
        await python_session.aclose()
    assert result.error is None
    assert result.value == "(25, 7, (8, 3), 'Europe/Paris')"


# --- forged replies -------------------------------------------------------------------------

FIND_SOCKETS = (
    "os = __import__('random')._os\nsockets = [fd for fd in range(3, 64) if _is_socket(fd)]\n"
)
SOCKET_CHECK = (
    "def _is_socket(fd):\n"
    "    try:\n"
    "        return __import__('random')._os.fstat(fd).st_mode & 0o170000 == 0o140000\n"
    "    except OSError:\n"
    "        return False\n"
)
FAKE_REPLY = json.dumps({"stdout": "forged", "stderr": "", "value": "'forged'", "error": None})
FAKE_LINE = FAKE_REPLY.encode() + b"\n"
FORGERIES = {
    "a list": b"[1]\n",
    "deep nesting": b"[" * 200_000,
    "a well-formed reply": FAKE_LINE,
    "a reply split over writes": FAKE_REPLY.encode()[:20],
}


@pytest.mark.parametrize("payload", FORGERIES.values(), ids=FORGERIES.keys())
async def test_forged_replies_kill_the_worker_and_never_shift_results(
    session: PythonSession, payload: bytes
) -> None:
    await session.arun(SOCKET_CHECK)
    worker_pid = session.worker_pid
    assert worker_pid is not None
    with pytest.raises(ToolError, match="broke the sandbox's reply protocol") as raised:
        await session.arun(
            f"{FIND_SOCKETS}for fd in sockets:\n    os.write(fd, {payload!r})\n'written'"
        )
    assert type(raised.value) is ToolError
    assert process_gone(worker_pid)  # killed, not left running
    # Every later call gets its own result, from a fresh worker.
    for index in range(3):
        result = await session.arun(f"'call {index}'")
        assert result.value == f"'call {index}'"
    assert session.worker_pid != worker_pid


async def test_a_reply_written_between_calls_is_never_taken_for_the_next_call(
    bare: PythonSession,
) -> None:
    # A thread keeps writing a well-formed reply to every socket after its own call returned,
    # aiming at whatever call comes next: the host must never take it for that call's result.
    await bare.arun(
        SOCKET_CHECK + "import os\n"
        "earlier = {os.fstat(fd).st_ino for fd in range(3, 64) if _is_socket(fd)}"
    )
    forging = (
        "import threading, time\n"
        "def forge(own_call):\n"
        "    while _is_socket(own_call):\n"  # wait until this call's reply has gone
        "        time.sleep(0.001)\n"
        "    while True:\n"
        "        for fd in [fd for fd in range(3, 64) if _is_socket(fd)]:\n"
        "            try:\n"
        f"                os.write(fd, {FAKE_LINE!r})\n"
        "            except OSError:\n"
        "                pass\n"
        "        time.sleep(0.001)\n"
        # The session socket was there in the call before; this call's socket is new.
        "own_call = next(fd for fd in range(3, 64)"
        " if _is_socket(fd) and os.fstat(fd).st_ino not in earlier)\n"
        "threading.Thread(target=forge, args=(own_call,), daemon=True).start()\n"
        "'started'"
    )
    outcomes = []
    for index, code in enumerate([forging, "'call 1'", "'call 2'", "'call 3'", "'call 4'"]):
        if index == 1:
            await asyncio.sleep(0.5)  # let the thread write before the next call starts
        try:
            result = await bare.arun(code)
        except ToolError as exc:
            assert "broke the sandbox's reply protocol" in str(exc)
            outcomes.append("refused")
        else:
            outcomes.append(result.value)
    # The forging call itself may be refused (the thread can write just before the host has
    # checked its socket); either way exactly one call is refused, and every later call
    # returns its own result from a fresh worker.
    assert "'forged'" not in outcomes
    assert outcomes.count("refused") == 1
    refused = outcomes.index("refused")
    assert refused <= 1
    expected = ["'started'", "'call 1'", "'call 2'", "'call 3'", "'call 4'"]
    assert outcomes[:refused] == expected[:refused]
    assert outcomes[refused + 1 :] == expected[refused + 1 :]


async def test_closing_the_calls_socket_is_a_clear_error(bare: PythonSession) -> None:
    await bare.arun(SOCKET_CHECK)
    with pytest.raises(ToolError, match="broke the sandbox's reply protocol"):
        await bare.arun(
            f"{FIND_SOCKETS}import socket\n"
            "for fd in sockets[1:]:\n"
            "    socket.socket(fileno=os.dup(fd)).shutdown(socket.SHUT_WR)\n"
        )
    assert (await bare.arun("'fresh'")).value == "'fresh'"


# --- mounts -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project_on_sys_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A virtual environment whose `.pth` puts a project folder (with secrets) on `sys.path`."""
    root = tmp_path_factory.mktemp("editable")
    project = root / "project"
    (project / ".git").mkdir(parents=True)
    secret = secrets.token_hex(16)
    (project / ".env").write_text(f"API_KEY={secret}\n")
    (project / ".git" / "config").write_text(f"[remote]\n token = {secret}\n")
    (project / "mymodule.py").write_text("VALUE = 1\n")
    environment = root / "venv"
    venv.EnvBuilder(with_pip=False).create(environment)
    python = environment / "bin" / "python"
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site_packages, "_editable_project.pth").write_text(f"{project}\n")
    yield project, str(python)


@as_root
def test_a_project_root_on_sys_path_is_not_mounted(
    project_on_sys_path: tuple[Path, str],
) -> None:
    project, python = project_on_sys_path
    seen_by_python = subprocess.run(
        [python, "-I", "-c", "import sys; print(sys.path)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert str(project) in seen_by_python  # the .pth works: the template sees the folder
    pool = SandboxPool(python=python, preload=["json"])
    python_session = PythonSession(pool, limits=LIMITS, allowed_imports=None, audit_hook=False)
    try:
        result = python_session.run(
            "import os\n"
            "found = []\n"
            f"for path in ({str(project / '.env')!r}, {str(project / '.git/config')!r}):\n"
            "    try:\n"
            "        found.append(open(path).read())\n"
            "    except OSError as exc:\n"
            "        found.append(type(exc).__name__)\n"
            f"found.append(os.path.exists({str(project)!r}))\n"
            "try:\n"
            "    import mymodule\n"
            "    found.append('imported')\n"
            "except ImportError as exc:\n"
            "    found.append(type(exc).__name__)\n"
            "found"
        )
        worker_pid = python_session.worker_pid
        mounts = Path(f"/proc/{worker_pid}/mountinfo").read_text()
    finally:
        python_session.close()
        pool.close()
    secret = (project / ".env").read_text().split("=", 1)[1].strip()
    assert str(project) not in mounts
    assert secret not in repr(result)
    assert (
        result.value == "['FileNotFoundError', 'FileNotFoundError', False, 'ModuleNotFoundError']"
    )


@as_root
def test_only_the_stdlib_and_preloaded_packages_are_mounted(pool: SandboxPool) -> None:
    pytest.importorskip("numpy")
    python_session = PythonSession(pool, limits=LIMITS, allowed_imports=None, audit_hook=False)
    try:
        python_session.run("1")
        mounts = Path(f"/proc/{python_session.worker_pid}/mountinfo").read_text()
    finally:
        python_session.close()
    import sysconfig

    import numpy

    site_packages = sysconfig.get_paths()["purelib"]
    mount_points = [line.split()[4] for line in mounts.splitlines()]
    assert str(Path(numpy.__file__).parent) in mount_points
    assert site_packages not in mount_points  # its packages one by one, never the folder
    assert sysconfig.get_paths()["stdlib"] in mount_points
