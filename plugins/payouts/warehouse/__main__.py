"""`python -m payouts.warehouse upgrade`: apply the pending migrations to the warehouse.

What a deployment runs once before its Airflow components start (docker-compose's
airflow-init); `payouts db upgrade` does the same from a developer's shell.
"""

from __future__ import annotations

import argparse
import json
import sys

from payouts.warehouse import connect, migrate, resolve_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m payouts.warehouse", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["upgrade"])
    parser.parse_args(argv)
    with connect(resolve_url()) as conn:
        applied = migrate(conn)
    print(json.dumps({"applied": applied}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
