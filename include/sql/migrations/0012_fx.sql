-- Payouts owed in one currency and paid in another: the payee's payout
-- currency, the item's paid amount from the provider's quote, and the FX
-- position account through which each currency side of a conversion balances.
ALTER TABLE payouts.recipients ADD COLUMN IF NOT EXISTS payout_currency text REFERENCES ledger.currencies (code);
ALTER TABLE payouts.payout_items ADD COLUMN IF NOT EXISTS paid_currency text REFERENCES ledger.currencies (code);
ALTER TABLE payouts.payout_items ADD COLUMN IF NOT EXISTS paid_amount_minor bigint CHECK (paid_amount_minor > 0);
ALTER TABLE payouts.fx_quotes ADD COLUMN IF NOT EXISTS to_amount_minor bigint;
ALTER TABLE payouts.fx_quotes ADD COLUMN IF NOT EXISTS quote_ref text;
INSERT INTO ledger.accounts (account, description) VALUES
    ('fx_position', 'currency conversions at the provider: what left in one currency arrived in another')
ON CONFLICT (account) DO NOTHING;
