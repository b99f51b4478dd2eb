-- Statement files that could not be read safely or correctly: kept aside with
-- the reason, so one bad file never stops the others.
CREATE TABLE IF NOT EXISTS recon.quarantined_files (
    sha256       text PRIMARY KEY,
    provider     text NOT NULL,
    name         text NOT NULL,
    path         text NOT NULL,
    reason       text NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);
