SELECT i.item_id, i.recipient_id, r.name AS recipient_name, r.country, i.currency, i.amount_minor,
       i.status, i.rail, i.batch_no,
       (SELECT string_agg(x ->> 'code', ',') FROM jsonb_array_elements(i.reasons) x) AS reason_codes,
       i.updated_at
FROM payouts.payout_items i JOIN payouts.recipients r USING (recipient_id)
WHERE i.run_id = %(run_id)s AND (%(status)s::text IS NULL OR i.status = %(status)s)
ORDER BY i.item_id LIMIT %(limit)s OFFSET %(offset)s
