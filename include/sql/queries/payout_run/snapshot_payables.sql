-- Freeze what is owed into the run's payout items. Every positive payable
-- balance of a recipient whose destination is not blocked becomes one item;
-- the item id is the run id, a dash and an 8-digit sequence (16 characters,
-- the EndToEndId of the payment). Each item's rail is decided here, once: the
-- rail ROUTES gives the payee's destination, the currency paid and the
-- account's country ({rail}, from payouts.core.routing.payee_rail_sql over the
-- columns of p; {account_country} from account_country_sql). Items are
-- numbered rail by rail, so each batch routing plans is one range of ids.
-- OFFSET 0 keeps each subquery's columns computed once per row (a pulled-up
-- subquery would repeat the expressions wherever the outer query names them).
-- Byte order ("C") numbers them as well as any collation, at half the cost of
-- sorting a million rows by the database's.
INSERT INTO payouts.payout_items (item_id, run_id, recipient_id, currency, amount_minor, status, rail)
SELECT %(run_id)s || '-' || lpad((row_number() OVER (ORDER BY s.rail COLLATE "C", s.recipient_id COLLATE "C", s.currency COLLATE "C"))::text, 8, '0'),
       %(run_id)s, s.recipient_id, s.currency, s.owed_minor, 'snapshotted', s.rail
FROM (
    SELECT p.recipient_id, p.currency, p.owed_minor, {rail} AS rail
    FROM (
        SELECT o.recipient_id, o.currency, o.owed_minor, r.dest_kind,
               COALESCE(r.payout_currency, o.currency) AS paid_currency, {account_country} AS account_country
        FROM (
            SELECT recipient_id, currency, -sum(amount_minor) AS owed_minor
            FROM ledger.postings
            WHERE account = 'payable'
            GROUP BY recipient_id, currency
            HAVING -sum(amount_minor) > 0
        ) o
        JOIN payouts.recipients r ON r.recipient_id = o.recipient_id
        WHERE r.destination_blocked_reason IS NULL
        OFFSET 0
    ) p
    OFFSET 0
) s
