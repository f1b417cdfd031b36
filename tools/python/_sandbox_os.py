"""Linux isolation primitives for the Python sandbox worker, through `ctypes` and the stdlib.

Loaded by the worker program (`_sandbox_worker.py`) inside the sandbox's template process, never
by the host's agentlib import. Each function either applies one protection and returns a short
description of it for the worker's report, or raises `OSError` when the kernel refuses, so the
caller can record what is and is not in force. Nothing here is specific to agentlib.

What lives here: namespaces (`unshare`), the private filesystem view (tmpfs root, read-only bind
mounts, `pivot_root`), Landlock, a seccomp-BPF filter, resource limits and the uid drop.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform
import resource
import struct

__all__ = [
    "apply_landlock",
    "apply_rlimits",
    "apply_seccomp",
    "build_private_root",
    "drop_to_uid",
    "limit_ipc_namespace",
    "mount_workdir",
    "set_no_new_privs",
    "unshare_namespaces",
]

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_THREAD = 0x00010000

_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_NOATIME = 1024
_MS_NODIRATIME = 2048
_MS_RELATIME = 1 << 21
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_MNT_DETACH = 2

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
_SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every architecture
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446


def _check(result: int, what: str) -> None:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


# --- namespaces ------------------------------------------------------------------------------


def unshare_namespaces(*, as_root: bool) -> list[str]:
    """Enter new network, mount, pid, IPC and UTS namespaces (pid applies to the next child).

    As root the namespaces are created directly. Otherwise a user namespace is created first
    (where the kernel allows unprivileged user namespaces) mapping the caller to root inside it.

    Returns:
        The names of the namespaces entered.

    Raises:
        OSError: The kernel refused (no privilege, or namespaces disabled).
    """
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    names = ["mount", "network", "pid", "ipc", "uts"]
    if as_root:
        _check(_libc.unshare(flags), "unshare")
        return names
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(flags | CLONE_NEWUSER), "unshare")
    with open("/proc/self/setgroups", "w") as handle:
        handle.write("deny")
    with open("/proc/self/uid_map", "w") as handle:
        handle.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as handle:
        handle.write(f"0 {gid} 1")
    return ["user", *names]


# IPC objects (SysV shared memory, semaphores, message queues) belong to the IPC namespace, not
# to a process, so no rlimit counts them; a new namespace starts with the kernel's huge
# defaults. Zero limits, set while the setup process still has the privilege, mean no object can
# be made even if seccomp is missing. Each file is per-namespace in /proc/sys/kernel.
_IPC_NAMESPACE_LIMITS = {
    "shmmni": "0",
    "shmall": "0",
    "shmmax": "0",
    "msgmni": "0",
    "msgmnb": "0",
    "sem": "0 0 0 0",
}


def limit_ipc_namespace() -> str:
    """Set this IPC namespace's limits to zero: no SysV shared memory, semaphores or queues.

    Needs a private IPC namespace (`unshare_namespaces`) and privilege over it.

    Returns:
        A description for the report.

    Raises:
        OSError: The kernel refused a limit.
    """
    for name, value in _IPC_NAMESPACE_LIMITS.items():
        with open(f"/proc/sys/kernel/{name}", "w") as handle:
            handle.write(value)
    return "IPC namespace limits at zero (no SysV shared memory, semaphores or queues)"


# --- the private filesystem view ------------------------------------------------------------


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    result = _libc.mount(
        source.encode() if source else None,
        target.encode(),
        fstype.encode() if fstype else None,
        flags,
        data.encode() if data else None,
    )
    _check(result, f"mount {source} on {target}")


def _locked_flags(path: str) -> int:
    """The mount flags of `path` that a remount must keep.

    Inside a user namespace, a remount that drops one of them is refused with EPERM.
    """
    flags = os.statvfs(path).f_flag
    kept = 0
    for statvfs_flag, mount_flag in (
        (os.ST_NOSUID, _MS_NOSUID),
        (os.ST_NODEV, _MS_NODEV),
        (os.ST_NOEXEC, _MS_NOEXEC),
        (os.ST_NOATIME, _MS_NOATIME),
        (os.ST_NODIRATIME, _MS_NODIRATIME),
        (os.ST_RELATIME, _MS_RELATIME),
    ):
        if flags & statvfs_flag:
            kept |= mount_flag
    return kept


def _bind_read_only(source: str, target: str) -> None:
    _mount(source, target, None, _MS_BIND | _MS_REC)
    flags = _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV
    _mount(None, target, None, flags | _locked_flags(source))


def build_private_root(
    staging: str, *, read_only_paths: list[str], device_paths: list[str], workdir: str
) -> str:
    """Replace this process's view of the filesystem with a minimal, read-only private root.

    The new root is a small tmpfs holding read-only bind mounts of `read_only_paths` (the Python
    installation), a few device files, and an empty `workdir` for `mount_workdir`. Everything
    else on the host is absent from the view. Needs a private mount namespace
    (`unshare_namespaces`) and mount privilege in it; `staging` is any existing directory,
    used as the mount point of the new root inside this namespace only.

    Returns:
        A description for the report.
    """
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount("tmpfs", staging, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=755")
    for path in read_only_paths:
        target = staging + path
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
        elif os.path.isfile(path):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "w").close()
        else:
            continue
        _bind_read_only(path, target)
    os.makedirs(staging + "/dev", exist_ok=True)
    for path in device_paths:
        if os.path.exists(path):
            open(staging + path, "w").close()
            _mount(path, staging + path, None, _MS_BIND)
            flags = _MS_BIND | _MS_REMOUNT | _MS_NOSUID | _locked_flags(path)
            _mount(None, staging + path, None, flags)
    os.makedirs(staging + workdir, exist_ok=True)
    os.chdir(staging)
    machine = platform.machine()
    if machine not in _SYS_PIVOT_ROOT:
        raise OSError(errno.ENOSYS, f"pivot_root number unknown for {machine}")
    # pivot_root(".", ".") stacks the old root under the new one; detaching it hides the host.
    _check(_libc.syscall(_SYS_PIVOT_ROOT[machine], b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", _MNT_DETACH), "umount old root")
    os.chdir("/")
    _mount(None, "/", None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    return "mount namespace with a private root: Python read-only, the rest of the host absent"


def mount_workdir(workdir: str, *, size_mb: int, owner: tuple[int, int]) -> str:
    """Mount a private tmpfs of at most `size_mb` megabytes at `workdir`, owned by `owner`.

    Returns:
        A description for the report.
    """
    _mount(
        "tmpfs",
        workdir,
        "tmpfs",
        _MS_NOSUID | _MS_NODEV,
        f"size={size_mb}m,nr_inodes=4096,mode=700,uid={owner[0]},gid={owner[1]}",
    )
    os.chdir(workdir)
    return f"private {size_mb} MB tmpfs working directory at {workdir}"


# --- Landlock ---------------------------------------------------------------------------------

_FS_EXECUTE = 1 << 0
_FS_WRITE_FILE = 1 << 1
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_V1_ALL = (1 << 13) - 1
_FS_REFER = 1 << 13
_FS_TRUNCATE = 1 << 14
_FS_IOCTL_DEV = 1 << 15
_NET_BIND_TCP = 1
_NET_CONNECT_TCP = 2
_SCOPE_ABSTRACT_UNIX_SOCKET = 1
_SCOPE_SIGNAL = 2
_RULE_PATH_BENEATH = 1
_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV


def _landlock_abi() -> int:
    version = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, 0, 1)
    if version < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"Landlock unavailable: {os.strerror(code)}")
    return int(version)


def apply_landlock(*, read_paths: list[str], write_paths: list[str]) -> str:
    """Restrict this process and its future children with Landlock.

    Files are readable only under `read_paths` and writable only under `write_paths`; where the
    kernel's Landlock ABI allows it, TCP bind/connect and signals or abstract unix sockets
    reaching outside the sandbox are refused too. Needs `no_new_privs` (or CAP_SYS_ADMIN).

    Returns:
        A description for the report.

    Raises:
        OSError: Landlock is not available in this kernel.
    """
    abi = _landlock_abi()
    handled_fs = _FS_V1_ALL
    if abi >= 2:
        handled_fs |= _FS_REFER
    if abi >= 3:
        handled_fs |= _FS_TRUNCATE
    if abi >= 5:
        handled_fs |= _FS_IOCTL_DEV
    handled_net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    if abi >= 6:
        attribute = struct.pack("=QQQ", handled_fs, handled_net, scoped)
    elif abi >= 4:
        attribute = struct.pack("=QQ", handled_fs, handled_net)
    else:
        attribute = struct.pack("=Q", handled_fs)
    buffer = ctypes.create_string_buffer(attribute, len(attribute))
    ruleset = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, buffer, len(attribute), 0)
    _check(ruleset, "landlock_create_ruleset")
    try:
        read_rights = (_FS_READ_FILE | _FS_READ_DIR) & handled_fs
        for paths, rights in ((read_paths, read_rights), (write_paths, handled_fs)):
            for path in paths:
                _add_landlock_rule(int(ruleset), path, rights)
        set_no_new_privs()
        _check(_libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, int(ruleset), 0), "landlock_restrict")
    finally:
        os.close(int(ruleset))
    parts = ["files: read-only Python paths, writable working directory"]
    if handled_net:
        parts.append("TCP bind/connect refused")
    if scoped:
        parts.append("signals and abstract unix sockets scoped to the sandbox")
    return f"Landlock ABI {abi} ({'; '.join(parts)})"


def _add_landlock_rule(ruleset: int, path: str, rights: int) -> None:
    try:
        descriptor = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path that does not exist needs no rule
    try:
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS
        attribute = struct.pack("=Qi", rights, descriptor)  # struct is packed: 12 bytes
        buffer = ctypes.create_string_buffer(attribute, len(attribute))
        result = _libc.syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, _RULE_PATH_BENEATH, buffer, 0)
        _check(result, f"landlock_add_rule {path}")
    finally:
        os.close(descriptor)


def set_no_new_privs() -> None:
    """Forbid gaining privileges through execve (setuid binaries, file capabilities)."""
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")


# --- seccomp ----------------------------------------------------------------------------------

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

# x86_64 system calls refused with EPERM: running programs, making processes (threads are
# allowed, see below), sockets, and kernel interfaces a sandbox never needs.
_X86_64_DENIED = {
    "fork": 57,
    "vfork": 58,
    "execve": 59,
    "execveat": 322,
    "socket": 41,
    "ptrace": 101,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "pidfd_getfd": 438,
    "mount": 165,
    "umount2": 166,
    "pivot_root": 155,
    "chroot": 161,
    "unshare": 272,
    "setns": 308,
    "mknod": 133,
    "mknodat": 259,
    "kexec_load": 246,
    "kexec_file_load": 320,
    "init_module": 175,
    "finit_module": 313,
    "delete_module": 176,
    "bpf": 321,
    "perf_event_open": 298,
    "userfaultfd": 323,
    "keyctl": 250,
    "add_key": 248,
    "request_key": 249,
    "open_by_handle_at": 304,
    "name_to_handle_at": 303,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "reboot": 169,
    "swapon": 167,
    "swapoff": 168,
    "syslog": 103,
    "acct": 163,
    "quotactl": 179,
    "fsopen": 430,
    "fsmount": 432,
    "move_mount": 429,
    "open_tree": 428,
    # Memory the kernel holds for a file or an IPC object outlives the mapping, so RLIMIT_AS
    # does not count it: memfd files, SysV shared memory, semaphores and message queues, and
    # POSIX message queues. numpy and pandas use none of them (the template imports them and
    # the tests run them under this filter).
    "memfd_create": 319,
    "memfd_secret": 447,
    "shmget": 29,
    "shmat": 30,
    "shmctl": 31,
    "shmdt": 67,
    "semget": 64,
    "semop": 65,
    "semctl": 66,
    "semtimedop": 220,
    "msgget": 68,
    "msgsnd": 69,
    "msgrcv": 70,
    "msgctl": 71,
    "mq_open": 240,
    "mq_unlink": 241,
    "mq_timedsend": 242,
    "mq_timedreceive": 243,
    "mq_notify": 244,
    "mq_getsetattr": 245,
    # Pipe and socket-pair buffers are kernel memory too (a unix socket can queue up to twice
    # net.core.wmem_max, 8 MB here, per direction): nothing in the sandbox needs new ones.
    "pipe": 22,
    "pipe2": 293,
    "socketpair": 53,
}
_X86_64_CLONE = 56
_X86_64_CLONE3 = 435


def _statement(code: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, 0, 0, k)


def _jump(code: int, k: int, if_true: int, if_false: int) -> bytes:
    return struct.pack("=HBBI", code, if_true, if_false, k)


def _seccomp_program() -> list[bytes]:
    eperm = _RET_ERRNO | errno.EPERM
    program = [
        _statement(_LD_W_ABS, 4),  # seccomp_data.arch
        _jump(_JEQ_K, _AUDIT_ARCH_X86_64, 1, 0),
        _statement(_RET_K, _RET_KILL_PROCESS),
        _statement(_LD_W_ABS, 0),  # seccomp_data.nr
        _jump(_JGE_K, _X32_SYSCALL_BIT, 0, 1),  # x32 numbers would bypass the list below
        _statement(_RET_K, _RET_KILL_PROCESS),
    ]
    for number in sorted(_X86_64_DENIED.values()):
        program += [_jump(_JEQ_K, number, 0, 1), _statement(_RET_K, eperm)]
    # clone3 passes its flags in memory the filter cannot read: answer ENOSYS so the C library
    # falls back to clone, whose flags the filter can check.
    program += [_jump(_JEQ_K, _X86_64_CLONE3, 0, 1), _statement(_RET_K, _RET_ERRNO | errno.ENOSYS)]
    program += [
        _jump(_JEQ_K, _X86_64_CLONE, 0, 4),
        _statement(_LD_W_ABS, 16),  # low 32 bits of clone's flags (little-endian)
        _jump(_JSET_K, CLONE_THREAD, 0, 1),
        _statement(_RET_K, _RET_ALLOW),  # a thread
        _statement(_RET_K, eperm),  # a new process
        _statement(_RET_K, _RET_ALLOW),
    ]
    return program


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def apply_seccomp() -> str:
    """Install a seccomp-BPF filter: no new processes, no exec, no sockets, no kernel admin calls.

    Threads stay allowed (their number is bounded by `RLIMIT_NPROC`). The filter cannot be
    removed and is inherited by every thread.

    Returns:
        A description for the report.

    Raises:
        OSError: Not x86_64, or the kernel refused the filter.
    """
    if platform.machine() != "x86_64":
        raise OSError(errno.ENOSYS, f"no seccomp system-call table for {platform.machine()}")
    code = b"".join(_seccomp_program())
    buffer = ctypes.create_string_buffer(code, len(code))
    program = _SockFprog(len(code) // 8, ctypes.addressof(buffer))
    set_no_new_privs()
    result = _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0)
    _check(result, "prctl(SECCOMP)")
    return (
        "seccomp filter (fork, exec, socket, ptrace, mount, kernel admin, memfd, pipe, socket "
        "pair and SysV/POSIX IPC calls refused)"
    )


# --- limits and identity ----------------------------------------------------------------------


def address_space_in_use() -> int:
    """Bytes of address space this process maps now."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[0])
    return pages * os.sysconf("SC_PAGE_SIZE")


def apply_rlimits(
    *,
    memory_bytes: int,
    cpu_seconds: int,
    file_bytes: int,
    open_files: int,
    threads: int | None,
) -> str:
    """Set hard resource limits; `threads` is only set when the uid is the sandbox's own.

    Returns:
        A description for the report.
    """
    limits = [
        (resource.RLIMIT_AS, memory_bytes),
        (resource.RLIMIT_FSIZE, file_bytes),
        (resource.RLIMIT_NOFILE, open_files),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_MEMLOCK, 0),
        (resource.RLIMIT_MSGQUEUE, 0),  # POSIX message queues hold kernel memory
    ]
    if threads is not None:
        limits.append((resource.RLIMIT_NPROC, threads))
    for kind, value in limits:
        resource.setrlimit(kind, (value, value))
    # The soft CPU limit is re-armed per call by the worker; the hard limit caps the lifetime.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    names = "RLIMIT_AS, RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_MSGQUEUE"
    return names + (", RLIMIT_NPROC (threads)" if threads is not None else "")


def drop_to_uid(uid: int, gid: int) -> str:
    """Drop root: no supplementary groups, then `gid` and `uid`, which removes all capabilities.

    Returns:
        A description for the report.
    """
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    return f"runs as uid {uid} (its own, no capabilities)"
