-- Double-entry ledger. Amounts are signed integer minor units of their currency:
-- a debit is positive, a credit negative, and the postings of one transaction
-- sum to zero per currency (enforced by ledger.post_balanced() callers and
-- proven by the view ledger.unbalanced_transactions).
CREATE SCHEMA IF NOT EXISTS ledger;

CREATE TABLE IF NOT EXISTS ledger.currencies (
    code      text PRIMARY KEY,
    exponent  smallint NOT NULL CHECK (exponent BETWEEN 0 AND 18),
    kind      text NOT NULL CHECK (kind IN ('fiat', 'crypto'))
);

-- Account kinds; per-recipient sub-ledgers carry the recipient id on each posting.
--   earnings  platform expense that creates what is owed
--   payable   owed to the recipient, free to be paid       (liability)
--   reserved  frozen by a payout run, not yet sent          (liability)
--   clearing  sent and accepted by a provider, not settled  (liability)
--   cash      the platform's money at the provider          (asset)
--   fees      provider charges                               (expense)
CREATE TABLE IF NOT EXISTS ledger.accounts (
    account     text PRIMARY KEY,
    description text NOT NULL
);
INSERT INTO ledger.accounts (account, description) VALUES
    ('earnings', 'platform expense that creates what is owed to recipients'),
    ('payable',  'owed to recipients and free to be paid'),
    ('reserved', 'frozen by a payout run until it is sent, rejected or cancelled'),
    ('clearing', 'accepted by a provider, not yet seen on a statement'),
    ('cash',     'the platform''s money held at providers'),
    ('fees',     'provider charges')
ON CONFLICT (account) DO NOTHING;

-- A transaction id says what it is for (e.g. 'reserve:R000001-00000001'), so
-- posting the same business event twice is refused by the primary key.
CREATE TABLE IF NOT EXISTS ledger.transactions (
    txn_id      text PRIMARY KEY,
    kind        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS ledger.postings (
    posting_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txn_id        text NOT NULL REFERENCES ledger.transactions (txn_id),
    account       text NOT NULL REFERENCES ledger.accounts (account),
    recipient_id  text,
    currency      text NOT NULL REFERENCES ledger.currencies (code),
    amount_minor  bigint NOT NULL CHECK (amount_minor <> 0),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS postings_txn_idx ON ledger.postings (txn_id);
CREATE INDEX IF NOT EXISTS postings_payable_idx
    ON ledger.postings (recipient_id, currency) INCLUDE (amount_minor) WHERE account = 'payable';

CREATE OR REPLACE VIEW ledger.unbalanced_transactions AS
SELECT txn_id, currency, sum(amount_minor) AS imbalance_minor
FROM ledger.postings
GROUP BY txn_id, currency
HAVING sum(amount_minor) <> 0;

-- Balances as the owner sees them: liabilities positive when owed.
CREATE OR REPLACE VIEW ledger.balances AS
SELECT account, recipient_id, currency,
       CASE WHEN account IN ('cash', 'fees', 'earnings') THEN sum(amount_minor)
            ELSE -sum(amount_minor) END AS balance_minor
FROM ledger.postings
GROUP BY account, recipient_id, currency;
