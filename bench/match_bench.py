"""Benchmark matching: 1,000,000 payout items x ~1,000,000 statement lines, polars vs plain SQL.

The generated mix: most lines pay one item exactly; 1,000 batch bookings of 50
items each; 10,000 debits with a fee; 10,000 cross-currency debits with quotes;
10,000 items never on a statement (missing); unexpected lines, some of which look
like a missing item (name and amount close: suggestions). Prints:

- `match_lines` alone (every rule, suggestions included), in polars;
- the same exact-reference pass in polars (one join), for comparison;
- what a warehouse user would write in SQL for the exact-reference pass: COPY both
  sets into UNLOGGED tables on the embedded PostgreSQL, then a FULL OUTER JOIN on
  end_to_end_id = item_id comparing amount and currency (load and query timed apart).

Target: match_lines <= 10 s on a 2-core machine.

    .venv/bin/python bench/match_bench.py [ITEMS] [--no-sql]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from payouts.reconcile.match import match_lines  # noqa: E402

FIRST = ["Anna", "Bob", "Chloe", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kai", "Lea",
         "Mateo", "Nora", "Omar", "Paula", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Victor", "Wei", "Yara"]
LAST = ["Schmidt", "Martin", "Jones", "Rossi", "Garcia", "Nowak", "Silva", "Kowalski", "Dubois", "Müller",
        "Smith", "Brown", "Novak", "Jensen", "Horvat", "Popescu", "Petrov", "Ivanova", "Yilmaz", "Khan"]
DAY = np.datetime64("2026-03-02")
BATCHES, BATCH_SIZE, FEES, FX, MISSING = 1_000, 50, 10_000, 10_000, 10_000


def generate(n_items: int, seed: int = 7) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = np.arange(n_items)
    item_id = pl.Series([f"R000001-{i:08d}" for i in ids])
    amount = rng.integers(100, 500_000, n_items)
    currency = rng.choice(np.array(["EUR", "GBP", "USD"]), n_items, p=[0.7, 0.15, 0.15])
    names = pl.Series(FIRST)[rng.integers(0, len(FIRST), n_items)] + " " + \
        pl.Series(LAST)[rng.integers(0, len(LAST), n_items)] + " " + pl.Series(rng.integers(1, 99_999, n_items)).cast(pl.Utf8)
    # Segments, by position: batches, fees, FX, missing, then the exact majority.
    b_end = BATCHES * BATCH_SIZE
    f_end, x_end, m_end = b_end + FEES, b_end + FEES + FX, b_end + FEES + FX + MISSING
    currency[:b_end] = "EUR"
    currency[f_end:x_end] = "GBP"
    batch_no = np.where(ids < b_end, ids // BATCH_SIZE, -1)
    items = pl.DataFrame({
        "item_id": item_id, "amount_minor": amount, "currency": currency, "already_matched": False,
        "status": "accepted", "run_id": "R000001", "rail": np.where(ids < b_end, "sepa_credit", "swift"),
        "batch_no": pl.Series(batch_no).replace(-1, None), "recipient_name": names,
    }).with_columns(accepted_on=pl.lit((DAY - np.timedelta64(1, "D")).item(), pl.Date))

    exact = items.slice(m_end).select("item_id", "amount_minor", "currency", "recipient_name")
    batch = items.slice(0, b_end).group_by("batch_no").agg(pl.col("amount_minor").sum()).select(
        end_to_end_id=pl.lit(None, pl.Utf8), amount_minor=-pl.col("amount_minor"), currency=pl.lit("EUR"),
        counterparty_name=pl.lit(None, pl.Utf8), charges_minor=pl.lit(None, pl.Int64))
    fee_items = items.slice(b_end, FEES)
    charge = pl.Series(rng.integers(1, 2_000, FEES))
    fee = fee_items.select(end_to_end_id="item_id", amount_minor=-(pl.col("amount_minor") + charge),
                           currency="currency", counterparty_name="recipient_name",
                           charges_minor=pl.when(pl.int_range(pl.len()) % 2 == 0).then(charge).otherwise(None))
    fx_items = items.slice(f_end, FX)
    quotes = fx_items.select("item_id", from_currency=pl.lit("GBP"), to_currency=pl.lit("EUR"),
                             rate=pl.lit("1.17"), fee_minor=pl.lit(0, pl.Int64))
    fx = fx_items.select(end_to_end_id="item_id",
                         amount_minor=-(pl.col("amount_minor") * 117 // 100 + pl.col("amount_minor") // 200),
                         currency=pl.lit("EUR"), counterparty_name="recipient_name",
                         charges_minor=pl.lit(None, pl.Int64))
    n_unexpected = max(n_items - exact.height - batch.height - FEES - FX, 1_000)
    look_alike = items.slice(x_end, min(MISSING // 2, n_unexpected)).select(
        end_to_end_id=pl.lit(None, pl.Utf8), amount_minor=-(pl.col("amount_minor") * 1005 // 1000),
        currency="currency", counterparty_name=pl.col("recipient_name").str.to_uppercase(),
        charges_minor=pl.lit(None, pl.Int64))
    rest = n_unexpected - look_alike.height
    strangers = pl.DataFrame({
        "end_to_end_id": pl.Series([None] * rest, dtype=pl.Utf8),
        "amount_minor": -rng.integers(100, 500_000, rest), "currency": rng.choice(["EUR", "GBP", "USD"], rest),
        "counterparty_name": pl.Series(["Unknown Merchant"] * rest), "charges_minor": pl.Series([None] * rest, dtype=pl.Int64)})
    lines = pl.concat([
        exact.select(end_to_end_id="item_id", amount_minor=-pl.col("amount_minor"), currency="currency",
                     counterparty_name="recipient_name", charges_minor=pl.lit(None, pl.Int64)),
        batch, fee, fx, look_alike, strangers,
    ], how="vertical_relaxed")
    lines = lines.sample(fraction=1.0, shuffle=True, seed=seed).with_columns(
        line_id=pl.int_range(1, pl.len() + 1, dtype=pl.Int64), return_reason=pl.lit(None, pl.Utf8),
        status=pl.lit("booked"), booking_date=pl.lit(DAY.item(), pl.Date), value_date=pl.lit(DAY.item(), pl.Date),
        entry_ref=pl.format("REF{}", pl.int_range(pl.len())), remittance_info=pl.lit(None, pl.Utf8))
    return lines, items, quotes


def exact_pass_polars(lines: pl.DataFrame, items: pl.DataFrame) -> dict[str, int]:
    joined = lines.select("line_id", "end_to_end_id", "amount_minor", "currency").join(
        items.select("item_id", item_amount="amount_minor", item_currency="currency"),
        left_on="end_to_end_id", right_on="item_id", how="full", coalesce=False)
    return joined.select(
        matched=((pl.col("amount_minor").abs() == pl.col("item_amount"))
                 & (pl.col("currency") == pl.col("item_currency"))).sum(),
        lines_without_item=(pl.col("item_id").is_null()).sum(),
        items_without_line=(pl.col("line_id").is_null()).sum(),
    ).row(0, named=True)


SQL_EXACT = """
SELECT count(*) FILTER (WHERE l.line_id IS NOT NULL AND i.item_id IS NOT NULL
                          AND -l.amount_minor = i.amount_minor AND l.currency = i.currency) AS matched,
       count(*) FILTER (WHERE i.item_id IS NULL) AS lines_without_item,
       count(*) FILTER (WHERE l.line_id IS NULL) AS items_without_line,
       count(*) FILTER (WHERE l.line_id IS NOT NULL AND i.item_id IS NOT NULL
                          AND (-l.amount_minor <> i.amount_minor OR l.currency <> i.currency)) AS mismatched
FROM bench_lines l FULL OUTER JOIN bench_items i ON l.end_to_end_id = i.item_id
"""


def exact_pass_sql(lines: pl.DataFrame, items: pl.DataFrame) -> tuple[float, float, dict]:
    import psycopg

    from payouts.warehouse import copy_in, embedded_server_url

    with psycopg.connect(embedded_server_url("match_bench"), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_lines, bench_items")
        conn.execute("CREATE UNLOGGED TABLE bench_lines (line_id bigint, end_to_end_id text, amount_minor bigint,"
                     " currency text)")
        conn.execute("CREATE UNLOGGED TABLE bench_items (item_id text, amount_minor bigint, currency text)")
        t0 = time.perf_counter()
        copy_in(conn, "bench_lines", lines, ["line_id", "end_to_end_id", "amount_minor", "currency"])
        copy_in(conn, "bench_items", items, ["item_id", "amount_minor", "currency"])
        conn.execute("ANALYZE bench_lines; ANALYZE bench_items")
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        cur = conn.execute(SQL_EXACT)
        row = dict(zip([d.name for d in cur.description], cur.fetchone()))
        query_s = time.perf_counter() - t0
        conn.execute("DROP TABLE bench_lines, bench_items")
    return load_s, query_s, row


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n_items = int(args[0]) if args else 1_000_000
    t0 = time.perf_counter()
    lines, items, quotes = generate(n_items)
    print(f"generated {items.height:,} items, {lines.height:,} lines, {quotes.height:,} quotes"
          f" in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    result = match_lines(lines, items, quotes)
    match_s = time.perf_counter() - t0
    by_rule = dict(result.matches.group_by("rule").len().sort("rule").iter_rows())
    breaks = dict(result.breaks.group_by("break_type").len().sort("break_type").iter_rows())
    t0 = time.perf_counter()
    polars_exact = exact_pass_polars(lines, items)
    polars_exact_s = time.perf_counter() - t0

    print(f"\nmatch_lines (all rules, polars): {match_s:6.2f} s   target <= 10 s")
    print(f"  matches by rule: {by_rule}")
    print(f"  fees: {result.fees.height:,}  suggestions: {result.suggestions.height:,}"
          f" (on {result.suggestions['line_id'].n_unique():,} lines)  breaks: {breaks}")
    print("\nexact-reference pass only, side by side:")
    print(f"  polars full join           : {polars_exact_s:6.2f} s   {polars_exact}")
    if "--no-sql" not in sys.argv:
        load_s, query_s, row = exact_pass_sql(lines, items)
        print(f"  PostgreSQL FULL OUTER JOIN : {query_s:6.2f} s   {row}")
        print(f"  (COPY of both sets into UNLOGGED tables + ANALYZE: {load_s:.2f} s, not counted above)")


if __name__ == "__main__":
    main()
