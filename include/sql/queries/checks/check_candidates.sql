-- The snapshotted items of a run with what the row checks need: the payee's
-- details (text, as a payout file would carry them), KYC, recent payments of
-- the same amount, what an unverified payee received this month, and how many
-- recipients share the destination. `_rail` is the rail the snapshot decided.
WITH run_items AS (
    SELECT i.item_id, i.recipient_id, i.currency, i.amount_minor, i.rail
    FROM payouts.payout_items i
    WHERE i.run_id = %(run_id)s AND i.status = 'snapshotted'
), dest AS (
    SELECT recipient_id,
           CASE dest_kind
               WHEN 'iban' THEN upper(replace(iban, ' ', ''))
               WHEN 'local' THEN country || ':' || routing_code || ':' || account_number
               ELSE lower(wallet_address)
           END AS dest_key
    FROM payouts.recipients
), shared AS (
    SELECT dest_key, count(*) AS holders FROM dest GROUP BY dest_key HAVING count(*) > 1
)
SELECT ri.item_id AS payout_id, ri.recipient_id, r.name, r.country,
       trim_scale(ri.amount_minor::numeric / (10::numeric ^ c.exponent))::text AS amount_text,
       c.exponent, ri.amount_minor, ri.currency, ri.rail AS _rail, r.iban, r.bic, r.account_number, r.routing_code,
       r.wallet_address, r.network, r.kyc_status, r.address,
       EXISTS (
           SELECT 1 FROM payouts.payout_items p JOIN payouts.runs pr USING (run_id)
           WHERE p.recipient_id = ri.recipient_id AND p.currency = ri.currency
             AND p.amount_minor = ri.amount_minor AND p.run_id <> %(run_id)s
             AND p.status IN ('accepted', 'settled') AND pr.created_at > now() - interval '30 days'
       ) AS paid_same_recently,
       COALESCE((
           SELECT sum(p.amount_minor) FROM payouts.payout_items p JOIN payouts.runs pr USING (run_id)
           WHERE r.kyc_status = 'unverified' AND p.recipient_id = ri.recipient_id
             AND p.currency = ri.currency AND p.status IN ('accepted', 'settled')
             AND pr.created_at > date_trunc('month', now())
       ), 0) AS paid_this_month_minor,
       COALESCE(s.holders, 1) AS destination_holders,
       (r.destination_changed_at IS NOT NULL
        AND r.destination_changed_at > now() - make_interval(hours => %(cooling_off_hours)s)) AS cooling_off
FROM run_items ri
JOIN payouts.recipients r USING (recipient_id)
JOIN ledger.currencies c ON c.code = ri.currency
LEFT JOIN dest d USING (recipient_id)
LEFT JOIN shared s ON s.dest_key = d.dest_key
