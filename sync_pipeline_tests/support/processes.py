"""Long-running processes for the end-to-end tests (webservers, daemons, code servers): start each in its own process
group that dies with the test process, wait for ports and answers, and stop a group with everything it started.

Used by test_ui_end_to_end.py and test_production_topology.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PR_SET_PDEATHSIG = 1  # Linux prctl option: signal this process when its parent dies
STOP_SECONDS = 30  # how long a stopped group gets to exit on SIGTERM before SIGKILL


# Ports handed to servers the tests start come from below the kernel's ephemeral range (32768-60999 on Linux):
# a port taken from that range (bind to 0) can be taken again, before our server binds it, by anything else that
# asks the kernel for a free port meanwhile — `dagster code-server start` does exactly that for the gRPC server it
# spawns, which once answered the admin webserver's port with HTTP/2 frames (BadStatusLine).
PORT_RANGE = (20_000, 32_000)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, outside the kernel's ephemeral range."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(*PORT_RANGE)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORT_RANGE} after 200 tries")


def wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.2) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the test process dies, even killed before its teardown runs."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `argv` in its own process group (stopped as a whole by `stop`), output appended to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process and everything it started (its process group: code servers, run workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_SECONDS)
    with contextlib.suppress(ProcessLookupError):  # stragglers of the group, even when the leader exited
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=STOP_SECONDS)


def fail_if_exited(processes: Iterable[subprocess.Popen[bytes]], logs: Iterable[Path]) -> None:
    """Raise with the end of every log when one of the processes has exited (fail fast while waiting for them)."""
    for process in processes:
        if process.poll() is not None:
            tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
            raise AssertionError(f"{process.args[0]} exited with {process.returncode}:\n{tails}")


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, process group) of a live process, from /proc (None when it is gone or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may contain spaces and parentheses
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[2])


def _live_pids() -> dict[int, tuple[int, int]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _proc_stat(int(entry))) is not None:
            found[int(entry)] = stat
    return found


def descendants(roots: Iterable[int]) -> set[int]:
    """The live processes among `roots`, their children (any depth) and the members of their process groups."""
    live = _live_pids()
    found = {pid for pid in roots if pid in live}
    groups = set(found)
    changed = True
    while changed:
        changed = False
        for pid, (parent, group) in live.items():
            if pid not in found and (parent in found or group in groups):
                found.add(pid)
                changed = True
    return found


def alive(pids: Iterable[int]) -> set[int]:
    """Those of `pids` that are still running (zombies count as gone)."""
    return {pid for pid in pids if _proc_stat(pid) is not None}
