"""`make airflow`: Airflow standalone on the embedded PostgreSQL, with the provider sandbox beside it.

The UI is on http://localhost:8080 (user `admin`, password `admin` unless
AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE names another file).
"""

from __future__ import annotations

import subprocess
import sys

from payouts import airflow_env, settings


def main() -> int:
    from payouts.warehouse import connect, migrate, resolve_url

    url = resolve_url()
    with connect(url) as conn:
        migrate(conn)
    sandbox = None
    sandbox_url = None
    if not settings.sandbox_connection():
        from payouts_sandbox.process import start_sandbox

        sandbox = start_sandbox(settings.sandbox_state_dir(), latency_ms=settings.sandbox_latency_ms(), port=8765)
        sandbox_url = sandbox.url
    env = airflow_env.environment(url, sandbox_url)
    airflow_env.ensure_password_file(env)
    airflow_env.migrate_metadata(env)
    print(f"provider sandbox: {sandbox_url}\nwarehouse: {url}\n"
          f"Airflow UI: http://localhost:8080  (user {airflow_env.ADMIN_USER}, password in "
          f"{env['AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE']})", flush=True)
    try:
        return subprocess.call([airflow_env.airflow_bin(), "standalone"], env=env)
    except KeyboardInterrupt:
        return 0
    finally:
        if sandbox is not None:
            sandbox.stop()


if __name__ == "__main__":
    sys.exit(main())
