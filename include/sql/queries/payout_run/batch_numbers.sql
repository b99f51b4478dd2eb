-- Number each rail's approved, unplanned items of a run into batches of at
-- most %(batch_size)s, by item id: with the snapshot's numbering each batch is
-- one range of ids. _routes keeps the plan for the items and payouts.batches.
CREATE TEMP TABLE _routes ON COMMIT DROP AS
SELECT item_id, rail,
       ((row_number() OVER (PARTITION BY rail ORDER BY item_id COLLATE "C")) - 1) / %(batch_size)s AS batch_no
FROM payouts.payout_items
WHERE run_id = %(run_id)s AND status = 'approved' AND batch_no IS NULL AND rail IS NOT NULL
