-- Each planned item gets its batch number and its rail's fallback chain
-- ({fallback} from payouts.core.routing.fallback_sql over t.rail).
UPDATE payouts.payout_items i SET batch_no = t.batch_no, fallback_rails = {fallback}, updated_at = now()
FROM _routes t WHERE i.item_id = t.item_id
