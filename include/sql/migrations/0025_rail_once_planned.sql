-- An item's rail is decided at the snapshot (payouts.core.routing); the
-- reporting view keeps showing it from the moment the item is planned into a
-- batch of that rail, as before: an item the checks held or rejected shows none.
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
    CASE WHEN i.batch_no IS NOT NULL THEN i.rail END      AS rail,
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
