"""`payouts run --provider bank`: the sandbox bank as the connection payouts_bank for every bank rail
(crypto stays on the API sandbox), the pending payments polled before the statements are fetched."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

from payouts import settings
from payouts_sandbox.run_provider import RunProvider

BANK_CONN_ID = "payouts_bank"
BANK_RAILS = ("sepa_instant", "sepa_credit", "swift", "faster_payments", "ach")


def start_for_run(stack: ExitStack, args, note: Callable[[str], None], steps: list[str]) -> RunProvider:
    faults, seed = args.faults, args.seed
    from payouts_sandbox.bank.process import start_bank

    var = settings.conn_env_var(BANK_CONN_ID)
    if not os.environ.get(var):
        bank = stack.enter_context(start_bank(settings.sandbox_state_dir() / "bank", faults=faults, seed=seed,
                                              late_s=float(os.environ.get("PAYOUTS_BANK_LATE_S", "1"))))
        os.environ[var] = bank.connection_json(
            status_wait_s=float(os.environ.get("PAYOUTS_BANK_STATUS_WAIT_S", "14400")))
        note(f"sandbox bank started on sftp://127.0.0.1:{bank.port} (connection {BANK_CONN_ID}), files in {bank.root}")
    named = [p for p in os.environ.get("PAYOUTS_RAIL_PROVIDERS", "").split(",")
             if p.strip() and p.partition("=")[0].strip() not in BANK_RAILS]
    os.environ["PAYOUTS_RAIL_PROVIDERS"] = ",".join(named + [f"{rail}={BANK_CONN_ID}" for rail in BANK_RAILS])

    def copy_out(dest: Path) -> dict:
        from payouts.providers.bank_h2h.exchange import copy_exchanged
        from payouts.warehouse import connect

        with connect() as conn:
            return copy_exchanged(conn, BANK_CONN_ID, dest)

    # The pending payments are polled after the bank's day, before the statements are fetched.
    out = list(steps)
    out.insert(out.index("fetch_statements"), "poll_payments")
    return RunProvider(steps=out, copy_out=copy_out)
