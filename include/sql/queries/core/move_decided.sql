WITH moved AS (
    UPDATE payouts.payout_items i
    SET status = d.decision, updated_at = now(), reasons = i.reasons || d.reasons
    FROM {decided} d
    WHERE i.item_id = d.item_id AND i.status = %(__from)s AND d.decision = ANY(%(__to)s)
    RETURNING i.item_id, d.decision
), events AS (
    INSERT INTO payouts.item_events (item_id, from_status, to_status, detail)
    SELECT item_id, %(__from)s, decision, %(__detail)s || decision FROM moved
    RETURNING to_status
)
SELECT to_status, count(*) FROM events GROUP BY to_status
