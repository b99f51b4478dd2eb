-- A payee's bank details changed (with a second person's approval): money waits
-- a cooling-off period before it goes to the new destination, the main
-- payout-fraud path.
ALTER TABLE payouts.recipients ADD COLUMN IF NOT EXISTS destination_changed_at timestamptz;

-- A change of a payee's bank details is a four-eyes action.
ALTER TABLE payouts.four_eyes_requests DROP CONSTRAINT IF EXISTS four_eyes_requests_kind_check;
ALTER TABLE payouts.four_eyes_requests ADD CONSTRAINT four_eyes_requests_kind_check
    CHECK (kind IN ('sanctions_clear', 'break_write_off', 'payee_details_change'));
