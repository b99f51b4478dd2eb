-- Each statement as the provider reported it: balances, sequence, and whether it adds up.
CREATE TABLE IF NOT EXISTS recon.statements (
    account       text NOT NULL,
    statement_id  text NOT NULL,
    file_id       bigint NOT NULL REFERENCES recon.statement_files (file_id),
    message_type  text NOT NULL,
    currency      text,
    sequence      text,
    seq_no        bigint,
    opening       numeric,
    closing       numeric,
    booked_sum    numeric,
    balanced      boolean,
    PRIMARY KEY (account, statement_id)
);

-- What did not add up: unbalanced statements, gaps and repeats in the sequence.
CREATE TABLE IF NOT EXISTS recon.statement_issues (
    issue_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    file_id       bigint NOT NULL REFERENCES recon.statement_files (file_id),
    kind          text NOT NULL CHECK (kind IN ('unbalanced', 'sequence_gap', 'sequence_duplicate')),
    account       text NOT NULL,
    statement_id  text,
    message       text NOT NULL,
    found_at      timestamptz NOT NULL DEFAULT now()
);

-- Lines that are not payouts (funding, fees, interest) are classified by rules, not left unexpected.
ALTER TABLE recon.statement_lines ADD COLUMN IF NOT EXISTS line_class text NOT NULL DEFAULT 'other';
