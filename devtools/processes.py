"""Child processes of the local stack: start, wait until ready, stop cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


class StackError(RuntimeError):
    """A problem the user can fix; printed as one line, no traceback."""


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_free_port(host: str, port: int, what: str, setting: str) -> None:
    if port_in_use(host, port):
        raise StackError(
            f"port {port} on {host} is already in use, so {what} cannot start. "
            f"Stop whatever holds it (is another stack running?) or set {setting}."
        )


def wait_for_port(host: str, port: int, within: float, child: Child) -> None:
    deadline = time.monotonic() + within
    while not port_in_use(host, port):
        if child.proc.poll() is not None:
            raise StackError(f"{child.name} exited during start-up; see {child.log_path}")
        if time.monotonic() > deadline:
            raise StackError(f"{child.name} did not open port {port} in {within:.0f}s")
        time.sleep(0.2)


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Children:
    log_dir: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    running: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: list[str]) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("ab")
        proc = subprocess.Popen(  # own process group: Ctrl-C is handled by us, in order
            argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        child = Child(name, proc, log_path)
        self.running.append(child)
        return child

    def first_exited(self) -> Child | None:
        return next((c for c in self.running if c.proc.poll() is not None), None)

    def stop_all(self, grace: float = 10.0) -> None:
        """Stop in reverse start order (worker before Temporal), SIGTERM then SIGKILL."""
        for child in reversed(self.running):
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
                try:
                    child.proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.proc.wait()
        self.running.clear()
