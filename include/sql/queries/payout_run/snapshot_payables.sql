-- Freeze what is owed into the run's payout items. Every positive payable
-- balance of a recipient whose destination is not blocked becomes one item;
-- the item id is the run id, a dash and an 8-digit sequence (16 characters,
-- the EndToEndId of the payment). Items are numbered rail by rail, by the rail
-- ROUTES gives the payee's destination and the currency paid (filled in from
-- payouts.core.routing.rail_sql), so each batch routing plans is one range of ids.
-- Byte order ("C") numbers them as well as any collation, at half the cost of
-- sorting a million rows by the database's.
INSERT INTO payouts.payout_items (item_id, run_id, recipient_id, currency, amount_minor, status)
SELECT %(run_id)s || '-' || lpad((row_number() OVER (ORDER BY ({predicted_rail}) COLLATE "C", o.recipient_id COLLATE "C", o.currency COLLATE "C"))::text, 8, '0'),
       %(run_id)s, o.recipient_id, o.currency, o.owed_minor, 'snapshotted'
FROM (
    SELECT recipient_id, currency, -sum(amount_minor) AS owed_minor
    FROM ledger.postings
    WHERE account = 'payable'
    GROUP BY recipient_id, currency
    HAVING -sum(amount_minor) > 0
) o
JOIN payouts.recipients r ON r.recipient_id = o.recipient_id
WHERE r.destination_blocked_reason IS NULL
