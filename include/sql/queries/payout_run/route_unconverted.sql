-- An approved item whose payee is paid in another currency, left unconverted
-- (no FX quote for it), is a payment in the currency owed: its rail is decided
-- again by that currency ({rail} from payouts.core.routing.payee_rail_sql).
UPDATE payouts.payout_items i
SET rail = {rail}, updated_at = now()
FROM payouts.recipients r
WHERE i.run_id = %(run_id)s AND i.status = 'approved' AND r.recipient_id = i.recipient_id
  AND i.paid_currency IS NULL AND r.payout_currency IS NOT NULL AND r.payout_currency <> i.currency
