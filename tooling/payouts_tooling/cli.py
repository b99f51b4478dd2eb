"""The `payouts` command: run, seed, sandbox and db upgrade."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from payouts import settings


class Progress:
    """Stage lines on stderr, with the time each took."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.timings: dict[str, float] = {}
        self._stage: str | None = None
        self._t = 0.0

    def stage(self, name: str, text: str) -> None:
        self.done()
        self._stage, self._t = name, time.perf_counter()
        print(f"[{time.perf_counter() - self.start:7.1f}s] {text} ...", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        print(f"           {text}", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self._stage:
            self.timings[self._stage] = round(time.perf_counter() - self._t, 3)
            self._stage = None

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self.start, 3)


def _warehouse(progress: Progress | None = None):
    from payouts.warehouse import connect, migrate, resolve_url

    url = resolve_url()
    with connect(url) as conn:
        applied = migrate(conn)
    if progress and applied:
        progress.note(f"migrations applied: {', '.join(applied)}")
    return url


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from payouts.warehouse.__main__ import main as warehouse_main

    return warehouse_main(["upgrade"])


def cmd_seed(args: argparse.Namespace) -> int:
    from payouts_tooling import seed
    from payouts.warehouse import connect

    url = _warehouse()
    with connect(url) as conn:
        result = seed.load(conn, args.recipients, seed=args.seed, period=args.period,
                           progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(json.dumps(result, default=str))
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from payouts_sandbox.__main__ import main as sandbox_main

    argv = ["--host", args.host, "--port", str(args.port)]
    if args.state_dir:
        argv += ["--state-dir", args.state_dir]
    if args.latency_ms is not None:
        argv += ["--latency-ms", str(args.latency_ms)]
    if args.faults:
        argv += ["--faults", args.faults]
    argv += ["--seed", str(args.seed)]
    if args.day_seconds is not None:
        argv += ["--day-seconds", str(args.day_seconds)]
    return sandbox_main(argv) or 0


def cmd_providers_list(args: argparse.Namespace) -> int:
    """One JSON object per provider connection a rail names (a secrets backend cannot be listed)."""
    from payouts.core import rails
    from payouts.providers import registry
    from payouts.providers.contract import ConnectorConfigError

    try:
        served = rails.provider_rails()
        named = {**served, **{c: [] for c in (rails.fx_provider(), rails.vop_provider()) if c not in served}}
    except rails.RailConfigError as exc:
        print(f"payouts providers list: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for conn_id, its_rails in named.items():
        try:
            connector = registry.connector(conn_id, its_rails)
        except ConnectorConfigError as exc:
            failed += 1
            print(json.dumps({"conn_id": conn_id, "rails": its_rails, "error": str(exc)}))
            continue
        connector.close()
        print(json.dumps({"conn_id": conn_id, "connector": connector.kind, "rails": its_rails,
                          "capabilities": sorted(connector.capabilities)}))
    return 2 if failed else 0


def cmd_providers_check(args: argparse.Namespace) -> int:
    """Reach one provider: its health and its balance per rail and currency, or exit 2 with why."""
    from payouts.core import money
    from payouts.providers import registry
    from payouts.providers.contract import ConnectorConfigError, ProviderError

    try:
        connector = registry.connector(args.conn_id)
    except ConnectorConfigError as exc:
        print(f"payouts providers check: {exc}", file=sys.stderr)
        return 2
    if hasattr(connector, "max_attempts"):
        connector.max_attempts = 2  # an operator's check answers quickly
    try:
        health = connector.health()
        balances = connector.balances() if connector.supports("balances") else []
    except ConnectorConfigError as exc:  # reached, but not what the connection says (a chain's id, say)
        print(f"payouts providers check: {exc}", file=sys.stderr)
        return 2
    except ProviderError as exc:
        print(f"payouts providers check: connection {args.conn_id!r} ({connector.kind}) cannot be reached:"
              f" {exc}", file=sys.stderr)
        return 2
    finally:
        connector.close()
    print(json.dumps({
        "conn_id": args.conn_id, "connector": connector.kind, "rails": list(connector.rails),
        "health": health,
        "balances": [{"rail": b.rail, "currency": b.currency,
                      "available": money.format_amount(b.available_minor, b.currency)} for b in balances],
    }, default=str))
    return 0


# `payouts run --provider NAME`: "module:function" called as function(stack, args, note, steps)
# before the rails' connections are checked: it starts and connects its provider for the run,
# names it for its rails (PAYOUTS_RAIL_PROVIDERS), and returns a payouts_sandbox.run_provider.RunProvider:
# the run's DAG steps with its own added, and what `--out` copies. None: the API sandbox pays every rail.
RUN_PROVIDERS: dict[str, str | None] = {
    "sandbox": None,
    "bank": "payouts_sandbox.bank.run:start_for_run",
    "evm": "payouts_sandbox.evm_chain:for_payouts_run",
}


def cmd_evm_transaction(args: argparse.Namespace) -> int:
    """Replace (higher fees) or abandon (fill the nonce) an item's unmined chain transaction."""
    from payouts.providers.contract import ProviderError
    from payouts.providers.evm.operator import OperatorError, act

    try:
        print(json.dumps(act(args.conn_id, args.item_id, args.evm_command)))
    except (OperatorError, ProviderError, ValueError) as exc:
        print(f"payouts evm {args.evm_command}: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from payouts.core import rails
    from payouts_tooling import airflow_env, seed
    from payouts.providers import registry
    from payouts.providers.contract import ConnectorConfigError
    from payouts.reconcile.run import copy_statements, run_reconciliation_summary
    from payouts.payout_run.summary import run_summary
    from payouts.warehouse import connect

    progress = Progress()
    with ExitStack() as stack:
        progress.stage("warehouse", "starting the warehouse and applying migrations")
        url = _warehouse(progress)

        progress.stage("providers", "checking the provider connections of the rails")
        sandbox_url = None
        steps = ["payout_run", f"clock:{args.days}", "fetch_statements", "reconcile_statements"]
        run_provider = None
        if RUN_PROVIDERS[args.provider]:
            import importlib

            module, _, function = RUN_PROVIDERS[args.provider].partition(":")
            run_provider = getattr(importlib.import_module(module), function)(stack, args, progress.note, steps)
            steps = run_provider.steps
        try:
            served = rails.provider_rails()
        except rails.RailConfigError as exc:
            progress.done()
            print(f"payouts run: {exc}", file=sys.stderr)
            return 2
        if settings.SANDBOX_CONN_ID in served and not settings.sandbox_connection():
            from payouts_sandbox.process import start_sandbox

            sandbox = stack.enter_context(start_sandbox(
                settings.sandbox_state_dir(), latency_ms=settings.sandbox_latency_ms(),
                faults=args.faults, seed=args.seed,
            ))
            sandbox_url = sandbox.url
            # This process and every Airflow process it starts see the connection.
            os.environ[settings.conn_env_var(settings.SANDBOX_CONN_ID)] = sandbox_url
            progress.note(f"provider sandbox started at {sandbox_url} (connection {settings.SANDBOX_CONN_ID})")
        try:
            served = registry.check_rail_providers()
        except ConnectorConfigError as exc:
            progress.done()
            print(f"payouts run: {exc}", file=sys.stderr)
            return 2
        for conn_id, its_rails in served.items():
            progress.note(f"{conn_id}: {', '.join(its_rails)}")

        progress.stage("seed", f"seeding the platform ({args.recipients:,} recipients)")
        with connect(url, autocommit=True) as conn:
            seeded = seed.load(conn, args.recipients, seed=args.seed, period=args.period, progress=progress.note)
        progress.note(f"recipients added: {seeded['recipients_added']:,}, earnings posted: {seeded['earnings_posted']:,}")

        env = airflow_env.environment(url, sandbox_url)
        log_path = settings.data_dir() / "logs" / "payouts-run.log"

        def prepare_metadata() -> None:  # while the runner loads Airflow
            started = time.perf_counter()
            airflow_env.migrate_metadata(env)
            progress.timings["airflow_setup"] = round(time.perf_counter() - started, 3)

        invocation = uuid.uuid4().hex
        progress.stage("airflow", "running payout_run, then fetch_statements and reconcile_statements"
                       f" {args.days} provider business day(s) later, in Airflow")
        steps = airflow_env.run_dags(
            steps, env, {"trigger": "cli", "invocation": invocation}, log_path, prepare=prepare_metadata)
        progress.done()
        names = {"warm_up": "airflow_imports", f"clock:{args.days}": "provider_days",
                 "wait_for_go": "airflow_setup_wait"}
        for step in steps:
            progress.timings[names.get(step["step"], step["step"])] = step["seconds"]
        states = {step["step"]: step["state"] for step in steps}
        with connect(url) as conn:
            row = conn.execute("SELECT run_id FROM payouts.runs WHERE conf ->> 'invocation' = %s",
                               (invocation,)).fetchone()
        if row is None:
            print(f"payout_run did not open a run; see {log_path}", file=sys.stderr)
            return 1
        run_id = row[0]

        with connect(url) as conn:
            summary = run_summary(conn, run_id)
            summary["reconciliation"] = run_reconciliation_summary(conn, run_id)
            recon_timings = conn.execute(
                "SELECT timings_s FROM recon.passes ORDER BY pass_id DESC LIMIT 1").fetchone()
        summary["timings_s"] = {
            **{f"cli.{k}": v for k, v in progress.timings.items()},
            **{f"payout_run.{k}": v for k, v in summary["timings_s"].items()},
            **{f"reconcile.{k}": float(v) for k, v in ((recon_timings[0] if recon_timings else {}) or {}).items()},
        }
        summary["total_s"] = progress.total
        dag_ids = ("payout_run", "fetch_statements", "reconcile_statements")
        summary["dag_runs"] = {dag: states.get(dag, "not run") for dag in dag_ids}
        if args.out:
            copied = copy_statements(Path(args.out) / "statements")
            summary["statements_written"] = copied
            if run_provider and run_provider.copy_out:
                summary["files_exchanged"] = run_provider.copy_out(Path(args.out))
        if args.summary:
            Path(args.summary).parent.mkdir(parents=True, exist_ok=True)
            Path(args.summary).write_text(json.dumps(summary, indent=2, default=str))
        print_summary(summary)
        if summary["items"]["total"] == 0:
            with connect(url) as conn:
                earlier = [r for r, in conn.execute(
                    "SELECT run_id FROM payouts.runs r WHERE run_id <> %s AND EXISTS"
                    " (SELECT 1 FROM payouts.payout_items i WHERE i.run_id = r.run_id) ORDER BY run_id",
                    (run_id,)).fetchall()]
            print(nothing_payable(seeded, earlier), file=sys.stdout)
        if any(state != "success" for state in summary["dag_runs"].values()):
            print(f"a DAG run failed; its log is in {log_path}", file=sys.stderr)
            return 1
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Load every statement file under DIR and reconcile against the warehouse."""
    from payouts.reconcile import run as recon
    from payouts.warehouse import connect

    folder = Path(args.statements)
    if not folder.is_dir():
        print(f"payouts reconcile: {folder} is not a folder of statement files", file=sys.stderr)
        return 2
    url = _warehouse()
    with connect(url, autocommit=True) as conn:
        pass_id = recon.open_pass(conn, "cli")
        files = recon.load_files(conn, recon.pending_files(folder=folder), provider_name=args.provider)
        counts = recon.match_pass(conn)
        counts["missing_at_provider"] = recon.flag_missing(conn)
        loaded = [f for f in files if f["loaded"]]
        recon.close_pass(conn, pass_id, len(loaded), sum(f["lines"] for f in loaded), counts)
    quarantined = [f for f in files if f.get("quarantined")]
    for f in quarantined:
        print(f"quarantined {f['file']}: {f['quarantined']}", file=sys.stderr)
    statements_quarantined = [(f["file"], r) for f in files for r in f.get("statements_quarantined", ())]
    for name, reason in statements_quarantined:
        print(f"quarantined a statement of {name} (its other statements are loaded): {reason}", file=sys.stderr)
    extra = {"statements_quarantined": len(statements_quarantined),
             "repeated_lines": sum(f.get("repeated_lines", 0) for f in files)}
    print(json.dumps({"pass_id": pass_id, "files_loaded": len(loaded), "files_seen": len(files),
                      "quarantined": len(quarantined), **{k: v for k, v in extra.items() if v}, **counts}))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Check a payout file; with a configured warehouse, also KYC and recent payments."""
    from payouts.checks.payout_file import main as check_main

    if not settings.warehouse_url():
        return check_main([args.file])
    from payouts.checks.run_checks import file_warehouse_checks
    from payouts.warehouse import connect

    with connect(autocommit=True) as conn:
        return check_main([args.file], extra_checks=file_warehouse_checks(conn))


def cmd_statement(args: argparse.Namespace) -> int:
    from payouts.statements.cli import main as statement_main

    return int(statement_main(["parse", args.file]) or 0)


def cmd_stop(args: argparse.Namespace) -> int:
    """The kill switch: stop new submissions for a run or a rail (audited), or lift it."""
    from payouts.payout_run.stops import lift_stop, set_stop
    from payouts.warehouse import connect

    scope, target = ("run", args.run) if args.run else ("rail", args.rail)
    with connect(autocommit=True) as conn:
        if args.lift:
            n = lift_stop(conn, scope, target, "kill", args.by)
            print(json.dumps({"lifted": n, "scope": scope, "target": target}))
        else:
            set_stop(conn, scope, target, "kill", args.reason, args.by)
            print(json.dumps({"stopped": True, "scope": scope, "target": target}))
    return 0


def cmd_screen(args: argparse.Namespace) -> int:
    from payouts.checks import sanctions

    argv = [args.name] + (["--country", args.country] if args.country else [])
    return int(sanctions.main(argv) or 0)


def nothing_payable(seeded: dict, earlier_runs: list[str]) -> str:
    """Why a run found nothing to pay, and how to get a run that pays something."""
    import datetime as dt

    period = seeded.get("period")
    lines = ["Nothing was payable, so this run has no items: no recipient had a positive payable balance."]
    if not seeded.get("earnings_posted"):
        lines.append(f"The seed posted no new earnings: the {period} earnings of these recipients were posted"
                     " before" + (f", and earlier runs ({_listed(earlier_runs)}) already paid or reserved them."
                                  if earlier_runs else "."))
    elif earlier_runs:
        lines.append(f"Earlier runs ({_listed(earlier_runs)}) had already paid or reserved what was owed.")
    try:
        next_period = (dt.date.fromisoformat(str(period)) + dt.timedelta(days=1)).isoformat()
    except ValueError:
        next_period = "P"
    lines.append(f"For a run that pays: `payouts run --period {next_period}` (another period's earnings), or"
                 " another data folder (`PAYOUTS_DATA_DIR=/another/folder payouts run`).")
    return "\n".join(lines)


def _listed(run_ids: list[str], most: int = 5) -> str:
    shown = ", ".join(run_ids[-most:])
    return shown if len(run_ids) <= most else f"{len(run_ids)} runs, the last {shown}"


def print_summary(summary: dict) -> None:
    from payouts.core.reasons import short_label

    out = sys.stdout
    items = summary["items"]
    print(f"\nPayout run {summary['run_id']}: {items['total']:,} items", file=out)
    for status, n in sorted(items["by_status"].items()):
        print(f"  {status:<16}{n:>10,}", file=out)
    if items["by_rail"]:
        print("By rail:", file=out)
    for rail, statuses in sorted(items["by_rail"].items()):
        print(f"  {rail:<16}" + ", ".join(f"{s} {n:,}" for s, n in sorted(statuses.items())), file=out)
    for title, counts in (("Held, a person must act, by reason (an item with two reasons counts under both):",
                           items.get("held_by_reason")),
                          ("Rejected, by reason:", items.get("rejected_by_reason"))):
        if counts:
            print(title, file=out)
            labels = {code: f"{short_label(code)} ({code})" for code in counts}
            width = max(len(label) for label in labels.values()) + 2
            for code, n in counts.items():
                print(f"  {labels[code]:<{width}}{n:>8,}", file=out)
    if summary.get("batches"):
        print("Batches: " + ", ".join(f"{status} {n:,}" for status, n in summary["batches"].items()), file=out)
    if items.get("by_provider"):
        print("By provider:", file=out)
        for provider, statuses in sorted(items["by_provider"].items()):
            print(f"  {provider:<24}" + ", ".join(f"{s} {n:,}" for s, n in sorted(statuses.items())), file=out)
    print("Money out (accepted and settled):", file=out)
    for cur, amount in sorted(summary["money_out"].items()):
        print(f"  {cur:<6}{amount:>22}", file=out)
    gate = summary.get("quality_gate")
    if gate:
        print(f"Quality gate (Great Expectations in PostgreSQL): {'passed' if gate['success'] else 'FAILED'},"
              f" {gate['expectations']} expectations" + (f"; failed: {', '.join(gate['failed'])}" if gate["failed"] else "")
              + (f" ({gate['note']})" if gate.get("note") else ""),
              file=out)
    recon = summary["reconciliation"]
    print(f"Reconciliation: {recon['matched']:,} matched; breaks: "
          + (", ".join(f"{k} {v:,}" for k, v in recon["breaks"].items()) or "none"), file=out)
    print("Timings (s):", file=out)
    for stage, seconds in summary["timings_s"].items():
        print(f"  {stage:<32}{seconds:>9.2f}", file=out)
    print(f"  {'total':<32}{summary['total_s']:>9.2f}", file=out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payouts", description="Payout runs and reconciliation on Airflow.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="seed, pay and reconcile once, through the Airflow DAGs")
    run.add_argument("--recipients", type=int, default=10_000, help="recipients on the seeded platform")
    run.add_argument("--summary", help="write the run summary as JSON to this file")
    run.add_argument("--out", help="copy every statement file into DIR/statements/<provider connection>/")
    run.add_argument("--days", type=int, default=3, help="business days to let pass at the provider")
    run.add_argument("--seed", type=int, default=42, help="seed of the synthetic platform and the sandbox")
    run.add_argument("--period", help="earnings period to seed (default: today, UTC); a new period is new money")
    run.add_argument("--faults", help="sandbox fault knobs, e.g. reject=0.02,return=0.01")
    run.add_argument("--provider", choices=list(RUN_PROVIDERS), default="sandbox",
                     help="sandbox: the API sandbox pays every rail; bank: the sandbox bank pays the bank rails"
                          " over SFTP (files under DIR/bank/ with --out); evm: a local chain (anvil) pays"
                          " Ethereum's crypto items unless payouts_evm_ethereum is set")
    run.set_defaults(func=cmd_run)

    db = sub.add_parser("db", help="warehouse schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply pending migrations")
    upgrade.set_defaults(func=cmd_db_upgrade)

    seed = sub.add_parser("seed", help="add synthetic recipients and their earnings")
    seed.add_argument("--recipients", type=int, default=10_000)
    seed.add_argument("--seed", type=int, default=42)
    seed.add_argument("--period", help="earnings period (default: today, UTC)")
    seed.set_defaults(func=cmd_seed)

    reconcile = sub.add_parser("reconcile", help="reconcile a folder of statement files against the warehouse")
    reconcile.add_argument("--statements", required=True, help="folder of camt/MT940/crypto statement files")
    reconcile.add_argument("--provider", default="payouts_sandbox", help="connection id of the provider the statements come from")
    reconcile.set_defaults(func=cmd_reconcile)

    check = sub.add_parser("check", help="check a payout file (CSV or XLSX) row by row")
    check.add_argument("file")
    check.set_defaults(func=cmd_check)

    statement = sub.add_parser("statement", help="statement files")
    statement_sub = statement.add_subparsers(dest="statement_command", required=True)
    parse = statement_sub.add_parser("parse", help="print a statement's normalised lines as JSON")
    parse.add_argument("file")
    parse.set_defaults(func=cmd_statement)

    pain001 = sub.add_parser("pain001", help="write the ready rows of a payout file as a pain.001",
                             add_help=False)

    stop = sub.add_parser("stop", help="kill switch: stop new submissions for a run or a rail")
    target = stop.add_mutually_exclusive_group(required=True)
    target.add_argument("--run", help="a payout run id, e.g. R000001")
    target.add_argument("--rail", choices=sorted(__import__("payouts.core.routing", fromlist=["RAILS"]).RAILS))
    stop.add_argument("--reason", default="stopped by an operator")
    stop.add_argument("--by", default=os.environ.get("USER", "operator"), help="who stops it (audited)")
    stop.add_argument("--lift", action="store_true", help="lift the stop instead")
    stop.set_defaults(func=cmd_stop)

    screen = sub.add_parser("screen", help="screen a name against the sanctions lists")
    screen.add_argument("name")
    screen.add_argument("--country")
    screen.set_defaults(func=cmd_screen)

    providers = sub.add_parser("providers", help="the provider connections the rails name")
    providers_sub = providers.add_subparsers(dest="providers_command", required=True)
    listing = providers_sub.add_parser("list", help="one JSON object per connection a rail names")
    listing.set_defaults(func=cmd_providers_list)
    check = providers_sub.add_parser("check", help="connect: health and balances per currency (exit 2 when it cannot)")
    check.add_argument("conn_id", help="an Airflow connection id, e.g. payouts_sandbox")
    check.set_defaults(func=cmd_providers_check)

    evm = sub.add_parser("evm", help="operator actions on an item's unmined chain transaction")
    evm_sub = evm.add_subparsers(dest="evm_command", required=True)
    for action, text in (("replace", "the same transfer at its nonce, both fee caps raised"),
                         ("abandon", "a zero-value transfer to self at its nonce; the payment is rejected")):
        acting = evm_sub.add_parser(action, help=text)
        acting.add_argument("item_id")
        acting.add_argument("--conn-id", default="payouts_evm_ethereum")
        acting.set_defaults(func=cmd_evm_transaction)

    sandbox = sub.add_parser("sandbox", help="run the provider sandbox in the foreground")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument("--state-dir")
    sandbox.add_argument("--latency-ms", type=float)
    sandbox.add_argument("--faults")
    sandbox.add_argument("--seed", type=int, default=0)
    sandbox.add_argument("--day-seconds", type=float,
                         help="close one business day every S seconds by itself (statements, settlements, returns)")
    sandbox.set_defaults(func=cmd_sandbox)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["pain001"]:
        # Its own argument parser (payouts.iso20022.cli) owns the options and --help.
        from payouts.iso20022.cli import main as pain001_main

        return int(pain001_main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
