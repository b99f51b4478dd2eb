-- Providers are Airflow connections (payouts.providers.registry): every fact that
-- came from, or went to, a provider carries the connection id that served it.
-- What was there before came from the one sandbox, now the connection
-- `payouts_sandbox`. The column defaults fill existing rows without rewriting
-- the tables and are dropped at once: a new row must name its provider.

-- Attempts: the provider the payment was sent to (written with the write-ahead).
-- `pending`: sent, the answer comes later (a bank file, a chain transaction); the
-- item stays `submitted` and the polling of `poll_payments` owns it.
ALTER TABLE payouts.attempts ADD COLUMN IF NOT EXISTS provider text NOT NULL DEFAULT 'payouts_sandbox';
ALTER TABLE payouts.attempts ALTER COLUMN provider DROP DEFAULT;
ALTER TABLE payouts.attempts DROP CONSTRAINT IF EXISTS attempts_status_check;
ALTER TABLE payouts.attempts ADD CONSTRAINT attempts_status_check
    CHECK (status IN ('sending', 'accepted', 'rejected', 'unknown', 'pending'));

-- Batches: the provider of the batch's rail when it was planned.
ALTER TABLE payouts.batches ADD COLUMN IF NOT EXISTS provider text NOT NULL DEFAULT 'payouts_sandbox';
ALTER TABLE payouts.batches ALTER COLUMN provider DROP DEFAULT;

-- Statement files and lines already name their provider: the sandbox's old name becomes its connection id.
UPDATE recon.statement_files SET provider = 'payouts_sandbox' WHERE provider = 'sandbox';
UPDATE recon.statement_lines SET provider = 'payouts_sandbox' WHERE provider = 'sandbox';
UPDATE recon.quarantined_files SET provider = 'payouts_sandbox' WHERE provider = 'sandbox';

-- Matches: the provider of the statement line that settled the item.
ALTER TABLE recon.matches ADD COLUMN IF NOT EXISTS provider text NOT NULL DEFAULT 'payouts_sandbox';
ALTER TABLE recon.matches ALTER COLUMN provider DROP DEFAULT;

-- Where each provider's statements were last read up to: its own cursor (the last
-- file's name for the generic API; a file listing position or a block for others).
CREATE TABLE IF NOT EXISTS recon.statement_cursors (
    provider    text PRIMARY KEY,
    cursor      text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The views gain `provider` at the end (columns are added, never renamed or dropped).
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
    i.updated_at,
    att.provider                                          AS provider
FROM payouts.payout_items i
JOIN payouts.runs run USING (run_id)
JOIN payouts.recipients r USING (recipient_id)
JOIN ledger.currencies c ON c.code = i.currency
LEFT JOIN LATERAL (
    SELECT count(*) AS attempts,
           (array_agg(a.reason_code ORDER BY a.first_sent_at DESC))[1] AS last_reason_code,
           max(a.answered_at) FILTER (WHERE a.status = 'accepted') AS accepted_at,
           -- the provider of the item's current rail, else of its latest attempt
           (array_agg(a.provider ORDER BY a.rail = i.rail DESC, a.first_sent_at DESC))[1] AS provider
    FROM payouts.attempts a WHERE a.item_id = i.item_id
) att ON true
LEFT JOIN LATERAL (
    SELECT min(l.booking_date) AS booking_date
    FROM recon.matches m JOIN recon.statement_lines l USING (line_id)
    WHERE m.item_id = i.item_id
      AND m.rule IN ('exact_end_to_end', 'batch_sum', 'with_fee', 'fx_tolerance', 'suggestion_confirmed')
) settle ON true;

CREATE OR REPLACE VIEW reporting.reconciliation_daily AS
WITH accepted AS (
    SELECT a.answered_at::date AS day, a.provider, i.currency, i.item_id,
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
