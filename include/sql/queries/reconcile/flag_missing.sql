INSERT INTO recon.breaks (break_type, item_id, detail)
SELECT 'missing_at_provider', i.item_id,
       jsonb_build_object('accepted_on', a.answered_at::date, 'rail', a.rail)
FROM payouts.payout_items i
JOIN payouts.runs r ON r.run_id = i.run_id
JOIN payouts.attempts a ON a.item_id = i.item_id AND a.rail = i.rail
WHERE r.created_at > now() - make_interval(days => %s) AND i.status = 'accepted'
  AND a.answered_at::date < (SELECT booking_date FROM (
          SELECT DISTINCT booking_date FROM recon.statement_lines WHERE booking_date IS NOT NULL
      ) days ORDER BY booking_date DESC OFFSET %s LIMIT 1)
ON CONFLICT DO NOTHING
