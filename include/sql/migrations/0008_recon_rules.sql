-- Matching rules beyond the exact reference: batch bookings, fees, FX, suggestions,
-- and the audit of breaks that a person resolves.

-- A batch booking ties one statement line to many items: a match is a (line, item) pair.
ALTER TABLE recon.matches DROP CONSTRAINT IF EXISTS matches_pkey;
ALTER TABLE recon.matches ADD CONSTRAINT matches_pkey PRIMARY KEY (line_id, item_id);

-- What the parsers already read and the fee rule needs: the bank's charges (decimal text,
-- in the line's currency) and whether the entry was a batch booking.
ALTER TABLE recon.statement_lines ADD COLUMN IF NOT EXISTS charges text;
ALTER TABLE recon.statement_lines ADD COLUMN IF NOT EXISTS is_batch boolean;

-- The rate a rail quoted for a cross-currency payout. rate converts from_currency into
-- to_currency (major units); fee_minor is the quoted fee in minor units of the currency
-- debited on the statement. Filled by the rails; the fx_tolerance rule reads it.
CREATE TABLE IF NOT EXISTS payouts.fx_quotes (
    item_id        varchar(16) PRIMARY KEY REFERENCES payouts.payout_items (item_id),
    from_currency  text NOT NULL REFERENCES ledger.currencies (code),
    to_currency    text NOT NULL REFERENCES ledger.currencies (code),
    rate           numeric NOT NULL CHECK (rate > 0),
    fee_minor      bigint NOT NULL DEFAULT 0 CHECK (fee_minor >= 0),
    quoted_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (from_currency <> to_currency)
);

-- Possible matches a person decides on. One row per (line, item): a re-run adds nothing.
CREATE TABLE IF NOT EXISTS recon.suggestions (
    suggestion_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    line_id        bigint NOT NULL REFERENCES recon.statement_lines (line_id),
    item_id        varchar(16) NOT NULL REFERENCES payouts.payout_items (item_id),
    confidence     smallint NOT NULL CHECK (confidence BETWEEN 0 AND 100),
    rule           text NOT NULL DEFAULT 'suggestion',
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'confirmed', 'rejected')),
    decided_by     text,
    decided_at     timestamptz,
    note           text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (line_id, item_id),
    CHECK ((status = 'open') = (decided_by IS NULL))
);
CREATE INDEX IF NOT EXISTS suggestions_open_idx ON recon.suggestions (line_id) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS suggestions_item_idx ON recon.suggestions (item_id);

-- Every change to a break, by a person or by a later statement: who, why, the row before and after.
CREATE TABLE IF NOT EXISTS recon.break_audit (
    audit_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    break_id   bigint NOT NULL REFERENCES recon.breaks (break_id),
    action     text NOT NULL CHECK (action IN ('resolved', 'auto_resolved')),
    who        text NOT NULL,
    note       text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    before     jsonb NOT NULL,
    after      jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS break_audit_break_idx ON recon.break_audit (break_id);
CREATE INDEX IF NOT EXISTS breaks_open_item_idx ON recon.breaks (item_id) WHERE status = 'open';

-- settled_on now counts every rule that settles an item, not only the exact reference.
CREATE OR REPLACE VIEW reporting.payout_items AS
SELECT
    i.item_id,
    i.run_id,
    run.created_at                                        AS run_created_at,
    i.recipient_id,
    r.name                                                AS recipient_name,
    r.country,
    i.currency,
    (i.amount_minor::numeric / 10 ^ c.exponent)::numeric(38, 18) AS amount,
    i.amount_minor,
    i.status,
    i.rail,
    COALESCE(att.attempts, 0)                             AS attempts,
    att.last_reason_code,
    att.accepted_at,
    settle.booking_date                                   AS settled_on,
    (i.status = 'settled')                                AS is_settled,
    (SELECT string_agg(x ->> 'code', ',') FROM jsonb_array_elements(i.reasons) x) AS reason_codes,
    i.updated_at
FROM payouts.payout_items i
JOIN payouts.runs run USING (run_id)
JOIN payouts.recipients r USING (recipient_id)
JOIN ledger.currencies c ON c.code = i.currency
LEFT JOIN LATERAL (
    SELECT count(*) AS attempts,
           (array_agg(a.reason_code ORDER BY a.first_sent_at DESC))[1] AS last_reason_code,
           max(a.answered_at) FILTER (WHERE a.status = 'accepted') AS accepted_at
    FROM payouts.attempts a WHERE a.item_id = i.item_id
) att ON true
LEFT JOIN LATERAL (
    SELECT min(l.booking_date) AS booking_date
    FROM recon.matches m JOIN recon.statement_lines l USING (line_id)
    WHERE m.item_id = i.item_id
      AND m.rule IN ('exact_end_to_end', 'batch_sum', 'with_fee', 'fx_tolerance', 'suggestion_confirmed')
) settle ON true;
