INSERT INTO payouts.file_payouts (source, payout_id, intake, recipient_id, currency, amount_minor,
                                  txn_id, created_by)
SELECT %(source)s, r.payout_id, %(intake)s, r.recipient_id, r.currency, r.amount_minor, e.txn_id, %(user)s
FROM _intake r JOIN _earned e ON e.txn_id = 'file:' || %(source)s || ':' || r.payout_id
WHERE r.decision = 'ready'
