-- A chain reorganisation reverses an item's send or settlement under
-- 'unsend:<item>:reorg<n>' / 'unsettle:<item>:reorg<n>'. Each reconciliation
-- pass settles such items again when their transaction's new block is matched;
-- this small partial index finds the reversals without a probe per matched item.
CREATE INDEX IF NOT EXISTS transactions_reversals_idx ON ledger.transactions (txn_id)
    WHERE kind IN ('unsend', 'unsettle');
