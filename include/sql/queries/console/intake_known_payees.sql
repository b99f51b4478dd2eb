SELECT t.recipient_id
FROM (SELECT DISTINCT ON (recipient_id) * FROM _intake WHERE decision = 'ready'
      ORDER BY recipient_id, row_no DESC) t
JOIN payouts.recipients r USING (recipient_id)
WHERE (r.iban, r.account_number, r.routing_code, r.wallet_address, r.network) IS DISTINCT FROM
      (CASE WHEN t.dest_kind = 'iban' THEN t.iban END, CASE WHEN t.dest_kind = 'local' THEN t.account_number END,
       CASE WHEN t.dest_kind = 'local' THEN t.routing_code END,
       CASE WHEN t.dest_kind = 'wallet' THEN t.wallet_address END,
       CASE WHEN t.dest_kind = 'wallet' THEN t.network END)
