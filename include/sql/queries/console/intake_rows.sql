INSERT INTO payouts.intake_rows (intake, row_no, source, payout_id, recipient_id, currency, amount_minor,
                                 decision, reasons, accepted)
SELECT %(intake)s, t.row_no, %(source)s, t.payout_id, t.recipient_id, t.currency, t.amount_minor,
       t.decision, t.reasons,
       EXISTS (SELECT 1 FROM payouts.file_payouts f
               WHERE f.source = %(source)s AND f.payout_id = t.payout_id AND f.intake = %(intake)s)
         AND t.decision = 'ready'
FROM _intake t
