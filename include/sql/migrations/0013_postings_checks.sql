-- Postings are written in bulk (three per item event at a million items a run),
-- and a foreign key costs a trigger call per row: the account and currency of
-- a posting are checked without one. The account list is a CHECK (the chart of
-- accounts changes only by migration); the currency always comes from a payout
-- item or an earning whose currency is a foreign key to ledger.currencies. The
-- transaction foreign key stays: no posting exists without its transaction.
ALTER TABLE ledger.postings DROP CONSTRAINT IF EXISTS postings_account_fkey;
ALTER TABLE ledger.postings DROP CONSTRAINT IF EXISTS postings_currency_fkey;
ALTER TABLE ledger.postings ADD CONSTRAINT postings_account_known CHECK (
    account IN ('earnings', 'payable', 'reserved', 'clearing', 'cash', 'fees', 'fx_position')
);
