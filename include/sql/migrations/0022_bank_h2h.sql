-- Banks host-to-host (payouts.providers.bank_h2h): pain.001 files dropped into a
-- bank's SFTP inbox, pain.002 status reports and camt statements read back from
-- its outbox. Every file sent or received is kept unchanged with its sha256.
CREATE SCHEMA IF NOT EXISTS bank;

-- One row per pain.001 file, written (and committed) before a byte leaves: its
-- name, MsgId, creation time and requested execution date are fixed here, and a
-- retried task sends these stored bytes, never a new rendering.
--   written    stored, never uploaded
--   uploading  an upload began: the rename into the inbox may have happened
--   uploaded   renamed into the inbox (or found there, in the archive or a report)
--   reported   a pain.002 names it
--   parked     cannot be sent again safely without a person (see detail)
--   no_report  no pain.002 within the connection's wait (alerted; items parked)
CREATE TABLE IF NOT EXISTS bank.files (
    conn_id        text NOT NULL,
    file_name      text NOT NULL,
    msg_id         text NOT NULL,
    rail           text NOT NULL,
    item_count     integer NOT NULL CHECK (item_count > 0),
    plain          bytea NOT NULL,            -- the pain.001 document
    plain_sha256   text NOT NULL,
    wire           bytea NOT NULL,            -- the bytes uploaded (PGP signed and encrypted, or the document)
    wire_sha256    text NOT NULL,
    state          text NOT NULL DEFAULT 'written'
                   CHECK (state IN ('written', 'uploading', 'uploaded', 'reported', 'parked', 'no_report')),
    detail         text,
    uploads        integer NOT NULL DEFAULT 0, -- upload attempts begun
    created_at     timestamptz NOT NULL DEFAULT now(),
    uploaded_at    timestamptz,
    reported_at    timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conn_id, file_name),
    UNIQUE (conn_id, msg_id)
);

-- The payments of each file: a key belongs to one file of its connection only.
-- iso_status is the furthest status the reports gave it (never moved backwards).
CREATE TABLE IF NOT EXISTS bank.file_items (
    conn_id          text NOT NULL,
    idempotency_key  text NOT NULL,
    end_to_end_id    text NOT NULL,
    msg_id           text NOT NULL,
    pmt_inf_id       text NOT NULL,
    iso_status       text,
    reason_code      text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conn_id, idempotency_key),
    FOREIGN KEY (conn_id, msg_id) REFERENCES bank.files (conn_id, msg_id)
);
CREATE INDEX IF NOT EXISTS file_items_by_file ON bank.file_items (conn_id, msg_id, end_to_end_id);

-- Every file read from the bank's outbox, as received (raw: PGP armour included)
-- and, when it came under PGP, as opened (plain), with what was done with it.
CREATE TABLE IF NOT EXISTS bank.received (
    conn_id       text NOT NULL,
    file_name     text NOT NULL,
    raw_sha256    text NOT NULL,
    raw           bytea NOT NULL,
    pgp           boolean NOT NULL DEFAULT false,
    plain         bytea,                         -- the opened file under PGP (NULL: raw is the file, or unopened)
    kind          text NOT NULL CHECK (kind IN ('pain.002', 'statement', 'unknown')),
    orgnl_msg_id  text,
    state         text NOT NULL CHECK (state IN ('applied', 'stored', 'quarantined')),
    reason        text,
    received_at   timestamptz NOT NULL DEFAULT now(),
    seq           bigserial UNIQUE,              -- the order of arrival: the statements cursor
    PRIMARY KEY (conn_id, file_name, raw_sha256)
);
CREATE INDEX IF NOT EXISTS received_by_msg ON bank.received (conn_id, orgnl_msg_id);
