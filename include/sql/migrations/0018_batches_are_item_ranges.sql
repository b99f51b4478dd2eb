-- Routing writes each approved item's rail, fallback rails and batch number:
-- with rail and batch_no in payout_items_run_idx, that update could not stay on
-- the row's page (a heap-only-tuple update) and wrote a new entry into every
-- index of the table for every item, 7.6 of routing's 11.7 seconds at a
-- million items.
--
-- The snapshot now numbers a run's items rail by rail (the rail ROUTES gives
-- the payee's destination and currency; see payouts.core.routing.rail_sql), and
-- routing numbers each rail's batches by item id, so a batch is one range of
-- item ids: payouts.batches keeps it (first_item, last_item) and a batch's
-- items are read through the primary key, WHERE item_id BETWEEN first_item
-- AND last_item AND rail = ... AND batch_no = ... . An item that routes to
-- another rail than the snapshot expected (its destination changed meanwhile)
-- is still found, only from a longer range. Queries of a whole run use
-- payout_items_run_id_idx.
DROP INDEX IF EXISTS payouts.payout_items_run_idx;
CREATE INDEX IF NOT EXISTS payout_items_run_id_idx ON payouts.payout_items (run_id);

-- An attempt is written before its request leaves and updated once with the
-- answer. The answer makes the row longer (provider reference, time): with
-- 30% of each page free, most answered rows did not fit on their page and
-- were written elsewhere, with new entries in both unique indexes
-- (16 seconds of the warehouse's time at a million payments). With 60% free,
-- every answer is written in place.
ALTER TABLE payouts.attempts SET (fillfactor = 40);
