-- The console: uploaded payout files and their checked rows, payouts that came in
-- through a file or the API (unique per source across all runs), API idempotency
-- keys, who created a run, and the four-eyes requests.

-- Who created the run (the console user who uploaded or posted it): the approver of
-- a run must be someone else.
ALTER TABLE payouts.runs ADD COLUMN IF NOT EXISTS created_by text;

-- Every payout file uploaded, kept whole and known by its content hash: the same
-- bytes uploaded twice are refused.
CREATE TABLE IF NOT EXISTS payouts.uploaded_files (
    file_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256       text NOT NULL UNIQUE,
    name         text NOT NULL,
    source       text NOT NULL,
    size_bytes   bigint NOT NULL,
    content      bytea NOT NULL,
    warnings     jsonb NOT NULL DEFAULT '[]'::jsonb,
    counts       jsonb NOT NULL DEFAULT '{}'::jsonb,
    uploaded_by  text NOT NULL,
    uploaded_at  timestamptz NOT NULL DEFAULT now(),
    run_id       text REFERENCES payouts.runs (run_id),
    dag_run_id   text
);

-- The check result of every row of an uploaded file (or of an API request), as the
-- uploader saw it: decision, reasons and whether it became a payable.
CREATE TABLE IF NOT EXISTS payouts.intake_rows (
    intake       text NOT NULL,                -- 'file:<file_id>' or 'api:<idempotency key>'
    row_no       integer NOT NULL,
    source       text NOT NULL,
    payout_id    text,
    recipient_id text,
    currency     text,
    amount_minor bigint,
    decision     text NOT NULL CHECK (decision IN ('ready', 'held', 'rejected')),
    reasons      jsonb NOT NULL DEFAULT '[]'::jsonb,
    accepted     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (intake, row_no)
);
CREATE INDEX IF NOT EXISTS intake_rows_payout_idx ON payouts.intake_rows (source, payout_id);

-- A payout from a file or the API becomes one ledger payable, once: the key is
-- (source, payout_id) across all runs, and the earning is 'file:<source>:<payout_id>'.
CREATE TABLE IF NOT EXISTS payouts.file_payouts (
    source        text NOT NULL,
    payout_id     text NOT NULL,
    intake        text NOT NULL,
    recipient_id  text NOT NULL REFERENCES payouts.recipients (recipient_id),
    currency      text NOT NULL REFERENCES ledger.currencies (code),
    amount_minor  bigint NOT NULL CHECK (amount_minor > 0),
    txn_id        text NOT NULL UNIQUE REFERENCES ledger.transactions (txn_id),
    run_id        text REFERENCES payouts.runs (run_id),
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, payout_id)
);
CREATE INDEX IF NOT EXISTS file_payouts_recipient_idx ON payouts.file_payouts (recipient_id, currency);

-- POST /runs: the same Idempotency-Key with the same body answers the same run;
-- with another body it is refused.
CREATE TABLE IF NOT EXISTS payouts.api_requests (
    idempotency_key text PRIMARY KEY,
    body_sha256     text NOT NULL,
    response        jsonb,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Actions that need a second person: clearing a sanctions false positive, writing
-- off a break. The one who asks can never be the one who approves.
CREATE TABLE IF NOT EXISTS payouts.four_eyes_requests (
    request_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('sanctions_clear', 'break_write_off')),
    subject       jsonb NOT NULL,
    note          text NOT NULL,
    requested_by  text NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'approved', 'refused')),
    decided_by    text,
    decided_at    timestamptz,
    CHECK ((status = 'open') = (decided_by IS NULL)),
    CHECK (decided_by IS NULL OR decided_by <> requested_by)
);
CREATE INDEX IF NOT EXISTS four_eyes_open_idx ON payouts.four_eyes_requests (kind) WHERE status = 'open';
