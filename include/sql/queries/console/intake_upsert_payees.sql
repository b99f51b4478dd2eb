INSERT INTO payouts.recipients (recipient_id, name, country, currency, dest_kind, iban, bic,
                                account_number, routing_code, wallet_address, network, kyc_status)
SELECT DISTINCT ON (recipient_id) recipient_id, name, country, currency, dest_kind,
       CASE WHEN dest_kind = 'iban' THEN iban END, CASE WHEN dest_kind = 'iban' THEN bic END,
       CASE WHEN dest_kind = 'local' THEN account_number END,
       CASE WHEN dest_kind = 'local' THEN routing_code END,
       CASE WHEN dest_kind = 'wallet' THEN wallet_address END,
       CASE WHEN dest_kind = 'wallet' THEN network END,
       'unverified'  -- a payout file never vouches for KYC: new payees start unverified
FROM _intake WHERE decision = 'ready'
ORDER BY recipient_id, row_no DESC
ON CONFLICT (recipient_id) DO UPDATE SET
    name = EXCLUDED.name, country = EXCLUDED.country, currency = EXCLUDED.currency,
    dest_kind = EXCLUDED.dest_kind, iban = EXCLUDED.iban, bic = EXCLUDED.bic,
    account_number = EXCLUDED.account_number, routing_code = EXCLUDED.routing_code,
    wallet_address = EXCLUDED.wallet_address, network = EXCLUDED.network
