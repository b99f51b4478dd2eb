-- Recipients, runs, payout items and their attempts.
CREATE SCHEMA IF NOT EXISTS payouts;

CREATE TABLE IF NOT EXISTS payouts.recipients (
    recipient_id    text PRIMARY KEY,
    name            text NOT NULL,
    country         char(2) NOT NULL,
    currency        text NOT NULL REFERENCES ledger.currencies (code),
    dest_kind       text NOT NULL CHECK (dest_kind IN ('iban', 'local', 'wallet')),
    iban            text,
    bic             text,
    account_number  text,
    routing_code    text,
    wallet_address  text,
    network         text,
    kyc_status      text NOT NULL DEFAULT 'verified'
                    CHECK (kyc_status IN ('verified', 'unverified', 'expired')),
    -- A return or an account-level rejection blocks the destination until the
    -- payee changes it, so the next run does not pay a closed account again.
    destination_blocked_reason text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (dest_kind <> 'iban'   OR iban IS NOT NULL),
    CHECK (dest_kind <> 'local'  OR (account_number IS NOT NULL AND routing_code IS NOT NULL)),
    CHECK (dest_kind <> 'wallet' OR (wallet_address IS NOT NULL AND network IS NOT NULL))
);

CREATE SEQUENCE IF NOT EXISTS payouts.run_no_seq;

CREATE TABLE IF NOT EXISTS payouts.runs (
    run_id       text PRIMARY KEY,            -- 'R' + 6 digits; prefix of every item id
    dag_run_id   text NOT NULL UNIQUE,        -- the Airflow run (or CLI call) that owns it
    trigger      text NOT NULL,
    conf         jsonb NOT NULL DEFAULT '{}'::jsonb,
    status       text NOT NULL DEFAULT 'open'
                 CHECK (status IN ('open', 'gate_failed', 'submitted', 'completed', 'failed')),
    gate_result  jsonb,
    timings_s    jsonb NOT NULL DEFAULT '{}'::jsonb,
    summary      jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The state machine lives in payouts/states.py; the check lists its states.
CREATE TABLE IF NOT EXISTS payouts.payout_items (
    item_id        varchar(16) PRIMARY KEY CHECK (item_id ~ '^[A-Za-z0-9-]{1,16}$'),
    run_id         text NOT NULL REFERENCES payouts.runs (run_id),
    recipient_id   text NOT NULL REFERENCES payouts.recipients (recipient_id),
    currency       text NOT NULL REFERENCES ledger.currencies (code),
    amount_minor   bigint NOT NULL CHECK (amount_minor > 0),
    status         text NOT NULL CHECK (status IN (
                       'snapshotted', 'ready', 'held', 'rejected', 'approved', 'cancelled',
                       'submitted', 'accepted', 'awaiting_status', 'fallback',
                       'settled', 'returned')),
    rail           text,
    fallback_rails text[] NOT NULL DEFAULT '{}',
    batch_no       integer,
    reasons        jsonb NOT NULL DEFAULT '[]'::jsonb,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS payout_items_run_idx ON payouts.payout_items (run_id, rail, batch_no);
CREATE INDEX IF NOT EXISTS payout_items_status_idx ON payouts.payout_items (status);

-- Every change of status, in order: the item's history.
CREATE TABLE IF NOT EXISTS payouts.item_events (
    event_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id      varchar(16) NOT NULL,
    from_status  text,
    to_status    text NOT NULL,
    detail       text,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS item_events_item_idx ON payouts.item_events (item_id);

-- Batch descriptors: what a mapped submit task instance works on.
CREATE TABLE IF NOT EXISTS payouts.batches (
    run_id       text NOT NULL REFERENCES payouts.runs (run_id),
    rail         text NOT NULL,
    batch_no     integer NOT NULL,
    first_item   varchar(16) NOT NULL,
    last_item    varchar(16) NOT NULL,
    item_count   integer NOT NULL,
    status       text NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'sent')),
    PRIMARY KEY (run_id, rail, batch_no)
);

-- One row per (item, rail): the idempotency key is derived from both, so a
-- retry on the same rail reuses it and a new key exists only for a new rail.
CREATE TABLE IF NOT EXISTS payouts.attempts (
    item_id          varchar(16) NOT NULL REFERENCES payouts.payout_items (item_id),
    rail             text NOT NULL,
    idempotency_key  text NOT NULL UNIQUE,
    status           text NOT NULL CHECK (status IN ('sending', 'accepted', 'rejected', 'unknown')),
    provider_ref     text,
    reason_code      text,
    sends            integer NOT NULL DEFAULT 1,
    first_sent_at    timestamptz NOT NULL DEFAULT now(),
    answered_at      timestamptz,
    PRIMARY KEY (item_id, rail)
);

-- Who released a run for payment, when, and what they saw when they did.
CREATE TABLE IF NOT EXISTS payouts.approvals (
    run_id      text NOT NULL REFERENCES payouts.runs (run_id),
    decision    text NOT NULL CHECK (decision IN ('approved', 'rejected')),
    decided_by  text NOT NULL,
    policy      text NOT NULL,
    seen        jsonb NOT NULL,
    decided_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id)
);
