-- Freeze what is owed into the run's payout items. Every positive payable
-- balance of a recipient whose destination is not blocked becomes one item;
-- the item id is the run id, a dash and an 8-digit sequence (16 characters,
-- the EndToEndId of the payment). Each item's rail is decided here, once: the
-- rail ROUTES gives the payee's destination, the currency paid and the
-- account's country (filled in from payouts.core.routing.payee_rail_sql), with
-- its fallback chain. Items are numbered rail by rail, so each batch routing
-- plans is one range of ids. Byte order ("C") numbers them as well as any
-- collation, at half the cost of sorting a million rows by the database's.
INSERT INTO payouts.payout_items (item_id, run_id, recipient_id, currency, amount_minor, status, rail, fallback_rails)
SELECT %(run_id)s || '-' || lpad((row_number() OVER (ORDER BY s.rail COLLATE "C", s.recipient_id COLLATE "C", s.currency COLLATE "C"))::text, 8, '0'),
       %(run_id)s, s.recipient_id, s.currency, s.owed_minor, 'snapshotted', s.rail, {fallback}
FROM (
    SELECT o.recipient_id, o.currency, o.owed_minor, {rail} AS rail
    FROM (
        SELECT recipient_id, currency, -sum(amount_minor) AS owed_minor
        FROM ledger.postings
        WHERE account = 'payable'
        GROUP BY recipient_id, currency
        HAVING -sum(amount_minor) > 0
    ) o
    JOIN payouts.recipients r ON r.recipient_id = o.recipient_id
    WHERE r.destination_blocked_reason IS NULL
) s
