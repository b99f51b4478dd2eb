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
