"""`python -m payouts_sandbox --host 127.0.0.1 --port 8765 [...]`."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from payouts import settings
from payouts_sandbox.faults import FAULTS, FaultSpecError, parse_faults


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bank"]:  # the bank mode: an SFTP host-to-host (payouts_sandbox.bank.server)
        from payouts_sandbox.bank.server import main as bank_main

        return bank_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m payouts_sandbox",
        description="Provider sandbox: simulated payment rails over HTTP.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="faults: " + "; ".join(f"{k}: {v}" for k, v in FAULTS.items()),
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--state-dir", default=None,
                        help="SQLite state and statements (default: settings.sandbox_state_dir())")
    parser.add_argument("--latency-ms", type=float, default=None,
                        help="added to every payment request (default: PAYOUTS_SANDBOX_LATENCY_MS)")
    parser.add_argument("--faults", default=None, help="e.g. reject=0.02,return=0.01,transient=0.1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start-date", type=dt.date.fromisoformat, default=None,
                        help="first business date of a new state dir (YYYY-MM-DD)")
    parser.add_argument("--day-seconds", type=float, default=None,
                        help="close one business day every S seconds by itself (default: only when"
                             " POST /v1/clock/advance asks)")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    if args.day_seconds is not None and args.day_seconds <= 0:
        parser.error("--day-seconds must be positive")
    try:
        parse_faults(args.faults)
    except FaultSpecError as exc:
        parser.error(f"--faults: {exc}")

    import uvicorn

    from payouts_sandbox.app import create_app

    app = create_app(
        state_dir=args.state_dir or settings.sandbox_state_dir(),
        latency_ms=args.latency_ms, faults=args.faults, seed=args.seed,
        start_date=args.start_date, day_seconds=args.day_seconds,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
