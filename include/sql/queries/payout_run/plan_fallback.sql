WITH nxt AS (
    SELECT i.item_id, (SELECT f.rail FROM unnest(i.fallback_rails) WITH ORDINALITY AS f(rail, n)
                       WHERE NOT EXISTS (SELECT 1 FROM payouts.attempts a
                                         WHERE a.item_id = i.item_id AND a.rail = f.rail)
                       ORDER BY n LIMIT 1) AS rail
    FROM payouts.payout_items i WHERE i.run_id = %(run_id)s AND i.status = 'fallback'
), numbered AS (
    SELECT n.item_id, n.rail,
           COALESCE((SELECT max(batch_no) + 1 FROM payouts.batches b
                     WHERE b.run_id = %(run_id)s AND b.rail = n.rail), 0)
           + ((row_number() OVER (PARTITION BY n.rail ORDER BY n.item_id) - 1) / %(size)s)::int
           AS batch_no
    FROM nxt n WHERE n.rail IS NOT NULL
)
UPDATE payouts.payout_items i SET rail = numbered.rail, batch_no = numbered.batch_no,
       updated_at = now()
FROM numbered WHERE i.item_id = numbered.item_id
