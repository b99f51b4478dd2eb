-- The checks look up every payee's earlier payouts (a recent payment of the same
-- amount; what an unverified payee received this month): by recipient, not by run.
CREATE INDEX IF NOT EXISTS payout_items_recipient_idx
    ON payouts.payout_items (recipient_id, currency, amount_minor) INCLUDE (status, run_id);
