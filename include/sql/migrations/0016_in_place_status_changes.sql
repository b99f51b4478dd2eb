-- A payout item changes status about six times on its way (ready, approved,
-- submitted, accepted, settled), each time with its reasons and updated_at.
-- With none of those columns in an index, PostgreSQL rewrites the row on its
-- own heap page and writes no index entry (a heap-only-tuple update); the
-- pages keep half their room free for it. At a million items this halves the
-- time of every bulk status change.
--
-- So status is in no index. Queries by status go through the run
-- (payout_items_run_idx) or the recipient (payout_items_recipient_idx, below,
-- then the row); reconciliation looks for open items in the runs of its window
-- (runs_created_idx, PAYOUTS_RECON_WINDOW_DAYS).
DROP INDEX IF EXISTS payouts.payout_items_status_idx;
DROP INDEX IF EXISTS payouts.payout_items_recipient_idx;
CREATE INDEX IF NOT EXISTS payout_items_recipient_idx
    ON payouts.payout_items (recipient_id, currency, amount_minor) INCLUDE (run_id);
ALTER TABLE payouts.payout_items SET (fillfactor = 50);
CREATE INDEX IF NOT EXISTS runs_created_idx ON payouts.runs (created_at);
-- An attempt is written before its request leaves and updated once with the
-- answer (status, provider reference, reason: in no index): in place as well.
ALTER TABLE payouts.attempts SET (fillfactor = 70);

-- Postings are written three to six per item and event; the foreign key to
-- their transaction cost a trigger call and an index probe per row. Every
-- writer inserts the transaction and its postings in one statement (the
-- transaction first), and ledger.orphan_postings (must be empty) proves it,
-- as ledger.unbalanced_transactions proves the balance.
ALTER TABLE ledger.postings DROP CONSTRAINT IF EXISTS postings_txn_id_fkey;
CREATE OR REPLACE VIEW ledger.orphan_postings AS
SELECT p.posting_id, p.txn_id, p.account, p.currency, p.amount_minor
FROM ledger.postings p
WHERE NOT EXISTS (SELECT 1 FROM ledger.transactions t WHERE t.txn_id = p.txn_id);
