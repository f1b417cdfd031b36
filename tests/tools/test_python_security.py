"""Escape and exhaustion attempts against the Python sandbox; each must fail.

Each attempt runs twice: with the default session (import allow-list and audit hook on) and
with a *bare* session (no allow-list, no audit hook), so the OS layers (namespaces, private
root, Landlock, seccomp, rlimits, own uid) are shown to hold on their own. Every test checks
the host's state (files, processes, a listening server, a canary process), not only the text
the sandbox returned.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentlib.tools.python import PythonSession, SandboxLimits, SandboxPool
from tests.tools._proc import children_of, uid_of

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

LIMITS = SandboxLimits(timeout=2, cpu_seconds=2, memory_mb=256, threads=8, open_files=32)


@pytest.fixture
def sandbox_limits() -> SandboxLimits:
    return LIMITS  # the `pool`, `session` and `bare` fixtures are in tests/tools/conftest.py


def visible_text(result: object) -> str:
    return repr(result)


def processes_of_uid(uid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if uid_of(int(entry.name)) == uid:
                    found.add(int(entry.name))
            except (OSError, StopIteration):
                continue
    return found


# Ways to reach `os` or `subprocess` despite the import allow-list.
REACH_OS = [
    "import os as target",
    "target = __import__('random')._os",
    "target = [c for c in ().__class__.__base__.__subclasses__() "
    "if c.__name__ == 'BuiltinImporter'][0].load_module('posix')",
    "target = (lambda: 0).__globals__['__builtins__'].__import__('os')",
    "target = print.__self__.__import__('os')",
    "target = __import__('random')._os.sys.modules['os']",
    "exec('import os as target', __import__('json').__dict__); target = __import__('json').target",
]


@pytest.mark.parametrize("reach", REACH_OS, ids=range(len(REACH_OS)))
async def test_reaching_os_cannot_run_a_program_on_the_host(
    session: PythonSession, reach: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    code = (
        f"{reach}\n"
        "for attempt in ("
        f"lambda: target.system('touch {marker}'),"
        f"lambda: target.execv('/bin/sh', ['sh', '-c', 'touch {marker}']),"
        f"lambda: target.posix_spawn('/bin/sh', ['sh', '-c', 'touch {marker}'], {{}}),"
        "):\n"
        "    try:\n"
        "        attempt()\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__)\n"
    )
    result = await session.arun(code)
    assert not marker.exists()
    assert not result.state_lost or "stopped" in (result.error or "")


async def test_class_hierarchy_walk_to_subprocess_cannot_start_a_process(
    session: PythonSession, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    code = (
        "popen = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen']\n"
        "if not popen:\n"
        "    loader = [c for c in ().__class__.__base__.__subclasses__()"
        " if c.__name__ == 'BuiltinImporter'][0]\n"
        "    sys_module = loader.load_module('sys')\n"
        "    popen = [sys_module.modules['subprocess'].Popen] if 'subprocess' in sys_module.modules"
        " else []\n"
        f"popen and popen[0](['touch', '{marker}'])\n"
    )
    result = await session.arun(code)
    assert not marker.exists()
    assert result.value is None


async def test_dunder_tricks_do_not_bypass_the_import_allow_list(pool: SandboxPool) -> None:
    python_session = PythonSession(pool, limits=LIMITS)
    try:
        for code in (
            "getattr(__builtins__, '__imp' + 'ort__')('subprocess')",
            "print.__self__.__import__('socket')",
            "(lambda: 0).__globals__['__builtins__'].__import__('ctypes')",
            "__builtins__.__dict__['__import__']('importlib')",
            "exec('import os')",
            "eval(compile('import sys', 'x', 'exec'))",
            "from . import anything",
        ):
            result = await python_session.arun(code)
            assert result.error is not None and "ImportError" in result.error, code
    finally:
        await python_session.aclose()


async def test_host_files_are_hidden_from_the_sandbox(
    session: PythonSession, tmp_path: Path
) -> None:
    secret = secrets.token_hex(16)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(secret)
    code = (
        "found = []\n"
        f"for path in ({str(secret_file)!r}, '/etc/passwd', '/etc/shadow', '/proc/1/environ',"
        f" '/proc/self/environ', {str(Path.home() / '.bashrc')!r}):\n"
        "    try:\n"
        "        found.append(open(path).read())\n"
        "    except OSError as exc:\n"
        "        found.append(type(exc).__name__)\n"
        "found"
    )
    result = await session.arun(code)
    assert secret not in visible_text(result)
    assert result.value is not None and "root:" not in result.value
    assert secret_file.read_text() == secret


async def test_filesystem_view_holds_only_python_and_the_working_directory(
    bare: PythonSession,
) -> None:
    import sys

    # Python's own folders are mounted read-only; where they live depends on the machine
    # (CI's virtual environment may sit under /tmp), so only the other host folders must be
    # absent, and a file beside Python's folders must stay invisible.
    python_roots = {
        Path(path).parts[1]
        for path in (*sys.path, sys.prefix, sys.base_prefix, sys.exec_prefix)
        if path and Path(path).is_absolute() and len(Path(path).parts) > 1
    }
    result = await bare.arun("import os\nsorted(os.listdir('/')), os.getcwd()")
    assert result.value is not None
    for host_directory in ("etc", "tmp", "home", "proc", "var", "boot"):
        if host_directory not in python_roots:
            assert f"'{host_directory}'" not in result.value
    assert "'/sandbox'" in result.value
    neighbour = Path(sys.prefix).parent / f"agentlib_neighbour_{secrets.token_hex(4)}"
    neighbour.write_text("host secret")
    try:
        seen = await bare.arun(f"import os\nos.path.exists({str(neighbour)!r})")
        assert seen.value == "False"
    finally:
        neighbour.unlink()


async def test_writes_outside_the_working_directory_never_reach_the_host(
    bare: PythonSession,
) -> None:
    import sysconfig

    site_packages = Path(sysconfig.get_paths()["purelib"])
    target = site_packages / f"agentlib_sandbox_escape_{secrets.token_hex(4)}.pth"
    code = (
        f"for path in ({str(target)!r}, '/escape.txt', '/dev/escape'):\n"
        "    try:\n"
        "        open(path, 'w').write('import os')\n"
        "        print('wrote', path)\n"
        "    except OSError as exc:\n"
        "        print(type(exc).__name__)\n"
        "open('inside.txt', 'w').write('fine')"
    )
    result = await bare.arun(code)
    assert not target.exists()
    assert not Path("/escape.txt").exists()
    assert "wrote" not in result.stdout
    assert result.value == "4"


async def test_host_environment_secrets_do_not_reach_the_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = secrets.token_hex(16)
    monkeypatch.setenv("AGENTLIB_TEST_API_KEY", secret)
    own_pool = SandboxPool(preload=["json"])  # started after the secret is set
    python_session = PythonSession(own_pool, limits=LIMITS, allowed_imports=None, audit_hook=False)
    try:
        result = await python_session.arun(
            "import os\n"
            "print(dict(os.environ))\n"
            "paths = ('/proc/self/environ', '/proc/1/environ', f'/proc/{os.getppid()}/environ')\n"
            "for path in paths:\n"
            "    try:\n"
            "        print(open(path).read())\n"
            "    except OSError as exc:\n"
            "        print(type(exc).__name__)\n"
        )
    finally:
        await python_session.aclose()
        own_pool.close()
    assert secret not in visible_text(result)
    assert "AGENTLIB_TEST_API_KEY" not in visible_text(result)
    assert os.environ["AGENTLIB_TEST_API_KEY"] == secret


@pytest.fixture
def listening_server() -> Iterator[tuple[int, list[object]]]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    connections: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, address = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connections.append(address)
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], connections
    stop.set()
    thread.join()
    server.close()


async def test_sandbox_cannot_connect_to_a_server_on_the_host(
    session: PythonSession, listening_server: tuple[int, list[object]]
) -> None:
    port, connections = listening_server
    code = (
        "outcomes = []\n"
        "try:\n"
        "    import socket\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        "    outcomes.append('connected')\n"
        "except Exception as exc:\n"
        "    outcomes.append(type(exc).__name__)\n"
        "try:\n"
        "    import ctypes\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        # AF_INET, SOCK_STREAM straight through libc
        "    outcomes.append('socket made' if libc.socket(2, 1, 0) >= 0 else 'refused')\n"
        "except Exception as exc:\n"
        "    outcomes.append(type(exc).__name__)\n"
        "outcomes"
    )
    result = await session.arun(code)
    assert connections == []
    assert "connected" not in visible_text(result)
    assert "socket made" not in visible_text(result)


async def test_ctypes_cannot_fork_exec_or_unshare(bare: PythonSession, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    code = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "results = [\n"
        "    libc.syscall(57),\n"  # fork
        f"    libc.system(b'touch {marker}'),\n"
        "    libc.unshare(0x10000000),\n"  # CLONE_NEWUSER
        "    libc.syscall(101, 16, 1, 0, 0),\n"  # ptrace(PTRACE_ATTACH, 1)
        "    libc.mount(b'none', b'/sandbox', b'tmpfs', 0, None),\n"
        "]\n"
        "results"
    )
    result = await bare.arun(code)
    assert not marker.exists()
    assert result.value is not None
    fork, system, unshare, ptrace, mount = (
        int(part) for part in result.value.strip("[]").split(",")
    )
    assert fork == -1 and unshare == -1 and ptrace == -1 and mount == -1
    assert system != 0
    worker_pid = bare.worker_pid
    assert worker_pid is not None and children_of(worker_pid) == []
    assert processes_of_uid(uid_of(worker_pid)) == {worker_pid}


async def test_fork_bomb_creates_no_process(session: PythonSession) -> None:
    await session.arun("1")
    worker_pid = session.worker_pid
    assert worker_pid is not None
    result = await session.arun(
        "os = __import__('random')._os\ncount = 0\nwhile count < 1000:\n    os.fork()\n"
        "    count += 1\ncount"
    )
    assert result.error is not None and "PermissionError" in result.error
    assert children_of(worker_pid) == []
    assert processes_of_uid(uid_of(worker_pid)) == {worker_pid}


async def test_thread_bomb_stops_at_the_thread_limit(bare: PythonSession) -> None:
    result = await bare.arun(
        "import threading, time\n"
        "started = 0\n"
        "event = threading.Event()\n"
        "try:\n"
        "    for _ in range(1000):\n"
        "        threading.Thread(target=event.wait, daemon=True).start()\n"
        "        started += 1\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
        "event.set()\n"
        "started"
    )
    assert result.value is not None and int(result.value) < LIMITS.threads
    assert "can't start new thread" in result.stdout


async def test_memory_bomb_hits_the_address_space_limit(pool: SandboxPool) -> None:
    limits = SandboxLimits(timeout=20, memory_mb=128)
    python_session = PythonSession(pool, limits=limits, allowed_imports=None, audit_hook=False)
    try:
        result = await python_session.arun(
            "chunks = []\n"
            "try:\n"
            "    while True:\n"
            "        chunks.append(bytearray(16 * 1024 * 1024))\n"
            "except MemoryError:\n"
            "    size = len(chunks) * 16\n"
            "    chunks.clear()\n"
            "size"
        )
        # The limit is the preloaded interpreter's address space plus `memory_mb`; freed space
        # inside the baseline can be reused, so the code gets roughly `memory_mb`, not more.
        assert result.value is not None and int(result.value) < 2 * limits.memory_mb
        worker_pid = python_session.worker_pid
        status = Path(f"/proc/{worker_pid}/status").read_text()
        peak = next(line for line in status.splitlines() if line.startswith("VmPeak:"))
        limit_lines = Path(f"/proc/{worker_pid}/limits").read_text().splitlines()
        address_space = next(line for line in limit_lines if line.startswith("Max address space"))
        assert int(peak.split()[1]) * 1024 <= int(address_space.split()[3])
        assert (await python_session.arun("'alive'")).value == "'alive'"
    finally:
        await python_session.aclose()


async def test_one_huge_allocation_is_refused(session: PythonSession) -> None:
    result = await session.arun("x = ' ' * (8 * 1024 ** 3)")
    assert result.error is not None and "MemoryError" in result.error
    assert not result.state_lost


async def test_infinite_loop_is_killed_with_its_worker(session: PythonSession) -> None:
    await session.arun("1")
    worker_pid = session.worker_pid
    assert worker_pid is not None
    result = await session.arun("while True:\n    pass")
    assert result.error is not None and result.error.startswith("timed out after 2 s")
    assert (
        not Path(f"/proc/{worker_pid}").exists()
        or "Z" in Path(f"/proc/{worker_pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    )
    assert (await session.arun("2 + 2")).value == "4"


async def test_huge_output_is_capped_before_it_reaches_the_host(session: PythonSession) -> None:
    result = await session.arun("for _ in range(2000):\n    print('x' * 10_000)")
    assert len(result.stdout) < LIMITS.max_output_chars + 200
    assert result.stdout.endswith(
        f"[output truncated: showing {LIMITS.max_output_chars} of 20002000 characters]"
    )


async def test_file_size_open_files_and_disk_are_limited(bare: PythonSession) -> None:
    result = await bare.arun(
        "outcomes = []\n"
        "try:\n"
        f"    open('big.bin', 'wb').write(b'x' * ({LIMITS.file_mb} + 1) * 1024 * 1024)\n"
        "    outcomes.append('big file written')\n"
        "except OSError as exc:\n"
        "    outcomes.append(exc.errno)\n"
        "handles = []\n"
        "try:\n"
        "    for index in range(1000):\n"
        "        handles.append(open(f'f{index}', 'w'))\n"
        "except OSError as exc:\n"
        "    outcomes.append(exc.errno)\n"
        "for handle in handles:\n"
        "    handle.close()\n"
        "try:\n"
        "    for index in range(10):\n"
        "        open(f'fill{index}', 'wb').write(b'x' * 15 * 1024 * 1024)\n"
        "    outcomes.append('disk filled')\n"
        "except OSError as exc:\n"
        "    outcomes.append(exc.errno)\n"
        "outcomes"
    )
    import errno

    assert result.value == repr([errno.EFBIG, errno.EMFILE, errno.ENOSPC])


async def test_signals_cannot_reach_the_host_the_template_or_a_canary(
    session: PythonSession, pool: SandboxPool
) -> None:
    canary = subprocess.Popen(["sleep", "30"])
    try:
        await session.arun("1")
        template_pid = pool.template_pid
        targets = [os.getpid(), canary.pid, template_pid, os.getppid()]
        code = (
            "os = __import__('random')._os\n"
            "outcomes = []\n"
            f"for pid in {targets!r} + [-1]:\n"
            "    try:\n"
            "        os.kill(pid, 9)\n"
            "        outcomes.append('sent')\n"
            "    except Exception as exc:\n"
            "        outcomes.append(type(exc).__name__)\n"
            "outcomes"
        )
        result = await session.arun(code)
        assert canary.poll() is None
        assert template_pid is not None and pool.template_pid == template_pid
        assert result.value is not None and "'sent'" not in result.value
        assert (await session.arun("'still running'")).value == "'still running'"
    finally:
        canary.kill()
        canary.wait()
