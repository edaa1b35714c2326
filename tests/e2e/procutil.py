"""Small process helpers shared by tansu.py and prom.py (stdlib only).

A background server is started in its own session (so it survives the helper
that started it and gets no terminal signals), its PID goes to a pidfile, and
it is stopped later by that PID only, after checking /proc that the PID still
belongs to the program we started (PIDs get reused).
"""

import os
import shutil
import signal
import socket
import subprocess
import time


def find_program(env_var, name, extra=()):
    """$env_var, else `name` on PATH, else the first existing path in extra."""
    cand = os.environ.get(env_var)
    if cand:
        if os.access(cand, os.X_OK):
            return cand
        raise SystemExit(f"{env_var}={cand} is not an executable file")
    found = shutil.which(name)
    if found:
        return found
    for path in extra:
        path = os.path.expanduser(path)
        if os.access(path, os.X_OK):
            return path
    raise SystemExit(
        f"{name} not found (set {env_var}, or run scripts/install-test-deps.sh)")


def free_port():
    """A loopback TCP port that was free a moment ago (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def listens(pid, port):
    """True if process pid has a TCP socket in LISTEN state on port (so a
    connect to the port reaches it, not some other program)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{cols[9]}]")
        except OSError:
            pass
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
        except OSError:
            pass
    return False


def spawn(argv, log_path, cwd=None):
    """Start argv detached, stdout+stderr appended to log_path."""
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, cwd=cwd,
                                start_new_session=True)
    finally:
        log.close()


def wait_until(pred, proc, timeout, what, log_path):
    """Poll pred() until true; fail early if proc died, or after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc.poll() is not None:
            raise RuntimeError(
                f"{what} exited with {proc.returncode} before it was ready; "
                f"log {log_path}:\n{tail(log_path)}")
        time.sleep(0.02)
    raise RuntimeError(f"{what} not ready after {timeout}s; log {log_path}:\n"
                       f"{tail(log_path)}")


def tail(path, n=4000):
    try:
        with open(path, "rb") as f:
            data = f.read()
        return data[-n:].decode("utf-8", "replace")
    except OSError:
        return "(no log)"


def log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def read_from(path, offset):
    """Log text written after byte offset (see log_size)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def write_pidfile(path, pid):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{pid}\n")
    os.replace(tmp, path)


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return None


def _alive(pid):
    try:
        # A zombie still "exists" for kill(0); treat it as gone.
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_pidfile(path, expect_in_cmdline, timeout=10.0):
    """SIGTERM the PID in path (if it is still our program), SIGKILL after
    timeout, remove the pidfile. Returns True if a process was stopped."""
    try:
        with open(path) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return False
    cmd = _cmdline(pid)
    stopped = False
    if cmd is not None and expect_in_cmdline in cmd:
        stop_pid(pid, timeout)
        stopped = True
    try:
        os.remove(path)
    except OSError:
        pass
    return stopped


def stop_pid(pid, timeout=10.0):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)


def _reap(pid):
    # Only succeeds if pid is our child (same-process use from Python).
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
