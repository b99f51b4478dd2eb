-- Each payout run writes about one row per item into payout_items, attempts,
-- screenings, statement_lines and matches (and one per checked account into
-- vop_results). A foreign key is a trigger call per row that looks the
-- referenced row up and locks it (FOR KEY SHARE, which also rewrites that
-- row's header): at a million items the snapshot spent 11 of its 17 seconds
-- in the three checks of payout_items alone.
--
-- Every writer of these rows takes the referenced key from the referenced
-- table in the same statement or transaction (the snapshot joins the
-- recipients of its run, an attempt is written from its item, a statement
-- line right after its file), and nothing deletes a run, recipient, item or
-- statement line that rows point at. payouts.orphan_references lists any row
-- whose reference is missing; it must be empty, and the tests check it after
-- every end-to-end run, as ledger.orphan_postings for the postings.
ALTER TABLE payouts.payout_items
    DROP CONSTRAINT IF EXISTS payout_items_run_id_fkey,
    DROP CONSTRAINT IF EXISTS payout_items_recipient_id_fkey,
    DROP CONSTRAINT IF EXISTS payout_items_currency_fkey,
    DROP CONSTRAINT IF EXISTS payout_items_paid_currency_fkey;
ALTER TABLE payouts.attempts DROP CONSTRAINT IF EXISTS attempts_item_id_fkey;
ALTER TABLE payouts.screenings DROP CONSTRAINT IF EXISTS screenings_run_id_fkey;
ALTER TABLE payouts.vop_results DROP CONSTRAINT IF EXISTS vop_results_recipient_id_fkey;
ALTER TABLE recon.statement_lines DROP CONSTRAINT IF EXISTS statement_lines_file_id_fkey;
ALTER TABLE recon.matches DROP CONSTRAINT IF EXISTS matches_line_id_fkey;

CREATE OR REPLACE VIEW payouts.orphan_references AS
SELECT 'payouts.payout_items' AS source, i.item_id AS row_key, 'run_id' AS reference, i.run_id AS missing_key
FROM payouts.payout_items i WHERE NOT EXISTS (SELECT 1 FROM payouts.runs r WHERE r.run_id = i.run_id)
UNION ALL
SELECT 'payouts.payout_items', i.item_id, 'recipient_id', i.recipient_id
FROM payouts.payout_items i WHERE NOT EXISTS (SELECT 1 FROM payouts.recipients r WHERE r.recipient_id = i.recipient_id)
UNION ALL
SELECT 'payouts.payout_items', i.item_id, 'currency', i.currency
FROM payouts.payout_items i WHERE NOT EXISTS (SELECT 1 FROM ledger.currencies c WHERE c.code = i.currency)
UNION ALL
SELECT 'payouts.payout_items', i.item_id, 'paid_currency', i.paid_currency
FROM payouts.payout_items i WHERE i.paid_currency IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM ledger.currencies c WHERE c.code = i.paid_currency)
UNION ALL
SELECT 'payouts.attempts', a.item_id || ' ' || a.rail, 'item_id', a.item_id
FROM payouts.attempts a WHERE NOT EXISTS (SELECT 1 FROM payouts.payout_items i WHERE i.item_id = a.item_id)
UNION ALL
SELECT 'payouts.screenings', s.run_id || ' ' || s.recipient_id, 'run_id', s.run_id
FROM payouts.screenings s WHERE NOT EXISTS (SELECT 1 FROM payouts.runs r WHERE r.run_id = s.run_id)
UNION ALL
SELECT 'payouts.vop_results', v.recipient_id || ' ' || v.iban, 'recipient_id', v.recipient_id
FROM payouts.vop_results v WHERE NOT EXISTS (SELECT 1 FROM payouts.recipients r WHERE r.recipient_id = v.recipient_id)
UNION ALL
SELECT 'recon.statement_lines', l.line_id::text, 'file_id', l.file_id::text
FROM recon.statement_lines l WHERE NOT EXISTS (SELECT 1 FROM recon.statement_files f WHERE f.file_id = l.file_id)
UNION ALL
SELECT 'recon.matches', m.line_id || ' ' || m.item_id, 'line_id', m.line_id::text
FROM recon.matches m WHERE NOT EXISTS (SELECT 1 FROM recon.statement_lines l WHERE l.line_id = m.line_id);
