"""`make bench`: every benchmark behind one command; JSON in bench/results/, a table on stdout.

The headline is a full payout run (snapshot -> checks -> routing -> submission at
50 ms simulated latency per request -> statements -> reconciliation) through the
Airflow DAGs, at each size of BENCH_SIZES (default 10000,100000,1000000), each on
a fresh embedded warehouse; the same run with the bank rails paid by files over SFTP to
the sandbox bank, at BENCH_BANK_SIZES (default 100000). Next to it, a naive payer (one payout per request,
one after another) measured on a sample and extrapolated. Then the component
benchmarks (row checks, screening, matching, parsing, seed, gate, sandbox, and
stablecoin transfers on a local chain).

    make bench                                   # everything
    BENCH_SIZES=10000,100000 make bench          # smaller headline
    BENCH_ONLY=full make bench                   # only the headline
    BENCH_BANK_SIZES=100000 make bench           # the run over the sandbox bank (SFTP files) beside it
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
LATENCY_MS = 50

# The budget per stage for a million payouts, in seconds (what each stage may take).
BUDGET_1M = {
    "snapshot": 15, "quality_gate": 15, "checks": 60, "routing": 5, "submit": 60,
    "statements": 60, "match_post": 20, "airflow_overhead": 30,
}

COMPONENTS = [
    ("row_checks", ["bench/row_checks_bench.py"]),
    ("sanctions", ["bench/sanctions_bench.py"]),
    ("matching", ["bench/match_bench.py"]),
    ("parse_camt", ["bench/parse_camt.py", "200000"]),
    ("sandbox", ["bench/sandbox_throughput.py"]),
    ("gate", ["bench/gate_bench.py"]),
    ("seed", ["bench/seed_bench.py"]),
    ("evm", ["bench/evm_throughput.py", "--items", "10000"]),
]


def _env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PAYOUTS_WAREHOUSE_URL", None)
    env.pop("AIRFLOW_CONN_PAYOUTS_SANDBOX", None)
    env.pop("PAYOUTS_RAIL_PROVIDERS", None)
    env.update({
        "PAYOUTS_DATA_DIR": str(data_dir),
        "PAYOUTS_SANDBOX_LATENCY_MS": str(LATENCY_MS),
        "PYTHONPATH": str(ROOT / "plugins"),
    })
    return env


def full_run(recipients: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-{recipients}-") as tmp:
        summary_path = Path(tmp) / "summary.json"
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        proc = subprocess.run(
            [PYTHON, "-m", "payouts_tooling.cli", "run", "--recipients", str(recipients), "--summary", str(summary_path)],
            env=_env(Path(tmp)), cwd=ROOT, capture_output=True, text=True,
        )
        wall = time.perf_counter() - started
        peak_kib = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        if proc.returncode != 0:
            return {"recipients": recipients, "error": proc.stderr[-2000:], "wall_s": round(wall, 1)}
        summary = json.loads(summary_path.read_text())
    timings = summary["timings_s"]
    seed_s = timings.get("cli.seed", 0.0)
    run_s = summary["total_s"] - seed_s
    paid = sum(n for s, n in summary["items"]["by_status"].items() if s in ("accepted", "settled", "returned"))
    return {
        "recipients": recipients,
        "items": summary["items"]["total"],
        "paid": paid,
        "seed_s": seed_s,
        "run_s": round(run_s, 1),
        "payouts_per_s": round(paid / run_s, 1) if run_s else None,
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "timings_s": timings,
        "reconciliation": summary["reconciliation"],
    }


def bank_run(recipients: int) -> dict:
    """The same run with every bank rail paid through the sandbox bank: pain.001 files over SFTP,
    pain.002 polled, camt.053 reconciled (`payouts run --provider bank`)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-bank-{recipients}-") as tmp:
        summary_path = Path(tmp) / "summary.json"
        started = time.perf_counter()
        proc = subprocess.run(
            [PYTHON, "-m", "payouts_tooling.cli", "run", "--provider", "bank", "--recipients", str(recipients),
             "--summary", str(summary_path), "--out", str(Path(tmp) / "out")],
            env=_env(Path(tmp)), cwd=ROOT, capture_output=True, text=True,
        )
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            return {"recipients": recipients, "error": proc.stderr[-2000:], "wall_s": round(wall, 1)}
        summary = json.loads(summary_path.read_text())
    timings = summary["timings_s"]
    run_s = summary["total_s"] - timings.get("cli.seed", 0.0)
    bank = summary["items"]["by_provider"].get("payouts_bank", {})
    over_bank = sum(n for s, n in bank.items() if s in ("accepted", "settled", "returned"))
    submit_s = timings.get("payout_run.submit") or 0
    return {
        "recipients": recipients, "items": summary["items"]["total"], "items_over_bank": over_bank,
        "files_sent": summary.get("files_exchanged", {}).get("sent"),
        "files_received": summary.get("files_exchanged", {}).get("received"),
        "run_s": round(run_s, 1), "payouts_per_s": round(over_bank / run_s, 1) if run_s else None,
        "submit_s": submit_s, "submit_items_per_s": round(over_bank / submit_s, 1) if submit_s else None,
        "poll_s": timings.get("cli.poll_payments"), "timings_s": timings,
        "reconciliation": summary["reconciliation"],
    }


def naive_baseline(sample: int = 200) -> dict:
    """One payout per request, one after another, against the same sandbox at 50 ms."""
    sys.path.insert(0, str(ROOT / "plugins"))
    import asyncio


    from payouts.providers.contract import Creditor, Payment
    from payouts.providers.generic.connector import GenericHttpConnector
    from payouts_sandbox.process import start_sandbox

    with tempfile.TemporaryDirectory() as tmp, start_sandbox(Path(tmp), latency_ms=LATENCY_MS) as sandbox:
        provider = GenericHttpConnector(sandbox.url)

        async def pay_one_by_one() -> float:
            async with provider.session():
                start = time.perf_counter()
                for n in range(sample):
                    await provider.submit("sepa_credit", [Payment(
                        f"naive-{n}", f"NAIVE{n:011d}", 1000 + n, "EUR",
                        Creditor(name=f"Payee {n}", country="DE", iban="DE89370400440532013000"))])
                return time.perf_counter() - start

        seconds = asyncio.run(pay_one_by_one())
    per_payout = seconds / sample
    return {"sample": sample, "seconds": round(seconds, 2), "per_payout_s": round(per_payout, 4),
            "extrapolated_s": {str(n): round(per_payout * n, 0) for n in (10_000, 100_000, 1_000_000)},
            "label": "extrapolated from the sample"}


def stage_view(timings: dict) -> dict:
    """Map the run's timings onto the budget's stages."""
    t = {k.split(".", 1)[1] if "." in k else k: v for k, v in timings.items()}
    tasks = sum(t.get(k, 0) for k in ("snapshot", "quality_gate", "checks", "approval", "routing", "submit",
                                       "resolve"))
    dags = t.get("payout_run", 0) + t.get("fetch_statements", 0) + t.get("reconcile_statements", 0)
    recon = t.get("parse_load", 0) + t.get("match_post", 0)
    return {
        "snapshot": t.get("snapshot"), "quality_gate": t.get("quality_gate"), "checks": t.get("checks"),
        "routing": t.get("routing"), "submit": t.get("submit"),
        "statements": round(t.get("provider_days", 0) + t.get("fetch_statements", 0) + t.get("parse_load", 0), 1),
        "match_post": t.get("match_post"),
        # The metadata database is prepared while Airflow loads: what the run waited for is
        # the loading, then whatever of the preparation was left (airflow_setup_wait).
        "airflow_overhead": round(t.get("airflow_imports", 0) + t.get("airflow_setup_wait", 0)
                                  + max(dags - tasks - recon - t.get("fetch_statements", 0), 0), 1),
    }


def main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    only = os.environ.get("BENCH_ONLY")
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "10000,100000,1000000").split(",") if s]
    stamp = time.strftime("%Y%m%dT%H%M%S")
    report: dict = {"when": stamp, "machine": os.uname().nodename, "cpus": os.cpu_count()}
    if only in (None, "full"):
        report["full_runs"] = []
        for n in sizes:
            print(f"full run at {n:,} recipients ...", file=sys.stderr, flush=True)
            report["full_runs"].append(full_run(n))
        report["bank_runs"] = []
        for n in [int(s) for s in os.environ.get("BENCH_BANK_SIZES", "100000").split(",") if s]:
            print(f"bank run at {n:,} recipients ...", file=sys.stderr, flush=True)
            report["bank_runs"].append(bank_run(n))
        print("naive baseline ...", file=sys.stderr, flush=True)
        report["naive_baseline"] = naive_baseline()
    if only in (None, "components"):
        report["components"] = {}
        for name, cmd in COMPONENTS:
            print(f"component {name} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            proc = subprocess.run([PYTHON, *cmd], cwd=ROOT, capture_output=True, text=True,
                                  env=dict(os.environ, PYTHONPATH=str(ROOT / "plugins")))
            report["components"][name] = {"exit": proc.returncode, "wall_s": round(time.perf_counter() - started, 1),
                                          "output": proc.stdout[-3000:] + proc.stderr[-1000:]}
    out = RESULTS / f"bench-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"\nresults: {out}")
    return 0


def print_table(report: dict) -> None:
    runs = report.get("full_runs", [])
    if runs:
        print(f"\n{'recipients':>12} {'seed s':>8} {'run s':>8} {'payouts/s':>10} {'peak MiB':>9}")
        for r in runs:
            if "error" in r:
                print(f"{r['recipients']:>12,} failed: {r['error'][:200]}")
                continue
            print(f"{r['recipients']:>12,} {r['seed_s']:>8.1f} {r['run_s']:>8.1f} {r['payouts_per_s']:>10,.0f}"
                  f" {r['peak_rss_mib']:>9,.0f}")
        for r in runs:
            if "error" in r:
                continue
            view = stage_view(r["timings_s"])
            print(f"\nstages at {r['recipients']:,} (budget is for 1,000,000):")
            for stage, budget in BUDGET_1M.items():
                got = view.get(stage)
                print(f"  {stage:<18}{'' if got is None else f'{got:8.1f}'}   budget {budget:>4} s")
        for r in report.get("bank_runs", []):
            if "error" in r:
                print(f"\nover the bank at {r['recipients']:,}: failed: {r['error'][:200]}")
                continue
            api = next((x for x in runs if x.get("recipients") == r["recipients"] and "error" not in x), None)
            print(f"\nover the bank (pain.001 over SFTP) at {r['recipients']:,}: {r['items_over_bank']:,} payouts in"
                  f" {r['files_sent']} files, run {r['run_s']} s ({r['payouts_per_s']:,.0f}/s), submit {r['submit_s']} s"
                  f" ({r['submit_items_per_s'] or 0:,.0f}/s), poll {r['poll_s']} s"
                  + (f"; the API sandbox: run {api['run_s']} s ({api['payouts_per_s']:,.0f}/s),"
                     f" submit {api['timings_s'].get('payout_run.submit')} s" if api else ""))
        base = report.get("naive_baseline")
        if base:
            print(f"\nnaive payer ({base['label']}, {base['sample']} payouts measured):")
            for n, s in base["extrapolated_s"].items():
                print(f"  {int(n):>12,} payouts  ~{s:,.0f} s")
    for name, comp in report.get("components", {}).items():
        tail = [line for line in comp["output"].strip().splitlines() if line.strip()][-6:]
        print(f"\n[{name}] exit {comp['exit']}, {comp['wall_s']} s")
        for line in tail:
            print(f"  {line}")


if __name__ == "__main__":
    sys.exit(main())
