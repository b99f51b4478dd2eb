-- A batch's status follows its work: planned (nothing sent), sent (its payments
-- are out, answers pending or its task retrying), done (every payment sent has a
-- final answer) or failed (the run ended with payments of it unanswered, or with
-- nothing of it sent: a kill switch, a funding pause, a task that gave up before
-- sending; `detail` says which). accepted, rejected and unanswered count its
-- payments by the provider's answer.
--
-- Each attempt keeps the batch it was sent in: an item that a rail rejected at
-- rail level moves to a batch of the next rail, and its first attempt still
-- counts for the batch that sent it. Adding a column without a default rewrites
-- nothing; submit writes it with the attempt, in the same INSERT.
ALTER TABLE payouts.attempts ADD COLUMN IF NOT EXISTS batch_no integer;

ALTER TABLE payouts.batches DROP CONSTRAINT IF EXISTS batches_status_check;
ALTER TABLE payouts.batches ADD CONSTRAINT batches_status_check
    CHECK (status IN ('planned', 'sent', 'done', 'failed'));
ALTER TABLE payouts.batches
    ADD COLUMN IF NOT EXISTS accepted   integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS rejected   integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS unanswered integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS detail     text,
    ADD COLUMN IF NOT EXISTS updated_at timestamptz;

-- Batches of runs before this migration: their attempts carry no batch, so they
-- are counted from the items still in them (an item that fell back to another
-- rail counts there, not here) and closed like a finished run's.
UPDATE payouts.attempts a SET batch_no = i.batch_no
FROM payouts.payout_items i
WHERE a.batch_no IS NULL AND i.item_id = a.item_id AND i.rail = a.rail AND i.batch_no IS NOT NULL;

WITH counts AS (
    SELECT b.run_id, b.rail, b.batch_no,
           count(a.item_id) AS sent,
           count(a.item_id) FILTER (WHERE a.status = 'accepted') AS accepted,
           count(a.item_id) FILTER (WHERE a.status = 'rejected') AS rejected,
           count(a.item_id) FILTER (WHERE a.status IN ('sending', 'unknown')) AS unanswered
    FROM payouts.batches b
    LEFT JOIN payouts.attempts a ON a.item_id BETWEEN b.first_item AND b.last_item
         AND a.rail = b.rail AND a.batch_no = b.batch_no
    WHERE b.status = 'planned'
    GROUP BY 1, 2, 3
)
UPDATE payouts.batches b
SET accepted = c.accepted, rejected = c.rejected, unanswered = c.unanswered, updated_at = now(),
    status = CASE WHEN c.sent = 0 THEN 'planned' WHEN c.unanswered = 0 THEN 'done' ELSE 'sent' END
FROM counts c
WHERE b.run_id = c.run_id AND b.rail = c.rail AND b.batch_no = c.batch_no;
