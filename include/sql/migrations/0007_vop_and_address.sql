-- A free-text postal address: screening reads embargoed regions (Crimea,
-- Donetsk, Luhansk) from it, which a country code cannot express.
ALTER TABLE payouts.recipients ADD COLUMN IF NOT EXISTS address text;

-- Verification of Payee answers, per recipient and the (IBAN, name) asked
-- about: reused for 30 days so a daily run does not ask the bank again.
CREATE TABLE IF NOT EXISTS payouts.vop_results (
    recipient_id  text NOT NULL REFERENCES payouts.recipients (recipient_id),
    iban          text NOT NULL,
    name          text NOT NULL,
    status        text NOT NULL CHECK (status IN ('match', 'close_match', 'no_match', 'not_possible')),
    held_name     text,
    checked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recipient_id, iban, name)
);
