-- Sanctions false positives that a person cleared, per recipient and list entry.
CREATE TABLE IF NOT EXISTS payouts.sanctions_allowlist (
    recipient_id   text NOT NULL REFERENCES payouts.recipients (recipient_id),
    list_entry_id  text NOT NULL,
    cleared_by     text NOT NULL,
    note           text NOT NULL,
    cleared_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recipient_id, list_entry_id)
);

-- The screening outcome of each recipient in each run: what the lists said, when.
CREATE TABLE IF NOT EXISTS payouts.screenings (
    run_id        text NOT NULL REFERENCES payouts.runs (run_id),
    recipient_id  text NOT NULL,
    decision      text NOT NULL CHECK (decision IN ('clear', 'review', 'block')),
    top_entry_id  text,
    top_name      text,
    top_score     numeric(5, 1),
    lists_version text NOT NULL,
    screened_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, recipient_id)
);
