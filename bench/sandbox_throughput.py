"""Throughput of the provider sandbox: payments accepted per second over HTTP.

    .venv/bin/python bench/sandbox_throughput.py                       # 100,000 payments, 50 ms, 8 in flight
    .venv/bin/python bench/sandbox_throughput.py --payments 1000000 --latency-ms 0 --close
    .venv/bin/python bench/sandbox_throughput.py --store-only          # SQLite store alone, no HTTP

Starts its own sandbox subprocess on a temporary state dir (or uses --url).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))

from payouts.providers.contract import Creditor, Payment  # noqa: E402
from payouts.providers.generic.connector import GenericHttpConnector  # noqa: E402


def make_batch(start: int, size: int, rail: str) -> list[Payment]:
    currency = {"faster_payments": "GBP", "ach": "USD"}.get(rail, "EUR")
    return [
        Payment(idempotency_key=f"bench-{rail}-{n}", end_to_end_id=f"B{n:015d}",
                amount_minor=100 + n % 100_000, currency=currency,
                creditor=Creditor(name=f"Payee {n}", country="DE", iban="DE89370400440532013000",
                                  account_number="12345678", routing_code="026009593"))
        for n in range(start, start + size)
    ]


async def submit_all(provider: GenericHttpConnector, total: int, size: int, concurrency: int,
                     rail: str) -> tuple[int, float]:
    gate = asyncio.Semaphore(concurrency)
    accepted = 0

    async def one(start: int) -> None:
        nonlocal accepted
        async with gate:
            batch = make_batch(start, min(size, total - start), rail)
            results = await provider.submit(rail, batch)
            accepted += sum(r.accepted for r in results)

    provider.max_connections = concurrency
    async with provider.session():
        began = time.perf_counter()
        await asyncio.gather(*(one(s) for s in range(0, total, size)))
        return accepted, time.perf_counter() - began


def store_only(total: int, size: int, state_dir: Path) -> None:
    from payouts_sandbox.app import PaymentIn, amount_minor, body_hash
    from payouts_sandbox.faults import Faults
    from payouts_sandbox.store import IncomingPayment, SandboxStore
    from payouts.providers.generic.connector import payment_to_wire

    store = SandboxStore(state_dir)
    faults = Faults()
    began = time.perf_counter()
    for start in range(0, total, size):
        wires = [payment_to_wire(p) for p in make_batch(start, min(size, total - start), "sepa_instant")]
        parsed = [PaymentIn.model_validate(w) for w in wires]
        incoming = []
        for p in parsed:
            minor = amount_minor(p)
            incoming.append(IncomingPayment(p.idempotency_key, p.end_to_end_id, minor, p.currency,
                                            p.creditor.__dict__, body_hash("sepa_instant", p, minor)))
        store.submit("sepa_instant", incoming, faults)
    elapsed = time.perf_counter() - began
    print(f"store only (validate + hash + insert): {total:,} payments in {elapsed:.2f} s "
          f"= {total / elapsed:,.0f} payments/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--request-size", type=int, default=1000)
    parser.add_argument("--rail", default="sepa_instant")
    parser.add_argument("--close", action="store_true", help="then close the day and time the statements")
    parser.add_argument("--store-only", action="store_true")
    parser.add_argument("--url", help="an already running sandbox instead of a fresh subprocess")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        if args.store_only:
            store_only(args.payments, args.request_size, Path(tmp))
            return
        from payouts_sandbox.process import start_sandbox

        sandbox = None if args.url else start_sandbox(tmp, latency_ms=args.latency_ms)
        try:
            provider = GenericHttpConnector(args.url or sandbox.url, timeout=60)
            accepted, elapsed = asyncio.run(submit_all(
                provider, args.payments, args.request_size, args.concurrency, args.rail))
            print(f"{args.payments:,} payments ({args.request_size}/request, {args.concurrency} in flight, "
                  f"{args.latency_ms:g} ms latency): {elapsed:.2f} s = {args.payments / elapsed:,.0f} payments/s; "
                  f"accepted {accepted:,}; executions {provider.executions()}")
            if args.close:
                began = time.perf_counter()
                result = provider.advance_clock(1)
                elapsed = time.perf_counter() - began
                sizes = sum(s.size_bytes for s in result["statements"])
                print(f"day close: {len(result['statements'])} statement(s), {sizes / 1e6:,.0f} MB "
                      f"in {elapsed:.2f} s")
        finally:
            if sandbox:
                sandbox.stop()


if __name__ == "__main__":
    main()
