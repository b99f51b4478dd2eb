"""The check stage of a payout run: every snapshotted item leaves as ready, held or rejected.

The file-level row checks (accounts, wallets, amounts, duplicates) run on the
run's items joined to their payees, and the warehouse adds what only it
knows: KYC, recent payments, shared destinations across all recipients and
the sanctions lists. Rejected items give their money back to payable; held
items keep it reserved (a sanctions block stays frozen).
"""

from __future__ import annotations

import logging

import psycopg

from payouts.core import items, ledger, money
from payouts import settings
from payouts.warehouse import copy_in, copy_out, sql

log = logging.getLogger(__name__)


def _sanctions_index():
    from payouts.checks.sanctions import load_lists

    return load_lists()


def screen_run(conn: psycopg.Connection, run_id: str, payees: "pl.DataFrame", index=None) -> "pl.DataFrame":
    """Screen the run's payees; store the outcome per recipient; return it."""
    import polars as pl
    from payouts.checks.sanctions import Thresholds

    index = index or _sanctions_index()
    allow = conn.execute("SELECT recipient_id, list_entry_id FROM payouts.sanctions_allowlist").fetchall()
    screened = index.screen_frame(
        payees.select("recipient_id", "name", "country", "address").unique("recipient_id"),
        allow=[(r, e) for r, e in allow],
        thresholds=Thresholds(review=settings.SANCTIONS_REVIEW_SCORE, block=settings.SANCTIONS_BLOCK_SCORE),
        embargoed=settings.EMBARGOED_COUNTRIES,
    )
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE _screen (recipient_id text, decision text, top_entry_id text,"
                     " top_name text, top_score numeric) ON COMMIT DROP")
        copy_in(conn, "_screen", screened.with_columns(pl.col("top_score").cast(pl.Float64).round(1)))
        conn.execute(
            "INSERT INTO payouts.screenings (run_id, recipient_id, decision, top_entry_id, top_name, top_score,"
            " lists_version) SELECT %s, recipient_id, decision, top_entry_id, top_name, top_score, %s FROM _screen"
            " ON CONFLICT (run_id, recipient_id) DO NOTHING",
            (run_id, getattr(index, "version", "bundled")),
        )
    return screened


class PayeeVerification:
    """VoP answers for the EUR IBAN payees of a frame: reused when fresh, else asked of the bank,
    in two halves, so that other work goes on while the bank answers.

    `verify(requests) -> list[VopResult]` asks the provider; requests are
    (request_id, iban, name) with the recipient id as request id. Creating it
    reads the fresh answers the warehouse already holds (on `conn`) and hands
    the requests for the other payees to `verify` in a thread of `pool`; that
    thread never touches the warehouse. `finish(conn)` waits for the answers,
    stores them and returns the VoP column of the checks.
    """

    def __init__(self, conn: psycopg.Connection, frame: "pl.DataFrame", verify, pool) -> None:
        import polars as pl

        self.payees = frame.filter((pl.col("currency") == "EUR") & pl.col("iban").is_not_null()).select(
            "recipient_id", iban=pl.col("iban").str.replace_all(" ", "").str.to_uppercase(), name="name",
        ).unique("recipient_id")
        self.known = pl.DataFrame(schema={"recipient_id": pl.Utf8, "status": pl.Utf8, "held_name": pl.Utf8})
        self.ask = self.known.select("recipient_id")
        self.answers = None
        if self.payees.height == 0:
            return
        with conn.transaction():
            conn.execute("CREATE TEMP TABLE _vop_ask (recipient_id text, iban text, name text) ON COMMIT DROP")
            copy_in(conn, "_vop_ask", self.payees)
            self.known = copy_out(
                conn,
                "SELECT v.recipient_id, v.status, v.held_name FROM payouts.vop_results v"
                " JOIN _vop_ask a USING (recipient_id, iban, name)"
                " WHERE v.checked_at > now() - make_interval(days => %(days)s)",
                {"days": settings.VOP_REUSE_DAYS},
            )
        self.ask = self.payees.join(self.known.select("recipient_id"), on="recipient_id", how="anti")
        if self.ask.height:
            self.answers = pool.submit(verify, [tuple(r) for r in self.ask.iter_rows()])

    def finish(self, conn: psycopg.Connection) -> "pl.DataFrame":
        import polars as pl
        from payouts.checks.vop import VopPolicy, VopResult, vop_decisions

        known = self.known
        if self.answers is not None:
            answered = pl.DataFrame(
                [(r.request_id, r.status, r.held_name) for r in self.answers.result()],
                schema={"recipient_id": pl.Utf8, "status": pl.Utf8, "held_name": pl.Utf8}, orient="row",
            ).join(self.ask, on="recipient_id")
            with conn.transaction():
                conn.execute("CREATE TEMP TABLE _vop_new (recipient_id text, status text, held_name text,"
                             " iban text, name text) ON COMMIT DROP")
                copy_in(conn, "_vop_new", answered)
                conn.execute(
                    "INSERT INTO payouts.vop_results (recipient_id, iban, name, status, held_name)"
                    " SELECT recipient_id, iban, name, status, held_name FROM _vop_new"
                    " ON CONFLICT (recipient_id, iban, name) DO UPDATE SET status = EXCLUDED.status,"
                    " held_name = EXCLUDED.held_name, checked_at = now()"
                )
            known = pl.concat([known, answered.select("recipient_id", "status", "held_name")])
        policy = VopPolicy.from_mapping(settings.VOP_POLICY)
        decisions = vop_decisions([VopResult(r, s, h) for r, s, h in known.iter_rows()], policy)
        held = {rid for rid, (decision, _) in decisions.items() if decision == "held"}
        return known.select(
            "recipient_id",
            _vop=pl.when(pl.col("recipient_id").is_in(sorted(held))).then(pl.col("status")).otherwise(None),
            _vop_held_name=pl.col("held_name"),
        )


def _warehouse_checks(screened: "pl.DataFrame", wallets_listed: set[str], vop: "pl.DataFrame"):
    """The `extra_checks` hook of check_rows: reasons only the warehouse can give."""
    import polars as pl
    from payouts.core.reasons import reason_expr, vop_close_match_detail

    def extra(frame: pl.DataFrame) -> pl.DataFrame:
        frame = frame.join(screened.rename({"decision": "_screening"}), on="recipient_id", how="left")
        frame = frame.join(vop, on="recipient_id", how="left")
        from payouts.checks.sanctions import embargoed_region

        embargoed = pl.col("country").str.to_uppercase().is_in(sorted(settings.EMBARGOED_COUNTRIES))
        regions = {a: embargoed_region(a) for a in frame["address"].drop_nulls().unique().to_list()}
        region = pl.col("address").replace_strict(regions, default=None, return_dtype=pl.Utf8)
        limit = pl.col("_kyc_limit_minor")
        return frame.with_columns(
            _rsn_kyc_expired=reason_expr("KYC_EXPIRED", pl.col("kyc_status") == "expired",
                                         recipient_id=pl.col("recipient_id")),
            _rsn_kyc_limit=reason_expr(
                "KYC_UNVERIFIED_LIMIT",
                (pl.col("kyc_status") == "unverified") & (pl.col("_paid_month") + pl.col("_amount_minor") > limit),
                recipient_id=pl.col("recipient_id"),
                detail=pl.lit(f"EUR {settings.UNVERIFIED_MONTHLY_LIMIT_EUR} monthly")),
            _rsn_cooling_off=reason_expr(
                "DESTINATION_COOLING_OFF", pl.col("cooling_off") == "t",
                detail=pl.lit(f"{settings.DESTINATION_COOLING_OFF_HOURS} hours")),
            _rsn_recent_dup=reason_expr("DUPLICATE_RECENT_PAYMENT", pl.col("paid_same_recently") == "t",
                                        recipient_id=pl.col("recipient_id"), amount=pl.col("amount"),
                                        currency=pl.col("currency")),
            _rsn_shared_all=reason_expr(
                "SHARED_DESTINATION", pl.col("_holders") > 1,
                destination=pl.lit("this account"), detail=pl.col("_holders")),
            _rsn_embargo=reason_expr("EMBARGOED_DESTINATION", embargoed | region.is_not_null(),
                                     country=pl.col("country"),
                                     detail=pl.when(region.is_not_null()).then(pl.format("region {}", region))
                                     .otherwise(pl.lit("country embargo"))),
            _rsn_sanctions_block=reason_expr(
                "SANCTIONS_BLOCK", (pl.col("_screening") == "block") & ~embargoed & region.is_null(),
                detail=pl.format("{} ({}, score {})", pl.col("top_entry_id"), pl.col("top_name"),
                                 pl.col("top_score"))),
            _rsn_sanctions_review=reason_expr(
                "SANCTIONS_REVIEW", pl.col("_screening") == "review",
                detail=pl.format("{} ({}, score {})", pl.col("top_entry_id"), pl.col("top_name"),
                                 pl.col("top_score"))),
            _rsn_wallet=reason_expr(
                "SANCTIONED_WALLET", pl.col("wallet_address").is_in(sorted(wallets_listed)),
                wallet_address=pl.col("wallet_address")),
            _rsn_vop_close=reason_expr("VOP_CLOSE_MATCH", pl.col("_vop") == "close_match",
                                       detail=pl.when(pl.col("_vop_held_name").is_not_null())
                                       .then(pl.format(vop_close_match_detail("{}"), pl.col("_vop_held_name")))
                                       .otherwise(pl.lit(vop_close_match_detail(None))),
                                       name=pl.col("name")),
            _rsn_vop_none=reason_expr("VOP_NO_MATCH", pl.col("_vop") == "no_match", name=pl.col("name")),
            _rsn_vop_na=reason_expr("VOP_NOT_POSSIBLE", pl.col("_vop") == "not_possible"),
        ).drop("_screening", "top_entry_id", "top_name", "top_score", "_vop", "_vop_held_name")

    return extra


def check_run_items(conn: psycopg.Connection, run_id: str, verify=None) -> dict[str, int]:
    """Decide every snapshotted item of the run; returns counts per decision.

    `verify(requests) -> list[VopResult]` runs Verification of Payee for EUR
    IBAN payees; without it (no provider configured) no VoP answers are used.
    """
    import polars as pl
    from payouts.checks.rows import CheckPolicy, check_rows

    candidates = copy_out(conn, sql("checks/check_candidates"), {
        "run_id": run_id, "cooling_off_hours": settings.DESTINATION_COOLING_OFF_HOURS}, schema={
        "amount_minor": pl.Int64, "exponent": pl.Int32, "paid_this_month_minor": pl.Int64,
        "destination_holders": pl.Int64,
    })
    if candidates.height == 0:
        return {}
    limits = {cur: money.eur_limit_minor(settings.UNVERIFIED_MONTHLY_LIMIT_EUR, cur)
              for cur in candidates["currency"].unique().to_list() if cur in money.INDICATIVE_PER_EUR}
    frame = candidates.rename({"amount_text": "amount"}).with_columns(
        _amount_minor=pl.col("amount_minor"),
        _paid_month=pl.col("paid_this_month_minor"),
        _holders=pl.col("destination_holders"),
        # No indicative rate: no automatic allowance for an unverified payee.
        _kyc_limit_minor=pl.col("currency").replace_strict(limits, default=0, return_dtype=pl.Int64),
    ).drop("amount_minor", "paid_this_month_minor", "destination_holders", "exponent")
    from concurrent.futures import ThreadPoolExecutor

    from payouts.checks.sanctions import normalise_wallet

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vop") as pool:
        # The bank answers the VoP requests while the payees are screened and the screenings stored.
        verification = PayeeVerification(conn, frame, verify, pool) if verify is not None else None
        index = _sanctions_index()
        screened = screen_run(conn, run_id, frame, index)
        if verification is not None:
            vop = verification.finish(conn)
        else:
            vop = pl.DataFrame(schema={"recipient_id": pl.Utf8, "_vop": pl.Utf8, "_vop_held_name": pl.Utf8})
    wallets_listed = {w for w in frame["wallet_address"].drop_nulls().unique().to_list()
                      if normalise_wallet(w) in index.wallets}
    policy = CheckPolicy(evm_lowercase=settings.EVM_LOWERCASE_POLICY, workers=settings.CHECK_WORKERS)
    checked = check_rows(frame, policy,
                         extra_checks=_warehouse_checks(screened, wallets_listed, vop))
    decided = checked.select(
        item_id="payout_id", decision="decision",
        reasons=pl.lit("[") + pl.col("reasons").list.eval(pl.element().struct.json_encode()).list.join(",")
        + pl.lit("]"),
    )
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE _decided (item_id text PRIMARY KEY, decision text, reasons jsonb)"
                     " ON COMMIT DROP")
        copy_in(conn, "_decided", decided)
        counts = items.move_decided(conn, "_decided", "snapshotted", ["rejected", "held", "ready"],
                                    detail="row checks: ")
        ledger.post_transfers(
            conn, "release",
            "SELECT item_id FROM payouts.payout_items WHERE run_id = %(run_id)s AND status = 'rejected'",
            {"run_id": run_id},
        )
    log.info("run %s checks: %s", run_id, counts)
    return counts


def file_warehouse_checks(conn: psycopg.Connection):
    """`payouts check FILE` with a warehouse: KYC and recent payments of the recipients it knows."""
    import polars as pl
    from payouts.core.reasons import reason_expr

    def extra(frame: pl.DataFrame) -> pl.DataFrame:
        ids = frame["recipient_id"].drop_nulls().unique().to_list()
        known = copy_out(
            conn,
            "SELECT r.recipient_id, r.kyc_status, ("
            " SELECT string_agg(p.currency || ':' || p.amount_minor, ',') FROM payouts.payout_items p"
            " JOIN payouts.runs pr USING (run_id) WHERE p.recipient_id = r.recipient_id"
            " AND p.status IN ('accepted', 'settled') AND pr.created_at > now() - interval '30 days'"
            ") AS recent FROM payouts.recipients r WHERE r.recipient_id = ANY(%(ids)s)",
            {"ids": ids},
        )
        if known.height == 0:
            return frame
        joined = frame.join(known, on="recipient_id", how="left")
        paid_key = pl.col("currency") + pl.lit(":") + pl.col("amount_minor").cast(pl.Utf8)
        return joined.with_columns(
            _rsn_kyc_expired=reason_expr("KYC_EXPIRED", pl.col("kyc_status") == "expired",
                                         recipient_id=pl.col("recipient_id")),
            _rsn_recent_dup=reason_expr(
                "DUPLICATE_RECENT_PAYMENT",
                pl.col("recent").fill_null("").str.split(",").list.contains(paid_key),
                recipient_id=pl.col("recipient_id"), amount=pl.col("amount"), currency=pl.col("currency")),
        ).drop("kyc_status", "recent")

    return extra
