-- Provider statements, their normalised lines, matches and breaks.
CREATE SCHEMA IF NOT EXISTS recon;

CREATE TABLE IF NOT EXISTS recon.statement_files (
    file_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider     text NOT NULL,
    name         text NOT NULL,
    format       text NOT NULL,
    sha256       text NOT NULL UNIQUE,
    size_bytes   bigint NOT NULL,
    path         text NOT NULL,
    line_count   integer NOT NULL DEFAULT 0,
    loaded_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS recon.statement_lines (
    line_id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    file_id              bigint NOT NULL REFERENCES recon.statement_files (file_id),
    provider             text NOT NULL,
    account              text NOT NULL,
    statement_id         text NOT NULL,
    entry_ref            text NOT NULL,
    position             integer NOT NULL,
    booking_date         date,
    value_date           date,
    amount_minor         bigint NOT NULL,          -- signed: negative for debits
    currency             text NOT NULL,
    status               text NOT NULL CHECK (status IN ('booked', 'pending')),
    end_to_end_id        text,
    counterparty_name    text,
    counterparty_account text,
    remittance_info      text,
    return_reason        text,
    -- The same statement re-sent, even in another file, adds nothing.
    UNIQUE (account, statement_id, entry_ref, position)
);
CREATE INDEX IF NOT EXISTS statement_lines_e2e_idx ON recon.statement_lines (end_to_end_id);

CREATE TABLE IF NOT EXISTS recon.matches (
    line_id     bigint PRIMARY KEY REFERENCES recon.statement_lines (line_id),
    item_id     varchar(16) NOT NULL,
    rule        text NOT NULL,
    matched_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS matches_item_idx ON recon.matches (item_id);

CREATE TABLE IF NOT EXISTS recon.breaks (
    break_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    break_type   text NOT NULL CHECK (break_type IN (
                     'missing_at_provider', 'unexpected_at_provider', 'amount_mismatch',
                     'currency_mismatch', 'duplicate_payment', 'returned')),
    item_id      varchar(16),
    line_id      bigint REFERENCES recon.statement_lines (line_id),
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    owner        text NOT NULL DEFAULT 'finance-ops',
    opened_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    resolution   text
);
-- One open break of a type per item or line: re-running reconciliation adds nothing.
CREATE UNIQUE INDEX IF NOT EXISTS breaks_item_uq
    ON recon.breaks (break_type, item_id) WHERE item_id IS NOT NULL AND line_id IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS breaks_line_uq
    ON recon.breaks (break_type, line_id) WHERE line_id IS NOT NULL;

-- One row per reconciliation pass, with what it did and how long each stage took.
CREATE TABLE IF NOT EXISTS recon.passes (
    pass_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trigger      text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    files        integer NOT NULL DEFAULT 0,
    lines        integer NOT NULL DEFAULT 0,
    counts       jsonb NOT NULL DEFAULT '{}'::jsonb,
    timings_s    jsonb NOT NULL DEFAULT '{}'::jsonb
);
