-- One broken statement no longer refuses the good ones of its file, and one
-- booking reported by two statements is counted once.
--
-- A booking carries the account servicer's reference (camt AcctSvcrRef, else
-- NtryRef; the MT940 :61: bank reference). Banks that send camt.054
-- notifications and the camt.053 statement of the day report a booking twice,
-- under the same reference. The second statement's lines are still loaded
-- (they are what that statement says, and its balances count them), with
-- duplicate_of naming the line of the first: matching never takes them, so
-- reconciliation counts the booking once.
ALTER TABLE recon.statement_lines ADD COLUMN IF NOT EXISTS booking_ref text;
ALTER TABLE recon.statement_lines ADD COLUMN IF NOT EXISTS duplicate_of bigint;

-- The booking days a statement's referenced, booked lines span. A new
-- statement is compared only with the statements of its account whose days
-- overlap its own (found here, then their lines through the primary key's
-- (account, statement_id) prefix): no index on booking_ref, which every
-- loaded line would pay for, and nothing to compare for the daily statements
-- of a provider that reports each booking once.
ALTER TABLE recon.statements ADD COLUMN IF NOT EXISTS first_booking date;
ALTER TABLE recon.statements ADD COLUMN IF NOT EXISTS last_booking date;

-- A statement of a loaded file that could not be read correctly (no closing
-- balance, an impossible date, an amount its currency cannot hold): kept out
-- with its reason (file, statement, line) while the file's other statements load.
-- A file with no complete statement stays in recon.quarantined_files.
CREATE TABLE IF NOT EXISTS recon.quarantined_statements (
    quarantine_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    file_id        bigint NOT NULL REFERENCES recon.statement_files (file_id),
    account        text,
    statement_id   text,
    reason         text NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);

-- The integrity checks say which file carried which: a statement repeating
-- bookings another statement reported (counted once), or a reference reused
-- for a different amount (both loaded, a person looks).
ALTER TABLE recon.statement_issues DROP CONSTRAINT IF EXISTS statement_issues_kind_check;
ALTER TABLE recon.statement_issues ADD CONSTRAINT statement_issues_kind_check CHECK (kind IN (
    'unbalanced', 'sequence_gap', 'sequence_duplicate', 'duplicate_booking', 'booking_ref_reused'));
