"""The program that runs in the sandbox's template process and in every session worker.

The host starts it once per pool as `python -I _sandbox_worker.py <config>` with a clean
environment and a SOCK_SEQPACKET control socket whose descriptor the config names. This
*template* imports the heavy modules once (numpy, pandas, the allowed stdlib modules) and keeps
spare workers forked ahead of time:

    template ── fork ──> setup process: unshare(mount, net, pid, ipc, uts) ── fork ──> spare
                         (reports the spare's pid, exits)                    (pid 1 of its pid
                                                                              namespace)

A spare builds its private filesystem view, then waits. Each spawn request from the host
carries a session socket (passed with SCM_RIGHTS); the template hands it and the session's
settings to a spare, which mounts its working directory, sets resource limits, drops to its own
uid, applies Landlock and seccomp, installs the import policy and audit hook, reports which
protections are in force, and then runs calls: each arrives as a socket of its own, passed
over the session socket, carrying one JSON request in and one JSON reply out (see
`_sandbox_run.serve`). No pickle crosses the boundary.

It never imports agentlib and uses only the stdlib, as do its two siblings, which it loads by
path in the template before forking: `_sandbox_os.py` (the isolation primitives) and
`_sandbox_run.py` (running the session's calls).
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import importlib.util
import json
import os
import resource
import select
import signal
import socket
import sys
from collections.abc import Callable, Collection
from types import ModuleType
from typing import Any

_WORKDIR = "/sandbox"
_REFILL_DELAY = 0.01
_SPARE_NICENESS = 10
_DEVICES = ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"]
_BLOCKED_AUDIT_EVENTS = frozenset(
    {
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "os.killpg",
        "signal.pthread_kill",
        "subprocess.Popen",
        "pty.spawn",
        "socket.__new__",
        "socket.bind",
        "socket.connect",
        "socket.getaddrinfo",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.call_function",
        "ctypes.cdata",
        "ctypes.cdata/buffer",
        "sys.setprofile",
        "sys.settrace",
        "gc.get_referrers",
    }
)


def _load_sibling(filename: str) -> ModuleType:
    """Load a module that sits beside this file (`_sandbox_os.py`, `_sandbox_run.py`).

    The host runs this file by path under -I, so its folder is not on sys.path. The template
    loads its siblings before forking, so the workers have them without reading the files.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), filename)
    spec = importlib.util.spec_from_file_location(f"_agentlib{filename.removesuffix('.py')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the template process ---------------------------------------------------------------------


def _preload(modules: list[str]) -> None:
    for name in modules:
        try:
            __import__(name)
        except Exception:  # an optional module that is absent or broken stays unavailable
            continue


def _read_only_paths() -> list[str]:
    """What the worker must keep reading: the stdlib and the preloaded packages' own folders.

    A stdlib entry of `sys.path` (the stdlib, `lib-dynload`, the zip) is mounted whole. For any
    other entry only the folder (or file) of each package the template imported is mounted,
    with the wheels' bundled libraries (`numpy.libs`): an entry can be a project root, put on
    `sys.path` by a path-style editable install's `.pth`, holding `.env` or `.git`.
    """
    entries = sorted(
        {os.path.abspath(entry) for entry in sys.path if entry and os.path.isabs(entry)},
        key=len,
        reverse=True,
    )
    stdlib = sys.stdlib_module_names
    paths: set[str] = set()
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        if top.startswith("__editable__"):
            continue  # an editable install's finder: it imports from project roots, not here
        for location in _module_locations(module):
            entry = next((e for e in entries if location.startswith(e + os.sep)), None)
            if entry is None:
                continue
            if top in stdlib:
                paths.add(entry)
                continue
            first = location[len(entry) + 1 :].split(os.sep, 1)[0]
            paths.add(os.path.join(entry, first))
            paths.update(_bundled_libraries(entry, first))
    for extra in ("/usr/share/zoneinfo",):
        if os.path.isdir(extra):
            paths.add(extra)
    # A path under another one is covered by its parent's mount.
    kept: list[str] = []
    for path in sorted(p for p in paths if os.path.exists(p)):
        if not any(path == parent or path.startswith(parent + os.sep) for parent in kept):
            kept.append(path)
    return kept


def _module_locations(module: object) -> list[str]:
    file = getattr(module, "__file__", None)
    if isinstance(file, str) and os.path.isabs(file):
        return [os.path.abspath(file)]
    search = getattr(module, "__path__", None)  # a namespace package has no file
    try:
        return [os.path.abspath(path) for path in search or () if os.path.isabs(path)]
    except TypeError:
        return []


def _bundled_libraries(entry: str, first: str) -> list[str]:
    """Folders of shared libraries that wheels put beside a package (`numpy.libs`)."""
    stem = first.partition(".")[0].lower()
    try:
        names = os.listdir(entry)
    except OSError:
        return []
    return [
        os.path.join(entry, name)
        for name in names
        if name.endswith(".libs") and name.lower().startswith(stem)
    ]


class _Spare:
    """A worker forked ahead of time: namespaces and private root ready, waiting for a session."""

    def __init__(self, setup_pid: int, pid_pipe: int, channel: socket.socket) -> None:
        self.setup_pid = setup_pid
        self.pid_pipe = pid_pipe
        self.channel = channel

    def worker_pid(self) -> int:
        """The worker's pid (0 if its setup failed); waits for the setup process to finish."""
        data = b""
        while chunk := os.read(self.pid_pipe, 64):
            data += chunk
        os.close(self.pid_pipe)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.setup_pid, 0)
        return int(data) if data else 0


def template_main(config: dict[str, Any]) -> None:
    """Preload modules, then hand one sandboxed worker to each spawn request until the host leaves.

    `config["spares"]` workers are kept forked ahead of time, so a session start only pays for
    the per-session settings (limits, uid, Landlock, seccomp), not for forks and mounts.
    """
    _preload(config["preload"])
    os_layer = _load_sibling("_sandbox_os.py")
    runner = _load_sibling("_sandbox_run.py")
    read_only = _read_only_paths()
    # Keep the preloaded objects out of every future garbage collection: a collection in a
    # forked worker would otherwise touch (and copy) every page the template shares with it.
    gc.collect()
    gc.freeze()
    staging = config["staging"]
    control = socket.socket(fileno=config["control_fd"])
    workers: set[int] = set()
    spares: list[_Spare] = []

    def reap(*_: object) -> None:
        for pid in list(workers):
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                workers.discard(pid)

    # Workers are re-parented to the template (a subreaper), so it reaps them and can kill
    # every one of them when the host goes away.
    os_layer._libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    signal.signal(signal.SIGCHLD, reap)
    try:
        while True:
            if len(spares) < config["spares"]:
                # Refill once the template has been idle for a moment, so the fork does not
                # compete with the session that just took a spare for its first call.
                pending, _, _ = select.select([control], [], [], _REFILL_DELAY)
                if not pending:
                    spares.append(
                        _fork_spare(os_layer, runner, read_only, staging, background=True)
                    )
                    continue
            message, descriptors, _flags, _address = socket.recv_fds(control, 65536, 2)
            if not message:
                break
            request = json.loads(message)
            if request.get("op") == "spawn" and descriptors:
                spare = (
                    spares.pop(0) if spares else _fork_spare(os_layer, runner, read_only, staging)
                )
                pid = _hand_over(spare, request, descriptors[0])
                if pid:
                    workers.add(pid)
            for descriptor in descriptors:
                os.close(descriptor)
    finally:
        _shut_down(spares, workers)


def _shut_down(spares: list[_Spare], workers: set[int]) -> None:
    """Kill every spare and worker and reap them: the host is gone or closed the pool.

    The template exits only once they are all gone, so a closed pool leaves no process behind,
    not even one still building its private root.
    """
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pids = set(workers)
    for spare in spares:
        spare.channel.close()
        pids.add(spare.worker_pid())  # waits for its setup process, so it is our child now
    pids.discard(0)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _fork_spare(
    os_layer: Any, runner: Any, read_only: list[str], staging: str, *, background: bool = False
) -> _Spare:
    """Fork the setup process, which unshares namespaces and forks the spare worker."""
    template_end, spare_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    read_end, write_end = os.pipe()
    setup_pid = os.fork()
    if setup_pid == 0:
        status = 1
        try:
            os.close(read_end)
            template_end.close()
            if background and os.geteuid() == 0:
                # Prepare the spare at low priority so it does not slow running sessions; it
                # returns to normal priority when handed a session (lowering needs root).
                os.nice(_SPARE_NICENESS)
            _setup_process(spare_end, write_end, os_layer, runner, read_only, staging)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    spare_end.close()
    return _Spare(setup_pid, read_end, template_end)


def _hand_over(spare: _Spare, request: dict[str, Any], session_fd: int) -> int:
    """Give a spare its session settings and socket; return its pid (0 if it was lost)."""
    pid = spare.worker_pid()
    try:
        if pid:
            message = json.dumps({**request, "worker_pid": pid}).encode()
            socket.send_fds(spare.channel, [message], [session_fd])
    except OSError:
        pid = 0
    finally:
        spare.channel.close()
    if not pid:
        failure = {"ready": False, "error": "the sandbox worker did not start"}
        os.write(session_fd, json.dumps(failure).encode() + b"\n")
    return pid


def _setup_process(
    channel: socket.socket,
    pid_pipe: int,
    os_layer: Any,
    runner: Any,
    read_only: list[str],
    staging: str,
) -> None:
    notes: dict[str, str] = {}
    missing: dict[str, str] = {}
    try:
        names = os_layer.unshare_namespaces(as_root=os.geteuid() == 0)
        notes["namespaces"] = f"new {', '.join(names)} namespaces"
    except OSError as exc:
        missing["namespaces"] = str(exc)
    else:
        try:
            notes["ipc"] = os_layer.limit_ipc_namespace()
        except OSError as exc:
            missing["ipc"] = f"IPC namespace limits not set: {exc}"
    worker_pid = os.fork()
    if worker_pid == 0:
        os.close(pid_pipe)
        status = 1
        try:
            _worker_main(channel, os_layer, runner, read_only, staging, notes, missing)
            status = 0
        finally:
            os._exit(status)
    os.write(pid_pipe, str(worker_pid).encode())
    os.close(pid_pipe)


# --- the worker: sandbox setup ----------------------------------------------------------------


def _worker_main(
    spare_channel: socket.socket,
    os_layer: Any,
    runner: Any,
    read_only: list[str],
    staging: str,
    notes: dict[str, str],
    missing: dict[str, str],
) -> None:
    os.setsid()
    keep = spare_channel.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, max(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # Before a session exists: everything that does not depend on the session's settings.
    baseline = os_layer.address_space_in_use()
    if "namespaces" in notes:
        try:
            notes["filesystem"] = os_layer.build_private_root(
                staging, read_only_paths=read_only, device_paths=_DEVICES, workdir=_WORKDIR
            )
        except OSError as exc:  # the session falls back to Landlock over the host's view
            missing["filesystem"] = f"private root refused: {exc}"
    # Wait for a session; an empty message means the template is gone.
    message, descriptors, _flags, _address = socket.recv_fds(spare_channel, 65536, 1)
    spare_channel.close()
    if not message or not descriptors:
        return
    request = json.loads(message)
    if os.geteuid() == 0:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    channel = socket.socket(fileno=descriptors[0])
    channel.setblocking(True)
    channel.sendall(json.dumps({"pid": request["worker_pid"]}).encode() + b"\n")
    try:
        _harden(request, os_layer, read_only, baseline, notes, missing)
    except Exception as exc:
        failure = {"ready": False, "error": f"sandbox setup failed: {type(exc).__name__}: {exc}"}
        channel.sendall(json.dumps(failure).encode() + b"\n")
        return
    wrapping = [False]  # set while the worker wraps a call's socket, which the hook audits
    guard = _install_python_guards(
        request.get("allowed_imports"), request.get("audit_hook", True), wrapping
    )
    notes["python"] = guard
    channel.sendall(json.dumps({"ready": True, "protections": notes, "missing": missing}).encode())
    channel.sendall(b"\n")
    runner.serve(channel, request, wrapping)


def _harden(
    request: dict[str, Any],
    os_layer: Any,
    read_only: list[str],
    baseline: int,
    notes: dict[str, str],
    missing: dict[str, str],
) -> None:
    """Apply the session's protections, recording each one as applied or missing."""
    as_root = os.geteuid() == 0
    uid, gid = request["uid"], request["gid"]
    if "filesystem" in notes:
        owner = (uid, gid) if as_root else (0, 0)
        notes["workdir"] = os_layer.mount_workdir(_WORKDIR, size_mb=request["disk_mb"], owner=owner)
        workdir = _WORKDIR
    else:
        workdir = request["session_dir"]
        if as_root:
            os.chown(workdir, uid, gid)
        os.chdir(workdir)
        missing.setdefault("filesystem", "no mount namespace: the host is hidden by Landlock alone")
    notes["limits"] = os_layer.apply_rlimits(
        memory_bytes=baseline + request["memory_mb"] * 1024 * 1024,
        cpu_seconds=request["lifetime_cpu_seconds"],
        file_bytes=request["file_mb"] * 1024 * 1024,
        open_files=request["open_files"],
        threads=request["threads"] if as_root else None,
    )
    if as_root:
        notes["identity"] = os_layer.drop_to_uid(uid, gid)
    else:
        missing["identity"] = "not started as root: runs as the host's uid; RLIMIT_NPROC unset"
    try:
        read_paths = ["/"] if workdir == _WORKDIR else [*read_only, *_DEVICES]
        write_paths = [workdir, "/dev/null"]
        notes["landlock"] = os_layer.apply_landlock(read_paths=read_paths, write_paths=write_paths)
    except OSError as exc:
        missing["landlock"] = str(exc)
    try:
        notes["seccomp"] = os_layer.apply_seccomp()
    except OSError as exc:
        missing["seccomp"] = str(exc)
    os.environ.clear()
    os.environ.update({"HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8", "TZ": "UTC"})


def _install_python_guards(
    allowed: list[str] | None, audit_hook: bool, wrapping: list[bool]
) -> str:
    """Defence in depth inside the interpreter: an audit hook and the import allow-list.

    `wrapping[0]` is true only while the worker itself makes a socket object for a call's
    descriptor (`socket.__new__` is otherwise refused).
    """
    blocked = _BLOCKED_AUDIT_EVENTS
    parts = []

    def audit(event: str, _arguments: tuple[Any, ...]) -> None:
        if event in blocked and not (wrapping[0] and event == "socket.__new__"):
            raise PermissionError(f"{event} is not allowed in the sandbox")

    if audit_hook:
        sys.addaudithook(audit)  # an audit hook cannot be removed once added
        parts.append("audit hook (process, socket and ctypes events refused)")
    if allowed is not None:
        _install_import_policy(frozenset(allowed))
        parts.append("import allow-list")
    return "; ".join(parts) or "none (the OS sandbox alone)"


def _install_import_policy(allowed: Collection[str]) -> None:
    original: Callable[..., Any] = builtins.__import__
    modules = sys.modules

    def guarded_import(
        name: str,
        globals: dict[str, Any] | None = None,
        locals: dict[str, Any] | None = None,
        fromlist: tuple[str, ...] = (),
        level: int = 0,
    ) -> Any:
        # Imports made by a module's own code (numpy importing its internals) are trusted;
        # imports made by the session's code are checked against the allow-list.
        module_name = globals.get("__name__") if globals else None
        module = modules.get(module_name) if isinstance(module_name, str) else None
        from_module = module is not None and getattr(module, "__dict__", None) is globals
        if not from_module or module_name == "__main__":
            top = name.partition(".")[0]
            if level != 0 or top not in allowed:
                raise ImportError(
                    f"import of {name!r} is not allowed in this sandbox; "
                    f"allowed modules: {', '.join(sorted(allowed))}"
                )
        return original(name, globals, locals, fromlist, level)

    builtins.__import__ = guarded_import  # type: ignore[assignment]


def main() -> None:
    """Entry point: `python -I _sandbox_worker.py '<json config>'`."""
    template_main(json.loads(sys.argv[1]))


if __name__ == "__main__":
    main()
