SELECT count(DISTINCT i.recipient_id) FROM payouts.payout_items i
WHERE i.run_id = %(run_id)s AND i.status IN ('ready', 'approved')
  AND NOT EXISTS (SELECT 1 FROM payouts.payout_items p
                  WHERE p.recipient_id = i.recipient_id AND p.run_id <> %(run_id)s
                    AND p.status IN ('accepted', 'settled', 'returned'))
