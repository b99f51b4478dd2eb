"""Start and stop a sandbox in a subprocess (tests, benchmarks, local runs).

    with start_sandbox(tmp_path, latency_ms=5, faults="transient=0.2", seed=7) as sandbox:
        GenericHttpConnector(sandbox.url).health()

The sandbox is tooling: `payouts run`, `make airflow`, tests and benchmarks start
it; the runtime reaches it only through a provider connection.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from payouts import settings

# The folder that holds this package (it is not under plugins/).
SANDBOX_DIR = Path(__file__).resolve().parent.parent


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ChildProcess:
    """A server this package started (the sandbox, the sandbox bank, the local chain): its log,
    `.stop()` (SIGTERM, then SIGKILL if it lingers), and a context manager that stops it."""

    process: subprocess.Popen | None
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class SandboxProcess(ChildProcess):
    """A running sandbox subprocess; `.url`, `.stop()`, and a context manager."""

    def __init__(self, process: subprocess.Popen, url: str, state_dir: Path, log_path: Path):
        self.process = process
        self.url = url
        self.state_dir = state_dir
        self.log_path = log_path

    def __repr__(self) -> str:
        return f"SandboxProcess(pid={self.process.pid}, url={self.url!r})"


def start_sandbox(
    state_dir: str | Path | None = None,
    latency_ms: float = 0,
    faults: str | None = None,
    seed: int = 0,
    port: int = 0,
    host: str = "127.0.0.1",
    start_date: str | None = None,
    ready_timeout: float = 30.0,
    day_seconds: float | None = None,
) -> SandboxProcess:
    """Run `python -m payouts_sandbox` and wait until /v1/health answers."""
    state = Path(state_dir or settings.sandbox_state_dir())
    state.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    cmd = [sys.executable, "-m", "payouts_sandbox", "--host", host,
           "--port", str(port), "--state-dir", str(state), "--latency-ms", str(latency_ms),
           "--seed", str(seed)]
    if faults:
        cmd += ["--faults", faults]
    if start_date:
        cmd += ["--start-date", str(start_date)]
    if day_seconds:
        cmd += ["--day-seconds", str(day_seconds)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(settings.PLUGINS_DIR), str(SANDBOX_DIR), env.get("PYTHONPATH")) if p
    )
    log_path = state / "sandbox.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    sandbox = SandboxProcess(process, f"http://{host}:{port}", state, log_path)
    deadline = time.monotonic() + ready_timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"sandbox exited with code {process.returncode}:\n{sandbox.log()[-3000:]}"
            )
        try:
            if httpx.get(f"{sandbox.url}/v1/health", timeout=1.0).status_code == 200:
                return sandbox
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            sandbox.stop()
            raise TimeoutError(f"sandbox not healthy after {ready_timeout}s:\n{sandbox.log()[-3000:]}")
        time.sleep(0.05)
