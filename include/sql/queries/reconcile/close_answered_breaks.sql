WITH target AS (
    SELECT b.*, m.line_id AS by_line, m.rule AS by_rule
    FROM recon.breaks b
    CROSS JOIN LATERAL (
        SELECT m.line_id, m.rule FROM recon.matches m
        WHERE (b.break_type = 'missing_at_provider' AND m.item_id = b.item_id)
           OR (b.break_type <> 'missing_at_provider' AND m.line_id = b.line_id)
        ORDER BY m.matched_at, m.line_id LIMIT 1
    ) m
    WHERE b.status = 'open' AND b.break_type = ANY(%(types)s)
    FOR UPDATE OF b
), closed AS (
    UPDATE recon.breaks b SET status = 'resolved', resolved_at = now(),
           resolution = format('resolved by a later statement line: line %%s matched by rule %%s',
                               t.by_line, t.by_rule)
    FROM target t WHERE b.break_id = t.break_id
    RETURNING b.*
), audit AS (
    INSERT INTO recon.break_audit (break_id, action, who, note, before, after)
    SELECT c.break_id, 'auto_resolved', %(who)s, c.resolution,
           to_jsonb(t) - 'by_line' - 'by_rule', to_jsonb(c)
    FROM closed c JOIN target t USING (break_id)
    RETURNING 1
)
SELECT count(*) FROM audit
