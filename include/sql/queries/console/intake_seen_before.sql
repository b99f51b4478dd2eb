UPDATE _intake t SET decision = 'rejected', reasons = t.reasons || jsonb_build_array(jsonb_build_object(
    'code', 'DUPLICATE_PAYOUT_ID', 'iso_code', 'AM05',
    'text', format('Payout id %%s was already received from %%s (%%s); it is not paid twice.',
                   t.payout_id, f.source, f.intake)))
FROM payouts.file_payouts f
WHERE t.decision = 'ready' AND f.source = %(source)s AND f.payout_id = t.payout_id
