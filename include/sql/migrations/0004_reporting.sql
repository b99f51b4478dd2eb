-- Analyst-facing views. Column names and meanings are stable and documented
-- in the README; add columns at the end, never rename or drop one.
CREATE SCHEMA IF NOT EXISTS reporting;

-- One row per payout item, with its status, rail, attempts and settlement.
CREATE OR REPLACE VIEW reporting.payout_items AS
SELECT
    i.item_id,
    i.run_id,
    run.created_at                                        AS run_created_at,
    i.recipient_id,
    r.name                                                AS recipient_name,
    r.country,
    i.currency,
    (i.amount_minor::numeric / 10 ^ c.exponent)::numeric(38, 18) AS amount,
    i.amount_minor,
    i.status,
    i.rail,
    COALESCE(att.attempts, 0)                             AS attempts,
    att.last_reason_code,
    att.accepted_at,
    settle.booking_date                                   AS settled_on,
    (i.status = 'settled')                                AS is_settled,
    (SELECT string_agg(x ->> 'code', ',') FROM jsonb_array_elements(i.reasons) x) AS reason_codes,
    i.updated_at
FROM payouts.payout_items i
JOIN payouts.runs run USING (run_id)
JOIN payouts.recipients r USING (recipient_id)
JOIN ledger.currencies c ON c.code = i.currency
LEFT JOIN LATERAL (
    SELECT count(*) AS attempts,
           (array_agg(a.reason_code ORDER BY a.first_sent_at DESC))[1] AS last_reason_code,
           max(a.answered_at) FILTER (WHERE a.status = 'accepted') AS accepted_at
    FROM payouts.attempts a WHERE a.item_id = i.item_id
) att ON true
LEFT JOIN LATERAL (
    SELECT min(l.booking_date) AS booking_date
    FROM recon.matches m JOIN recon.statement_lines l USING (line_id)
    WHERE m.item_id = i.item_id AND m.rule = 'exact_end_to_end'
) settle ON true;

-- Per day (of acceptance by the provider), provider and currency: what was
-- expected to settle, what did, what is outstanding, and the breaks.
CREATE OR REPLACE VIEW reporting.reconciliation_daily AS
WITH accepted AS (
    SELECT a.answered_at::date AS day, 'sandbox'::text AS provider, i.currency, i.item_id,
           i.amount_minor, i.status
    FROM payouts.payout_items i
    JOIN payouts.attempts a ON a.item_id = i.item_id AND a.rail = i.rail AND a.status = 'accepted'
), brk AS (
    SELECT b.item_id, b.break_type FROM recon.breaks b WHERE b.status = 'open' AND b.item_id IS NOT NULL
)
SELECT
    acc.day, acc.provider, acc.currency,
    count(*)                                                       AS items_expected,
    sum(acc.amount_minor)                                          AS expected_minor,
    COALESCE(sum(acc.amount_minor) FILTER (WHERE acc.status IN ('settled', 'returned')), 0) AS settled_minor,
    COALESCE(sum(acc.amount_minor) FILTER (WHERE acc.status = 'accepted'), 0) AS outstanding_minor,
    count(*) FILTER (WHERE brk.break_type = 'missing_at_provider') AS breaks_missing_at_provider,
    count(*) FILTER (WHERE brk.break_type = 'amount_mismatch')     AS breaks_amount_mismatch,
    count(*) FILTER (WHERE brk.break_type = 'currency_mismatch')   AS breaks_currency_mismatch,
    count(*) FILTER (WHERE brk.break_type = 'duplicate_payment')   AS breaks_duplicate_payment,
    count(*) FILTER (WHERE brk.break_type = 'returned')            AS breaks_returned
FROM accepted acc
LEFT JOIN brk ON brk.item_id = acc.item_id
GROUP BY acc.day, acc.provider, acc.currency;

-- Every break with its age, for the ageing report.
CREATE OR REPLACE VIEW reporting.break_ageing AS
SELECT
    b.break_id, b.break_type, b.status, b.owner, b.item_id, b.line_id,
    l.currency, l.amount_minor AS line_amount_minor, b.opened_at, b.resolved_at,
    (COALESCE(b.resolved_at, now())::date - b.opened_at::date) AS age_days,
    CASE
        WHEN COALESCE(b.resolved_at, now()) - b.opened_at < interval '1 day' THEN '0-1d'
        WHEN COALESCE(b.resolved_at, now()) - b.opened_at < interval '3 days' THEN '1-3d'
        WHEN COALESCE(b.resolved_at, now()) - b.opened_at < interval '7 days' THEN '3-7d'
        WHEN COALESCE(b.resolved_at, now()) - b.opened_at < interval '30 days' THEN '7-30d'
        ELSE '30d+'
    END AS age_bucket,
    b.detail, b.resolution
FROM recon.breaks b
LEFT JOIN recon.statement_lines l USING (line_id);
