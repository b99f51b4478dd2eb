SELECT r.run_id, r.dag_run_id, r.trigger, r.status, r.created_by, r.created_at, r.updated_at,
       (SELECT count(*) FROM payouts.payout_items i WHERE i.run_id = r.run_id) AS items,
       a.decision AS approval_decision, a.decided_by AS approved_by, a.policy AS approval_policy
FROM payouts.runs r LEFT JOIN payouts.approvals a USING (run_id)
ORDER BY r.created_at DESC, r.run_id DESC LIMIT %s OFFSET %s
